"""Bearer tokens for the API: a stored token (``reclaim tokens create``) or a configured hash.

Health, readiness and metrics stay open (probes and Prometheus carry no token); everything
under ``/api`` and the dashboard require one.
"""

from __future__ import annotations

__all__ = ["SESSION_COOKIE", "login_router", "require_browser_token", "require_token"]

import html
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from reclaim.service.state import ServiceState, service_state
from reclaim.service.tokens import matches_any

# The name a request authenticated by a configured hash goes by (configured hashes have none).
_CONFIGURED = "configured"
_bearer = HTTPBearer(auto_error=False, description="A token from `reclaim tokens create`.")


def _token_name(state: ServiceState, token: str) -> str | None:
    if state.settings.token_hashes and matches_any(token, state.settings.token_hashes):
        return _CONFIGURED
    return state.tokens.verify(token)


def require_token(
    request: Request,
    state: Annotated[ServiceState, Depends(service_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The name of the caller's token; 401 without a valid one."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        name = _token_name(state, credentials.credentials)
        if name is not None:
            request.state.token_name = name
            return name
    state.metrics.auth_failures.inc()
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="a valid API token is needed: send 'Authorization: Bearer <token>' "
        "(create one with `reclaim tokens create NAME`)",
        headers={"WWW-Authenticate": "Bearer"},
    )


# The dashboard in a browser: the same tokens, sent once to /login and kept in a cookie that
# scripts cannot read (HttpOnly) and other sites cannot send (SameSite=Strict, which also
# keeps the dashboard's Resume and Cancel forms from being posted by another site).
SESSION_COOKIE = "reclaim_token"
_PUBLIC_STATIC = "/static/dashboard/"


def require_browser_token(
    request: Request,
    state: Annotated[ServiceState, Depends(service_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's token name, from a bearer header or the login cookie; else to /login."""
    if request.url.path.startswith(_PUBLIC_STATIC):
        return "static"  # the stylesheet ships in the package: nothing to hide, and /login uses it
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token: str | None = credentials.credentials
    else:
        token = request.cookies.get(SESSION_COOKIE)
    name = None if token is None else _token_name(state, token)
    if name is not None:
        request.state.token_name = name
        return name
    state.metrics.auth_failures.inc()
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status.HTTP_303_SEE_OTHER, headers={"Location": f"/login?next={quote(target)}"}
        )
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="log in at /login first")


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>reclaim: log in</title><link rel="stylesheet" href="/static/dashboard/dashboard.css">
</head><body><main style="max-width:28rem;margin:4rem auto">
<h1>reclaim</h1><p>Paste an API token (<code>reclaim tokens create NAME</code>).</p>
{error}<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<input type="password" name="token" autocomplete="current-password" required autofocus
 style="width:100%"><p><button type="submit">Log in</button></p></form></main></body></html>
"""


def _safe_next(target: str) -> str:
    # Only paths on this site: an open redirect would hand the cookie's trust to anyone.
    return target if target.startswith("/") and not target.startswith("//") else "/"


def login_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> HTMLResponse:
        return HTMLResponse(
            _LOGIN_PAGE.format(error="", next=html.escape(_safe_next(next), quote=True))
        )

    @router.post("/login", response_model=None)
    async def login(
        request: Request, state: Annotated[ServiceState, Depends(service_state)]
    ) -> HTMLResponse | RedirectResponse:
        # A urlencoded form of two fields, read here rather than adding a multipart parser.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = form.get("token", [""])[0]
        target = _safe_next(form.get("next", ["/"])[0])
        name = await run_in_threadpool(_token_name, state, token) if token else None
        if name is None:
            state.metrics.auth_failures.inc()
            page = _LOGIN_PAGE.format(
                error='<p role="alert">That token is not valid.</p>',
                next=html.escape(target, quote=True),
            )
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout")
    def logout() -> RedirectResponse:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router
