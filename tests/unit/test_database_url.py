from __future__ import annotations

import pytest

from reclaim.database import (
    DATABASE_URL_ENV,
    create_engine,
    default_database_url,
    redact_url,
    resolve_database_url,
)
from reclaim.errors import ConfigError


def test_explicit_url_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite:///from-env.db")
    assert resolve_database_url("sqlite:///explicit.db") == "sqlite:///explicit.db"
    assert resolve_database_url(None) == "sqlite:///from-env.db"


def test_default_is_a_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert resolve_database_url(None) == default_database_url()
    assert default_database_url().startswith("sqlite:///")
    assert default_database_url().endswith("reclaim.db")


@pytest.mark.parametrize(
    "url", ["postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert create_engine(url).url.drivername == "postgresql+psycopg"


def test_unsupported_database_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"unsupported database 'mysql'.*SQLite.*PostgreSQL"):
        create_engine("mysql://root@localhost/x")


def test_garbage_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read database URL"):
        create_engine("not a url")


def test_password_is_redacted() -> None:
    assert "hunter2" not in redact_url("postgresql://me:hunter2@db/x")


def test_schema_is_postgres_only() -> None:
    with pytest.raises(ConfigError):
        create_engine("sqlite://", schema="s")
