"""Keeping the leases of the runs an engine drives alive, from one background thread.

One thread per engine (started when the first claim is held, gone once none has been held
for an interval) beats every held claim each third of a lease: starting a thread per run would
cost more than a short run itself.
"""

from __future__ import annotations

__all__ = ["Heartbeats", "Lease", "still_held"]

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.pool import StaticPool

from reclaim.database import Backend
from reclaim.durable.errors import DurableError, LeaseLost, RunCancelled
from reclaim.durable.records import Claim, RunStatus
from reclaim.durable.schema import runs
from reclaim.durable.store import Store


@dataclass(eq=False)
class Lease:
    """A held claim: ``stop`` is set (with ``reason``) once the run is lost or cancelled."""

    claim: Claim
    stop: threading.Event = field(default_factory=threading.Event)
    reason: DurableError | None = None
    confirmed: float = field(default_factory=time.monotonic)

    def halt(self, reason: DurableError) -> None:
        self.reason = reason
        self.stop.set()


def still_held(store: Store, claim: Claim) -> bool:
    """After a heartbeat failed on SQLite: does the database still show ``claim`` as the run's?

    A heartbeat is a write, and SQLite has one write lock: a step of this very process that
    holds a transaction longer than the lease (a bulk insert of a million rows) keeps every
    beat waiting until the busy timeout gives up. A read still goes through beside it (WAL),
    and taking a run over is itself a write that moves the fencing token, so while the token
    is ours nobody has taken the run and the lease is not lost, however long the beat waited.
    Once that transaction commits, the lease in the database may have lapsed and a process
    waiting to claim can win the lock before our next beat: that is an ordinary takeover (the
    token moves on, our next checkpoint is refused and our next beat stops us).

    On PostgreSQL a failed beat keeps its meaning (no contact for a lease: stop), since there
    a write is blocked only by a lock on the run row, which a frozen peer may hold.
    """
    if store.backend is not Backend.SQLITE or isinstance(store.engine.pool, StaticPool):
        # In memory every thread shares one connection: a read there would run inside (and
        # its return to the pool roll back) whatever transaction another thread has open.
        return False
    try:
        # Not through a SQLAlchemy connection: ours begins every transaction IMMEDIATE (it
        # takes the write lock), and a lone SELECT in autocommit needs no lock in WAL mode.
        connection = store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(
                f"SELECT status, fencing_token FROM {runs.name} WHERE id = ?", (claim.run_id,)
            )
            row = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()
    except Exception:
        return False
    return (
        row is not None and row[0] == RunStatus.RUNNING.value and int(row[1]) == claim.fencing_token
    )


class Heartbeats:
    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.interval = max(lease_seconds / 3, 0.05)
        self._lock = threading.Lock()
        self._held: set[Lease] = set()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self, claim: Claim) -> Iterator[Lease]:
        """Beat ``claim`` while the block runs."""
        lease = Lease(claim)
        with self._lock:
            self._held.add(lease)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="durable-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield lease
        finally:
            with self._lock:
                self._held.discard(lease)

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
                held = [lease for lease in self._held if not lease.stop.is_set()]
            for lease in held:
                self._beat(lease)

    def _beat(self, lease: Lease) -> None:
        claim = lease.claim
        try:
            alive = self.store.heartbeat(claim.run_id, claim.fencing_token, self.lease_seconds)
        except Exception as exc:
            if still_held(self.store, claim):
                lease.confirmed = time.monotonic()
                return
            # A missed beat or two is fine (the lease has slack); a whole lease without one
            # means another process may own the run by now: stop at the next boundary.
            if time.monotonic() - lease.confirmed > self.lease_seconds:
                lease.halt(LeaseLost(f"no heartbeat reached the database in a lease: {exc}"))
            return
        if alive:
            lease.confirmed = time.monotonic()
            return
        run = self.store.get_run(claim.run_id)
        if run is not None and run.status is RunStatus.CANCELLED:
            lease.halt(RunCancelled(f"run {claim.run_id} was cancelled"))
        else:
            owner = run.owner if run is not None else None
            lease.halt(LeaseLost(f"run {claim.run_id} was taken over by {owner or 'nobody'}"))
