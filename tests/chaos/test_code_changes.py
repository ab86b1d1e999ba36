"""A deploy between a crash and the resume: changed code is refused, and nothing runs twice.

A ``reclaim runs resume`` process (forked, like the rest of the chaos suite) is SIGKILLed in
the middle of a map step (right after an item's keyed side effect committed, before its
checkpoint). The code is then changed, as a
deploy would — the map step keys its items by title instead of id, or the step is renamed —
and ``reclaim runs resume`` is run with the new code: it must refuse, naming the step (and, for
the key, the stored and current keys), without running any step. The original code then
resumes the run to the end. Checked: no item that had a checkpoint ran again, every keyed
side effect exists once, and the refused resumes executed nothing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.cli import main
from reclaim.durable import DurableEngine, RunStatus, StepStatus, Store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import codeflow  # noqa: E402


def _resume(
    url: str, run_id: str, tmp: Path, variant: str, kill_after: int | None = None
) -> tuple[int, str]:
    """``reclaim runs resume RUN --module codeflow`` in a forked process with ``variant``'s
    code; its exit code (-9: SIGKILL) and what it printed on stderr.

    Forked rather than spawned: the CLI's imports cost seconds per process on a loaded
    machine. The child imports ``codeflow`` afresh, so it declares the variant's code.
    """
    errors = tmp / f"resume-{variant}-{len(list(tmp.glob('resume-*')))}.err"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            fd = os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            os.environ.update(
                CODEFLOW_DB=url, CODEFLOW_LOG=str(tmp / "executions.log"), COLUMNS="400"
            )
            os.environ["CODEFLOW_VARIANT"] = variant
            os.environ.pop("CODEFLOW_KILL_AFTER", None)
            if kill_after is not None:
                os.environ["CODEFLOW_KILL_AFTER"] = str(kill_after)
            sys.modules.pop("codeflow", None)
            sys.argv = ["reclaim", "--db", url, "runs", "resume", run_id, "-m", "codeflow"]
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), " ".join(errors.read_text().split())


def _executions(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [
        (int(pid), key)
        for pid, key in (line.split(" ", 1) for line in log.read_text().splitlines())
    ]


def _resume_args(database_url: tuple[str, str | None]) -> str:
    url, schema = database_url
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


def test_changed_code_is_refused_after_a_crash_and_the_original_code_finishes_the_run(
    engine: Engine, database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    url = _resume_args(database_url)
    store = Store(engine)
    store.ensure_schema()
    codeflow.tables.create_all(engine)
    durable = DurableEngine(store, workflows=[codeflow.workflow])
    run_id = durable.start(codeflow.workflow)
    log = tmp_path / "executions.log"
    engine.dispose()  # a forked child must not share our pooled connections

    status, printed = _resume(url, run_id, tmp_path, "original", kill_after=3)
    assert status == -signal.SIGKILL, printed
    done_at_kill = {
        record.item_key
        for record in store.load_steps(run_id)
        if record.item_key and record.status is StepStatus.SUCCEEDED
    }
    assert done_at_kill == {"t-0", "t-1"}  # t-2's effect committed, its checkpoint did not
    ran_before = len(_executions(log))

    status, message = _resume(url, run_id, tmp_path, "rekeyed")
    assert status == 2, message  # a ConfigError: one line, no traceback
    assert "Traceback" not in message
    assert "map step 'create'" in message
    assert "'t-0'" in message
    assert "'ticket 0'" in message
    assert len(_executions(log)) == ran_before  # refused before any step ran

    status, message = _resume(url, run_id, tmp_path, "renamed")
    assert status == 2, message
    assert "Traceback" not in message
    assert "step 'create' is no longer declared" in message
    assert "step 'open_ticket' is new" in message
    assert len(_executions(log)) == ran_before

    status, printed = _resume(url, run_id, tmp_path, "original")
    assert status == 0, printed
    run = durable.get_run(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert durable.result(run_id) == codeflow.COUNT

    expected = codeflow.expected_keys(run_id)
    runs_of = Counter(key for _pid, key in _executions(log))
    assert set(runs_of) == set(expected)  # nothing ran under a new key or a new name
    for key, count in runs_of.items():
        in_flight = key == f"{run_id}/create/t-2"
        assert count == (2 if in_flight else 1), f"{key} ran {count} time(s)"
    table = codeflow.effects
    with engine.connect() as connection:
        keys = connection.execute(sa.select(table.c.key).where(table.c.run_id == run_id))
        assert sorted(str(key) for (key,) in keys) == sorted(expected)  # each effect once
