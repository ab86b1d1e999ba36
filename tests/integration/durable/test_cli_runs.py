"""``reclaim runs …`` as a user runs it: a subprocess, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus, StepContext, StepFailed, Store, Workflow
from reclaim.store import upgrade

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import concurrencyflow  # noqa: E402
import crashflow  # noqa: E402


def _cli(database_url: tuple[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options=-csearch_path%3D{schema}"
    env = {
        **os.environ,
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "CRASHFLOW_DB": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", url, "runs", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_list_show_cancel_and_resume(engine: Engine, database_url: tuple[str, str | None]) -> None:
    upgrade(engine)  # the application path: tables come from the migrations
    crashflow.bind(engine)
    durable = DurableEngine(Store(engine))
    durable.run_workflow(crashflow.workflow, run_id="done-1")
    durable.start(crashflow.workflow, run_id="later-1")

    listed = _cli(database_url, "list")
    assert listed.returncode == 0, listed.stderr
    assert "done-1" in listed.stdout
    assert "succeeded" in listed.stdout
    assert "later-1" in listed.stdout

    shown = _cli(database_url, "show", "done-1")
    assert shown.returncode == 0, shown.stderr
    for text in ("prepare", "effect", "24 item(s)", "24 succeeded", "summary"):
        assert text in shown.stdout
    items = _cli(database_url, "show", "done-1", "--items")
    assert "item-023" in items.stdout

    cancelled = _cli(database_url, "cancel", "later-1")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    assert durable.get_run("later-1").status is RunStatus.CANCELLED

    no_module = _cli(database_url, "resume", "later-1")
    assert no_module.returncode == 2
    assert "--module" in no_module.stderr
    assert durable.get_run("later-1").status is RunStatus.CANCELLED  # untouched

    resumed = _cli(database_url, "resume", "later-1", "--module", "crashflow")
    assert resumed.returncode == 0, resumed.stderr
    assert durable.get_run("later-1").status is RunStatus.SUCCEEDED


def test_unknown_run_is_a_one_line_error(
    engine: Engine, database_url: tuple[str, str | None]
) -> None:
    upgrade(engine)
    shown = _cli(database_url, "show", "nope")
    assert shown.returncode == 1
    assert "no run has id 'nope'" in shown.stderr


def test_missing_tables_say_to_upgrade(database_url: tuple[str, str | None]) -> None:
    shown = _cli(database_url, "list")
    assert shown.returncode == 2
    assert "reclaim db upgrade" in shown.stderr


def test_failed_run_shows_its_error(engine: Engine, database_url: tuple[str, str | None]) -> None:
    upgrade(engine)
    wf = Workflow("cli-fails", register=False)

    @wf.step()
    def broken(ctx: StepContext) -> int:
        raise ValueError("the billing file is empty")

    durable = DurableEngine(Store(engine), workflows=[wf])
    run_id = durable.start(wf, run_id="bad-1")
    with pytest.raises(StepFailed):
        durable.run(run_id)
    shown = _cli(database_url, "show", "bad-1")
    assert "failed" in shown.stdout
    assert "the billing file is empty" in shown.stdout


def test_resume_takes_an_item_concurrency(
    engine: Engine, database_url: tuple[str, str | None]
) -> None:
    upgrade(engine)
    durable = DurableEngine(Store(engine))
    durable.start(concurrencyflow.workflow, run_id="one-at-a-time")
    durable.start(concurrencyflow.workflow, run_id="as-declared")

    resumed = _cli(
        database_url,
        "resume",
        "one-at-a-time",
        "--module",
        "concurrencyflow",
        "--item-concurrency",
        "1",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert durable.result("one-at-a-time") == 1

    refused = _cli(database_url, "resume", "as-declared", "--item-concurrency", "0")
    assert refused.returncode == 2
    assert durable.get_run("as-declared").status is RunStatus.PENDING
