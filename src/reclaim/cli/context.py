"""What every command shares: the chosen database, the consoles, the debug switch."""

from __future__ import annotations

__all__ = ["CliState", "console", "err_console", "state"]

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    db_option: str | None = None
    debug: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        # Imported here: only commands that use the database load SQLAlchemy.
        from reclaim.store import resolve_database_url

        return resolve_database_url(self.db_option)

    def engine(self) -> Engine:
        if self._engine is None:
            from reclaim.store import create_engine

            self._engine = create_engine(self.database_url)
        return self._engine


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
