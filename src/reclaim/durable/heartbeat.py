"""Keeping the leases of the runs an engine drives alive, from one background thread.

One thread per engine (started when the first claim is held, gone once none has been held
for an interval) beats every held claim each third of a lease: starting a thread per run would
cost more than a short run itself.
"""

from __future__ import annotations

__all__ = ["Heartbeats", "Lease"]

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from reclaim.durable.errors import DurableError, LeaseLost, RunCancelled
from reclaim.durable.records import Claim, RunStatus
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
