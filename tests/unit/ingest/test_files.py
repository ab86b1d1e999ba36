"""Hashing the input files: two at a time, the same hashes as one by one."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from reclaim.ingest import files
from reclaim.ingest.files import FileFormat, InputFile, fingerprint


def test_files_are_hashed_two_at_a_time_to_the_same_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One core hashing 1.6 GB alone was the first second of a collection at 1 M x 30 days:
    hashlib lets go of the GIL, so two files are hashed at once, largest first."""
    paths = []
    for index, size in enumerate([10, 3 << 20, 0, 1 << 20, 5]):
        path = tmp_path / f"part-{index}.csv"
        path.write_bytes(bytes([index]) * size)
        paths.append(path)
    threads: set[str] = set()
    hashed = files.sha256_of

    def recorded(path: Path) -> str:
        threads.add(threading.current_thread().name)
        return hashed(path)

    monkeypatch.setattr(files, "sha256_of", recorded)
    prints = fingerprint(InputFile(path, FileFormat.CSV) for path in paths)
    assert list(prints.hashes) == paths
    assert prints.hashes == {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    assert set(prints.stamps) == set(paths)
    assert threads
    assert threading.current_thread().name not in threads
