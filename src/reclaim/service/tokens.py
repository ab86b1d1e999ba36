"""API tokens: made once, shown once, kept only as hashes, compared in constant time.

A token reads ``rct_<id>_<secret>``: ``id`` (12 hex digits) finds its row, ``secret`` is 32
random bytes. The database keeps the SHA-256 of the whole token. A slow password hash (scrypt,
argon2) protects *guessable* secrets; a 256-bit random secret cannot be guessed from its
SHA-256, and a slow hash would cost tens of milliseconds on every API call.
"""

from __future__ import annotations

__all__ = [
    "TOKEN_PREFIX",
    "ApiToken",
    "TokenStore",
    "hash_token",
    "matches_any",
    "new_token",
    "parse_hash",
]

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from reclaim.errors import ConfigError
from reclaim.store.tables.service import api_tokens

TOKEN_PREFIX = "rct_"  # noqa: S105  (a prefix that secret scanners can match, not a secret)
_TOKEN = re.compile(r"^rct_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


def new_token() -> tuple[str, str]:
    """A fresh ``(id, token)``."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The stored form of a token: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def parse_hash(value: str) -> str:
    """The hex digest of a configured ``sha256:<hex>`` hash; ConfigError if it is not one."""
    match = _HASH.match(value.strip())
    if match is None:
        raise ConfigError(
            f"{value[:12]!r}… is not a token hash",
            fix="give hashes as printed by `reclaim tokens hash` (sha256:<64 hex digits>), "
            "never the token itself",
        )
    return match.group(1)


def matches_any(token: str, hashes: tuple[str, ...]) -> bool:
    """True if ``token`` hashes to one of ``hashes``; every hash is compared, in constant time."""
    digest = hash_token(token).removeprefix("sha256:")
    found = False
    for value in hashes:
        # No early exit: the time taken does not tell which configured hash came close.
        found |= hmac.compare_digest(digest, parse_hash(value))
    return found


@dataclass(frozen=True)
class ApiToken:
    """A stored token, without its secret."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class TokenStore:
    """API tokens in the ``api_tokens`` table (``reclaim db upgrade`` creates it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str) -> str:
        """Store a new token named ``name`` and return it; it cannot be read back later."""
        if not name or len(name) > 200 or name != name.strip():
            raise ConfigError(
                f"token name {name!r} must be 1 to 200 characters, without outer spaces"
            )
        token_id, token = new_token()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(api_tokens).values(
                        id=token_id,
                        name=name,
                        hash=hash_token(token).removeprefix("sha256:"),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as exc:
            raise ConfigError(
                f"a token named {name!r} already exists",
                fix="pick another name, or revoke it first (`reclaim tokens revoke NAME`)",
            ) from exc
        return token

    def all(self) -> list[ApiToken]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    api_tokens.c.id,
                    api_tokens.c.name,
                    api_tokens.c.created_at,
                    api_tokens.c.revoked_at,
                ).order_by(api_tokens.c.name)
            ).all()
        return [ApiToken(**row._mapping) for row in rows]

    def revoke(self, name: str) -> bool:
        """Revoke the token named ``name`` (kept for the record). False if there is none."""
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return result.rowcount == 1

    def verify(self, token: str) -> str | None:
        """The name of the live token ``token`` is, or None."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_tokens.c.name, api_tokens.c.hash).where(
                    api_tokens.c.id == match.group(1), api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        digest = hash_token(token).removeprefix("sha256:")
        return str(row.name) if hmac.compare_digest(digest, str(row.hash)) else None
