"""The Jira webhook receiver: an ASGI app that the service mounts (and tests run alone).

Jira signs a webhook registered with a secret as ``X-Hub-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw body, so the body is verified as received, before it is parsed. Jira
delivers at least once and every retry of one event carries the same
``X-Atlassian-Webhook-Identifier``: recent identifiers are dropped at once, and a delivery that
is older than the ticket's last applied version (same issue, same or older ``updated``) changes
nothing, so a retry after a restart is harmless too.
"""

from __future__ import annotations

__all__ = ["WebhookReceiver", "verify_signature"]

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reclaim.sync.inbound import StatusMapping, apply_events, record_issue_changes
from reclaim.tickets import issue_from_json


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the ``sha256=`` HMAC of ``body`` under ``secret``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


class WebhookReceiver:
    def __init__(
        self,
        database: Engine,
        secret: str | None,
        *,
        mapping: StatusMapping | None = None,
        path: str = "/jira/webhook",
        remember: int = 10_000,
    ) -> None:
        self.database = database
        self.secret = secret
        self.mapping = mapping or StatusMapping()
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(path, self.receive, methods=["POST"])])

    def _first_time(self, identifier: str | None) -> bool:
        if not identifier:
            return True
        with self._lock:
            if identifier in self._seen:
                return False
            self._seen[identifier] = None
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            return True

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if self.secret is not None and not verify_signature(
            self.secret, body, request.headers.get("x-hub-signature")
        ):
            return JSONResponse({"error": "bad or missing X-Hub-Signature"}, status_code=401)
        if not self._first_time(request.headers.get("x-atlassian-webhook-identifier")):
            return JSONResponse({"duplicate": True}, status_code=200)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        applied = await run_in_threadpool(self._apply, payload)
        return JSONResponse({"applied": applied}, status_code=200)

    def _apply(self, payload: Any) -> int:
        raw = payload.get("issue") if isinstance(payload, dict) else None
        if not isinstance(raw, dict) or "key" not in raw:
            return 0
        issue = issue_from_json(raw)
        with self.database.begin() as connection:
            applied, events = record_issue_changes(connection, [issue], self.mapping)
        apply_events(self.database, events, self.mapping)
        return applied
