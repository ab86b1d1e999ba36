"""A worker process: claim runs from the database, drive them, hold their leases, stop cleanly.

    worker = Worker(DurableEngine(create_engine(url)), concurrency=4, lease_seconds=30)
    worker.install_signal_handlers()   # SIGTERM / SIGINT: finish the current step, then stop
    worker.run()

Any number of workers, on any number of machines, share one PostgreSQL database (claims use
``FOR UPDATE SKIP LOCKED``, so they never wait on each other); on SQLite, several processes of
one machine share the file. Each claimed run is driven by the core executor in a slot thread of
its own; one heartbeat thread extends every held lease every ``lease_seconds / 3``.

Safety rests on the fencing token of each claim, not on timing: every checkpoint is written only
while the run's token is still ours. So a worker that was paused past its lease (a GC pause, a
``SIGSTOP``, a lost network) and wakes up after another worker claimed the run cannot write
anything: its next checkpoint fails with ``LeaseLost`` and it drops the run at once. The
heartbeat thread notices the loss too (a refused heartbeat, or no successful heartbeat for a
whole lease) and stops the run at its next step boundary, so the stale worker does not even
start another step.

Stopping: the first SIGTERM or SIGINT stops claiming, lets each run finish the step it is in
(that step's checkpoint is written), then hands the run back (``pending``, no owner) so another
worker continues it at once. A second signal abandons the steps in flight: the runs are handed
back immediately, their in-flight checkpoints are refused by the fencing token, and those steps
run again elsewhere.

A worker only claims runs of workflows registered in its process (``--module`` imports them),
and only those started under the version it has, so a worker without the code never burns a
run's attempts, and during a rolling deploy each version's runs wait for a worker of that
version. A run whose stored definition still does not fit the worker's code (a step graph or
map keys changed without a new version) is marked ``failed`` with that reason, once, before
any step runs. A run whose workers keep dying is marked ``dead``
by the store after its workflow's ``max_attempts`` claims.
"""

from __future__ import annotations

__all__ = ["Worker", "WorkerStats", "WorkerStopping"]

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from reclaim.durable.engine import DurableEngine
from reclaim.durable.errors import DurableError, LeaseLost, RunCancelled, StepFailed
from reclaim.durable.heartbeat import still_held
from reclaim.durable.records import Claim, RunStatus
from reclaim.durable.schedule import Scheduler
from reclaim.durable.sessions import limit_idle_transactions
from reclaim.durable.workflow import registry
from reclaim.errors import ConfigError, ReclaimError

log = logging.getLogger(__name__)


class WorkerStopping(DurableError):
    """The worker is shutting down; the run was handed back at a step boundary."""


@dataclass
class WorkerStats:
    """What a worker did, for logs, tests and benchmarks."""

    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0
    cancelled: int = 0
    errors: int = 0
    scheduled: int = 0
    items: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(eq=False)
class _Held:
    """One claim this worker is driving, and the means to stop it."""

    claim: Claim
    stop: threading.Event = field(default_factory=threading.Event)
    reason: DurableError | None = None
    # Monotonic time of the last heartbeat the database accepted (the claim counts as one).
    confirmed: float = field(default_factory=time.monotonic)

    def halt(self, reason: DurableError) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop.set()


class _Refused(Exception):
    """Internal: the run does not fit this worker's code, found before any step ran."""

    def __init__(self, reason: ConfigError) -> None:
        super().__init__(str(reason))
        self.reason = reason


class Worker:
    """Claims and drives runs until stopped.

    ``concurrency`` runs are driven at once (one slot thread each; a run's own steps may use
    more threads per its executor). ``poll_interval`` is how long an idle slot waits before
    asking the database again. With ``schedules`` (the default) the worker also fires due cron
    ticks (see ``reclaim.durable.schedule``) every ``schedule_interval`` seconds. A slot with
    no run to claim helps with queued map items of other processes' runs, one map step at a
    time: up to the engine's ``item_concurrency`` at once, else the ``concurrency`` the step
    declares (a bound per process, which the slots share), refilled as they finish, at most
    ``item_batch`` per claim (default: the engine's; 0: never help).
    """

    def __init__(
        self,
        engine: DurableEngine,
        *,
        concurrency: int = 1,
        lease_seconds: float | None = None,
        poll_interval: float = 1.0,
        schedules: bool = True,
        schedule_interval: float = 10.0,
        workflows: list[str] | None = None,
        item_batch: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"worker concurrency must be at least 1, not {concurrency}")
        lease = engine.lease_seconds if lease_seconds is None else lease_seconds
        if lease <= 0:
            raise ConfigError(f"the lease must be a positive number of seconds, not {lease}")
        if poll_interval <= 0:
            raise ConfigError(f"the poll interval must be positive, not {poll_interval}")
        self.engine = engine
        self.store = engine.store
        limit_idle_transactions(self.store.engine, lease)
        self.worker_id = engine.worker_id
        self.concurrency = concurrency
        self.lease_seconds = lease
        self.heartbeat_interval = max(lease / 3, 0.02)
        self.poll_interval = poll_interval
        self.schedule_interval = schedule_interval
        self.scheduler = Scheduler(engine) if schedules else None
        self._workflows = workflows
        self.item_batch = item_batch
        self.stats = WorkerStats()
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._abandoning = threading.Event()
        self._wake = threading.Event()
        self._signals = 0
        self._budget: int | None = None
        self._until_idle = False

    # ----------------------------------------------------------------- control

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def abandoned(self) -> bool:
        """True after ``abandon``: steps may still be running in slot threads."""
        return self._abandoning.is_set()

    def stop(self) -> None:
        """Stop claiming; each run finishes its current step and is handed back."""
        if not self._stopping.is_set():
            log.info("worker %s: stopping after the steps in flight", self.worker_id)
        self._stopping.set()
        self._wake.set()
        for held in self._snapshot():
            held.halt(WorkerStopping(f"worker {self.worker_id} is stopping"))

    def abandon(self) -> None:
        """Stop now: hand every run back at once; the steps in flight will run again elsewhere.

        The fencing token moves on when a run is handed back, so whatever those steps try to
        checkpoint afterwards is refused.
        """
        self._abandoning.set()
        self.stop()
        for held in self._snapshot():
            self._release(held)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: the first stops gracefully, the second abandons. Main thread only."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            self._signals += 1
            if self._signals == 1:
                log.info("worker %s: signal %s, finishing current steps", self.worker_id, signum)
                self.stop()
            else:
                log.warning("worker %s: second signal, abandoning steps in flight", self.worker_id)
                self.abandon()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -------------------------------------------------------------------- run

    def run(self, *, until_idle: bool = False, max_runs: int | None = None) -> WorkerStats:
        """Work until ``stop``/a signal; with ``until_idle``, also return once nothing is left.

        ``max_runs`` stops claiming after that many claims (tests, benchmarks).
        """
        log.info(
            "worker %s: %d slot(s), lease %.1fs, workflows %s",
            self.worker_id,
            self.concurrency,
            self.lease_seconds,
            ", ".join(self._workflow_names()) or "none",
        )
        self._budget = max_runs
        self._until_idle = until_idle
        slots = [
            threading.Thread(target=self._slot, name=f"durable-slot-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        beat = threading.Thread(target=self._heartbeats, name="durable-heartbeat", daemon=True)
        beat.start()
        for slot in slots:
            slot.start()
        next_schedule = 0.0
        try:
            while any(slot.is_alive() for slot in slots):
                if self._abandoning.is_set():
                    break
                due = time.monotonic() >= next_schedule
                if self.scheduler is not None and due and not self.stopping:
                    self._fire_schedules()
                    next_schedule = time.monotonic() + self.schedule_interval
                # Short joins keep the main thread free to take signals.
                for slot in slots:
                    slot.join(timeout=0.05)
        finally:
            self._stopping.set()
            self._wake.set()
            if not self._abandoning.is_set():
                for slot in slots:
                    slot.join()
            beat.join(timeout=5)
        log.info("worker %s: stopped; %s", self.worker_id, self.stats.as_dict())
        return self.stats

    def _workflow_names(self) -> list[str]:
        if self._workflows is not None:
            return list(self._workflows)
        return registry.names()

    def _take_budget(self) -> bool:
        with self._lock:
            if self._budget is None:
                return True
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def _claim(self) -> Claim | None:
        names = self._workflow_names()
        if not names:
            return None
        versions = {name: self.engine.workflow(name).version for name in names}
        return self.store.claim_run(self.worker_id, self.lease_seconds, workflows=versions)

    def _slot(self) -> None:
        while not self.stopping:
            if not self._take_budget():
                return
            try:
                claim = self._claim()
            except Exception:
                # A database outage must not kill the worker: wait and ask again.
                log.exception("worker %s: claiming failed; retrying", self.worker_id)
                self._return_budget()
                self._pause()
                continue
            if claim is not None:
                self._drive(claim)
                continue
            self._return_budget()
            if self._help_with_items():
                continue
            if self._until_idle and self._all_idle():
                return
            self._pause()

    def _help_with_items(self) -> bool:
        """No run to claim: run queued map items of other workers' runs. True if any."""
        if self.item_batch == 0:
            return False
        try:
            done = self.engine.work_items(
                batch=self.item_batch, workflows=self._workflow_names(), stop=self._stopping
            )
        except Exception:
            log.exception("worker %s: working on map items failed", self.worker_id)
            return False
        if done:
            self._count_many("items", done)
        return done > 0

    def _pause(self) -> None:
        # Woken early by a fired schedule (new work) or by stop().
        if self._wake.wait(self.poll_interval) and not self.stopping:
            self._wake.clear()

    def _return_budget(self) -> None:
        with self._lock:
            if self._budget is not None:
                self._budget += 1

    def _all_idle(self) -> bool:
        # until_idle: leave only when no slot holds a run (one may still create work for us)
        # and no run of our workflows is unfinished. A run another process holds may have
        # lost its owner, which only the lease's expiry can tell: wait, and take it over.
        with self._lock:
            if self._held:
                return False
        try:
            return not self._unfinished_runs()
        except Exception:
            log.exception("worker %s: could not look for unfinished runs", self.worker_id)
            return False

    def _unfinished_runs(self) -> bool:
        # Of our versions only: another version's runs wait for a worker of that version.
        live = (RunStatus.PENDING, RunStatus.RUNNING)
        return any(
            self.store.list_runs(
                workflow=name, version=self.engine.workflow(name).version, statuses=live, limit=1
            )
            for name in self._workflow_names()
        )

    # ------------------------------------------------------------ one run

    def _drive(self, claim: Claim) -> None:
        held = _Held(claim)
        with self._lock:
            self._held[claim.run_id] = held
            self.stats.claimed += 1
        if self.stopping:
            held.halt(WorkerStopping(f"worker {self.worker_id} is stopping"))
        log.info(
            "worker %s: claimed run %s (%s, attempt %d, token %d)",
            self.worker_id,
            claim.run_id,
            claim.run.workflow,
            claim.run.attempts,
            claim.fencing_token,
        )
        try:
            self._execute(held)
            self._count("succeeded")
            log.info("worker %s: run %s succeeded", self.worker_id, claim.run_id)
        except WorkerStopping:
            self._release(held)
        except LeaseLost as exc:
            self._count("lost")
            log.warning("worker %s: lost run %s: %s", self.worker_id, claim.run_id, exc)
        except RunCancelled:
            self._count("cancelled")
            log.info("worker %s: run %s was cancelled", self.worker_id, claim.run_id)
        except StepFailed as exc:
            self._count("failed")
            log.warning("worker %s: run %s failed: %s", self.worker_id, claim.run_id, exc)
        except _Refused as refused:
            self._count("errors")
            log.error("worker %s: refused run %s: %s", self.worker_id, claim.run_id, refused)
            self._refuse(held, refused.reason)
        except ConfigError as exc:
            # Found by a step (its code no longer fits the run): the run is already failed and
            # this hand-back does nothing.
            self._count("errors")
            log.error("worker %s: cannot run %s: %s", self.worker_id, claim.run_id, exc)
            self._release(held)
        except ReclaimError as exc:
            self._count("failed")
            log.warning("worker %s: run %s stopped: %s", self.worker_id, claim.run_id, exc)
        except Exception:
            # The database went away mid-run, most likely: hand the run back if we still can;
            # if not, its lease expires and another worker takes it.
            self._count("errors")
            log.exception("worker %s: run %s interrupted", self.worker_id, claim.run_id)
            self._release(held)
        finally:
            with self._lock:
                self._held.pop(claim.run_id, None)

    def _execute(self, held: _Held) -> None:
        claim = held.claim
        # Like DurableEngine.execute, but stopped by our own event, so that a shutdown request
        # stops the run at a step boundary and not only a lost lease does.
        try:
            workflow = self.engine.workflow(claim.run.workflow)
            workflow.check_stored(claim.run_id, claim.run.version, claim.run.definition)
            execution = self.engine.execution(
                claim, stop=held.stop, stop_reason=lambda: held.reason
            )
        except ConfigError as refusal:
            raise _Refused(refusal) from refusal
        execution.run()

    def _refuse(self, held: _Held, reason: ConfigError) -> None:
        # Refused before any step ran (another version of the workflow, map items stored under
        # other keys). Handing it back would only have the next worker with this code refuse
        # it again, each claim counting as an attempt, until the run is marked dead as if its
        # processes kept dying: it ends here, failed with the reason, once. `reclaim runs
        # resume RUN --module …` with the right code reopens it.
        try:
            self.store.finish_run(held.claim, RunStatus.FAILED, error=str(reason))
        except DurableError as exc:
            # Cancelled or taken over meanwhile: that outcome stands.
            log.info("worker %s: run %s not failed: %s", self.worker_id, held.claim.run_id, exc)

    def _release(self, held: _Held) -> None:
        try:
            released = self.store.release(held.claim)
        except Exception:
            log.exception("worker %s: could not hand back run %s", self.worker_id, held.claim)
            return
        if released:
            self._count("released")
            log.info("worker %s: handed back run %s", self.worker_id, held.claim.run_id)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def _snapshot(self) -> list[_Held]:
        with self._lock:
            return list(self._held.values())

    # ------------------------------------------------------------ heartbeats

    def _heartbeats(self) -> None:
        while not (self.stopping and not self._snapshot()):
            time.sleep(self.heartbeat_interval)
            if self._abandoning.is_set():
                return
            for held in self._snapshot():
                if held.stop.is_set() and isinstance(held.reason, LeaseLost | RunCancelled):
                    continue
                self._beat(held)

    def _beat(self, held: _Held) -> None:
        claim = held.claim
        try:
            alive = self.store.heartbeat(claim.run_id, claim.fencing_token, self.lease_seconds)
        except Exception as exc:
            if still_held(self.store, claim):
                held.confirmed = time.monotonic()
                return
            # The lease has slack for a missed beat or two; past a whole lease without one,
            # another worker may own the run, so stop at the next boundary.
            if time.monotonic() - held.confirmed > self.lease_seconds:
                held.halt(LeaseLost(f"no heartbeat reached the database for a lease: {exc}"))
            return
        if alive:
            held.confirmed = time.monotonic()
            return
        run = self.store.get_run(claim.run_id)
        if run is not None and run.status.value == "cancelled":
            held.halt(RunCancelled(f"run {claim.run_id} was cancelled"))
        else:
            owner = run.owner if run is not None else None
            held.halt(LeaseLost(f"run {claim.run_id} was taken over by {owner or 'another'}"))

    # ------------------------------------------------------------- schedules

    def _fire_schedules(self) -> None:
        assert self.scheduler is not None
        try:
            fired = self.scheduler.tick()
        except Exception:
            log.exception("worker %s: firing schedules failed", self.worker_id)
            return
        created = [tick for tick in fired if tick.created]
        if created:
            self._count_many("scheduled", len(created))
            self._wake.set()

    def _count_many(self, what: str, n: int) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + n)
