"""The weekly loop as a durable workflow, on the bundled sample, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import reclaim.pipeline as pipeline
from reclaim.durable import DurableEngine, RunStatus
from reclaim.errors import ExecutionError
from reclaim.pipeline import WeeklyInput, resume_weekly, run_weekly
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def _stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(recommendations)).scalar_one()
        )


def test_two_weeks_on_the_same_data_never_duplicate(migrated: Engine) -> None:
    first = run_weekly(migrated, WeeklyInput(sample=True))
    assert first.collect.new
    assert first.collect.resources > 0
    assert first.recommend.counts["new"] > 0
    assert first.report.open_monthly_savings > 0
    stored = _stored(migrated)
    assert stored == first.recommend.counts["new"]

    second = run_weekly(migrated, WeeklyInput(sample=True))
    assert not second.collect.new
    assert second.recommend.counts["new"] == 0
    assert second.recommend.counts["seen_again"] == first.recommend.counts["new"]
    assert _stored(migrated) == stored
    assert second.report == first.report


def test_a_failed_run_resumes_without_collecting_again(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_recommend = pipeline.recommend
    calls: list[str] = []

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        calls.append("called")
        if len(calls) == 1:
            raise RuntimeError("the process died here")
        return real_recommend(*args, **kwargs)

    collect_calls: list[str] = []
    real_collect_into = pipeline.collect_into

    def counting_collect_into(*args: Any, **kwargs: Any) -> Any:
        collect_calls.append("called")
        return real_collect_into(*args, **kwargs)

    monkeypatch.setattr(pipeline, "recommend", crash_once)
    monkeypatch.setattr(pipeline, "collect_into", counting_collect_into)
    with pytest.raises(Exception, match="the process died here"):
        run_weekly(migrated, WeeklyInput(sample=True))
    durable = DurableEngine(migrated)
    (run,) = durable.list_runs(workflow=pipeline.WEEKLY.name)
    assert run.status is RunStatus.FAILED

    resumed = resume_weekly(migrated, run.id)
    assert collect_calls == ["called"]  # the finished collect step was not run again
    assert len(calls) == 2
    assert resumed.recommend.counts["new"] > 0
    assert durable.get_run(run.id).status is RunStatus.SUCCEEDED


def test_no_files_is_a_clear_error(migrated: Engine) -> None:
    with pytest.raises(ExecutionError, match="no files to collect"):
        run_weekly(migrated, WeeklyInput())


def test_the_evaluate_step_lets_go_of_the_facts_the_rules_have_read(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 1 M resources the facts are 72 columns and ~480 MiB; planning and writing the run
    # need six of them (the realized savings), so the rest must be freed before they start.
    import gc
    import weakref

    from reclaim.recommend import recommender

    loaded: list[weakref.ref[Any]] = []
    loaded_columns: list[str] = []
    real_load = pipeline.load_facts

    def load(*args: Any, **kwargs: Any) -> Any:
        facts = real_load(*args, **kwargs)
        loaded.append(weakref.ref(facts))
        loaded_columns.extend(facts.columns)
        return facts

    real_record = recommender.record_run
    seen: list[tuple[bool, list[str]]] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        seen.append((loaded[0]() is None, list(kwargs["facts"].columns)))
        return real_record(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_facts", load)
    monkeypatch.setattr(recommender, "record_run", record)
    run = run_weekly(migrated, WeeklyInput(sample=True))
    assert run.recommend.counts["new"] > 0
    assert len(seen) == 1
    # Only the columns the run reads were loaded at all (46 of 72 for the built-in pack).
    assert set(loaded_columns) == set(recommender.fact_columns(pipeline.load_pack(None)))
    assert len(loaded_columns) < 72
    freed, columns = seen[0]
    assert freed
    assert set(columns) <= {"resource_id", "account_id", "cost_30d", "cost_7d", "as_of", "in_bill"}
