"""How Polars' allocator gives memory back; read by ``reclaim/__init__.py`` before Polars loads.

Polars on Linux allocates through jemalloc, which keeps the pages a thread frees for reuse and
returns them to the system only as later allocations in the same arena advance its decay clock
(Polars sets 500 ms, with no background thread). So the frames one phase freed stayed resident
under the next phase's: at 1 M resources x 30 days the weekly job's first run peaked at
1942 MiB and a run again over the same data at 2092 MiB (quiet machine), most of what the
collect step had freed (~1 GiB) staying under the evaluate step after it.

A background thread now returns the pages left unused for 100 ms, whatever the allocations
do: 1699 and 1740 MiB, for ~2 s more CPU in the first run (88.5 -> 90.2 s). Returned at once
(``dirty_decay_ms:0``) the peaks fell to 1593 / 1494 MiB, but every page given back was
faulted in and zeroed again by the next allocation: the collect step took 59.8 s instead of
29.9 (docs/benchmarks.md, issue 14, the session's figures). A user who prefers Polars' own
settings sets ``_RJEM_MALLOC_CONF`` (e.g. ``dirty_decay_ms:500,muzzy_decay_ms:1000``), which
is then left alone.

jemalloc reads ``_RJEM_MALLOC_CONF`` once, when Polars is first imported; Polars puts its own
settings in front of the variable's value, and a later setting wins. This module must not
import Polars.
"""

from __future__ import annotations

from typing import Final

ALLOCATOR_CONF_VARIABLE: Final = "_RJEM_MALLOC_CONF"
"""The environment variable Polars' jemalloc reads its settings from."""

RECLAIM_ALLOCATOR_CONF: Final = "background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0"
"""Freed pages unused for 100 ms go back to the system (dirty), by a thread of jemalloc's own,
not left to be reused or lazily reclaimed by the kernel (muzzy pages still count in the
process's resident memory)."""
