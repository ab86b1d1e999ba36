"""The public entry point: start, run, resume, cancel and inspect durable runs.

    engine = DurableEngine(create_engine("sqlite:///reclaim.db"))
    result = engine.run_workflow(weekly, {"week": "2026-W48"})

``DurableEngine`` claims a run before it drives it, exactly like a worker does, so an embedded
process and ``reclaim worker`` processes can share one database safely.
"""

from __future__ import annotations

__all__ = ["DurableEngine", "new_worker_id"]

import json
import os
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlalchemy.engine import Engine

from reclaim.durable.attempts import Prior, run_attempts
from reclaim.durable.errors import (
    DefinitionMismatch,
    DurableError,
    LeaseLost,
    RunBusy,
    RunCancelled,
    RunNotFound,
    StepFailed,
)
from reclaim.durable.executor import Execution, Executor, SequentialExecutor
from reclaim.durable.heartbeat import Heartbeats
from reclaim.durable.pump import ItemPump
from reclaim.durable.queue import Distribution, ItemClaim, ItemQueue, QueuedStep
from reclaim.durable.records import (
    Checkpoint,
    Claim,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from reclaim.durable.sessions import limit_idle_transactions
from reclaim.durable.store import Store
from reclaim.durable.views import MISSING, MapView
from reclaim.durable.workflow import StepKind, StepSpec, Workflow, WorkflowRegistry, registry
from reclaim.errors import ConfigError

DEFAULT_LEASE_SECONDS = 30.0


def new_worker_id() -> str:
    """``host/pid/random``: unique per process, and tells whether a local owner is dead."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _owner_is_dead_local_process(owner: str | None) -> bool:
    # A run owned by a process of this host that no longer exists can be taken over at once
    # instead of waiting for its lease to expire (the usual case after a crash and restart).
    if not owner:
        return False
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Stopped(Exception):
    """Internal: a helper was asked to stop claiming items."""


class DurableEngine:
    """Runs workflows durably on a SQLite or PostgreSQL database.

    ``target`` is a SQLAlchemy engine (see ``reclaim.database.create_engine``) or a ``Store``.
    The tables must exist: ``reclaim db upgrade`` creates them, or call ``ensure_schema``.
    Workflows are looked up by name in ``workflows`` first, then in the process registry.
    With ``distribute_items`` the items of map steps are queued in the database so that idle
    workers (``work_items``) help the run's owner with them; without it the owner runs every
    item itself (one commit per item instead of two: the right choice on one machine).
    """

    def __init__(
        self,
        target: Engine | Store,
        *,
        executor: Executor | None = None,
        workflows: Iterable[Workflow] = (),
        registry_: WorkflowRegistry | None = None,
        worker_id: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        distribute_items: bool = False,
        item_concurrency: int | None = None,
        item_batch: int | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ConfigError("lease_seconds must be positive")
        if item_concurrency is not None and item_concurrency < 1:
            raise ConfigError(f"item_concurrency must be at least 1, not {item_concurrency}")
        if item_batch is not None and item_batch < 1:
            raise ConfigError(f"item_batch must be at least 1, not {item_batch}")
        self.store = target if isinstance(target, Store) else Store(target)
        # A process frozen inside a transaction must not keep its locks past its lease.
        limit_idle_transactions(self.store.engine, lease_seconds)
        self.executor = executor or SequentialExecutor()
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self._registry = registry_ or registry
        self._local = {workflow.name: workflow for workflow in workflows}
        self.items = ItemQueue(self.store)
        self._heartbeats = Heartbeats(self.store, lease_seconds)
        self.distribute_items = distribute_items
        self.item_concurrency = item_concurrency
        self.item_batch = item_batch
        self._views: OrderedDict[tuple[str, str], MapView] = OrderedDict()
        self._views_lock = threading.Lock()
        self._views_loading = threading.Lock()
        # Runs whose queued items this process refused (its code does not fit them).
        self._refused: set[str] = set()
        # Map steps (run, step) a thread of this process is helping with right now.
        self._helping: set[tuple[str, str]] = set()
        self._choosing = threading.Lock()

    def workflow(self, name: str) -> Workflow:
        """The definition registered under ``name`` (``UnknownWorkflow`` if none)."""
        return self._local.get(name) or self._registry.get(name)

    # ------------------------------------------------------------- starting

    def start(
        self,
        workflow: Workflow | str,
        input: Any = None,
        *,
        run_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> str:
        """Record a new pending run and return its id; nothing runs yet.

        Idempotent: an existing ``run_id`` or ``dedupe_key`` returns the existing run's id
        (``ConfigError`` if that run belongs to another workflow).
        """
        definition = self.workflow(workflow) if isinstance(workflow, str) else workflow
        run, _created = self.store.create_run(
            run_id=run_id or uuid.uuid4().hex,
            workflow=definition.name,
            version=definition.version,
            fingerprint=definition.fingerprint(),
            definition=definition.definition(),
            input_json=definition.encode_input(input),
            max_attempts=definition.max_attempts,
            dedupe_key=dedupe_key,
            timeout_seconds=definition.timeout,
        )
        if run.workflow != definition.name:
            raise ConfigError(
                f"run {run.id} already exists for workflow {run.workflow!r}, "
                f"not {definition.name!r}",
                fix="choose another run id or dedupe key",
            )
        return run.id

    def run_workflow(
        self,
        workflow: Workflow | str,
        input: Any = None,
        *,
        run_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> Any:
        """Start a run and drive it to the end in this process; return its result.

        The new run is inserted already claimed by this engine, so starting costs no commit
        of its own. An existing ``run_id``/``dedupe_key`` is run (or its result returned).
        The workflow must be the one this engine finds under its name (``workflows=`` or the
        registry), since that is what drives the run and any resume of it: else
        ``UnknownWorkflow`` or ``DefinitionMismatch``, before anything is inserted.
        """
        definition = self._drivable(workflow)
        claim = self.store.create_claimed_run(
            self.worker_id,
            self.lease_seconds,
            run_id=run_id or uuid.uuid4().hex,
            workflow=definition.name,
            version=definition.version,
            fingerprint=definition.fingerprint(),
            definition=definition.definition(),
            input_json=definition.encode_input(input),
            max_attempts=definition.max_attempts,
            dedupe_key=dedupe_key,
            timeout_seconds=definition.timeout,
        )
        if claim is None:
            return self.run(self.start(definition, input, run_id=run_id, dedupe_key=dedupe_key))
        return self._execute(claim, definition, checkpoints=[])

    def _drivable(self, workflow: Workflow | str) -> Workflow:
        if isinstance(workflow, str):
            return self.workflow(workflow)
        found = self.workflow(workflow.name)
        if found is not workflow and (
            found.version != workflow.version or found.fingerprint() != workflow.fingerprint()
        ):
            raise DefinitionMismatch(
                f"workflow {workflow.name!r} given to run_workflow is version "
                f"{workflow.version}, but this engine would drive (and resume) the run with the "
                f"one registered under that name, version {found.version}"
                + ("" if found.version != workflow.version else ", whose steps differ"),
                fix="pass the registered definition (or its name), or register this one: "
                "DurableEngine(..., workflows=[workflow])",
            )
        return found

    # -------------------------------------------------------------- driving

    def run(self, run_id: str, *, force: bool = False) -> Any:
        """Drive a pending run (or one whose owner died) to its end; return its result.

        A succeeded run returns its stored result without running anything. A failed,
        cancelled or dead run raises: use ``resume`` to try it again. A run whose lease is
        held by a live owner raises ``RunBusy`` unless ``force``.
        """
        run = self.get_run(run_id)
        if run.status is RunStatus.SUCCEEDED:
            return self.result(run_id)
        if run.status.finished:
            raise self._finished_error(run)
        # Find the code before claiming, so a process without it does not spend an attempt.
        self.workflow(run.workflow).check_stored(run.id, run.version, run.definition)
        take_over = force or _owner_is_dead_local_process(run.owner)
        claim = self.store.claim_run(
            self.worker_id, self.lease_seconds, run_id=run_id, force=take_over
        )
        if claim is None:
            run = self.get_run(run_id)
            if run.status is RunStatus.SUCCEEDED:
                return self.result(run_id)
            if run.status.finished:
                raise self._finished_error(run)
            until = f"{run.lease_expires_at:%H:%M:%S} UTC" if run.lease_expires_at else "now"
            raise RunBusy(
                f"run {run_id} is owned by {run.owner} until {until}",
                fix="wait for that owner to finish or its lease to expire, or pass --force "
                "if you are sure it is gone",
            )
        if take_over and run.owner:
            # The old owner is gone: the queued items it held need not wait out their leases.
            self.items.release_owner(run_id, run.owner)
        return self.execute(claim)

    def resume(self, run_id: str, *, force: bool = False) -> Any:
        """Run again what did not finish: failed, cancelled and dead runs are reopened first."""
        run = self.get_run(run_id)
        self.workflow(run.workflow).check_stored(run.id, run.version, run.definition)
        self.store.reopen(run_id)
        return self.run(run_id, force=force)

    def execute(self, claim: Claim) -> Any:
        """Drive an already claimed run (what a worker calls after ``Store.claim_run``).

        Keeps the lease alive while it runs. Returns the decoded result; raises ``StepFailed``
        or ``WorkflowTimeout`` (run marked failed), ``RunCancelled``, ``LeaseLost`` (stop: the
        run belongs to someone else now), or a ``ConfigError``: ``DefinitionMismatch``/
        ``UnknownWorkflow`` found before any step ran (another version or graph, map items
        stored under other keys: the claim is released untouched for a process that has the
        right code), or a definition error found while a step ran (context read in another
        order, a result with no JSON form: the run is marked failed, the step not retried).
        """
        try:
            workflow = self.workflow(claim.run.workflow)
            workflow.check_stored(claim.run_id, claim.run.version, claim.run.definition)
        except ConfigError:
            self.store.release(claim)
            raise
        return self._execute(claim, workflow, checkpoints=None)

    def _execute(
        self, claim: Claim, workflow: Workflow, *, checkpoints: list[StepRecord] | None
    ) -> Any:
        with self._heartbeats.hold(claim) as lease:
            try:
                execution = self.execution(
                    claim,
                    stop=lease.stop,
                    stop_reason=lambda: lease.reason,
                    checkpoints=checkpoints,
                )
            except ConfigError:
                # The stored run does not fit this code (found before any step ran): hand it
                # back untouched for a process that has the right code.
                self.store.release(claim)
                raise
            execution.run()
        return execution.outputs[workflow.result_step]

    def execution(
        self,
        claim: Claim,
        *,
        stop: threading.Event,
        stop_reason: Callable[[], DurableError | None],
        checkpoints: list[StepRecord] | None = None,
    ) -> Execution:
        """The driver of a claimed run, with this engine's options (for workers that keep
        their own heartbeats): call ``.run()`` on it. Loads the checkpoints in one query."""
        return Execution(
            store=self.store,
            claim=claim,
            workflow=self.workflow(claim.run.workflow),
            executor=self.executor,
            checkpoints=self.store.load_steps(claim.run_id) if checkpoints is None else checkpoints,
            stop=stop,
            stop_reason=stop_reason,
            # Even without distribute_items: a run taken over from an owner that queued its
            # items must take them through the queue, where helpers may hold some.
            distribution=Distribution(
                self.items,
                self.worker_id,
                self.lease_seconds,
                always=self.distribute_items,
                concurrency=self.item_concurrency,
                batch=self.item_batch,
            ),
        )

    # ------------------------------------------------------------- helping

    def work_items(
        self,
        *,
        limit: int | None = None,
        batch: int | None = None,
        workflows: Collection[str] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Run queued map items of other processes' running runs here until none is left.

        What an idle worker calls: returns how many items it took (0: nothing to do). It helps
        one map step at a time, in run order: up to ``limit`` of its items at once (default:
        the engine's ``item_concurrency``, else the ``concurrency`` the step declares, as its
        owner does), a slot refilled as soon as it frees, at most ``batch`` items per claim.
        The bound is per process: a step this process already runs items of (it owns the run,
        or another thread is helping it) is left to that. Each item is checkpointed under its
        own fencing token; a failed item is recorded and the run's owner fails the run. Items
        of workflows this process does not know are left. Once ``stop`` is set no more items
        are claimed; items claimed and not started are handed back. An item of a run this
        code does not fit (``DefinitionMismatch``) is handed back at once with the reason
        recorded on it, the run's items are not claimed here again, and the refusal is raised.
        """
        names = list(workflows) if workflows is not None else self._known_workflows()
        stopped = stop or threading.Event()
        taken = 0
        while not stopped.is_set():
            target = self._take_step(names)
            if target is None:
                break
            try:
                drained = self._help_step(target, limit, batch, stopped)
            finally:
                with self._views_lock:
                    self._helping.discard((target.run_id, target.step))
            taken += drained
            if drained == 0:
                # Claimed by others between the look and the claim: look again next time.
                break
        return taken

    def _take_step(self, workflows: list[str]) -> QueuedStep | None:
        # Looking and marking the step as helped here go together, so that two slots of this
        # process never help one step at once (the step's bound is per process).
        with self._choosing:
            with self._views_lock:
                refused = sorted(self._refused)
                helping = sorted(self._helping)
            target = self.items.next_step(
                self.worker_id, workflows=workflows, skip_runs=refused, skip_steps=helping
            )
            if target is not None:
                with self._views_lock:
                    self._helping.add((target.run_id, target.step))
            return target

    def declared_concurrency(self, workflow: str, step: str) -> int:
        """The items of ``step`` one process runs at once by default: the map step's declared
        ``concurrency`` in this process's code (1 if this code has no such map step: its
        items are then refused one by one, see ``work_items``)."""
        try:
            spec = self.workflow(workflow)[step]
        except (ConfigError, KeyError):
            return 1
        return spec.concurrency if spec.kind is StepKind.MAP else 1

    def _help_step(
        self, target: QueuedStep, limit: int | None, batch: int | None, stopped: threading.Event
    ) -> int:
        def check() -> None:
            if stopped.is_set():
                raise _Stopped

        def run_item(item: ItemClaim) -> Checkpoint | None:
            try:
                view, element = self._element(item)
            except ConfigError as refusal:
                # This code does not fit the run (another version, other keys): the item goes
                # back at once for a process that has the right code, with the reason on it,
                # and this process never claims the run's items again.
                with self._views_lock:
                    self._refused.add(item.run_id)
                self.items.refuse(item, str(refusal))
                raise
            # A failure is recorded on the item, a lost item is someone else's: either way the
            # run's owner decides what happens to the run.
            try:
                return self._work_item(item, view, element, stopped)
            except (StepFailed, LeaseLost, RunCancelled):
                return None

        concurrency = (
            limit
            or self.item_concurrency
            or self.declared_concurrency(target.workflow, target.step)
        )
        pump = ItemPump(
            self.items,
            self.worker_id,
            self.lease_seconds,
            concurrency=concurrency,
            batch=batch or self.item_batch,
        )
        with self.items.keep_alive(self.worker_id, self.lease_seconds):
            drained = pump.drain(run_item, run_id=target.run_id, step=target.step, check=check)
        errors = [error for error in drained.errors if not isinstance(error, _Stopped)]
        if errors:
            raise errors[0]
        return drained.items

    def _work_item(
        self, item: ItemClaim, view: MapView, element: Any, stop: threading.Event
    ) -> Checkpoint:
        done = run_attempts(
            spec=view.spec,
            item_key=item.item_key,
            prior=Prior(item.attempts, item.events, item.started_at),
            call=lambda c: view.spec.fn(c, element, **view.kwargs),
            write=lambda checkpoint: self.items.save(item, checkpoint),
            check=lambda: None,
            stop=stop,
            run_id=item.run_id,
            workflow=view.workflow,
            input=view.input,
            database=self.store.engine,
        )
        return done.checkpoint(item.step, item.item_key)

    def _element(self, item: ItemClaim) -> tuple[MapView, Any]:
        view = self._map_view(item.run_id, item.step)
        element = view.element(item.item_key, item.element_index)
        if element is MISSING:
            view = self._map_view(item.run_id, item.step, whole=True)
            element = view.element(item.item_key, None)
        return view, element

    def _map_view(self, run_id: str, step: str, *, whole: bool = False) -> MapView:
        # Rebuilt at most once per (run, step) while it stays among the recent few: a
        # 10,000-item step costs a helper one load, not one per item.
        key = (run_id, step)
        with self._views_lock:
            view = self._views.get(key)
            if view is not None and (view.elements is not None or not whole):
                self._views.move_to_end(key)
                return view
        # One slot loads while the others wait for it: the first items of a step all arrive
        # at once, and loading in each would cost a connection and the run's checkpoints each.
        with self._views_loading:
            with self._views_lock:
                view = self._views.get(key)
            if view is not None and (view.elements is not None or not whole):
                return view
            return self._load_map_view(run_id, step, key, whole)

    def _load_map_view(self, run_id: str, step: str, key: tuple[str, str], whole: bool) -> MapView:
        run = self.get_run(run_id)
        workflow = self.workflow(run.workflow)
        workflow.check_stored(run.id, run.version, run.definition)
        spec = workflow[step]
        view = None if whole else self._split_view(run, workflow, spec)
        if view is None:
            view = self._whole_view(run, workflow, spec)
        with self._views_lock:
            self._views[key] = view
            while len(self._views) > 8:
                self._views.popitem(last=False)
        return view

    def _split_view(self, run: RunRecord, workflow: Workflow, spec: StepSpec) -> MapView | None:
        # Only for a step that takes no other step's output (those would be decoded whole
        # anyway): the list it maps over, split into raw elements (see reclaim.durable.views).
        if spec.kind is not StepKind.MAP or spec.over is None or spec.inputs:
            return None
        over = self.store.load_step(run.id, spec.over)
        if over is None or over.status is not StepStatus.SUCCEEDED:
            return None
        raw = MapView.split(over.output)
        if raw is None:
            return None
        return MapView(
            workflow=workflow.name,
            spec=spec,
            input=workflow.decode_input(run.input),
            kwargs={},
            raw=raw,
            over=workflow[spec.over],
        )

    def _whole_view(self, run: RunRecord, workflow: Workflow, spec: StepSpec) -> MapView:
        reader = Execution(
            store=self.store,
            claim=Claim(run, self.worker_id, -1, run.updated_at, run.updated_at),
            workflow=workflow,
            executor=self.executor,
            checkpoints=self.store.load_steps(run.id),
            stop=threading.Event(),
            stop_reason=lambda: None,
        )
        return MapView(
            workflow=workflow.name,
            spec=spec,
            input=reader.input,
            kwargs={name: reader.outputs[name] for name in spec.inputs},
            elements=dict(reader.keyed_items(spec)),
        )

    def _known_workflows(self) -> list[str]:
        return sorted(set(self._local) | set(self._registry.names()))

    # ------------------------------------------------------------ operating

    def cancel(self, run_id: str) -> bool:
        """Cancel a pending or running run (it stops at its next step boundary)."""
        return self.store.cancel(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run has id {run_id!r}", fix="see `reclaim runs list`")
        return run

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Collection[RunStatus] | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        return self.store.list_runs(workflow=workflow, statuses=statuses, limit=limit)

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every checkpoint of the run (plain steps and map items)."""
        return self.store.load_steps(run_id)

    def result(self, run_id: str) -> Any:
        """The decoded result of a succeeded run."""
        run = self.get_run(run_id)
        if run.status is not RunStatus.SUCCEEDED:
            raise DurableError(f"run {run_id} has no result: it is {run.status}")
        workflow = self.workflow(run.workflow)
        spec = workflow[workflow.result_step]
        if spec.kind is StepKind.STEP:
            return spec.decode(run.output)
        # A map step's result is {key: item output}; each item decodes with the step's type.
        items: dict[str, Any] = json.loads(run.output or "{}")
        return {key: spec.decode(json.dumps(value)) for key, value in items.items()}

    def _finished_error(self, run: RunRecord) -> DurableError:
        if run.status is RunStatus.CANCELLED:
            return RunCancelled(f"run {run.id} was cancelled", fix="resume it to run it again")
        if run.status is RunStatus.FAILED:
            return StepFailed(run.error or f"run {run.id} failed")
        return DurableError(run.error or f"run {run.id} is {run.status}")
