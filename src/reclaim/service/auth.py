"""Bearer tokens for the API: a stored token (``reclaim tokens create``) or a configured hash.

Health, readiness and metrics stay open (probes and Prometheus carry no token); everything
under ``/api`` and the dashboard require one.
"""

from __future__ import annotations

__all__ = ["require_token"]

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reclaim.service.state import ServiceState, service_state
from reclaim.service.tokens import matches_any

# The name a request authenticated by a configured hash goes by (configured hashes have none).
_CONFIGURED = "configured"
_bearer = HTTPBearer(auto_error=False, description="A token from `reclaim tokens create`.")


def require_token(
    request: Request,
    state: Annotated[ServiceState, Depends(service_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The name of the caller's token; 401 without a valid one."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
        if state.settings.token_hashes and matches_any(token, state.settings.token_hashes):
            request.state.token_name = _CONFIGURED
            return _CONFIGURED
        name = state.tokens.verify(token)
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
