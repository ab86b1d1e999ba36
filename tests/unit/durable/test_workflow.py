"""Workflow definitions are validated when built, and name the steps at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reclaim.durable import (
    DefinitionMismatch,
    StepContext,
    UnknownWorkflow,
    Workflow,
    WorkflowRegistry,
)
from reclaim.errors import ConfigError


def _wf(name: str = "wf", version: str = "1") -> Workflow:
    return Workflow(name, version=version, register=False)


def test_unknown_dependency_names_both_steps() -> None:
    wf = _wf()

    @wf.step(depends_on=("colect",))
    def evaluate(ctx: StepContext, colect: Any) -> None: ...

    with pytest.raises(ConfigError, match=r"'evaluate'.*unknown step 'colect'"):
        wf.order()


def test_cycle_names_the_steps_in_it() -> None:
    wf = _wf()

    @wf.step()
    def start(ctx: StepContext) -> None: ...

    @wf.step(depends_on=("c",))
    def b(ctx: StepContext, c: Any) -> None: ...

    @wf.step(depends_on=("b", "start"))
    def c(ctx: StepContext, b: Any, start: Any) -> None: ...

    with pytest.raises(ConfigError, match="cycle") as caught:
        wf.order()
    assert "'b'" in str(caught.value)
    assert "'c'" in str(caught.value)
    assert "'start'" not in str(caught.value)


def test_duplicate_step_name_is_refused_at_declaration() -> None:
    wf = _wf()

    @wf.step()
    def collect(ctx: StepContext) -> None: ...

    with pytest.raises(ConfigError, match="'collect' twice"):

        @wf.step(name="collect")
        def other(ctx: StepContext) -> None: ...


def test_dependency_without_a_parameter_is_refused() -> None:
    wf = _wf()

    @wf.step()
    def collect(ctx: StepContext) -> None: ...

    with pytest.raises(ConfigError, match="no parameter"):

        @wf.step(depends_on=("collect",))
        def evaluate(ctx: StepContext) -> None: ...


def test_parameter_that_is_not_a_dependency_is_refused() -> None:
    wf = _wf()
    with pytest.raises(ConfigError, match="'extra'"):

        @wf.step()
        def evaluate(ctx: StepContext, extra: int) -> None: ...


def test_kwargs_accepts_any_dependency() -> None:
    wf = _wf()

    @wf.step()
    def a(ctx: StepContext) -> int:
        return 1

    @wf.step(depends_on=("a",))
    def b(ctx: StepContext, **outputs: Any) -> int:
        return 2

    assert [s.name for s in wf.order()] == ["a", "b"]


def test_topological_order_breaks_ties_by_declaration() -> None:
    wf = _wf()

    @wf.step(depends_on=("z_source",))
    def late(ctx: StepContext, z_source: Any) -> None: ...

    @wf.step()
    def z_source(ctx: StepContext) -> None: ...

    @wf.step()
    def a_other(ctx: StepContext) -> None: ...

    assert [s.name for s in wf.order()] == ["z_source", "late", "a_other"]


def test_map_step_takes_ctx_and_item() -> None:
    wf = _wf()

    @wf.step()
    def items(ctx: StepContext) -> list[int]:
        return [1]

    with pytest.raises(ConfigError, match="ctx, item"):

        @wf.map_step(over="items", key=str)
        def bad(ctx: StepContext) -> None: ...


def test_fingerprint_ignores_declaration_order_but_not_dependencies() -> None:
    def build(order: list[str], b_deps: tuple[str, ...]) -> Workflow:
        wf = _wf()
        for name in order:
            if name == "a":
                wf.step(name="a")(lambda ctx: 1)
            else:
                wf.step(name="b", depends_on=b_deps)(lambda ctx, **kw: 2)
        return wf

    assert build(["a", "b"], ()).fingerprint() == build(["b", "a"], ()).fingerprint()
    assert build(["a", "b"], ()).fingerprint() != build(["a", "b"], ("a",)).fingerprint()


def test_stored_definition_mismatch_names_the_step() -> None:
    old = _wf(version="1")
    old.step(name="collect")(lambda ctx: 1)
    old.step(name="evaluate", depends_on=("collect",))(lambda ctx, collect: 2)
    stored = old.definition()

    new = _wf(version="1")
    new.step(name="collect")(lambda ctx: 1)
    new.step(name="score", depends_on=("collect",))(lambda ctx, collect: 2)
    with pytest.raises(DefinitionMismatch, match="'evaluate' is no longer declared") as caught:
        new.check_stored("run-1", "1", stored)
    assert "'score' is new" in str(caught.value)

    bumped = _wf(version="2")
    bumped.step(name="collect")(lambda ctx: 1)
    bumped.step(name="evaluate", depends_on=("collect",))(lambda ctx, collect: 2)
    with pytest.raises(DefinitionMismatch, match=r"version 1 .* version 2"):
        bumped.check_stored("run-1", "1", stored)
    old.check_stored("run-1", "1", stored)  # the same code resumes fine


def test_definition_is_canonical_json() -> None:
    wf = _wf()
    wf.step(name="a")(lambda ctx: 1)
    shape = json.loads(wf.definition())
    assert shape == [{"name": "a", "kind": "step", "depends_on": [], "over": None}]


def test_result_step_defaults_to_the_last_declared() -> None:
    wf = _wf()
    wf.step(name="a")(lambda ctx: 1)
    wf.step(name="b")(lambda ctx: 2)
    assert wf.result_step == "b"
    chosen = Workflow("r", result="a", register=False)
    chosen.step(name="a")(lambda ctx: 1)
    chosen.step(name="b")(lambda ctx: 2)
    assert chosen.result_step == "a"


def test_registry_finds_by_name_and_explains_unknown() -> None:
    reg = WorkflowRegistry()
    wf = _wf("weekly")
    reg.register(wf)
    assert reg.get("weekly") is wf
    with pytest.raises(UnknownWorkflow, match=r"'monthly'.*known: weekly"):
        reg.get("monthly")


def test_step_names_must_be_identifiers() -> None:
    wf = _wf()
    with pytest.raises(ConfigError, match="identifier"):
        wf.step(name="not valid")(lambda ctx: 1)


def test_empty_workflow_is_refused() -> None:
    with pytest.raises(ConfigError, match="no steps"):
        _wf().order()
