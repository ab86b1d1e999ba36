"""The dashboard inside the service: the same tokens as the API, kept in a login cookie."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reclaim.service import ServiceSettings, create_app
from reclaim.service.auth import SESSION_COOKIE

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


def test_a_browser_logs_in_once_and_the_dashboard_answers(
    loaded: Engine, token: str, serve: Serve
) -> None:
    with serve(create_app(ServiceSettings(schedules=False), engine=loaded)) as client:
        anonymous = client.get("/recommendations", params={"status": "open"})
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=/recommendations%3Fstatus%3Dopen"
        assert client.post("/runs/nope/cancel").status_code == 401
        assert client.get("/static/dashboard/dashboard.css").status_code == 200

        refused = client.post("/login", data={"token": "wrong", "next": "/"})
        assert refused.status_code == 401
        assert SESSION_COOKIE not in refused.cookies

        # Only paths on this site: an absolute or scheme-relative next would be an open redirect.
        for hostile in ("https://evil.example/", "//evil.example/"):
            sent = client.post("/login", data={"token": token, "next": hostile})
            assert (sent.status_code, sent.headers["location"]) == (303, "/")
        accepted = client.post("/login", data={"token": token, "next": "/recommendations"})
        assert (accepted.status_code, accepted.headers["location"]) == (303, "/recommendations")
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie

        page = client.get("/recommendations")  # the client keeps the cookie
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert client.get("/").status_code == 200

        client.cookies.clear()
        assert client.get("/").status_code == 303
        bearer = client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200
        # Health and metrics stay open; the API still wants its bearer token.
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/recommendations").status_code == 401
