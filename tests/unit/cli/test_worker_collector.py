"""The worker's garbage collector settings, applied once it is set up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reclaim.cli.worker import WORKER_GC_THRESHOLD, settle_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_a_worker_collects_young_objects_rarely_and_never_walks_its_setup_again() -> None:
    before = gc.get_threshold()
    settle_collector()
    # The setup (imports, engine, workflows) is out of the collector's reach...
    assert gc.get_freeze_count() > 0
    # ...and a map item's short-lived objects, freed by reference counting, are not walked
    # every 700 allocations; the older generations keep their defaults.
    assert gc.get_threshold() == (WORKER_GC_THRESHOLD, before[1], before[2])
    assert WORKER_GC_THRESHOLD >= 10_000
