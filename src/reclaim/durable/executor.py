"""Running one claimed run to its end: which step next, retries, checkpoints, and stopping.

``SequentialExecutor`` runs steps one at a time in topological order (ties broken by declaration
order), so the same definition always runs in the same order. ``ParallelExecutor`` starts every
step whose dependencies are done as soon as they are done, up to ``max_workers`` at once; a
slow branch never holds back an independent one (no barrier). In both, a map step runs up to its
own ``concurrency`` items at a time.

A completed step (or item) is never run again: its checkpoint is read back instead. A step that
was in flight when the process died has no completed checkpoint and runs again.
"""

from __future__ import annotations

__all__ = ["Execution", "Executor", "ParallelExecutor", "SequentialExecutor"]

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from reclaim.durable.attempts import Attempted, Prior, run_attempts, utcnow
from reclaim.durable.context import StepContext
from reclaim.durable.errors import (
    DurableError,
    LeaseLost,
    RunCancelled,
    StepFailed,
    WorkflowTimeout,
)
from reclaim.durable.item_keys import check_item_keys
from reclaim.durable.pump import ItemPump
from reclaim.durable.queue import Distribution, ItemClaim
from reclaim.durable.records import Checkpoint, Claim, RunStatus, StepRecord, StepStatus
from reclaim.durable.store import Store
from reclaim.durable.workflow import StepKind, StepSpec, Workflow
from reclaim.errors import ConfigError


@dataclass(frozen=True)
class Executor:
    """How many steps of one run may run at once (map items are bounded per map step)."""

    max_workers: int = 1

    def __post_init__(self) -> None:
        if self.max_workers < 1:
            raise ConfigError("an executor needs max_workers ≥ 1")


@dataclass(frozen=True)
class SequentialExecutor(Executor):
    """One step at a time, in a deterministic topological order."""

    max_workers: int = 1


@dataclass(frozen=True)
class ParallelExecutor(Executor):
    """Every ready step starts at once, up to ``max_workers`` steps in flight."""

    max_workers: int = 4


class Execution:
    """The state of one claimed run while this process drives it."""

    def __init__(
        self,
        *,
        store: Store,
        claim: Claim,
        workflow: Workflow,
        executor: Executor,
        checkpoints: list[StepRecord],
        stop: threading.Event,
        stop_reason: Callable[[], DurableError | None],
        distribution: Distribution | None = None,
    ) -> None:
        self.store = store
        self.distribution = distribution
        self.claim = claim
        self.workflow = workflow
        self.executor = executor
        self.stop = stop
        self._stop_reason = stop_reason
        self.input = workflow.decode_input(claim.run.input)
        self.order = workflow.order()
        self._lock = threading.Lock()
        # Set once the last checkpoint also wrote the run's final status.
        self._finished = False
        self._deadline: float | None = None
        if claim.run.timeout_at is not None:
            # Measured against the database clock at claim time, then on our monotonic clock,
            # so skew between this machine and the database does not matter.
            left = (claim.run.timeout_at - claim.db_now).total_seconds()
            self._deadline = time.monotonic() + left
        self.outputs: dict[str, Any] = {}
        self.encoded: dict[str, str] = {}
        self.plain: dict[str, StepRecord] = {}
        self.items: dict[str, dict[str, StepRecord]] = {}
        for record in checkpoints:
            if record.item_key:
                self.items.setdefault(record.step, {})[record.item_key] = record
            else:
                self.plain[record.step] = record
        self.done: set[str] = set()
        for spec in self.order:
            stored = self.plain.get(spec.name)
            finished = stored is not None and stored.status is StepStatus.SUCCEEDED
            if spec.kind is StepKind.MAP and spec.over in self.done:
                # Before anything runs: items stored under other keys would run again.
                check_item_keys(
                    run_id=claim.run_id,
                    spec=spec,
                    elements=self.outputs[spec.over],
                    stored=self.items.get(spec.name, {}).keys(),
                    finished=finished,
                )
            if stored is not None and finished:
                self._restore(spec, stored)

    # ------------------------------------------------------------ resuming

    def _restore(self, spec: StepSpec, record: StepRecord) -> None:
        if spec.kind is StepKind.STEP:
            self.encoded[spec.name] = record.output if record.output is not None else "null"
            self.outputs[spec.name] = spec.decode(self.encoded[spec.name])
        else:
            keys = [key for key, _ in self.keyed_items(spec)]
            stored = self.items.get(spec.name, {})
            missing = [key for key in keys if key not in stored]
            if missing:
                raise DurableError(
                    f"map step {spec.name!r} of run {self.claim.run_id} is marked done but has "
                    f"no checkpoint for item {missing[0]!r}"
                )
            self._set_map_output(spec, {key: stored[key].output or "null" for key in keys})
        self.done.add(spec.name)

    def _set_map_output(self, spec: StepSpec, encoded: dict[str, str]) -> None:
        self.encoded[spec.name] = (
            "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in encoded.items()) + "}"
        )
        self.outputs[spec.name] = {key: spec.decode(value) for key, value in encoded.items()}

    # ----------------------------------------------------------- boundaries

    def check(self) -> None:
        """Raise if the run must stop: cancelled, lost, or past its timeout."""
        if self.stop.is_set():
            reason = self._stop_reason()
            raise reason or RunCancelled(f"run {self.claim.run_id} was stopped")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise WorkflowTimeout(
                f"run {self.claim.run_id} of workflow {self.workflow.name!r} passed its "
                f"timeout of {self.workflow.timeout}s",
                fix="raise Workflow(timeout=…) or make the slow step faster, then resume it",
            )

    # ------------------------------------------------------------- driving

    def run(self) -> str:
        """Run every unfinished step; return the run's output (JSON). Finishes the run row."""
        try:
            if self.executor.max_workers == 1:
                for spec in self.order:
                    if spec.name not in self.done:
                        self.check()
                        self._run_step(spec)
            else:
                self._run_parallel()
            if not self._finished:
                # Once finished, a heartbeat may see the run no longer "running": not a loss.
                self.check()
        except (StepFailed, WorkflowTimeout, ConfigError) as failure:
            # A ConfigError here was found while a step ran (its code no longer fits the run):
            # the step is failed, not retried, and the run with it, so no worker picks the run
            # up again to repeat the step's effects before someone fixes the code.
            self.store.finish_run(self.claim, RunStatus.FAILED, error=str(failure))
            raise
        output = self.encoded[self.workflow.result_step]
        if not self._finished:
            self.store.finish_run(self.claim, RunStatus.SUCCEEDED, output=output)
        return output

    def _run_parallel(self) -> None:
        pending = [spec for spec in self.order if spec.name not in self.done]
        running: dict[Future[None], StepSpec] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(
            max_workers=self.executor.max_workers, thread_name_prefix="durable-step"
        ) as pool:
            while pending or running:
                if failure is None:
                    for spec in [s for s in pending if set(s.depends_on) <= self.done]:
                        if len(running) >= self.executor.max_workers:
                            break
                        try:
                            self.check()
                        except DurableError as exc:
                            failure = exc
                            break
                        pending.remove(spec)
                        running[pool.submit(self._run_step, spec)] = spec
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    error = future.exception()
                    if error is not None and failure is None:
                        failure = error
                        # Let steps already in flight finish and checkpoint; start no more.
                        pending.clear()
        if failure is not None:
            raise failure

    def _is_last(self, name: str) -> bool:
        with self._lock:
            return name not in self.done and len(self.done) == len(self.order) - 1

    def _complete(self, spec: StepSpec, checkpoint: Checkpoint) -> None:
        # The last step's checkpoint and the run's final status share one transaction.
        if self._is_last(spec.name):
            output = self.encoded[self.workflow.result_step]
            self.store.checkpoint(self.claim, checkpoint, finish=RunStatus.SUCCEEDED, output=output)
            self._finished = True
        else:
            self.store.checkpoint(self.claim, checkpoint)
        with self._lock:
            self.done.add(spec.name)

    def _run_step(self, spec: StepSpec) -> None:
        kwargs = {name: self.outputs[name] for name in spec.inputs}
        if spec.kind is StepKind.MAP:
            self._run_map(spec, kwargs)
            return
        done = self._attempts(spec, "", self.plain.get(spec.name), lambda c: spec.fn(c, **kwargs))
        self.encoded[spec.name] = done.output
        self.outputs[spec.name] = done.value
        self._complete(spec, done.checkpoint(spec.name, ""))

    # ----------------------------------------------------------- map steps

    def keyed_items(self, spec: StepSpec) -> list[tuple[str, Any]]:
        assert spec.over is not None
        assert spec.key is not None
        source = self.outputs[spec.over]
        if not isinstance(source, list | tuple):
            raise StepFailed(
                f"map step {spec.name!r} maps over {spec.over!r}, which returned "
                f"{type(source).__name__}, not a list",
                step=spec.name,
            )
        keyed: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for position, element in enumerate(source):
            key = str(spec.key(element))
            if not key:
                raise StepFailed(
                    f"map step {spec.name!r}: element {position} has an empty key",
                    step=spec.name,
                )
            if key in seen:
                raise StepFailed(
                    f"map step {spec.name!r}: key {key!r} appears twice in {spec.over!r} "
                    f"(again at position {position})",
                    step=spec.name,
                )
            seen.add(key)
            keyed.append((key, element))
        return keyed

    def _run_map(self, spec: StepSpec, kwargs: dict[str, Any]) -> None:
        keyed = self.keyed_items(spec)
        stored = self.items.get(spec.name, {})
        results: dict[str, str] = {}
        todo: list[tuple[str, Any]] = []
        for key, element in keyed:
            record = stored.get(key)
            if record is not None and record.status is StepStatus.SUCCEEDED:
                results[key] = record.output or "null"
            else:
                todo.append((key, element))
        started = utcnow()

        def run_item(key: str, element: Any) -> None:
            done = self._attempts(
                spec, key, stored.get(key), lambda c: spec.fn(c, element, **kwargs)
            )
            self.store.checkpoint(self.claim, done.checkpoint(spec.name, key))
            with self._lock:
                results[key] = done.output

        # Items an earlier owner queued may be held by helpers right now: running them here
        # as well would run them twice, so they are taken through the queue like a helper.
        queued = any(record.queued for record in stored.values())
        if queued and todo and self.distribution is None:
            raise DurableError(
                f"map step {spec.name!r} of run {self.claim.run_id} has items in the shared "
                "queue; only an engine with an item queue may take it over"
            )
        distribution = self.distribution
        if distribution is not None and todo and (distribution.always or queued):
            results.update(self._run_map_distributed(spec, kwargs, keyed, todo))
        else:
            limit = (distribution.concurrency if distribution else None) or spec.concurrency
            self._bounded(iter(todo), limit, run_item)
        self._set_map_output(spec, {key: results[key] for key, _ in keyed})
        self._complete(
            spec,
            Checkpoint(
                spec.name,
                "",
                StepStatus.SUCCEEDED,
                1,
                started_at=started,
                finished_at=utcnow(),
            ),
        )

    def _run_map_distributed(
        self,
        spec: StepSpec,
        kwargs: dict[str, Any],
        keyed: list[tuple[str, Any]],
        todo: list[tuple[str, Any]],
    ) -> dict[str, str]:
        # The owner queues the items, then drains the queue alongside any helpers, and waits
        # for the items helpers hold before it checkpoints the step.
        assert self.distribution is not None
        queue = self.distribution.queue
        worker_id = self.distribution.worker_id
        lease = self.distribution.lease_seconds
        run_id = self.claim.run_id
        elements = dict(keyed)
        positions = {key: index for index, (key, _) in enumerate(keyed)}
        queue.enqueue(
            self.claim,
            spec.name,
            [key for key, _ in todo],
            [positions[key] for key, _ in todo],
        )

        def run_item(claim: ItemClaim) -> Checkpoint | None:
            element = elements[claim.item_key]
            try:
                return attempt(claim, element)
            except LeaseLost:
                # The item's lease ran out and another worker holds it now: it is theirs to
                # finish. Losing the run itself stops us through ``check`` instead.
                return None

        def attempt(claim: ItemClaim, element: Any) -> Checkpoint:
            done = run_attempts(
                spec=spec,
                item_key=claim.item_key,
                prior=Prior(claim.attempts, claim.events, claim.started_at),
                call=lambda c: spec.fn(c, element, **kwargs),
                write=lambda checkpoint: queue.save(claim, checkpoint),
                check=self.check,
                stop=self.stop,
                run_id=run_id,
                workflow=self.workflow.name,
                input=self.input,
                database=self.store.engine,
            )
            return done.checkpoint(spec.name, claim.item_key)

        pump = ItemPump(
            queue,
            worker_id,
            lease,
            concurrency=self.distribution.concurrency or spec.concurrency,
            batch=self.distribution.batch,
        )
        with queue.keep_alive(worker_id, lease):
            while True:
                drained = pump.drain(run_item, run_id=run_id, step=spec.name, check=self.check)
                if drained.errors:
                    raise drained.errors[0]
                progress = queue.progress(run_id, spec.name)
                if progress.get(StepStatus.FAILED):
                    message = queue.failure(run_id, spec.name) or "an item failed"
                    raise StepFailed(message, step=spec.name)
                if not progress.get(StepStatus.PENDING) and not progress.get(StepStatus.RUNNING):
                    break
                # What is left is held by helpers (or by a dead one until its lease expires).
                self.stop.wait(self.distribution.poll_seconds)
                self.check()
        return queue.outputs(run_id, spec.name)

    def _bounded(
        self,
        tasks: Iterator[tuple[str, Any]],
        concurrency: int,
        work: Callable[[str, Any], None],
    ) -> None:
        if concurrency == 1:
            for key, element in tasks:
                self.check()
                work(key, element)
            return
        failure: BaseException | None = None
        running: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="durable-item") as pool:
            exhausted = False
            while True:
                while failure is None and not exhausted and len(running) < concurrency:
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    try:
                        self.check()
                    except DurableError as exc:
                        failure = exc
                        break
                    running.add(pool.submit(work, *task))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    error = future.exception()
                    if error is not None and failure is None:
                        failure = error
        if failure is not None:
            raise failure

    def _attempts(
        self,
        spec: StepSpec,
        item_key: str,
        stored: StepRecord | None,
        call: Callable[[StepContext], Any],
    ) -> Attempted:
        prior = (
            Prior(stored.attempts, stored.events, stored.started_at)
            if stored is not None
            else Prior()
        )
        return run_attempts(
            spec=spec,
            item_key=item_key,
            prior=prior,
            call=call,
            write=lambda checkpoint: self.store.checkpoint(self.claim, checkpoint),
            check=self.check,
            stop=self.stop,
            run_id=self.claim.run_id,
            workflow=self.workflow.name,
            input=self.input,
            database=self.store.engine,
        )
