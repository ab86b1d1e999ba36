"""Finding input files (one file or a folder of them), telling their format, hashing content."""

from __future__ import annotations

__all__ = [
    "FileFormat",
    "InputFile",
    "discover",
    "file_format",
    "fingerprint",
    "sha256_of",
    "verify_unchanged",
]

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reclaim.errors import ConfigError, ExecutionError, SourceLocation


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


_HASHING_THREADS = 2
"""Files hashed at once: the machines reclaim is sized for have two cores."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStamp:
    size: int
    modified_ns: int
    inode: int


def _stamp(path: Path) -> FileStamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return FileStamp(stat.st_size, stat.st_mtime_ns, stat.st_ino)


@dataclass(frozen=True)
class Fingerprints:
    """The content hash of each file, and its size, time and inode from before the hash."""

    hashes: dict[Path, str]
    stamps: dict[Path, FileStamp | None]


def fingerprint(files: Iterable[InputFile]) -> Fingerprints:
    paths = [file.path for file in files]
    # Stat first: a file replaced after the stat and before the hash still shows up in
    # ``verify_unchanged``, since its stamp no longer matches.
    stamps = {path: _stamp(path) for path in paths}
    # Two files at a time, largest first: hashlib lets go of the GIL while it hashes, and one
    # core hashing alone was the collection's first second at 1 M x 30 days (1.6 GB).
    largest_first = sorted(paths, key=lambda path: -(stamp.size if (stamp := stamps[path]) else 0))
    with ThreadPoolExecutor(
        max_workers=_HASHING_THREADS, thread_name_prefix="reclaim-hash"
    ) as pool:
        digests = dict(zip(largest_first, pool.map(sha256_of, largest_first), strict=True))
    return Fingerprints({path: digests[path] for path in paths}, stamps)


def verify_unchanged(prints: Fingerprints) -> None:
    """Raise if a file's content is no longer what was hashed, after it has been read.

    Files are read lazily and some more than once, so the bytes read are the bytes hashed
    only if the file did not change from the hash to the end of the reading. A file whose
    stamp moved is hashed again: touched but equal is fine, different content is not.
    """
    for path, stamp in prints.stamps.items():
        if _stamp(path) == stamp and stamp is not None:
            continue
        try:
            same = sha256_of(path) == prints.hashes[path]
        except OSError:
            same = False
        if not same:
            raise ExecutionError(
                "the file changed while it was collected (an export still being written?); "
                "nothing was stored",
                location=SourceLocation(str(path)),
                fix="collect again once the export has finished writing",
            )
