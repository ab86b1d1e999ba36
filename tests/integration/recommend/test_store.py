"""The store on SQLite and PostgreSQL: runs write in bulk, never duplicate, keep the lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.errors import ConfigError
from reclaim.recommend.fingerprint import fingerprint
from reclaim.recommend.lifecycle import Event, LifecycleError, Status
from reclaim.recommend.recommender import record_run
from reclaim.recommend.reconcile import MATCH_COLUMNS, Scope
from reclaim.recommend.store import RecommendationStore
from reclaim.store import upgrade
from reclaim.store.tables.recommend import observations, recommendations

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
SCOPE = Scope(frozenset({"idle-vm", "old-snapshot"}))


def matches(*items: tuple[str, str, str | None, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "fingerprint": fingerprint(rule, resource, account),
                "rule_id": rule,
                "resource_id": resource,
                "account_id": account,
                "resource_name": f"name of {resource}",
                "kind": "vm",
                "owner": "team-a",
                "title": f"Stop {resource}",
                "monthly_savings": savings,
                "savings_method": "30-day actual",
                "cost_30d": savings * 2,
                "currency": "USD",
                "params": '{"type":"stop","note":"a \\"quoted\\", comma"}',
            }
            for rule, resource, account, savings in items
        ],
        schema={**MATCH_COLUMNS},
    )


@pytest.fixture
def store(engine: Engine) -> RecommendationStore:
    upgrade(engine)
    return RecommendationStore(engine)


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_run_stores_recommendations_with_exact_money(store: RecommendationStore) -> None:
    result = record_run(
        store,
        matches(("idle-vm", "i-1", "111", 12.345678), ("idle-vm", "i-2", None, 7.5)),
        scope=SCOPE,
        run_id="run-1",
        now=T0,
    )
    assert result.run.new == 2
    assert result.run.monthly_savings == Decimal("19.8457")
    rec = store.get(fingerprint("idle-vm", "i-1", "111"))
    assert rec is not None
    assert rec.status is Status.OPEN
    assert rec.monthly_savings == Decimal("12.3457")
    assert isinstance(rec.monthly_savings, Decimal)
    assert rec.params == {"type": "stop", "note": 'a "quoted", comma'}
    assert rec.first_seen == T0
    assert rec.last_seen == T0
    assert rec.times_seen == 1
    assert rec.owner == "team-a"
    assert store.get(fingerprint("idle-vm", "i-2", None)) is not None
    [obs] = store.observations(rec.id)
    assert obs.run_id == "run-1"
    assert obs.cost_30d == Decimal("24.6914")


def test_seen_again_updates_the_same_row(store: RecommendationStore, engine: Engine) -> None:
    record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1", now=T0)
    later = T0 + timedelta(days=7)
    second = record_run(
        store, matches(("idle-vm", "i-1", "111", 11.0)), scope=SCOPE, run_id="r2", now=later
    )
    assert second.run.seen_again == 1
    assert second.run.new == 0
    assert count(engine, recommendations) == 1
    assert count(engine, observations) == 2
    rec = store.get(fingerprint("idle-vm", "i-1", "111"))
    assert rec is not None
    assert rec.times_seen == 2
    assert rec.first_seen == T0
    assert rec.last_seen == later
    assert rec.monthly_savings == Decimal("11.0000")
    assert [o.monthly_savings for o in store.observations(rec.id)] == [
        Decimal("10.0000"),
        Decimal("11.0000"),
    ]


def test_rerunning_a_recorded_run_adds_nothing(store: RecommendationStore, engine: Engine) -> None:
    first = record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1")
    again = record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1")
    assert again.already_recorded
    assert again.run == first.run
    assert count(engine, observations) == 1
    rec = store.get(fingerprint("idle-vm", "i-1", "111"))
    assert rec is not None
    assert rec.times_seen == 1


def test_lifecycle_through_runs_and_ticket_events(store: RecommendationStore) -> None:
    key = fingerprint("idle-vm", "i-1", "111")
    one = matches(("idle-vm", "i-1", "111", 10.0))
    record_run(store, one, scope=SCOPE, run_id="r1", now=T0)
    store.apply_event(key, Event.TICKET_CREATED, now=T0)
    store.apply_event(key, Event.TICKET_DONE, now=T0 + timedelta(days=1))
    # The team said done, but the VM is still idle: reopened, never a second row.
    run2 = record_run(store, one, scope=SCOPE, run_id="r2", now=T0 + timedelta(days=7))
    assert run2.run.reopened == 1
    rec = store.get(key)
    assert rec is not None
    assert rec.status is Status.REOPENED
    assert rec.ticket_done_at is None
    store.apply_event(key, Event.TICKET_REOPENED, now=T0 + timedelta(days=8))
    store.apply_event(key, Event.TICKET_DONE, now=T0 + timedelta(days=9))
    run3 = record_run(store, matches(), scope=SCOPE, run_id="r3", now=T0 + timedelta(days=14))
    assert run3.run.implemented == 1
    rec = store.get(key)
    assert rec is not None
    assert rec.status is Status.IMPLEMENTED
    assert rec.implemented_at == T0 + timedelta(days=14)
    assert rec.times_seen == 2


def test_gone_open_recommendation_resolves_and_dismissed_stays_snoozed(
    store: RecommendationStore,
) -> None:
    record_run(
        store,
        matches(("idle-vm", "i-1", "111", 10.0), ("idle-vm", "i-2", "111", 5.0)),
        scope=SCOPE,
        run_id="r1",
        now=T0,
    )
    dismissed = fingerprint("idle-vm", "i-2", "111")
    store.apply_event(dismissed, Event.DISMISS, now=T0, snooze=timedelta(days=30))
    result = record_run(
        store,
        matches(("idle-vm", "i-2", "111", 5.0)),
        scope=SCOPE,
        run_id="r2",
        now=T0 + timedelta(days=7),
    )
    assert result.run.resolved == 1
    assert result.run.snoozed == 1
    gone = store.get(fingerprint("idle-vm", "i-1", "111"))
    assert gone is not None
    assert gone.status is Status.RESOLVED
    assert gone.resolved_at == T0 + timedelta(days=7)
    snoozed = store.get(dismissed)
    assert snoozed is not None
    assert snoozed.status is Status.DISMISSED
    assert snoozed.times_seen == 2
    after = record_run(
        store,
        matches(("idle-vm", "i-2", "111", 5.0)),
        scope=SCOPE,
        run_id="r3",
        now=T0 + timedelta(days=31),
    )
    assert after.run.reopened == 1
    assert [r.status for r in store.find(statuses=[Status.REOPENED])] == [Status.REOPENED]


def test_out_of_scope_accounts_are_left_alone(store: RecommendationStore) -> None:
    record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1", now=T0)
    other = Scope(SCOPE.rule_ids, frozenset({"222"}))
    result = record_run(store, matches(), scope=other, run_id="r2", now=T0)
    assert result.run.resolved == 0
    rec = store.get(fingerprint("idle-vm", "i-1", "111"))
    assert rec is not None
    assert rec.status is Status.OPEN


def test_a_concurrent_status_change_wins_over_a_stale_plan(store: RecommendationStore) -> None:
    from reclaim.recommend.reconcile import plan_reconcile
    from reclaim.recommend.records import RunRecord

    key = fingerprint("idle-vm", "i-1", "111")
    record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1", now=T0)
    with store.engine.connect() as connection:
        stale = store.load_stored(connection, sorted(SCOPE.rule_ids))
    store.apply_event(key, Event.TICKET_CREATED, now=T0)  # the sync moved it meanwhile
    plan = plan_reconcile(stale, matches(), scope=SCOPE, now=T0 + timedelta(days=1))
    run = RunRecord("r2", T0, T0, None, "", "", 0, 0, 0, 0, 0, 0, 1, 0, 0, Decimal(0))
    with store.run_transaction() as connection:
        written = store.write_plan(connection, plan, run=run)
    assert written.conflicts == 1
    rec = store.get(key)
    assert rec is not None
    assert rec.status is Status.TICKETED


def test_a_new_row_stored_meanwhile_is_a_conflict_and_a_duplicate_is_stored_once(
    store: RecommendationStore,
) -> None:
    # Into an empty table the new rows are inserted without ON CONFLICT (SQLite); a plan made
    # before another run stored one of its fingerprints, or holding one twice, must still
    # store each fingerprint once and count the rest as conflicts.
    from reclaim.recommend.reconcile import ReconcilePlan, empty_stored, plan_reconcile
    from reclaim.recommend.records import RunRecord

    week = [("idle-vm", f"i-{n}", "111", float(n)) for n in range(1, 4)]
    stale = plan_reconcile(empty_stored(), matches(*week), scope=SCOPE, now=T0)
    record_run(store, matches(week[1]), scope=SCOPE, run_id="r1", now=T0)
    run = RunRecord("r2", T0, T0, None, "", "", 0, 3, 3, 0, 0, 0, 0, 0, 0, Decimal(0))
    with store.run_transaction() as connection:
        written = store.write_plan(connection, stale, run=run)
    assert written.conflicts == 1
    assert count(store.engine, recommendations) == 3
    assert count(store.engine, observations) == 3
    rec = store.get(fingerprint("idle-vm", "i-2", "111"))
    assert rec is not None
    assert (rec.last_run_id, rec.times_seen) == ("r1", 1)

    fresh = RecommendationStore(store.engine)
    with fresh.engine.begin() as connection:
        connection.execute(observations.delete())
        connection.execute(recommendations.delete())
    twice = plan_reconcile(empty_stored(), matches(*week), scope=SCOPE, now=T0)
    doubled = ReconcilePlan(pl.concat([twice.rows, twice.rows.slice(0, 1)]), twice.now)
    run = RunRecord("r3", T0, T0, None, "", "", 0, 4, 4, 0, 0, 0, 0, 0, 0, Decimal(0))
    if store.backend.value != "sqlite":
        # One upsert of the whole stage, which refuses a fingerprint twice, as it always did.
        refused = pytest.raises(sa.exc.ProgrammingError, match="cannot affect row a second time")
        with refused, fresh.run_transaction() as connection:
            fresh.write_plan(connection, doubled, run=run)
        return
    with fresh.run_transaction() as connection:
        written = fresh.write_plan(connection, doubled, run=run)
    assert written.conflicts == 1
    assert count(store.engine, recommendations) == 3
    assert count(store.engine, observations) == 3


def test_invalid_and_unknown_events(store: RecommendationStore) -> None:
    record_run(store, matches(("idle-vm", "i-1", "111", 10.0)), scope=SCOPE, run_id="r1", now=T0)
    with pytest.raises(LifecycleError):
        store.apply_event(fingerprint("idle-vm", "i-1", "111"), Event.TICKET_DONE)
    with pytest.raises(ConfigError, match="no recommendation"):
        store.apply_event(999_999, Event.TICKET_CREATED)
    with pytest.raises(ConfigError, match="runs only"):
        store.apply_event(1, Event.SEEN)


def test_counts_by_status(store: RecommendationStore) -> None:
    record_run(
        store,
        matches(("idle-vm", "i-1", "111", 10.0), ("old-snapshot", "s-1", "111", 2.5)),
        scope=SCOPE,
        run_id="r1",
        now=T0,
    )
    assert store.count_by_status() == {Status.OPEN: (2, Decimal("12.50"))}
    assert [r.resource_id for r in store.find(limit=1)] == ["i-1"]
    assert [r.resource_id for r in store.find(rule_id="old-snapshot")] == ["s-1"]


def test_concurrent_runs_serialize_and_never_duplicate(store: RecommendationStore) -> None:
    import threading

    keys = [("idle-vm", f"i-{n}", "111", 1.0) for n in range(200)]
    errors: list[BaseException] = []

    def run(run_id: str) -> None:
        try:
            record_run(store, matches(*keys), scope=SCOPE, run_id=run_id, now=T0)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(store.engine, recommendations) == 200
    assert count(store.engine, observations) == 800
    assert {r.times_seen for r in store.find(limit=None)} == {4}
    assert sorted(run.new for run in store.runs()) == [0, 0, 0, 200]


def test_a_page_of_find_is_the_same_rows_in_the_same_order(store: RecommendationStore) -> None:
    savings = [5.0, 9.0, 5.0, 3.0, 9.0, 1.0, 5.0]
    record_run(
        store,
        matches(*(("idle-vm", f"i-{n}", "111", value) for n, value in enumerate(savings))),
        scope=SCOPE,
        run_id="r1",
        now=T0,
    )
    everything = [r.id for r in store.find(limit=None)]
    assert len(everything) == len(savings)
    for offset in range(len(savings)):
        for limit in (1, 2, 3):
            page = [r.id for r in store.find(limit=limit, offset=offset)]
            assert page == everything[offset : offset + limit]
    open_page = [r.id for r in store.find(statuses=[Status.OPEN], limit=3, offset=2)]
    assert open_page == everything[2:5]


def test_a_limited_find_reads_only_the_rows_of_its_page(tmp_path: Path) -> None:
    # Saving descending then id ascending: no index gives that order, so the plain query read
    # every matching row (JSON and all) into a sort to keep ten thousand; the select step of
    # the weekly loop did that over every open recommendation. The page's ids come from the
    # (status, saving, id) index alone, and only those rows are read.
    from reclaim.database import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    store = RecommendationStore(engine)
    record_run(
        store,
        matches(*(("idle-vm", f"i-{n}", "111", float(n % 7)) for n in range(50))),
        scope=SCOPE,
        run_id="r1",
        now=T0,
    )
    statements: list[tuple[str, object]] = []

    def remember(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "recommendations" in sql:
            statements.append((sql, params))

    sa.event.listen(engine, "before_cursor_execute", remember)
    found = store.find(statuses=[Status.OPEN], limit=10)
    sa.event.remove(engine, "before_cursor_execute", remember)
    assert [r.monthly_savings for r in found] == [Decimal("6.0000")] * 7 + [Decimal("5.0000")] * 3
    assert statements
    with engine.connect() as connection:
        for sql, params in statements:
            plan = [
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)  # type: ignore[arg-type]
            ]
            reads = [line for line in plan if "recommendations" in line]
            # Every read of the table is by its key (the page's rows) or from an index alone.
            assert all("PRIMARY KEY" in line or "COVERING INDEX" in line for line in reads), plan
    engine.dispose()


def test_a_plan_is_written_a_batch_at_a_time_with_the_same_outcome(
    store: RecommendationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staged whole, the 915,000 rows of a 1 M-resource run held ~0.5 GiB in SQLite's in-memory
    # temporary database; they now go through the stage a batch at a time, in one transaction.
    from reclaim.recommend import store as store_module

    staged: list[int] = []
    load_stage = store_module.RecommendationStore._load_stage

    def spy(self: RecommendationStore, connection: object, rows: pl.DataFrame) -> None:
        staged.append(rows.height)
        load_stage(self, connection, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "STAGE_BATCH", 2)
    monkeypatch.setattr(store_module.RecommendationStore, "_load_stage", spy)
    week1 = [("idle-vm", f"i-{n}", "111", float(n)) for n in range(1, 6)]
    first = record_run(store, matches(*week1), scope=SCOPE, run_id="r1", now=T0)
    # On SQLite new rows are inserted without the stage (see the test below).
    sqlite = store.engine.dialect.name == "sqlite"
    assert staged == ([] if sqlite else [2, 2, 1])
    assert (first.run.new, first.run.conflicts) == (5, 0)
    # Ids go largest saving first across the batches, as when the plan was staged in one go.
    by_id = sorted(store.find(limit=None), key=lambda record: record.id)
    assert [record.resource_id for record in by_id] == [f"i-{n}" for n in range(5, 0, -1)]
    # The sync moves i-5 meanwhile: the stale plan's row for it (staged with the new i-6) is a
    # conflict; the gone i-1 and i-2 (the last batch) are resolved; i-6 is new.
    with store.engine.connect() as connection:
        stale = store.load_stored(connection, sorted(SCOPE.rule_ids))
    store.apply_event(fingerprint("idle-vm", "i-5", "111"), Event.TICKET_CREATED, now=T0)
    from reclaim.recommend.reconcile import plan_reconcile
    from reclaim.recommend.records import RunRecord

    week2 = [*week1[2:], ("idle-vm", "i-6", "111", 6.0)]
    plan = plan_reconcile(stale, matches(*week2), scope=SCOPE, now=T0 + timedelta(days=7))
    run = RunRecord("r2", T0, T0, None, "", "", 0, 4, 1, 3, 0, 0, 2, 0, 0, Decimal(0))
    staged.clear()
    with store.run_transaction() as connection:
        written = store.write_plan(connection, plan, run=run)
    assert staged == ([2, 2, 1] if sqlite else [2, 2, 2])
    assert written.conflicts == 1
    statuses = {record.resource_id: record.status for record in store.find(limit=None)}
    assert statuses == {
        "i-1": Status.RESOLVED,
        "i-2": Status.RESOLVED,
        "i-3": Status.OPEN,
        "i-4": Status.OPEN,
        "i-5": Status.TICKETED,
        "i-6": Status.OPEN,
    }
    # One observation per row each run saw and wrote: 5 in the first, 3 in the second.
    assert count(store.engine, observations) == 8


def _dump(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(recommendations).order_by(recommendations.c.id))
        seen = connection.execute(
            sa.select(observations).order_by(
                observations.c.recommendation_id, observations.c.run_id
            )
        )
        return [tuple(row) for row in rows], [tuple(row) for row in seen]


def test_new_rows_skip_the_stage_on_sqlite_and_are_stored_as_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first run's rows are all new: staged, each was bound value by value into the stage,
    # copied by an upsert, and its observation found by fingerprint. They are now inserted
    # straight into the table with their observations read back by id; every column of every
    # row and observation must be what the stage wrote, ids included.
    from reclaim.database import create_engine
    from reclaim.recommend import store as store_module

    staged: list[int] = []
    load_stage = store_module.RecommendationStore._load_stage

    def spy(self: RecommendationStore, connection: object, rows: pl.DataFrame) -> None:
        staged.append(int(rows.select(pl.col("id").is_null().sum()).item()))
        load_stage(self, connection, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "STAGE_BATCH", 3)
    monkeypatch.setattr(store_module.RecommendationStore, "_load_stage", spy)
    week1 = [
        *(("idle-vm", f"i-{n}", "111", float(n % 4) + 0.12345) for n in range(1, 9)),
        ("old-snapshot", "snap-1", None, 0.0),
        ("idle-vm", "i-o'hara", "222", 3.5),
    ]
    week2 = [*week1[3:], ("idle-vm", "i-9", "111", 9.0), ("old-snapshot", "snap-2", "111", 1.0)]
    dumps = []
    for name, direct in (("direct", True), ("staged", False)):
        if not direct:
            monkeypatch.setattr(
                store_module.RecommendationStore, "_insert_new", lambda *_args: (0, 0)
            )
        engine = create_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        store = RecommendationStore(engine)
        staged.clear()
        first = record_run(store, matches(*week1), scope=SCOPE, run_id="r'1", now=T0)
        assert (first.run.new, first.run.conflicts) == (10, 0)
        # The stage saw no new row of the first run, and only the stored ones of the second.
        assert sum(staged) == (0 if direct else 10)
        staged.clear()
        week = record_run(
            store, matches(*week2), scope=SCOPE, run_id="r2", now=T0 + timedelta(days=7)
        )
        assert (week.run.new, week.run.seen_again, week.run.resolved) == (2, 7, 3)
        assert sum(staged) == (0 if direct else 2)
        dumps.append(_dump(engine))
        engine.dispose()
    assert dumps[0] == dumps[1]
    assert (len(dumps[0][0]), len(dumps[0][1])) == (12, 19)


def test_a_row_seen_again_as_it_was_leaves_its_indexed_columns_alone(
    store: RecommendationStore, engine: Engine
) -> None:
    # Seen again unchanged (nearly every row of a weekly run), the row's sightings move and no
    # column of the six secondary indexes is written, so SQLite does not rewrite their entries:
    # the upsert rewrote ~10 M index entries at 1 M resources to change nothing. A trigger "OF"
    # the indexed columns fires whenever an UPDATE writes one of them, changed or not.
    if store.backend.value != "sqlite":
        pytest.skip("PostgreSQL writes new index entries for any update of a row")
    week = [("idle-vm", f"i-{n}", "111", float(n)) for n in range(1, 5)]
    record_run(store, matches(*week), scope=SCOPE, run_id="r1", now=T0)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE index_writes (id INTEGER)"))
        connection.execute(
            sa.text(
                "CREATE TRIGGER count_index_writes AFTER UPDATE OF status, monthly_savings, "
                "owner, account_id, rule_id, first_seen ON recommendations "
                "BEGIN INSERT INTO index_writes VALUES (new.id); END"
            )
        )
    store.apply_event(fingerprint("idle-vm", "i-4", "111"), Event.TICKET_CREATED, now=T0)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM index_writes"))
    later = T0 + timedelta(days=7)
    # i-1 as it was; i-2's saving moved; i-3 as it was; i-4 as it was but ticketed meanwhile.
    week2 = [week[0], ("idle-vm", "i-2", "111", 2.5), week[2], week[3]]
    second = record_run(store, matches(*week2), scope=SCOPE, run_id="r2", now=later)
    assert (second.run.seen_again, second.run.conflicts) == (4, 0)
    with engine.connect() as connection:
        written = connection.execute(sa.text("SELECT id FROM index_writes")).scalars().all()
    assert [store.get(i).resource_id for i in written] == ["i-2"]  # type: ignore[union-attr]
    for n, savings in ((1, "1.0000"), (2, "2.5000"), (3, "3.0000"), (4, "4.0000")):
        rec = store.get(fingerprint("idle-vm", f"i-{n}", "111"))
        assert rec is not None
        assert (rec.times_seen, rec.last_seen, rec.last_run_id) == (2, later, "r2")
        assert rec.monthly_savings == Decimal(savings)
        assert rec.status is (Status.TICKETED if n == 4 else Status.OPEN)
        assert len(store.observations(rec.id)) == 2


def test_marking_many_decides_each_distinct_state_once(
    store: RecommendationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of tickets marks its recommendations ticketed: rows in the same state get the
    same transition, so it is decided once per state, not once per row; rows in a state the
    event cannot happen to are skipped and left as they are."""
    import reclaim.recommend.store as store_module

    run = matches(*[("idle-vm", f"i-{n}", "111", 10.0 + n) for n in range(12)])
    record_run(store, run, scope=SCOPE, run_id="r1", now=T0)
    records = {r.resource_id: r for r in store.find(statuses=list(Status), limit=None)}
    store.apply_event(records["i-0"].fingerprint, Event.DISMISS, now=T0, snooze=timedelta(days=90))
    store.apply_event(records["i-1"].fingerprint, Event.TICKET_CREATED, now=T0)
    decided = []
    values_after = store_module._values_after

    def counted(*args: object) -> object:
        decided.append(args[0])
        return values_after(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_values_after", counted)
    later = T0 + timedelta(hours=1)
    skipped = store.apply_event_to_many(
        [r.id for r in records.values()], Event.TICKET_CREATED, now=later
    )

    # Open (10 rows), dismissed and ticketed: three states, three decisions.
    assert len(decided) == 3
    assert skipped == sorted([records["i-0"].id, records["i-1"].id])
    after = {r.resource_id: r for r in store.find(statuses=list(Status), limit=None)}
    assert after["i-0"].status is Status.DISMISSED
    assert after["i-1"].status is Status.TICKETED
    assert after["i-1"].ticketed_at == T0
    for n in range(2, 12):
        assert after[f"i-{n}"].status is Status.TICKETED
        assert after[f"i-{n}"].ticketed_at == later
        assert after[f"i-{n}"].version == records[f"i-{n}"].version + 1


def _indexes(database: Path) -> dict[str, str | None]:
    import sqlite3

    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'recommendations' ORDER BY name"
        ).fetchall()
    connection.close()
    return dict(rows)


def test_a_bulk_insert_builds_the_secondary_indexes_again_as_they_were(tmp_path: Path) -> None:
    # Maintained row by row, the six secondary indexes took most of a first run's insert of
    # 1.46 M rows; an insert that at least doubles the table drops them and creates them
    # again after it, in the run's transaction, exactly as the schema stored them. Into an
    # empty table the fingerprints' unique index goes too (random keys: each row landed on
    # a random page of it); into one that holds rows it stays, for ON CONFLICT.
    from reclaim.database import create_engine

    database = tmp_path / "reclaim.db"
    engine = create_engine(f"sqlite:///{database}")
    upgrade(engine)
    before = _indexes(database)
    assert {str(index.name) for index in recommendations.indexes} <= set(before)
    statements: list[str] = []

    def remember(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if sql.startswith(("DROP INDEX", "CREATE INDEX", "CREATE UNIQUE INDEX")):
            statements.append(sql.split("(")[0].strip())

    sa.event.listen(engine, "before_cursor_execute", remember)
    store = RecommendationStore(engine)
    week1 = [("idle-vm", f"i-{n}", "111", float(n % 5)) for n in range(20)]
    record_run(store, matches(*week1), scope=SCOPE, run_id="r1", now=T0)
    from reclaim.recommend.store import FINGERPRINT_INDEX, REBUILT_INDEXES

    names = sorted(str(index.name) for index in recommendations.indexes)
    assert set(names) >= REBUILT_INDEXES | {FINGERPRINT_INDEX}
    names = sorted(REBUILT_INDEXES | {FINGERPRINT_INDEX})
    assert statements == [f'DROP INDEX "{name}"' for name in names] + [
        f"CREATE {'UNIQUE ' if name == FINGERPRINT_INDEX else ''}INDEX {name} ON recommendations"
        for name in names
    ]
    assert _indexes(database) == before
    # Twenty-five new rows next to twenty stored ones: the table more than doubles, but the
    # fingerprints' index stays.
    statements.clear()
    more = [*week1, *(("idle-vm", f"k-{n}", "111", 1.0) for n in range(25))]
    record_run(store, matches(*more), scope=SCOPE, run_id="r1b", now=T0 + timedelta(days=1))
    names = sorted(REBUILT_INDEXES)
    assert statements == [f'DROP INDEX "{name}"' for name in names] + [
        f"CREATE INDEX {name} ON recommendations" for name in names
    ]
    assert _indexes(database) == before
    # Nine new rows next to twenty stored ones: the indexes are kept and written row by row.
    statements.clear()
    week2 = [*more, *(("idle-vm", f"j-{n}", "111", 1.0) for n in range(9))]
    record_run(store, matches(*week2), scope=SCOPE, run_id="r2", now=T0 + timedelta(days=7))
    assert statements == []
    sa.event.remove(engine, "before_cursor_execute", remember)
    assert _indexes(database) == before
    assert count(engine, recommendations) == 54
    engine.dispose()


_DIE_BETWEEN_DROP_AND_CREATE = """
import os, sys
from datetime import UTC, datetime
import sqlalchemy as sa
from reclaim.database import create_engine
from reclaim.recommend.recommender import record_run
from reclaim.recommend.store import RecommendationStore
sys.path.insert(0, sys.argv[2])
from test_store import SCOPE, matches
engine = create_engine("sqlite:///" + sys.argv[1])

def die(_conn, _cursor, sql, *_):
    if sql.startswith("CREATE INDEX"):
        os._exit(17)

sa.event.listen(engine, "before_cursor_execute", die)
record_run(
    RecommendationStore(engine),
    matches(*(("idle-vm", f"i-{n}", "111", 1.0) for n in range(20))),
    scope=SCOPE, run_id="r1", now=datetime(2026, 11, 1, 12, tzinfo=UTC),
)
"""


def test_a_run_that_fails_or_dies_between_drop_and_create_leaves_every_index(
    tmp_path: Path,
) -> None:
    # The indexes are dropped and created again inside the run's one transaction: a reader
    # meanwhile sees the committed table with its indexes, and a run that raises, or a process
    # killed, in between leaves the table as it was, every index there.
    import os
    import subprocess
    import sys

    from reclaim.database import create_engine

    database = tmp_path / "reclaim.db"
    engine = create_engine(f"sqlite:///{database}")
    upgrade(engine)
    before = _indexes(database)
    seen_meanwhile: list[dict[str, str | None]] = []

    def fail(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if sql.startswith("CREATE INDEX"):
            seen_meanwhile.append(_indexes(database))
            raise RuntimeError("between drop and create")

    sa.event.listen(engine, "before_cursor_execute", fail)
    rows = matches(*(("idle-vm", f"i-{n}", "111", 1.0) for n in range(20)))
    with pytest.raises(RuntimeError, match="between drop and create"):
        record_run(RecommendationStore(engine), rows, scope=SCOPE, run_id="r1", now=T0)
    sa.event.remove(engine, "before_cursor_execute", fail)
    engine.dispose()
    assert seen_meanwhile == [before]
    assert _indexes(database) == before
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _DIE_BETWEEN_DROP_AND_CREATE,
            str(database),
            str(Path(__file__).parent),
        ],
        env={**os.environ},
        check=False,
    )
    assert killed.returncode == 17
    # The next connection rolls the hot journal back.
    assert _indexes(database) == before
    engine = create_engine(f"sqlite:///{database}")
    assert count(engine, recommendations) == 0
    engine.dispose()
