"""Where the Jira URL and secret come from: environment variables or files, never the command line.

Jira Cloud authenticates with an account e-mail and an API token (HTTP Basic) and speaks REST v3
with ADF; Jira Data Center with a personal access token (Bearer) and REST v2 with wiki markup.
The secret never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

__all__ = ["Flavor", "JiraCredentials", "credentials_from_env"]

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reclaim.errors import ConfigError

URL_ENV = "RECLAIM_JIRA_URL"
EMAIL_ENV = "RECLAIM_JIRA_EMAIL"
TOKEN_ENV = "RECLAIM_JIRA_API_TOKEN"  # noqa: S105 - a variable name, not a secret
PAT_ENV = "RECLAIM_JIRA_PAT"


class Flavor(StrEnum):
    CLOUD = "cloud"
    DATA_CENTER = "datacenter"

    @property
    def api_version(self) -> str:
        return "3" if self is Flavor.CLOUD else "2"


@dataclass(frozen=True)
class JiraCredentials:
    base_url: str
    flavor: Flavor
    email: str | None = None
    secret: str = field(default="", repr=False)

    @classmethod
    def cloud(cls, base_url: str, email: str, api_token: str) -> JiraCredentials:
        return cls(base_url.rstrip("/"), Flavor.CLOUD, email, api_token)

    @classmethod
    def data_center(cls, base_url: str, personal_access_token: str) -> JiraCredentials:
        return cls(base_url.rstrip("/"), Flavor.DATA_CENTER, None, personal_access_token)

    def authorization(self) -> str:
        """The value of the Authorization header."""
        if self.flavor is Flavor.CLOUD:
            pair = f"{self.email}:{self.secret}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return f"Bearer {self.secret}"


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` itself, or the contents of the file named by ``NAME_FILE`` (Docker/K8s secrets)."""
    value = env.get(name)
    if value:
        return value.strip()
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{name}_FILE points at {path}, which cannot be read ({exc.strerror})",
            fix=f"point {name}_FILE at a readable file holding only the token",
        ) from exc


def credentials_from_env(env: Mapping[str, str] | None = None) -> JiraCredentials:
    """Cloud when an e-mail and API token are set, Data Center when a PAT is set."""
    env = os.environ if env is None else env
    url = env.get(URL_ENV)
    if not url:
        raise ConfigError(
            f"no Jira URL: {URL_ENV} is not set",
            fix=f"export {URL_ENV}=https://your-site.atlassian.net",
        )
    email = env.get(EMAIL_ENV)
    token = _secret(env, TOKEN_ENV)
    pat = _secret(env, PAT_ENV)
    if email and token:
        return JiraCredentials.cloud(url, email, token)
    if pat:
        return JiraCredentials.data_center(url, pat)
    raise ConfigError(
        "no Jira credentials in the environment",
        fix=f"for Jira Cloud set {EMAIL_ENV} and {TOKEN_ENV} (or {TOKEN_ENV}_FILE); "
        f"for Data Center set {PAT_ENV} (or {PAT_ENV}_FILE)",
    )
