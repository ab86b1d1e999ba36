"""Running queued map items in one process: many in flight, claimed ahead, saved in batches.

The run's owner and every helping worker drain the item queue the same way. ``concurrency``
slot threads run items; they take the next item from a small local buffer of items already
claimed, so a slot that frees up starts its next item at once instead of waiting for a round
trip to the database. The pump thread saves the results of finished items and tops the buffer
up, both in one transaction (``ItemQueue.settle``); the results that finish while that
transaction is in flight are saved together in the next one. So the commits per item fall as
the load rises, and a slow commit (a busy disk) delays the checkpoints but not the items.

Buffered items are claimed like running ones (lease, token), so another worker never takes
them while this one is alive; a claim takes at most ``batch`` items (twice the concurrency by
default) and the buffer holds at most that many beyond the running ones.
On stop the items never started are handed back at once.

Connections: the pump holds one only while it settles; slot threads use one only for the rare
intermediate checkpoint (a retry, a value recorded by the step context). A worker needs a
handful of connections whatever its concurrency (``bench/durable_bench.py`` prints the peak),
plus whatever the steps themselves open on ``ctx.database``.
"""

from __future__ import annotations

__all__ = ["Drained", "ItemPump"]

import queue as _queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from reclaim.durable.queue import ItemClaim, ItemQueue
from reclaim.durable.records import Checkpoint
from reclaim.errors import ConfigError

_Outcome = tuple[ItemClaim, Checkpoint | None, BaseException | None]


@dataclass
class Drained:
    """What one ``ItemPump.drain`` did."""

    items: int = 0
    errors: list[BaseException] = field(default_factory=list)


class ItemPump:
    """Claims, runs and saves queued items until none is left to claim here."""

    def __init__(
        self,
        queue: ItemQueue,
        worker_id: str,
        lease_seconds: float,
        *,
        concurrency: int,
        batch: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"item concurrency must be at least 1, not {concurrency}")
        if batch is not None and batch < 1:
            raise ConfigError(f"the item batch must be at least 1, not {batch}")
        self.queue = queue
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        # Twice the slots by default: a settle carries what finished during the last one, and
        # the buffer must outlast a slow commit (on a busy disk, ~10-30 ms) at full speed.
        self.batch = batch or 2 * concurrency

    def drain(
        self,
        run_item: Callable[[ItemClaim], Checkpoint | None],
        *,
        run_id: str | None = None,
        step: str | None = None,
        workflows: Collection[str] | None = None,
        check: Callable[[], None] | None = None,
        skip_runs: Collection[str] = (),
    ) -> Drained:
        """Run claimable items (of one run/step, or of ``workflows``) until none is left.

        ``run_item`` returns the item's final checkpoint, which the pump saves (``None``: the
        item needs no save, it was lost or already recorded its failure). An error from
        ``run_item`` or from ``check`` (called before each claim) stops the claiming: items
        not started are handed back, those running finish and are saved, and the errors are
        returned. Items of ``skip_runs`` are never claimed.
        """
        drained = Drained()
        ready: _queue.SimpleQueue[ItemClaim | None] = _queue.SimpleQueue()
        outcomes: _queue.SimpleQueue[_Outcome] = _queue.SimpleQueue()
        stopping = threading.Event()

        def slot() -> None:
            while (claim := ready.get()) is not None:
                if check is not None and not stopping.is_set():
                    # Asked to stop while this item waited in the buffer: do not start it (the
                    # pump records why at its next check).
                    try:
                        check()
                    except Exception:
                        stopping.set()
                if stopping.is_set():
                    outcomes.put((claim, None, _NotStarted()))
                    continue
                try:
                    outcomes.put((claim, run_item(claim), None))
                except BaseException as exc:
                    # Stop the other slots before they take the next buffered item: the
                    # pump's loop learns of the error only when it reads the outcome.
                    stopping.set()
                    outcomes.put((claim, None, exc))

        slots = [
            threading.Thread(target=slot, name=f"durable-item-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in slots:
            thread.start()
        held = 0  # claimed and not yet reported back by a slot
        finished: list[tuple[ItemClaim, Checkpoint]] = []
        unstarted: list[ItemClaim] = []
        exhausted = False
        try:
            while True:
                if check is not None and not drained.errors:
                    try:
                        check()
                    except Exception as exc:
                        drained.errors.append(exc)
                if drained.errors:
                    stopping.set()
                room = self.concurrency + self.batch - held
                want = 0 if stopping.is_set() or exhausted else min(room, self.batch)
                if finished or want > 0:
                    settled = self.queue.settle(
                        self.worker_id,
                        self.lease_seconds,
                        finished,
                        limit=want,
                        run_id=run_id,
                        step=step,
                        workflows=workflows,
                        skip_runs=skip_runs,
                    )
                    # A refused save means the item is someone else's now (its lease ran out)
                    # or its run stopped: nothing to do here, the run's owner decides.
                    finished = []
                    for claim in settled.claimed:
                        ready.put(claim)
                    held += len(settled.claimed)
                    drained.items += len(settled.claimed)
                    # Fewer than asked: the queue is empty for now; ask again only once an
                    # item finished (or stop, with nothing in hand).
                    exhausted = len(settled.claimed) < want
                if held == 0:
                    if exhausted or stopping.is_set():
                        return drained
                    continue
                # Wait for one item, then take every other that finished meanwhile.
                outcome = outcomes.get()
                while True:
                    claim, checkpoint, error = outcome
                    held -= 1
                    exhausted = False
                    if isinstance(error, _NotStarted):
                        unstarted.append(claim)
                    elif error is not None:
                        drained.errors.append(error)
                    elif checkpoint is not None:
                        finished.append((claim, checkpoint))
                    try:
                        outcome = outcomes.get_nowait()
                    except _queue.Empty:
                        break
        finally:
            stopping.set()
            for _ in slots:
                ready.put(None)
            for thread in slots:
                thread.join()
            while not outcomes.empty():
                claim, checkpoint, error = outcomes.get_nowait()
                if isinstance(error, _NotStarted):
                    unstarted.append(claim)
                elif checkpoint is not None:
                    finished.append((claim, checkpoint))
            if finished or unstarted:
                # Saved and handed back at once, not left to wait for their leases to expire.
                self.queue.settle(self.worker_id, self.lease_seconds, finished, release=unstarted)


class _NotStarted(Exception):
    """Internal: a buffered item the pump stopped before it started."""
