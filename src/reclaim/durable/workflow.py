"""Declaring a workflow: a DAG of named steps, built with decorators and checked before it runs.

    wf = Workflow("weekly", version="3")

    @wf.step()
    def collect(ctx: StepContext) -> list[dict[str, str]]: ...

    @wf.map_step(over="collect", key=lambda item: item["id"], concurrency=8)
    def distribute(ctx: StepContext, item: dict[str, str]) -> str: ...

    @wf.step(depends_on=("distribute",))
    def report(ctx: StepContext, distribute: dict[str, str]) -> int: ...

A step receives the context and, as keyword arguments, the outputs of the steps it depends on.
A map step runs once per element of an earlier step's list, identified by ``key(element)``; its
output is a dict from item key to that item's result. Outputs are JSON, encoded and decoded
through pydantic from the function's return annotation, so a model comes back as a model.
A step's identity is its declared name (plus the item key): never the order of calls.
"""

from __future__ import annotations

__all__ = ["StepKind", "StepSpec", "Workflow", "WorkflowRegistry", "registry"]

import hashlib
import heapq
import inspect
import json
import threading
import typing
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, overload

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticInvalidForJsonSchema, PydanticSchemaGenerationError

from reclaim.durable.errors import DefinitionMismatch, UnknownWorkflow
from reclaim.durable.records import DEFAULT_MAX_ATTEMPTS
from reclaim.durable.retry import RetryPolicy
from reclaim.errors import ConfigError

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)

# Decorators hand back the function unchanged, so callers keep its precise type.
_StepFn = TypeVar("_StepFn", bound=Callable[..., Any])


class StepKind(StrEnum):
    STEP = "step"
    MAP = "map"


@dataclass(frozen=True, eq=False)
class StepSpec:
    """One declared step. ``inputs`` are the dependencies passed as keyword arguments."""

    name: str
    fn: Callable[..., Any]
    kind: StepKind
    depends_on: tuple[str, ...]
    inputs: tuple[str, ...]
    retry: RetryPolicy
    timeout: float | None
    adapter: TypeAdapter[Any] = field(repr=False)
    over: str | None = None
    key: Callable[[Any], Hashable] | None = field(default=None, repr=False)
    concurrency: int = 1

    def describe(self) -> dict[str, Any]:
        """The shape of the step that a stored run must still match."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "depends_on": sorted(self.depends_on),
            "over": self.over,
        }

    def encode(self, value: Any, *, where: str | None = None) -> str:
        """JSON text of one output (one item's output for a map step).

        A value with no JSON form is a ``ConfigError`` naming the step (``where``) and the type.
        """
        try:
            return self.adapter.dump_json(value).decode()
        except Exception as exc:  # pydantic raises several types for unserialisable values
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"{where or f'step {self.name!r}'} returned {type(value).__name__}, which is "
                f"not JSON ({detail})",
                fix="return JSON-able data (dict, list, str, numbers, pydantic models) and "
                "declare that return type, so such a step is refused before it runs",
            ) from exc

    def round_trip(self, value: Any, *, where: str | None = None) -> tuple[str, Any]:
        """``(JSON text, the value read back from it)``: what a resumed run would see.

        A value whose JSON does not read back as the declared type (a NaN or infinite float
        is written as ``null``) is a ``ConfigError`` here, before it is checkpointed.
        """
        text = self.encode(value, where=where)
        try:
            return text, self.adapter.validate_json(text)
        except ValidationError as exc:
            raise ConfigError(
                f"{where or f'step {self.name!r}'} returned {type(value).__name__} whose JSON "
                f"({text[:60]}) does not read back as its declared return type: "
                f"{exc.errors()[0].get('msg', exc)}",
                fix="return a value of the declared type (a NaN or infinite float is written "
                "as null)",
            ) from exc

    def decode(self, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return self.adapter.validate_json(text)
        except ValidationError as exc:
            raise DefinitionMismatch(
                f"the stored output of step {self.name!r} no longer fits its return type: "
                f"{exc.errors()[0].get('msg', exc)}",
                fix="keep the return type compatible, or bump the workflow version",
            ) from exc


def _return_adapter(workflow: str, name: str, fn: Callable[..., Any]) -> TypeAdapter[Any]:
    """The encoder of the declared return type, refused now if that type has no JSON form.

    Checked at declaration so that such a step never runs its side effects only to fail on
    its result. What the annotation does not pin down (``Any``, ``object``, no annotation,
    ``dict[str, Any]``) can only be checked on the value, once the step has returned.
    """
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        # Annotations naming a type local to a function cannot be resolved; plain JSON works.
        return _ANY_ADAPTER
    annotation = hints.get("return", Any)
    if annotation is None or annotation is type(None):
        return TypeAdapter(type(None))
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        # Building the serialisation schema is the encoder's own test: it fails for types
        # (callables, generators, arbitrary classes) that dump_json cannot write either.
        adapter.json_schema(mode="serialization")
    except (PydanticSchemaGenerationError, PydanticInvalidForJsonSchema) as exc:
        raise ConfigError(
            f"step {name!r} of workflow {workflow!r} declares return type "
            f"{_type_name(annotation)}, which has no JSON form "
            f"({str(exc).strip().splitlines()[0]})",
            fix="return JSON-able data (dict, list, str, numbers, pydantic models or "
            "dataclasses of those); results are checkpointed as JSON",
        ) from exc
    return adapter


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def _check_signature(
    workflow: str, name: str, fn: Callable[..., Any], positional: int, inputs: tuple[str, ...]
) -> None:
    where = f"step {name!r} of workflow {workflow!r}"
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read the signature of {fn!r}") from exc
    leading = [
        p for p in parameters[:positional] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    expected = "(ctx, item, …)" if positional == 2 else "(ctx, …)"
    if len(leading) < positional:
        raise ConfigError(f"{where}: the function must take {expected} positionally")
    rest = parameters[positional:]
    names = {p.name for p in rest if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in rest)
    missing = [dep for dep in inputs if dep not in names and not has_kwargs]
    if missing:
        raise ConfigError(
            f"{where} depends on {', '.join(map(repr, missing))} but its function has no "
            "parameter of that name",
            fix=f"add keyword parameter(s) {', '.join(missing)} to {fn.__name__}()",
        )
    unfilled = [
        p.name
        for p in rest
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
        and p.name not in inputs
    ]
    if unfilled:
        raise ConfigError(
            f"{where}: parameter(s) {', '.join(map(repr, unfilled))} are not dependencies",
            fix="add them to depends_on, give them defaults, or remove them",
        )


class Workflow:
    """A named, versioned DAG of steps.

    ``version`` is yours to bump when the meaning of the steps changes: a run started under one
    version is never resumed by code declaring another. ``timeout`` (seconds from start) fails
    the run at the next step boundary once passed. ``max_attempts`` bounds how many times a
    run may be claimed (each crash and resume is one) before it is declared dead. ``result``
    names the step whose output is the run's result (default: the last declared step).
    Workflows register by name on creation so that ``reclaim runs resume`` can find them.
    """

    def __init__(
        self,
        name: str,
        version: str = "1",
        *,
        input_type: Any = Any,
        timeout: float | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        result: str | None = None,
        register: bool = True,
    ) -> None:
        if not name or not name.strip():
            raise ConfigError("a workflow needs a non-empty name")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"workflow {name!r}: timeout must be positive seconds")
        if max_attempts < 1:
            raise ConfigError(f"workflow {name!r}: max_attempts must be ≥ 1")
        self.name = name
        self.version = str(version)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._result = result
        self._input_adapter: TypeAdapter[Any] = TypeAdapter(input_type)
        self._steps: dict[str, StepSpec] = {}
        self._order: tuple[StepSpec, ...] | None = None
        if register:
            registry.register(self)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, version={self.version!r}, steps={list(self._steps)})"

    # ------------------------------------------------------------ declaring

    @overload
    def step(self, fn: _StepFn, /) -> _StepFn: ...

    @overload
    def step(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        depends_on: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Callable[[_StepFn], _StepFn]: ...

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        depends_on: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Declare a step: ``fn(ctx, **outputs_of_depends_on) -> JSON-able``.

        Usable bare (``@wf.step``) or with options (``@wf.step(depends_on=("a",))``). Without
        ``retry`` a step runs once (``RetryPolicy.never()``).
        """

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            deps = tuple(depends_on)
            self._add(
                StepSpec(
                    name=name or function.__name__,
                    fn=function,
                    kind=StepKind.STEP,
                    depends_on=deps,
                    inputs=deps,
                    retry=retry or RetryPolicy.never(),
                    timeout=timeout,
                    adapter=_return_adapter(self.name, name or function.__name__, function),
                ),
                positional=1,
            )
            return function

        return decorate(fn) if fn is not None else decorate

    def map_step(
        self,
        *,
        over: str,
        key: Callable[[Any], Hashable],
        name: str | None = None,
        depends_on: Iterable[str] = (),
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Callable[[_StepFn], _StepFn]:
        """Declare a map step: ``fn(ctx, item, **outputs_of_depends_on)`` per element of ``over``.

        ``key(element)`` is the item's stable identity (stored as text); duplicates in one list
        are an error. Up to ``concurrency`` items run at once. ``retry``/``timeout`` apply per
        item. The step's output is ``{key: result}`` in the order of the ``over`` list.
        """
        if concurrency < 1:
            raise ConfigError(f"map step over {over!r}: concurrency must be ≥ 1")

        def decorate(function: _StepFn) -> _StepFn:
            inputs = tuple(dep for dep in depends_on if dep != over)
            self._add(
                StepSpec(
                    name=name or function.__name__,
                    fn=function,
                    kind=StepKind.MAP,
                    depends_on=(over, *inputs),
                    inputs=inputs,
                    retry=retry or RetryPolicy.never(),
                    timeout=timeout,
                    adapter=_return_adapter(self.name, name or function.__name__, function),
                    over=over,
                    key=key,
                    concurrency=concurrency,
                ),
                positional=2,
            )
            return function

        return decorate

    def _add(self, spec: StepSpec, *, positional: int) -> None:
        if not spec.name.isidentifier():
            raise ConfigError(
                f"workflow {self.name!r}: step name {spec.name!r} is not a Python identifier",
                fix="step outputs are passed as keyword arguments, so names must be identifiers",
            )
        if spec.name in self._steps:
            raise ConfigError(
                f"workflow {self.name!r} declares step {spec.name!r} twice",
                fix="give each step a unique name (name=...)",
            )
        if spec.timeout is not None and spec.timeout <= 0:
            raise ConfigError(f"step {spec.name!r}: timeout must be positive seconds")
        _check_signature(self.name, spec.name, spec.fn, positional, spec.inputs)
        self._steps[spec.name] = spec
        self._order = None

    # ------------------------------------------------------------- reading

    @property
    def steps(self) -> tuple[StepSpec, ...]:
        """Steps in declaration order."""
        return tuple(self._steps.values())

    def __getitem__(self, name: str) -> StepSpec:
        return self._steps[name]

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def order(self) -> tuple[StepSpec, ...]:
        """Validate and return the steps in topological order (declaration order breaks ties).

        Raises ``ConfigError`` for an empty workflow, an unknown dependency or a cycle.
        """
        if self._order is None:
            self._order = self._validate()
        return self._order

    def _validate(self) -> tuple[StepSpec, ...]:
        if not self._steps:
            raise ConfigError(f"workflow {self.name!r} has no steps")
        for spec in self._steps.values():
            for dep in spec.depends_on:
                if dep not in self._steps:
                    raise ConfigError(
                        f"step {spec.name!r} of workflow {self.name!r} depends on unknown step "
                        f"{dep!r}",
                        fix=f"declare {dep!r} or fix the name; known: {', '.join(self._steps)}",
                    )
                if dep == spec.name:
                    raise ConfigError(f"step {spec.name!r} depends on itself")
        if self._result is not None and self._result not in self._steps:
            raise ConfigError(f"workflow {self.name!r}: result step {self._result!r} is unknown")
        # Kahn's algorithm with a heap on declaration position: O(n log n), deterministic.
        position = {name: index for index, name in enumerate(self._steps)}
        waiting = {name: len(set(spec.depends_on)) for name, spec in self._steps.items()}
        dependents: dict[str, list[str]] = {name: [] for name in self._steps}
        for name, spec in self._steps.items():
            for dep in set(spec.depends_on):
                dependents[dep].append(name)
        ready = [position[name] for name, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        names = list(self._steps)
        ordered: list[StepSpec] = []
        while ready:
            chosen = names[heapq.heappop(ready)]
            ordered.append(self._steps[chosen])
            for dependent in dependents[chosen]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, position[dependent])
        if len(ordered) < len(self._steps):
            blocked = {
                name: {d for d in self._steps[name].depends_on if waiting[d] > 0}
                for name, count in waiting.items()
                if count > 0
            }
            raise ConfigError(
                f"workflow {self.name!r} has a dependency cycle through steps "
                f"{', '.join(map(repr, _cycle(blocked)))}",
                fix="remove one of these dependencies",
            )
        return tuple(ordered)

    @property
    def result_step(self) -> str:
        self.order()
        return self._result or next(reversed(self._steps))

    def definition(self) -> str:
        """Canonical JSON of the step graph, stored with every run."""
        shape = sorted((spec.describe() for spec in self.order()), key=lambda s: s["name"])
        return json.dumps(shape, separators=(",", ":"), sort_keys=True)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.definition().encode()).hexdigest()

    def encode_input(self, value: Any) -> str:
        try:
            return self._input_adapter.dump_json(
                self._input_adapter.validate_python(value)
            ).decode()
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"the input of workflow {self.name!r} is invalid: {exc}",
                fix="pass JSON-able input matching the workflow's input_type",
            ) from exc

    def decode_input(self, text: str) -> Any:
        return self._input_adapter.validate_json(text)

    def check_stored(self, run_id: str, version: str, definition: str) -> None:
        """Fail loudly, naming the step, when a stored run does not match this code."""
        stored = {s["name"]: s for s in json.loads(definition)}
        current = {spec.name: spec.describe() for spec in self.order()}
        problems: list[str] = []
        for step_name, shape in stored.items():
            if step_name not in current:
                problems.append(f"step {step_name!r} is no longer declared")
            elif current[step_name] != shape:
                problems.append(
                    f"step {step_name!r} changed: {_shape(shape)} in the run, "
                    f"{_shape(current[step_name])} in the code"
                )
        problems.extend(f"step {n!r} is new" for n in current if n not in stored)
        if version != self.version or problems:
            head = f"run {run_id} was started by version {version} of workflow {self.name!r}"
            head += f"; the code declares version {self.version}"
            detail = "; ".join(problems) if problems else "the steps look the same"
            raise DefinitionMismatch(
                f"{head}: {detail}",
                fix=f"resume it with the code of version {version}, or cancel it "
                f"(`reclaim runs cancel {run_id}`) and start a new run",
            )


def _shape(shape: Mapping[str, Any]) -> str:
    text = f"{shape['kind']} after {shape['depends_on'] or 'nothing'}"
    return f"{text} over {shape['over']!r}" if shape.get("over") else text


def _cycle(remaining: Mapping[str, set[str]]) -> list[str]:
    # Walk dependencies from any node still blocked; the first repeat closes a cycle.
    start = next(iter(remaining))
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = sorted(remaining[node])[0]
    return [*path[seen[node] :], node]


class WorkflowRegistry:
    """Workflows by name, so a stored run can find the code that continues it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workflows: dict[str, Workflow] = {}

    def register(self, workflow: Workflow) -> None:
        """Add a workflow; a later definition of the same name replaces the earlier one.

        Replacing (rather than refusing) keeps module reloads and test re-imports working;
        the stored version and fingerprint still guard every resume.
        """
        with self._lock:
            self._workflows[workflow.name] = workflow

    def unregister(self, name: str) -> None:
        with self._lock:
            self._workflows.pop(name, None)

    def get(self, name: str) -> Workflow:
        with self._lock:
            workflow = self._workflows.get(name)
            known = sorted(self._workflows)
        if workflow is None:
            raise UnknownWorkflow(
                f"no workflow named {name!r} is registered in this process"
                f" (known: {', '.join(known) or 'none'})",
                fix="import the module that defines it (reclaim runs … --module your.module)",
            )
        return workflow

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._workflows)


registry = WorkflowRegistry()
"""The process-wide registry that ``Workflow(...)`` registers into by default."""
