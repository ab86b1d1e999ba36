"""The one exception tree of reclaim.

Every message says what went wrong, where, and how to fix it. ``ConfigError`` is raised for bad
input found before anything runs; ``ExecutionError`` for failures while work is under way.
An exception class's docstring is its default message, so ``raise DatabaseUnreachable()`` still
says something useful.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseError",
    "ExecutionError",
    "ReclaimError",
    "SourceLocation",
]

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A place in a user's file: 1-based line and column, as editors count them."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


class ReclaimError(Exception):
    """reclaim failed."""

    def __init__(
        self,
        message: str | None = None,
        *,
        location: SourceLocation | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip() or type(self).__name__
        self.location = location
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{self.location}: {text}"
        if self.fix:
            text = f"{text}; {self.fix}"
        return text


class ConfigError(ReclaimError):
    """The configuration or input is invalid; nothing was run."""


class ExecutionError(ReclaimError):
    """A run failed while it was under way."""


class DatabaseError(ExecutionError):
    """The database could not be used."""
