"""Admin webhooks: registered with a secret, delivered from a background thread, HMAC signed.

Jira Cloud signs a webhook that has a secret with ``X-Hub-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw body; every delivery of one event carries the same
``X-Atlassian-Webhook-Identifier``, so a receiver can drop the retries it has already seen.
"""

from __future__ import annotations

__all__ = ["Webhook", "WebhookHub", "sign"]

import hashlib
import hmac
import itertools
import json
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: int
    name: str
    url: str
    events: tuple[str, ...]
    secret: str | None
    enabled: bool = True
    jql: str | None = None


@dataclass
class WebhookHub:
    """Queues events and posts them; ``attempts`` deliveries per event on failure."""

    attempts: int = 3
    duplicate_every: int = 0
    hooks: dict[int, Webhook] = field(default_factory=dict)
    delivered: list[tuple[int, str, int]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _queue: queue.Queue[tuple[Webhook, dict[str, Any]] | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _sent: int = 0

    def register(
        self, name: str, url: str, events: list[str], secret: str | None, jql: str | None = None
    ) -> Webhook:
        hook = Webhook(next(self._ids), name, url, tuple(events), secret, jql=jql)
        self.hooks[hook.id] = hook
        return hook

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        for hook in list(self.hooks.values()):
            if hook.enabled and (event in hook.events or "*" in hook.events):
                self._ensure_thread()
                self._queue.put((hook, payload))

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="jira-sim-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                hook, payload = item
                self._deliver(client, hook, payload)
                self._queue.task_done()

    def _deliver(self, client: httpx.Client, hook: Webhook, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        identifier = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": identifier,
            "X-Atlassian-Webhook-Retry": "0",
        }
        if hook.secret:
            headers["X-Hub-Signature"] = sign(hook.secret, body)
        self._sent += 1
        # At-least-once, like Jira: optionally send a delivery twice to exercise receivers.
        copies = 2 if self.duplicate_every and self._sent % self.duplicate_every == 0 else 1
        for attempt in range(self.attempts):
            headers["X-Atlassian-Webhook-Retry"] = str(attempt)
            try:
                status = 0
                for _ in range(copies):
                    status = client.post(hook.url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            self.delivered.append((hook.id, identifier, status))
            if 200 <= status < 300:
                return

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery has been tried (tests call this)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
