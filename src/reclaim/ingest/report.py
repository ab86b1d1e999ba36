"""What an import found wrong, row by row, and what it read: the account given to the user.

A bad row never stops an import. It is counted per file, the first few are kept with their
row number and reason, and every good row still counts. A *dropped* row is left out of the facts
(its cost cannot be read); a row that is only partly bad (say, unreadable tags) is kept and
reported with ``dropped=False``.
"""

from __future__ import annotations

__all__ = ["BadRow", "CollectReport", "FileReport", "new_content"]

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reclaim.ingest.files import InputFile, sha256_of

SAMPLES_PER_FILE = 50
"""How many bad rows per file are kept with their details; all of them are counted."""


@dataclass(frozen=True)
class BadRow:
    """One bad row: ``row`` is 1-based among data rows (the header is not a row)."""

    path: str
    row: int
    reason: str
    dropped: bool = True

    def __str__(self) -> str:
        what = "skipped" if self.dropped else "kept"
        return f"{self.path}: row {self.row}: {self.reason} ({what})"


@dataclass(frozen=True)
class FileReport:
    """One input file: what kind it is, its content hash, how many rows were good and bad."""

    path: str
    kind: str
    sha256: str
    rows: int
    bad_rows: int
    warnings: int = 0
    samples: tuple[BadRow, ...] = ()
    duplicate_of: str | None = None
    """Set when the same content was already read under another name; it was not read again."""
    superseded: int = 0
    """Good rows left out because a later export run restated their billing period."""
    superseded_by: str | None = None
    """The folder of that later run."""

    @property
    def good_rows(self) -> int:
        return self.rows - self.bad_rows


@dataclass
class CollectReport:
    """Everything one collection read: files, rows, bad rows, resources, the data's end."""

    files: list[FileReport] = field(default_factory=list)
    resources: int = 0
    as_of: datetime | None = None
    unattributed_cost: float = 0.0
    """EffectiveCost of rows without a ResourceId (tax, support): real money, no resource."""
    sources: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(f.warnings for f in self.files)

    def samples(self) -> list[BadRow]:
        return [sample for f in self.files for sample in f.samples]


def new_content(
    files: Sequence[InputFile],
    kind: str,
    hashes: dict[Path, str] | None,
    reports: list[FileReport],
) -> Iterator[tuple[InputFile, str]]:
    """Each file with its content hash, skipping content already read under another name.

    A skipped file still gets its report (``duplicate_of`` the first name), appended to
    ``reports`` as the iteration reaches it, so reports stay in the order the files were given.
    """
    digests = hashes if hashes is not None else {f.path: sha256_of(f.path) for f in files}
    seen: dict[str, Path] = {}
    for file in files:
        digest = digests[file.path]
        if digest in seen:
            reports.append(
                FileReport(str(file.path), kind, digest, 0, 0, duplicate_of=str(seen[digest]))
            )
            continue
        seen[digest] = file.path
        yield file, digest
