"""Bringing a database to the newest schema with Alembic, and telling where it stands.

The migration scripts ship inside the package, so ``reclaim db upgrade`` works from an installed
wheel with no ``alembic.ini`` in sight. Each component that owns tables keeps its own branch of
revisions (``app``, ``durable``, …), so we always upgrade to every head at once.
"""

from __future__ import annotations

__all__ = ["MigrationStatus", "Revision", "migration_status", "schema_drift", "upgrade"]

from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from reclaim.database import check_connection, redact_url
from reclaim.errors import DatabaseError
from reclaim.store.schema import all_metadata

_SCRIPT_LOCATION = "reclaim.store:migrations"


@dataclass(frozen=True)
class Revision:
    id: str
    message: str


@dataclass(frozen=True)
class MigrationStatus:
    url: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[Revision, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


def upgrade(engine: Engine, revision: str = "heads") -> MigrationStatus:
    """Apply every migration the database lacks; running it again changes nothing."""
    check_connection(engine)
    config = _config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except (OperationalError, ProgrammingError) as exc:
        raise DatabaseError(
            f"migrating {redact_url(str(engine.url))} failed: {exc.orig}",
            fix="nothing was changed; check that the database user may create tables",
        ) from exc
    return migration_status(engine)


def migration_status(engine: Engine) -> MigrationStatus:
    check_connection(engine)
    script = ScriptDirectory.from_config(_config())
    with engine.connect() as connection:
        current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    heads = tuple(sorted(script.get_heads()))
    applied: set[str] = set()
    for head in current:
        applied.update(rev.revision for rev in script.iterate_revisions(head, "base"))
    pending = [
        Revision(rev.revision, (rev.doc or "").strip().splitlines()[0] if rev.doc else "")
        for rev in script.walk_revisions("base", "heads")
        if rev.revision not in applied
    ]
    pending.reverse()  # walk_revisions goes newest first; people read oldest first
    return MigrationStatus(
        url=redact_url(engine.url.render_as_string(hide_password=False)),
        current=current,
        heads=heads,
        pending=tuple(pending),
    )


def schema_drift(engine: Engine) -> list[Any]:
    """Differences between the live database and the declared tables; empty when they agree."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs: list[Any] = []
        for metadata in all_metadata():
            diffs.extend(
                diff
                for diff in compare_metadata(context, metadata)
                if not _is_foreign_table(diff, metadata)
            )
        return diffs


def _is_foreign_table(diff: Any, metadata: Any) -> bool:
    # compare_metadata reports every table of the database that one MetaData does not declare;
    # with several components, a table another component declares is not drift.
    # Alembic also reports each index of such a table as removed.
    if isinstance(diff, tuple) and diff and diff[0] in ("remove_table", "remove_index"):
        name = diff[1].name if diff[0] == "remove_table" else diff[1].table.name
        return name == "alembic_version" or any(
            name in other.tables for other in all_metadata() if other is not metadata
        )
    return False
