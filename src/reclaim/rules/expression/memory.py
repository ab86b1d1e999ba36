"""Building many objects at once without the garbage collector walking them over and over.

Loading a large rule file and compiling its first evaluation each build hundreds of thousands
of objects (syntax trees, checked nodes, the generated function's AST) that all stay alive
until the step ends. Every allocation burst set off a collection, and the oldest generation's
collections walked everything built so far, and the rest of the heap, again: two thirds of a
2,000-rule first evaluation. What these steps build forms no cycles that must be reclaimed
before the step ends, so collecting waits until it has.
"""

from __future__ import annotations

__all__ = ["collection_paused"]

import gc
import threading
from types import TracebackType


class _CollectionPaused:
    """``with collection_paused:`` turns the garbage collector off for the block, and on
    again after it if it was on before (per thread, nested blocks included).

    Not for long-running work: memory held in cycles is not reclaimed during the block.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __enter__(self) -> None:
        # Off before anything is allocated here: an allocation could set off a collection.
        enabled = gc.isenabled()
        gc.disable()
        stack: list[bool] = self._local.__dict__.setdefault("stack", [])
        stack.append(enabled)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._local.stack.pop():
            gc.enable()


collection_paused = _CollectionPaused()
