"""One infra run: plan → policy check → apply over the stack DAG, as one durable workflow.

Each selected stack is two steps, ``plan_<stack>`` and (for ``apply``) ``apply_<stack>``; a
stack's plan step depends on the apply steps of the stacks it reads, so the parallel executor
runs independent stacks side by side (bounded by the slots) and a stack after its sources.
Whether a stack runs is decided inside its plan step from its sources' results: a target runs;
a stack downstream of a target runs only when a source's outputs changed (the run trigger) and
is applied only when it has ``auto_apply``; a deny or a blocked source blocks it.

``apply`` never applies a plan twice: before Terraform starts, an intent row records the serial
and lineage of the state the plan was made from; a step that runs again after a crash and finds
its intent and a state that moved on from that serial knows the plan was applied.
"""

from __future__ import annotations

__all__ = [
    "DriftReport",
    "InfraRun",
    "Orchestrator",
    "PlanOutcome",
    "RunInput",
    "StackResult",
    "StackStatus",
]

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, ParallelExecutor, RunNotFound, StepContext, Workflow
from reclaim.errors import ConfigError, ExecutionError
from reclaim.infra.config import InfraConfig
from reclaim.infra.graph import StackGraph
from reclaim.infra.store import InfraStore, LockHeld, StateMark
from reclaim.infra.terraform import LineSink, Terraform
from reclaim.policy import PolicySet, builtin_pack_path, check_plan, load_policies, parse_plan

Mode = Literal["plan", "apply"]
StackStatus = Literal[
    "planned",  # plan only: the plan has changes
    "no_changes",
    "applied",
    "needs_approval",  # a triggered stack without auto_apply: planned, not applied
    "denied",
    "blocked",
    "skipped",
]

WORKFLOW = "infra"
LEASE_SECONDS = 60.0


class RunInput(BaseModel):
    config: str
    mode: Mode
    targets: list[str]


class PlanOutcome(BaseModel):
    stack: str
    status: StackStatus
    reason: str = ""
    trigger: Literal["target", "cascade"] | None = None
    changes: bool = False
    apply: bool = False
    plan_file: str | None = None
    base_serial: int | None = None
    base_lineage: str | None = None
    findings: list[str] = []


class StackResult(BaseModel):
    stack: str
    status: StackStatus
    reason: str = ""
    trigger: Literal["target", "cascade"] | None = None
    changes: bool = False
    outputs_changed: bool = False
    output_version: int | None = None
    detected: bool = False
    findings: list[str] = []


class DriftReport(BaseModel):
    stack: str
    drifted: bool
    log: str
    resources: list[str] = []


class InfraRun(BaseModel):
    run_id: str
    mode: Mode
    stacks: list[StackResult]
    global_version: int | None = None

    @property
    def ok(self) -> bool:
        return not any(s.status in ("denied", "blocked") for s in self.stacks)


def _ident(name: str) -> str:
    text = re.sub(r"\W", "_", name)
    suffix = hashlib.sha256(name.encode()).hexdigest()[:6] if text != name else ""
    return f"{text}_{suffix}" if suffix else text


class Orchestrator:
    """Builds and drives infra runs for one configuration on one database."""

    def __init__(
        self,
        config: InfraConfig,
        engine: Engine,
        *,
        slots: int | None = None,
        terraform: Terraform | None = None,
        sink: LineSink | None = None,
        lock_wait: float = 600.0,
    ) -> None:
        self.config = config
        self.graph = StackGraph(config)
        self.engine = engine
        self.store = InfraStore(engine)
        self.slots = slots or config.parallelism
        if self.slots < 1:
            raise ConfigError(f"slots must be at least 1, not {self.slots}")
        self.terraform = terraform or Terraform.from_setting(config.terraform, sink=sink)
        self.lock_wait = lock_wait
        self._policies: list[PolicySet] | None = None
        self._policies_lock = threading.Lock()
        self._refs: frozenset[str] | None = None
        self._refs_read = False

    # ------------------------------------------------------------- running

    def run(
        self, mode: Mode, targets: Sequence[str] = (), *, run_id: str | None = None
    ) -> InfraRun:
        """Start a run and drive it to the end; given the id of an unfinished run, resume it."""
        spec = RunInput(config=str(self.config.path), mode=mode, targets=list(targets))
        run_id = run_id or uuid.uuid4().hex
        workflow = self.workflow(spec)
        with self._heartbeat(run_id):
            result = self._durable(workflow).run_workflow(workflow, spec, run_id=run_id)
        return InfraRun.model_validate(result)

    def resume(self, run_id: str) -> InfraRun:
        """Resume a stopped run (crashed, failed, cancelled) with the input it started with."""
        from reclaim.durable import Store

        record = Store(self.engine).get_run(run_id)
        if record is None:
            raise RunNotFound(f"no run {run_id!r} in this database")
        spec = RunInput.model_validate_json(record.input)
        workflow = self.workflow(spec)
        with self._heartbeat(run_id):
            result = self._durable(workflow).resume(run_id)
        return InfraRun.model_validate(result)

    def _durable(self, workflow: Workflow) -> DurableEngine:
        return DurableEngine(
            self.engine,
            executor=ParallelExecutor(max_workers=self.slots),
            workflows=(workflow,),
        )

    @contextmanager
    def _heartbeat(self, run_id: str) -> Iterator[None]:
        # Stack locks live as long as the run holds them, plan to apply: renew them all while
        # this process is alive, so a crashed orchestrator's locks expire after one lease.
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_SECONDS / 4):
                try:
                    self.store.renew(run_id, LEASE_SECONDS)
                except Exception:  # noqa: S112  a missed beat is retried; a lease is four beats
                    continue

        thread = threading.Thread(target=beat, name="infra-locks", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # ------------------------------------------------------------ workflow

    def workflow(self, spec: RunInput) -> Workflow:
        """The durable workflow for ``spec``: two steps per selected stack and a summary."""
        targets = list(spec.targets)
        # apply: the targets and everything downstream (a changed output may trigger them);
        # plan: the targets alone, since nothing is applied and so nothing can cascade.
        selected = self.graph.select(targets)
        if spec.mode == "plan" and targets:
            selected = tuple(name for name in selected if name in set(targets))
        target_set = set(targets) if targets else set(selected)
        workflow = Workflow(WORKFLOW, version="1", input_type=RunInput, register=False)
        last: dict[str, str] = {}
        for name in selected:
            ident = _ident(name)
            sources = [s for s in self.graph.upstream(name) if s in selected]
            plan_deps = tuple(last[s] for s in sources)
            plan_name = f"plan_{ident}"
            workflow.step(name=plan_name, depends_on=plan_deps)(
                self._plan_step(name, spec.mode, name in target_set, sources)
            )
            last[name] = plan_name
            if spec.mode == "apply":
                apply_name = f"apply_{ident}"
                workflow.step(name=apply_name, depends_on=(plan_name,))(
                    self._apply_step(name, plan_name)
                )
                last[name] = apply_name
        steps = tuple(last[name] for name in selected)
        workflow.step(name="summary", depends_on=steps)(self._summary_step(spec.mode, steps))
        return workflow

    def _plan_step(
        self, name: str, mode: Mode, is_target: bool, sources: list[str]
    ) -> Callable[..., PlanOutcome]:
        source_steps = {
            (f"apply_{_ident(s)}" if mode == "apply" else f"plan_{_ident(s)}"): s for s in sources
        }

        def plan(ctx: StepContext, **upstream: Any) -> PlanOutcome:
            results = {source_steps[k]: _as_result(v) for k, v in upstream.items()}
            return self.plan_stack(ctx.run_id, name, mode, is_target, results, ctx)

        return plan

    def _apply_step(self, name: str, plan_name: str) -> Callable[..., StackResult]:
        def apply(ctx: StepContext, **planned: Any) -> StackResult:
            return self.apply_stack(ctx.run_id, PlanOutcome.model_validate(planned[plan_name]))

        return apply

    def _summary_step(self, mode: Mode, steps: Sequence[str]) -> Callable[..., InfraRun]:
        def summary(ctx: StepContext, **results: Any) -> InfraRun:
            stacks = [_as_result(results[step]) for step in steps]
            version = None
            if mode == "apply" and self.config.global_outputs:
                version = self.record_global_outputs(ctx.run_id)
            return InfraRun(run_id=ctx.run_id, mode=mode, stacks=stacks, global_version=version)

        return summary

    # ------------------------------------------------------------- a stack

    def plan_stack(
        self,
        run_id: str,
        name: str,
        mode: Mode,
        is_target: bool,
        sources: Mapping[str, StackResult],
        ctx: StepContext | None = None,
    ) -> PlanOutcome:
        """Decide whether the stack runs; if so lock it, plan it and check the plan."""
        stack = self.config.stacks[name]
        for source, result in sources.items():
            if result.status in ("denied", "blocked"):
                return PlanOutcome(
                    stack=name,
                    status="blocked",
                    reason=f"{source} was {result.status}: {result.reason}",
                )
        triggered = [s for s, r in sources.items() if r.outputs_changed]
        if not is_target and not triggered:
            return PlanOutcome(stack=name, status="skipped", reason="no source's outputs changed")
        trigger: Literal["target", "cascade"] = "target" if is_target else "cascade"
        refs = self._checkout_refs()
        if mode == "apply" and stack.tracks and refs is not None and stack.tracks not in refs:
            return PlanOutcome(
                stack=name,
                status="skipped",
                trigger=trigger,
                reason=f"tracks {stack.tracks}; the checkout is at {', '.join(sorted(refs))}",
            )
        self._lock(name, run_id)
        folder = stack.path
        log = self._run_dir(run_id) / f"{name}.log"
        # A file of its own per attempt: a plan orphaned by a killed orchestrator may still be
        # writing the previous attempt's file. Not a checkpointed value: only a name.
        plan_file = self._run_dir(run_id) / f"{name}.{uuid.uuid4().hex[:8]}.tfplan"
        self.terraform.init(name, folder, log)
        base = self.terraform.mark(name, folder, stack.local_state)
        changes = self.terraform.plan(name, folder, plan_file, variables=stack.variables, log=log)
        findings = self._check(name, folder, plan_file, ctx)
        outcome = PlanOutcome(
            stack=name,
            status="planned" if changes else "no_changes",
            trigger=trigger,
            changes=changes,
            plan_file=str(plan_file),
            base_serial=base.serial,
            base_lineage=base.lineage,
            reason=(f"triggered by {', '.join(triggered)}" if triggered and not is_target else ""),
        )
        if findings:
            self.store.release(name, run_id)
            return outcome.model_copy(
                update={
                    "status": "denied",
                    "reason": "policy deny: " + "; ".join(findings),
                    "findings": findings,
                }
            )
        wants_apply = mode == "apply" and changes and (is_target or stack.auto_apply)
        if mode == "apply" and changes and not wants_apply:
            outcome = outcome.model_copy(
                update={
                    "status": "needs_approval",
                    "reason": outcome.reason + " (auto_apply is off: planned, not applied)",
                }
            )
        if not wants_apply:
            self.store.release(name, run_id)
        return outcome.model_copy(update={"apply": wants_apply})

    def apply_stack(self, run_id: str, planned: PlanOutcome) -> StackResult:
        """Apply the saved plan once, detecting an apply an earlier attempt already did."""
        result = StackResult(
            stack=planned.stack,
            status=planned.status,
            reason=planned.reason,
            trigger=planned.trigger,
            changes=planned.changes,
            findings=planned.findings,
        )
        if not planned.apply or planned.plan_file is None:
            return result
        name = planned.stack
        stack = self.config.stacks[name]
        folder = stack.path
        base = StateMark(planned.base_serial, planned.base_lineage)
        self._lock(name, run_id)
        intent = self.store.intent(run_id, name)
        current = self.terraform.mark(name, folder, stack.local_state)
        detected = False
        if intent is not None and current.moved_on_from(intent.base):
            detected = True  # the earlier attempt applied it before this process died
        elif current != base:
            raise ExecutionError(
                f"stack {name!r}: its state changed since it was planned "
                f"(serial {base.serial} -> {current.serial}, lineage {current.lineage}) "
                "by something other than this run",
                fix="find who applied it, then start a new run to plan it again",
            )
        else:
            self.store.record_intent(run_id, name, base)
            log = self._run_dir(run_id) / f"{name}.log"
            applied = self.terraform.apply(name, folder, Path(planned.plan_file), log)
            current = self.terraform.mark(name, folder, stack.local_state)
            if applied.code != 0:
                # The saved plan is refused as stale when an orphaned Terraform of a killed
                # attempt applied it while this one waited for the state lock.
                stale = "Saved plan is stale" in applied.stdout
                if not (stale and current.moved_on_from(base)):
                    self.store.finish_apply(run_id, name, current, "failed")
                    tail = " | ".join(applied.stdout.strip().splitlines()[-4:])
                    raise ExecutionError(
                        f"stack {name!r}: terraform apply exited {applied.code}: {tail}",
                        fix=f"see {log}",
                    )
                detected = True
        self.store.finish_apply(run_id, name, current, "detected" if detected else "applied")
        outputs = self.terraform.outputs(name, folder, stack.local_state)
        version, changed = self.store.record_outputs(name, run_id, outputs)
        self.store.release(name, run_id)
        return result.model_copy(
            update={
                "status": "applied",
                "outputs_changed": changed,
                "output_version": version.version,
                "detected": detected,
            }
        )

    def drift(self, targets: Sequence[str] = ()) -> list[DriftReport]:
        """Plan every stack (or ``targets``) with ``-refresh-only``: which ones drifted.

        Read-only: nothing is applied and no lock is taken, since a refresh-only plan writes
        nothing; stacks run ``slots`` at a time.
        """
        from concurrent.futures import ThreadPoolExecutor

        names = [n for n in self.graph.order if not targets or n in set(targets)]
        for name in targets:
            self.config.stack(name)
        folder = self.config.state_dir / "drift"
        folder.mkdir(parents=True, exist_ok=True)

        def one(name: str) -> DriftReport:
            stack = self.config.stacks[name]
            log = folder / f"{name}.log"
            log.unlink(missing_ok=True)
            self.terraform.init(name, stack.path, log)
            plan_file = folder / f"{name}.tfplan"
            drifted = self.terraform.plan(
                name, stack.path, plan_file, variables=stack.variables, refresh_only=True, log=log
            )
            changed: list[str] = []
            if drifted:
                # Exit code 2 is not proof: Terraform 1.15 returns it for a refresh-only plan
                # whose every output is a no-op. The plan's JSON says what really moved.
                shown = json.loads(self.terraform.show_json(name, stack.path, plan_file))
                changed = [item["address"] for item in shown.get("resource_drift") or ()]
                changed += [
                    f"output.{output}"
                    for output, change in (shown.get("output_changes") or {}).items()
                    if change.get("actions") != ["no-op"]
                ]
                drifted = bool(changed)
            return DriftReport(stack=name, drifted=drifted, log=str(log), resources=changed)

        with ThreadPoolExecutor(max_workers=self.slots) as pool:
            return list(pool.map(one, names))

    def record_global_outputs(self, run_id: str) -> int | None:
        """Aggregate the latest outputs of the global stacks into a new version if changed."""
        document: dict[str, Any] = {}
        for name in self.config.global_outputs:
            latest = self.store.latest_outputs(name)
            document[name] = latest.outputs if latest is not None else {}
        version, _changed = self.store.record_global(run_id, document)
        return version

    # ------------------------------------------------------------- helpers

    def _check(
        self, name: str, folder: Path, plan_file: Path, ctx: StepContext | None
    ) -> list[str]:
        text = self.terraform.show_json(name, folder, plan_file)
        plan = parse_plan(text, f"{name} plan")
        # One check at a time: the rules engine imports its evaluator lazily on first use,
        # and two threads doing that at once see a half-imported module.
        with self._policies_lock:
            if self._policies is None:
                paths = list(self.config.policies) or [builtin_pack_path()]
                self._policies = list(load_policies(paths))
            report = check_plan(plan, self._policies, now=ctx.now() if ctx is not None else None)
        return [
            f"{finding.rule_id} on {finding.address}: {finding.message}"
            for finding in report.findings
            if finding.failing
        ]

    def _checkout_refs(self) -> frozenset[str] | None:
        """The branch and tags the configuration's checkout is at; None outside git."""
        with self._policies_lock:
            if not self._refs_read:
                self._refs = _git_refs(self.config.root)
                self._refs_read = True
            return self._refs

    def _lock(self, name: str, run_id: str) -> None:
        deadline = time.monotonic() + self.lock_wait
        while True:
            holder = self.store.acquire(name, run_id, LEASE_SECONDS)
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"stack {name!r} is locked by run {holder}",
                    fix="wait for that run to finish, or cancel it with `reclaim runs cancel`",
                )
            time.sleep(0.5)

    def _run_dir(self, run_id: str) -> Path:
        folder = self.config.state_dir / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _git_refs(folder: Path) -> frozenset[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    refs: set[str] = set()
    for args in (["rev-parse", "--abbrev-ref", "HEAD"], ["tag", "--points-at", "HEAD"]):
        done = subprocess.run(  # noqa: S603  (fixed git arguments, no shell)
            [git, "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            return None  # not a git checkout: nothing to compare the tracked refs with
        refs.update(line.strip() for line in done.stdout.splitlines() if line.strip())
    refs.discard("HEAD")  # a detached HEAD is on no branch
    return frozenset(refs)


def _as_result(value: Any) -> StackResult:
    """A step's output as a stack result: apply steps give one, plan steps a PlanOutcome."""
    if isinstance(value, StackResult):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return StackResult.model_validate(value)  # a PlanOutcome's fields minus the plan's own
