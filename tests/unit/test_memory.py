"""Polars' allocator returns freed memory at once in a process that imported reclaim first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reclaim._memory import ALLOCATOR_CONF_VARIABLE, RECLAIM_ALLOCATOR_CONF

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc (Linux)"
)

# ~0.4 GiB of strings made in slices (as the evaluate step makes its matches), then let go.
_FREE_AFTER_USE = """
import sys, os, time
if sys.argv[1] == "reclaim":
    import reclaim
import polars as pl

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

start = rss()
frame = pl.DataFrame({"n": pl.int_range(0, 4_000_000, eager=True)}).with_columns(
    pl.format("resource-{}-{}", pl.col("n"), pl.col("n") * 7).alias("text")
)
slices = [
    frame.slice(offset, 100_000).with_columns(pl.col("text").str.to_uppercase())
    for offset in range(0, frame.height, 100_000)
]
used = rss()
del frame, slices
kept = rss()
# Given back by jemalloc's background thread once unused for its decay time (100 ms), so
# waited for, up to a few seconds; Polars' own settings never give them back while idle.
deadline = time.monotonic() + 3
while rss() - start >= 100 and time.monotonic() < deadline:
    time.sleep(0.05)
print(start, used, kept, rss(), os.environ.get("_RJEM_MALLOC_CONF"))
"""


def _run(first: str, **env: str) -> tuple[int, int, int, int, str]:
    environment = {k: v for k, v in os.environ.items() if k != ALLOCATOR_CONF_VARIABLE}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", _FREE_AFTER_USE, first],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    start, used, kept, after, conf = done.stdout.split()
    return int(start), int(used), int(kept), int(after), conf


def test_memory_freed_by_polars_leaves_the_process() -> None:
    start, used, _, after, _ = _run("reclaim")
    assert used - start > 250  # MiB: the frames were there
    assert after - start < 100


def test_a_process_without_reclaim_keeps_it_a_while() -> None:
    # What the setting is for: Polars' own settings keep the freed pages resident for their
    # decay time (500 ms), under whatever the next phase allocates meanwhile.
    start, used, kept, _, _ = _run("polars")
    assert used - start > 250
    assert kept - start > 250


def test_reclaims_allocator_settings_reach_polars() -> None:
    *_, conf = _run("reclaim")
    assert conf.endswith(RECLAIM_ALLOCATOR_CONF)  # after the settings Polars puts first


def test_the_users_allocator_settings_are_kept() -> None:
    *_, conf = _run("reclaim", **{ALLOCATOR_CONF_VARIABLE: "narenas:2"})
    assert conf.endswith(",narenas:2")
    assert RECLAIM_ALLOCATOR_CONF not in conf
