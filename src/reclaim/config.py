"""``reclaim.yaml``: what a deployment reads, where its secrets are, how often it runs.

The file is read with the rules engine's YAML reader, so every key keeps its line and column,
and validated with pydantic; each problem becomes one :class:`~reclaim.errors.ConfigError`
naming ``file:line:col`` and the fix, and :class:`ConfigFileError` carries them all.

Secrets are never in the file: it names the environment variable or the file that holds the
Jira token (``api_token_env`` / ``api_token_file``) and the database URL when that URL carries
a password (``url_env``). The model holds those names only, so printing or storing it (the
weekly workflow's input is stored) never reveals a secret; :meth:`JiraConfig.credentials`
reads the secret at the moment a client is built.

Lookup: ``--config PATH``, else ``$RECLAIM_CONFIG``, else ``./reclaim.yaml`` when it exists.
Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "ConfigFileError",
    "DatabaseConfig",
    "JiraConfig",
    "ReclaimConfig",
    "RulesConfig",
    "ScheduleConfig",
    "ServiceConfig",
    "SnoozeConfig",
    "SourcesConfig",
    "find_config",
    "load_config",
    "parse_config",
    "starter_config",
]

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reclaim.errors import ConfigError, SourceLocation

CONFIG_ENV = "RECLAIM_CONFIG"
DEFAULT_CONFIG_NAME = "reclaim.yaml"


class ConfigFileError(ConfigError):
    """The configuration file has problems; ``problems`` lists each one with its line."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(first.message + more, location=first.location, fix=first.fix)


class _Section(BaseModel):
    # An unknown key is almost always a typo; silently ignoring it would ignore the setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    """Where reclaim keeps its state. ``--db`` and ``$RECLAIM_DATABASE_URL`` win over this."""

    url: str | None = None
    """A URL without a password: ``sqlite:///reclaim.db``, ``postgresql://reclaim@db/reclaim``."""
    url_env: str | None = None
    """The environment variable holding the URL, for a URL with a password in it."""

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).password:
            raise ValueError(
                "the database URL carries a password, and this file is not the place for "
                "secrets; move the URL to an environment variable and name it in url_env"
            )
        return value

    def resolve(self, env: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if env is None else env
        if self.url_env:
            value = env.get(self.url_env)
            if not value:
                raise ConfigError(
                    f"database.url_env names {self.url_env}, which is not set",
                    fix=f"export {self.url_env}=postgresql://user:password@host/db",
                )
            return value
        return self.url


class SourcesConfig(_Section):
    """The files of one week: FOCUS billing exports, inventory, utilization (files or folders)."""

    billing: list[str] = Field(default_factory=list)
    inventory: list[str] = Field(default_factory=list)
    utilization: list[str] = Field(default_factory=list)
    sample: bool = False
    """Read the small sample bundled with reclaim instead (for trying it out)."""


class RulesConfig(_Section):
    savings: str | None = None
    """A savings rule file or folder; none is the built-in pack."""
    routing: str | None = None
    """Routing rules: which Jira project, type, labels and assignee a ticket gets."""
    templates: str | None = None
    """Ticket templates; none is the built-in one."""
    default_project: str | None = None
    """The Jira project of a recommendation no routing rule claims."""


class JiraConfig(_Section):
    url: str
    flavor: Literal["cloud", "datacenter"] = "cloud"
    """``cloud`` (e-mail + API token) or ``datacenter`` (personal access token)."""
    email: str | None = None
    """The account the API token belongs to (Jira Cloud only)."""
    api_token_env: str | None = None
    """The environment variable holding the API token (Cloud) or personal access token (DC)."""
    api_token_file: str | None = None
    """Or a file holding only the token (a Docker or Kubernetes secret)."""
    requests_per_second: float | None = Field(default=10.0, gt=0)
    """At most this many Jira requests per second (shared by a process's threads); null: none."""
    grace_seconds: float = Field(default=30.0, ge=0)
    """How long Jira's search may lag a create: the reconcile waits this out before re-creating."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL like https://acme.atlassian.net")
        if parts.password or parts.username:
            raise ValueError("the Jira URL must not carry credentials; use api_token_env")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _token_source(self) -> JiraConfig:
        if not (self.api_token_env or self.api_token_file):
            raise ValueError("no token source: set api_token_env or api_token_file")
        if self.api_token_env and self.api_token_file:
            raise ValueError("set only one of api_token_env and api_token_file")
        if self.flavor == "cloud" and not self.email:
            raise ValueError("Jira Cloud needs the account e-mail: set email")
        return self

    def secret(self, env: Mapping[str, str] | None = None) -> str:
        """The token, read now from its variable or file; never kept on the model."""
        env = os.environ if env is None else env
        if self.api_token_env:
            value = env.get(self.api_token_env, "").strip()
            if not value:
                raise ConfigError(
                    f"jira.api_token_env names {self.api_token_env}, which is not set",
                    fix=f"export {self.api_token_env}=<your Jira API token>",
                )
            return value
        path = Path(str(self.api_token_file))
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"jira.api_token_file {path} cannot be read ({exc.strerror})",
                fix="point api_token_file at a readable file holding only the token",
            ) from exc
        if not value:
            raise ConfigError(f"jira.api_token_file {path} is empty", fix="put the token in it")
        return value

    def credentials(self, env: Mapping[str, str] | None = None) -> Any:
        """:class:`reclaim.tickets.JiraCredentials` for this site (imported lazily)."""
        from reclaim.tickets import JiraCredentials

        if self.flavor == "cloud":
            return JiraCredentials.cloud(self.url, str(self.email), self.secret(env))
        return JiraCredentials.data_center(self.url, self.secret(env))


class SnoozeConfig(_Section):
    """What a ticket closed as won't do means: the recommendation is dismissed for a while."""

    wont_do_days: int = Field(default=90, ge=1)
    wont_do_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Declined", "Duplicate"]
    )


class ScheduleConfig(_Section):
    """A cron schedule of the weekly loop: ``reclaim serve`` and ``reclaim worker`` install it
    at start (each tick starts one ``reclaim run`` with this file's settings)."""

    name: str = Field(min_length=1, max_length=200)
    cron: str
    """Five fields: ``0 6 * * MON`` is Mondays at 06:00."""
    timezone: str = "UTC"
    """The IANA time zone the cron fields are read in (``Europe/Paris``); DST-aware."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(f"schedule name {value!r} has spaces around it; remove them")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _valid_cron(value, "UTC")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        _valid_cron("* * * * *", value)
        return value


def _valid_cron(expression: str, timezone: str) -> str:
    from reclaim.durable import CronExpression

    try:
        CronExpression(expression, timezone)
    except ConfigError as exc:
        raise ValueError(exc.message + (f"; {exc.fix}" if exc.fix else "")) from exc
    return expression


class ServiceConfig(_Section):
    """Settings of ``reclaim serve`` and ``reclaim worker``: that command owns its fields."""


class ReclaimConfig(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    jira: JiraConfig | None = None
    snooze: SnoozeConfig = Field(default_factory=SnoozeConfig)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    path: str | None = Field(default=None, exclude=True)
    """The file this was read from (set by :func:`load_config`, not a key of the file)."""

    @field_validator("schedules")
    @classmethod
    def _unique_schedule_names(cls, value: list[ScheduleConfig]) -> list[ScheduleConfig]:
        names = [schedule.name for schedule in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"schedule name(s) {', '.join(map(repr, twice))} appear more than once; "
                "give each schedule its own name"
            )
        return value

    def files(self) -> list[tuple[str, str]]:
        """(key, path) of every file or folder the configuration names."""
        named: list[tuple[str, str]] = []
        for kind in ("billing", "inventory", "utilization"):
            named.extend((f"sources.{kind}", path) for path in getattr(self.sources, kind))
        for key in ("savings", "routing", "templates"):
            value = getattr(self.rules, key)
            if value:
                named.append((f"rules.{key}", value))
        if self.jira is not None and self.jira.api_token_file:
            named.append(("jira.api_token_file", self.jira.api_token_file))
        return named


def find_config(option: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to read: ``option``, ``$RECLAIM_CONFIG``, ``./reclaim.yaml``.

    An explicit path (option or variable) that does not exist is an error; a missing
    ``./reclaim.yaml`` just means there is no configuration.
    """
    explicit = option or os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            source = "--config" if option else f"${CONFIG_ENV}"
            raise ConfigError(
                f"{source} names {path}, which is not a file",
                fix="write one with `reclaim init`, or fix the path",
            )
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_config(path: str | os.PathLike[str]) -> ReclaimConfig:
    """Read and validate one file; raises :class:`ConfigFileError` listing every problem."""
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {file} ({exc.strerror})", fix="check the path and its permissions"
        ) from exc
    # Resolved, so the paths stored with a run (its input) still name the same files when
    # a worker started elsewhere resumes it or a schedule starts it.
    return parse_config(text, str(file), base=file.resolve().parent)


def parse_config(
    text: str | bytes, path: str = "<string>", *, base: Path | None = None
) -> ReclaimConfig:
    """Validate configuration text; relative paths are made relative to ``base``."""
    # The rules engine's reader: positions for every key, all duplicate keys, bounded size.
    from reclaim.rules.source import load_yaml

    document = load_yaml(text, path)
    data = document.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(
            [
                ConfigError(
                    "the configuration must be a mapping of sections",
                    location=document.location(()),
                    fix="start from `reclaim init`",
                )
            ]
        )
    try:
        config = ReclaimConfig.model_validate(data)
    except ValidationError as exc:
        found = [_problem(error, document) for error in exc.errors(include_url=False)]
        found.sort(key=_line_order)
        raise ConfigFileError(found) from None
    if base is not None:
        config = _rebase(config, base)
    return config.model_copy(update={"path": path})


def _line_order(problem: ConfigError) -> tuple[int, int]:
    location = problem.location
    if location is None:
        return (0, 0)
    return (location.line or 0, location.column or 0)


def _problem(error: Any, document: Any) -> ConfigError:
    loc = tuple(error["loc"])
    kind = error["type"]
    dotted = ".".join(str(part) for part in loc) or "(top level)"
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = sorted(parent.model_fields) if parent is not None else []
        known = [name for name in known if name != "path"]
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return ConfigError(
            f"unknown key {dotted!r}", location=document.location(loc, key=True), fix=fix
        )
    if kind == "missing":
        return ConfigError(
            f"{dotted} is required",
            location=document.location(loc[:-1], key=True),
            fix=f"add {loc[-1]}: to that section (see `reclaim init`)",
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    location: SourceLocation = document.location(loc)
    return ConfigError(f"{dotted}: {message}", location=location, fix=_FIX.get(kind))


_FIX = {
    "string_type": "quote the value",
    "list_type": "write a list: [a, b] or one '- item' per line",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "float_parsing": "write a number",
    "int_parsing": "write a whole number",
    "literal_error": "use one of the values named",
    "model_type": "write a mapping of keys under it",
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = ReclaimConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        found = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if found is None:
            return None
        model = found
    return model


def _rebase(config: ReclaimConfig, base: Path) -> ReclaimConfig:
    def fix(path: str) -> str:
        return path if Path(path).is_absolute() else str(base / path)

    sources = config.sources.model_copy(
        update={
            kind: [fix(p) for p in getattr(config.sources, kind)]
            for kind in ("billing", "inventory", "utilization")
        }
    )
    rules = config.rules.model_copy(
        update={
            key: fix(value)
            for key in ("savings", "routing", "templates")
            if (value := getattr(config.rules, key))
        }
    )
    jira = config.jira
    if jira is not None and jira.api_token_file:
        jira = jira.model_copy(update={"api_token_file": fix(jira.api_token_file)})
    database = config.database
    if database.url and database.url.startswith("sqlite:///") and database.url != "sqlite:///":
        file = database.url.removeprefix("sqlite:///")
        if file and not file.startswith(":") and not Path(file).is_absolute():
            database = database.model_copy(update={"url": f"sqlite:///{base / file}"})
    return config.model_copy(
        update={"sources": sources, "rules": rules, "jira": jira, "database": database}
    )


def starter_config() -> str:
    """The commented file ``reclaim init`` writes; it validates as it is."""
    return _STARTER


_STARTER = """\
# reclaim.yaml: what `reclaim run` reads every week.
# Check it with `reclaim config check` (it also reaches the database, Jira and the files).
# Secrets never go in this file: name the environment variable or file that holds them.
# Relative paths are relative to this file's folder.

database:
  # Where recommendations, tickets and durable runs are kept. --db and
  # $RECLAIM_DATABASE_URL win over this. For PostgreSQL with a password, put the URL in an
  # environment variable and name it instead:  url_env: RECLAIM_DATABASE_URL
  url: sqlite:///reclaim.db

sources:
  # One week of data: FOCUS billing exports (CSV, CSV.gz or Parquet; files or folders),
  # an inventory and utilization metrics. `sample: true` reads the bundled sample instead.
  sample: true
  billing: []      # e.g. [exports/focus/]
  inventory: []    # e.g. [inventory.csv]
  utilization: []  # e.g. [metrics.csv]

rules:
  savings: null          # a savings rule file or folder; null is the built-in pack
  routing: null          # routing rules: which team's Jira project gets each ticket
  templates: null        # ticket templates; null is the built-in one
  default_project: OPS   # the project of a recommendation no routing rule claims

# Jira: leave this section out to find and track savings without tickets.
# jira:
#   url: https://your-site.atlassian.net
#   flavor: cloud                 # cloud (e-mail + API token) or datacenter (personal token)
#   email: finops-bot@example.com
#   api_token_env: JIRA_TOKEN     # or api_token_file: /run/secrets/jira_token
#   requests_per_second: 10       # stay under the site's rate limit
#   grace_seconds: 30             # how long Jira's search may lag a create

snooze:
  # A ticket closed with one of these resolutions dismisses its recommendation for this long.
  wont_do_days: 90
  wont_do_resolutions: ["Won't Do", "Won't Fix", "Declined", "Duplicate"]

schedules:
  # When the weekly loop runs by itself: `reclaim serve` and `reclaim worker` install these at
  # start (and remove the ones this file no longer names); workers run what they start.
  # Cron fields: minute hour day-of-month month day-of-week, in `timezone` (default UTC).
  - name: weekly
    cron: "0 6 * * MON"
    # timezone: Europe/Paris
"""
