"""What every command shares: the chosen database, the consoles, the debug switch."""

from __future__ import annotations

__all__ = ["CliState", "console", "err_console", "state"]

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Paths, resource ids and rule text are printed as they are: Rich would turn ``:smile:`` in a
# file name into an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


@dataclass
class CliState:
    db_option: str | None = None
    debug: bool = False
    config_database: str | None = None
    """The database a loaded reclaim.yaml names: used when neither --db nor
    $RECLAIM_DATABASE_URL is given."""
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        # Imported here: only commands that use the database load SQLAlchemy.
        import os

        from reclaim.store import resolve_database_url

        explicit = self.db_option
        if not explicit and not os.environ.get("RECLAIM_DATABASE_URL", "").strip():
            if self.config_database is None:
                self.config_database = _configured_database()
            explicit = self.config_database
        return resolve_database_url(explicit)

    def engine(self) -> Engine:
        if self._engine is None:
            from reclaim.store import create_engine

            self._engine = create_engine(self.database_url)
        return self._engine


def _configured_database() -> str | None:
    """The database of the configuration file found by the default lookup, if any, so that
    every command (not only `run`) works on the database reclaim.yaml names."""
    from reclaim.config import find_config, load_config

    path = find_config(None)
    return None if path is None else load_config(path).database.resolve()


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
