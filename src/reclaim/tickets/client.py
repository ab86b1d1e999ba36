"""Assemble a ready Jira client from credentials: HTTP client, pacing, retries."""

from __future__ import annotations

__all__ = ["connect"]

import httpx

from reclaim.tickets.credentials import JiraCredentials
from reclaim.tickets.jira import JiraClient
from reclaim.tickets.pacer import Pacer
from reclaim.tickets.retry import RetryPolicy
from reclaim.tickets.session import JiraSession, open_http_client


def connect(
    credentials: JiraCredentials,
    *,
    transport: httpx.BaseTransport | None = None,
    requests_per_second: float | None = 10.0,
    burst: float = 10.0,
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
) -> JiraClient:
    """A client for the site in ``credentials``; ``requests_per_second=None`` turns pacing off.

    Jira Cloud does not publish one number for its limits, so the default pace is modest;
    raise it where the site allows more (the pacer slows down by itself on a 429).
    """
    http = open_http_client(credentials, transport=transport, timeout=timeout)
    pacer = Pacer(requests_per_second, burst=burst) if requests_per_second else None
    return JiraClient(JiraSession(http, retry=retry, pacer=pacer), credentials.flavor)
