"""How Polars' allocator gives memory back; read by ``reclaim/__init__.py`` before Polars loads.

Polars on Linux allocates through jemalloc, which keeps the pages a thread frees for reuse and
returns them to the system only as later allocations in the same arena advance its decay clock
(Polars sets 500 ms, with no background thread). So the frames one phase freed stayed resident
under the next phase's: at 1 M resources ~0.3 GiB of the weekly job's evaluate step on its
first run (1.78 GiB peak) and ~0.5 GiB on a run again over the same data (2.12 GiB), and most
of what the collect step had freed (~1 GiB) stayed under the evaluate step after it. Returned
as soon as they are freed, the step peaked at 1.44-1.49 and 1.48-1.57 GiB, whatever the load
(the decay being a clock, the old peaks fell as the machine got busier).

The price is CPU: a page given back is faulted in and zeroed again when the next allocation
needs it (~2.5 M more minor faults in the evaluate step's in-memory part, ~5 s; ~19 s more in
the collect step at 1 M x 30 days; docs/benchmarks.md, issue 14, peak3). A user who prefers
Polars' settings sets ``_RJEM_MALLOC_CONF`` (e.g. ``dirty_decay_ms:500,muzzy_decay_ms:1000``),
which is then left alone.

jemalloc reads ``_RJEM_MALLOC_CONF`` once, when Polars is first imported; Polars puts its own
settings in front of the variable's value, and a later setting wins. This module must not
import Polars.
"""

from __future__ import annotations

from typing import Final

ALLOCATOR_CONF_VARIABLE: Final = "_RJEM_MALLOC_CONF"
"""The environment variable Polars' jemalloc reads its settings from."""

RECLAIM_ALLOCATOR_CONF: Final = "dirty_decay_ms:0,muzzy_decay_ms:0"
"""Freed pages go back to the system at once (dirty), not left to be reused or lazily
reclaimed by the kernel (muzzy pages still count in the process's resident memory)."""
