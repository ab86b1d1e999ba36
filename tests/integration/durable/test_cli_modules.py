"""``--module`` finds the same workflows for ``reclaim runs resume`` as for ``reclaim worker``.

Run as a user runs it: the installed ``reclaim`` console script, from the directory that holds
the workflow module, with nothing else on the import path (the script's own directory is what
Python puts first, not the current one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus, StepContext, Store, Workflow
from reclaim.store import upgrade

SCRIPT = Path(sys.executable).parent / "reclaim"

MODULE = """
from reclaim.durable import StepContext, Workflow

flow = Workflow({name!r})


@flow.step()
def hello(ctx: StepContext) -> str:
    return "hello from " + __name__
"""


def _reclaim(
    database_url: tuple[str, str | None], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options=-csearch_path%3D{schema}"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [str(SCRIPT), "--db", url, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Workflow]:
    """A directory with ``cwdflows.py``, and the same workflow declared in this process."""
    if not SCRIPT.exists():
        pytest.skip(f"the reclaim console script is not installed beside {sys.executable}")
    name = f"cwd-{uuid.uuid4().hex[:8]}"
    (tmp_path / "cwdflows.py").write_text(MODULE.format(name=name))
    twin = Workflow(name, register=False)

    @twin.step()
    def hello(ctx: StepContext) -> str:
        raise AssertionError("the run must be driven by the CLI process")

    return tmp_path, twin


def test_runs_resume_imports_a_module_from_the_current_directory(
    engine: Engine, database_url: tuple[str, str | None], project: tuple[Path, Workflow]
) -> None:
    upgrade(engine)
    directory, flow = project
    durable = DurableEngine(Store(engine), workflows=[flow])
    run_id = durable.start(flow)
    resumed = _reclaim(database_url, directory, "runs", "resume", run_id, "--module", "cwdflows")
    assert resumed.returncode == 0, resumed.stderr
    assert durable.get_run(run_id).status is RunStatus.SUCCEEDED
    assert durable.result(run_id) == "hello from cwdflows"


def test_worker_imports_the_same_module_the_same_way(
    engine: Engine, database_url: tuple[str, str | None], project: tuple[Path, Workflow]
) -> None:
    upgrade(engine)
    directory, flow = project
    durable = DurableEngine(Store(engine), workflows=[flow])
    run_id = durable.start(flow)
    worked = _reclaim(
        database_url,
        directory,
        *("worker", "--module", "cwdflows", "--until-idle", "--no-schedules", "--poll", "0.05"),
        *("--lease", "1"),
    )
    assert worked.returncode == 0, worked.stderr
    assert durable.get_run(run_id).status is RunStatus.SUCCEEDED


def test_a_module_that_does_not_parse_is_one_line_naming_file_and_line(
    engine: Engine, database_url: tuple[str, str | None], project: tuple[Path, Workflow]
) -> None:
    upgrade(engine)
    directory, _flow = project
    (directory / "broken.py").write_text("x = 1\ndef oops(:\n")
    resumed = _reclaim(database_url, directory, "runs", "resume", "any", "--module", "broken")
    assert resumed.returncode != 0
    assert "Traceback" not in resumed.stderr
    assert "broken.py:2" in resumed.stderr
