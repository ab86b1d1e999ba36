"""The latest rows fetched from many files do not keep those files' text in memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc (Linux)"
)

# Eight files of 300,000 rows with ~110 bytes of text each (~260 MB of text in all); one row
# in a thousand is fetched from each, as the bill's latest rows of resources stopped on other
# days are.
_FETCH_FEW_ROWS = """
import sys
from pathlib import Path
import polars as pl
from reclaim.ingest.focus import _rows_by_key

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

folder = Path(sys.argv[1])
files = []
for index in range(8):
    path = folder / f"part-{index}.parquet"
    pl.select(
        pl.format("resource-{}-{}", pl.int_range(0, 300_000), pl.lit("x" * 40)).alias(
            "resource_id"
        ),
        pl.format("{}-{}", pl.lit("y" * 50), pl.int_range(0, 300_000)).alias("tags"),
    ).write_parquet(path)
    # Numbered as the bill's rows are: a row's number is its place in the file, not a column
    # of the file, so the reader cannot skip the rows not asked for.
    files.append(
        pl.scan_parquet(path)
        .with_row_index("_row")
        .with_columns(pl.lit(index, dtype=pl.UInt32).alias("_file"))
    )
keys = pl.Series(
    [(index << 32) + row for index in range(8) for row in range(0, 300_000, 1_000)],
    dtype=pl.UInt64,
)
start = rss()
picked = _rows_by_key(files, keys, "resource_id", "tags")
assert picked.height == 2_400, picked.height
assert picked["resource_id"][299] == "resource-299000-" + "x" * 40
print(start, rss())
"""


def test_rows_fetched_from_many_files_hold_only_their_own_text(tmp_path: Path) -> None:
    environment = {**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
    done = subprocess.run(
        [sys.executable, "-c", _FETCH_FEW_ROWS, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    start, after = (int(value) for value in done.stdout.split())
    # Each file's decoded text is ~30 MB: kept by views, eight of them would stay resident.
    assert after - start < 60, (start, after)
