"""What ``reclaim serve`` needs to know: where to listen, which database, who may call the API.

Built from command-line options and ``RECLAIM_*`` environment variables by the CLI; a
``reclaim.yaml`` section can fill the same model. Secrets (the Jira webhook secret) come from
the environment or a file only, and are never printed: ``repr`` hides them.
"""

from __future__ import annotations

__all__ = ["ServiceSettings"]

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from reclaim.errors import ConfigError

_ENV_PREFIX = "RECLAIM_"


class ServiceSettings(BaseModel):
    """Settings of the API service and its scheduler.

    ``token_hashes`` are hashes written by ``reclaim tokens hash`` (``sha256:<hex>``), for
    deployments that configure tokens instead of (or beside) storing them with
    ``reclaim tokens create``; plain tokens are never accepted here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    database_url: str | None = None
    token_hashes: tuple[str, ...] = ()
    schedules: bool = True
    schedule_interval: float = Field(default=10.0, gt=0)
    webhook_secret: SecretStr | None = None
    rules: Path | None = None
    modules: tuple[str, ...] = ("reclaim.pipeline", "reclaim.sync")
    page_limit: int = Field(default=1000, ge=1)

    @field_validator("token_hashes")
    @classmethod
    def _hashes_are_hashes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from reclaim.service.tokens import parse_hash

        for item in value:
            parse_hash(item)
        return value

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> ServiceSettings:
        """Settings from ``RECLAIM_*`` variables, then ``overrides`` (CLI options) on top.

        ``RECLAIM_API_TOKEN_HASHES`` is comma-separated; ``RECLAIM_JIRA_WEBHOOK_SECRET`` or
        ``RECLAIM_JIRA_WEBHOOK_SECRET_FILE`` gives the webhook secret.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if url := env.get(f"{_ENV_PREFIX}DATABASE_URL", "").strip():
            values["database_url"] = url
        if host := env.get(f"{_ENV_PREFIX}HOST", "").strip():
            values["host"] = host
        if port := env.get(f"{_ENV_PREFIX}PORT", "").strip():
            values["port"] = port
        if hashes := env.get(f"{_ENV_PREFIX}API_TOKEN_HASHES", "").strip():
            values["token_hashes"] = tuple(h.strip() for h in hashes.split(",") if h.strip())
        if schedules := env.get(f"{_ENV_PREFIX}SCHEDULES", "").strip():
            values["schedules"] = schedules.lower() not in ("0", "false", "no", "off")
        secret = env.get(f"{_ENV_PREFIX}JIRA_WEBHOOK_SECRET", "")
        secret_file = env.get(f"{_ENV_PREFIX}JIRA_WEBHOOK_SECRET_FILE", "").strip()
        if secret_file:
            try:
                secret = Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the webhook secret file {secret_file}: {exc.strerror}",
                    fix=f"check {_ENV_PREFIX}JIRA_WEBHOOK_SECRET_FILE",
                ) from exc
        if secret:
            values["webhook_secret"] = secret
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            raise ConfigError(
                f"invalid service settings: {exc}",
                fix="check the reclaim serve options and RECLAIM_* variables",
            ) from exc
