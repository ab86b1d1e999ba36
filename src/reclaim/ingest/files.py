"""Finding input files (one file or a folder of them), telling their format, hashing content."""

from __future__ import annotations

__all__ = ["FileFormat", "InputFile", "discover", "file_format", "sha256_of"]

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reclaim.errors import ConfigError, SourceLocation


class FileFormat(StrEnum):
    CSV = "csv"
    CSV_GZ = "csv.gz"
    PARQUET = "parquet"
    JSON = "json"
    NDJSON = "ndjson"


_SUFFIXES: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".csv.gz": FileFormat.CSV_GZ,
    ".parquet": FileFormat.PARQUET,
    ".snappy.parquet": FileFormat.PARQUET,
    ".json": FileFormat.JSON,
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
}


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: FileFormat


def file_format(path: Path) -> FileFormat | None:
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    return None


def discover(paths: Iterable[Path | str], allowed: frozenset[FileFormat]) -> list[InputFile]:
    """Expand folders (recursively) into the files of an allowed format, sorted by path.

    A path named explicitly must exist and have an allowed format; inside a folder, files of
    other formats (manifests, READMEs) are skipped, since provider export folders carry them.
    """
    found: dict[Path, InputFile] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                fmt = file_format(child)
                if child.is_file() and fmt in allowed and not child.name.startswith("."):
                    found[child] = InputFile(child, fmt)
            continue
        if not path.is_file():
            raise ConfigError(
                "no such file or folder",
                location=SourceLocation(str(path)),
                fix="check the path",
            )
        fmt = file_format(path)
        if fmt is None or fmt not in allowed:
            kinds = ", ".join(sorted(f".{f.value}" for f in allowed))
            raise ConfigError(
                "unsupported file type",
                location=SourceLocation(str(path)),
                fix=f"give a file ending in one of {kinds}, or a folder of them",
            )
        found[path] = InputFile(path, fmt)
    return [found[key] for key in sorted(found)]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
