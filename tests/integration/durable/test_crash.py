"""SIGKILL a process in the middle of a run, resume it, and check what ran.

A finished item never runs again; the item in flight at the kill may run again, but its keyed
side effect happens once. The resume goes through the real command line
(``reclaim runs resume ID --module crashflow``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus, StepStatus, Store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import crashflow  # noqa: E402


def _env(url: str, schema: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["CRASHFLOW_DB"] = url
    if schema:
        env["CRASHFLOW_SCHEMA"] = schema
    return env


def _cli_url(url: str, schema: str | None) -> str:
    if not schema:
        return url
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _executions(engine: Engine) -> dict[str, int]:
    table = crashflow.executions
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.key, sa.func.count()).group_by(table.c.key)
        ).all()
    return {str(key): int(count) for key, count in rows}


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 9, 17])
def test_sigkill_mid_run_then_resume_runs_nothing_twice(
    engine: Engine, database_url: tuple[str, str | None], kill_after: int
) -> None:
    url, schema = database_url
    store = Store(engine)
    store.ensure_schema()
    crashflow.bind(engine)
    run_id = DurableEngine(store).start(crashflow.workflow)
    env = _env(url, schema)

    child = subprocess.Popen(
        [sys.executable, "-m", "crashflow", url, run_id], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while _count(engine, crashflow.executions) < kill_after + 1:  # +1: the prepare step
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.stderr is not None
    child.stderr.close()

    done_before = {
        (s.step, s.item_key) for s in store.load_steps(run_id) if s.status is StepStatus.SUCCEEDED
    }
    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING  # killed: nobody finished it

    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "reclaim",
            "--db",
            _cli_url(url, schema),
            "runs",
            "resume",
            run_id,
            "--module",
            "crashflow",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "succeeded" in resumed.stdout

    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.output == str(crashflow.ITEMS)
    executions = _executions(engine)
    expected_keys = {f"{run_id}/prepare", f"{run_id}/summary"} | {
        f"{run_id}/effect/item-{n:03d}" for n in range(crashflow.ITEMS)
    }
    # Every keyed side effect happened exactly once.
    assert _count(engine, crashflow.effects) == len(expected_keys)
    assert set(executions) == expected_keys
    # A step finished before the kill never ran again; at most the one in flight re-ran.
    for step, item_key in done_before:
        key = f"{run_id}/{step}" + (f"/{item_key}" if item_key else "")
        assert executions[key] == 1, key
    assert sum(executions.values()) <= len(expected_keys) + 1
