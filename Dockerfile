# reclaim: `reclaim serve` by default; the same image runs `reclaim worker`.
#   docker build -t reclaim .
#   docker run -p 8000:8000 -v reclaim-data:/data reclaim
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 reclaim \
 && mkdir /data && chown reclaim /data
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER reclaim
WORKDIR /data
ENV RECLAIM_DATABASE_URL=sqlite:////data/reclaim.db \
    RECLAIM_HOST=0.0.0.0 \
    RECLAIM_PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
# SIGTERM reaches reclaim directly (exec form): serve stops gracefully, a worker hands its work back.
ENTRYPOINT ["reclaim"]
CMD ["serve"]
