"""Service settings from the environment, token hashing and cursors: pure, no database."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from reclaim.errors import ConfigError
from reclaim.service import ServiceSettings, hash_token
from reclaim.service.queries import CursorError, RecommendationQuery, _decode_cursor, _encode_cursor
from reclaim.service.tokens import matches_any, new_token, parse_hash


def test_settings_come_from_the_environment_then_the_options() -> None:
    token = new_token()[1]
    env = {
        "RECLAIM_DATABASE_URL": "sqlite:///x.db",
        "RECLAIM_PORT": "9000",
        "RECLAIM_API_TOKEN_HASHES": f" {hash_token(token)} ,",
        "RECLAIM_SCHEDULES": "off",
        "RECLAIM_JIRA_WEBHOOK_SECRET": "hush",
    }
    settings = ServiceSettings.from_env(env, port=9100, host=None)
    assert settings.port == 9100
    assert settings.host == "127.0.0.1"
    assert settings.database_url == "sqlite:///x.db"
    assert settings.schedules is False
    assert settings.token_hashes == (hash_token(token),)
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "hush"
    assert "hush" not in repr(settings)


def test_the_webhook_secret_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    settings = ServiceSettings.from_env({"RECLAIM_JIRA_WEBHOOK_SECRET_FILE": str(secret)})
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "from-file"
    with pytest.raises(ConfigError, match="cannot read the webhook secret file"):
        ServiceSettings.from_env({"RECLAIM_JIRA_WEBHOOK_SECRET_FILE": str(tmp_path / "none")})


def test_a_plain_token_is_refused_where_a_hash_belongs() -> None:
    token = new_token()[1]
    with pytest.raises(ConfigError, match="never the token itself"):
        ServiceSettings.from_env({"RECLAIM_API_TOKEN_HASHES": token})
    with pytest.raises(ConfigError, match="invalid service settings"):
        ServiceSettings.from_env({"RECLAIM_PORT": "70000"})


def test_tokens_hash_with_sha256_and_match_only_themselves() -> None:
    token_id, token = new_token()
    assert token.startswith(f"rct_{token_id}_")
    assert hash_token(token) == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    assert parse_hash(hash_token(token)) == hashlib.sha256(token.encode()).hexdigest()
    other = new_token()[1]
    assert matches_any(token, (hash_token(other), hash_token(token)))
    assert not matches_any(token, (hash_token(other),))
    assert not matches_any(token, ())
    assert new_token()[1] != token


def test_cursors_round_trip_and_refuse_other_orders() -> None:
    cursor = _encode_cursor("savings", True, Decimal("12.5000"), 42)
    query = RecommendationQuery(cursor=cursor)
    assert _decode_cursor(query) == (Decimal("12.5000"), 42)
    with pytest.raises(CursorError, match="another sort order"):
        _decode_cursor(RecommendationQuery(cursor=cursor, descending=False))
    with pytest.raises(CursorError, match="damaged"):
        _decode_cursor(RecommendationQuery(cursor=cursor[:-3]))
    assert _decode_cursor(RecommendationQuery()) is None
