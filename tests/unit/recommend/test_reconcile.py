from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.recommend.fingerprint import fingerprint
from reclaim.recommend.lifecycle import (
    Effect,
    Event,
    RecommendationState,
    Status,
    transition,
)
from reclaim.recommend.reconcile import (
    MATCH_COLUMNS,
    STORED_COLUMNS,
    Change,
    Scope,
    empty_stored,
    plan_reconcile,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RULES = ("idle-vm", "unattached-volume")
RESOURCES = tuple(f"r{i}" for i in range(6))
ACCOUNTS: tuple[str | None, ...] = ("111", "222", None)
KEYS = [(r, i, a) for r in RULES for i in RESOURCES for a in ACCOUNTS]
SCOPE = Scope(frozenset(RULES))


def matches_of(keys: list[tuple[str, str, str | None]], savings: float = 10.0) -> pl.DataFrame:
    rows = [
        {
            "fingerprint": fingerprint(*key),
            "rule_id": key[0],
            "resource_id": key[1],
            "account_id": key[2],
            "monthly_savings": savings,
            "savings_method": "30-day actual",
            "params": "{}",
        }
        for key in keys
    ]
    return pl.DataFrame(rows, schema={**MATCH_COLUMNS})


class MemoryStore:
    """The store's contract, in memory: one row per fingerprint, plan rows applied as written."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.next_id = 1

    def stored(self) -> pl.DataFrame:
        if not self.rows:
            return empty_stored()
        return pl.DataFrame(
            [{name: row[name] for name in STORED_COLUMNS} for row in self.rows.values()],
            schema={**STORED_COLUMNS},
        )

    def apply(self, plan_rows: pl.DataFrame) -> None:
        for row in plan_rows.iter_rows(named=True):
            current = self.rows.get(row["fingerprint"])
            if row["id"] is None:
                assert current is None, "the plan inserted a fingerprint that exists"
                row_id = self.next_id
                self.next_id += 1
                current = {"id": row_id, "has_ticket": False, "version": 0}
                self.rows[row["fingerprint"]] = current
            else:
                assert current is not None
                assert current["id"] == row["id"]
                assert current["version"] == row["version_before"]
            current.update(
                fingerprint=row["fingerprint"],
                rule_id=row["rule_id"],
                account_id=row["account_id"],
                status=row["status"],
                ticket_done=row["ticket_done"],
                snoozed_until=row["snoozed_until"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
                times_seen=row["times_seen"],
                version=current["version"] + 1,
            )


def run(store: MemoryStore, keys: list[tuple[str, str, str | None]], now: datetime) -> Any:
    plan = plan_reconcile(store.stored(), matches_of(keys), scope=SCOPE, now=now)
    store.apply(plan.rows)
    return plan


def test_first_run_creates_open_recommendations() -> None:
    store = MemoryStore()
    plan = run(store, KEYS[:3], T0)
    assert plan.counts["new"] == 3
    assert {row["status"] for row in store.rows.values()} == {"open"}


def test_same_matches_twice_update_without_duplicating() -> None:
    store = MemoryStore()
    run(store, KEYS[:4], T0)
    second = run(store, KEYS[:4], T0 + timedelta(days=7))
    assert second.counts["new"] == 0
    assert second.counts["seen_again"] == 4
    assert len(store.rows) == 4
    row = store.rows[fingerprint(*KEYS[0])]
    assert row["times_seen"] == 2
    assert row["first_seen"] == T0
    assert row["last_seen"] == T0 + timedelta(days=7)


def test_duplicate_matches_within_one_run_count_once() -> None:
    store = MemoryStore()
    plan = run(store, [KEYS[0], KEYS[0], KEYS[1]], T0)
    assert plan.counts["new"] == 2
    assert len(store.rows) == 2


def test_gone_resolves_only_in_scope() -> None:
    store = MemoryStore()
    run(store, [("idle-vm", "r1", "111"), ("idle-vm", "r2", "222")], T0)
    scope = Scope(frozenset({"idle-vm"}), frozenset({"111"}))
    plan = plan_reconcile(store.stored(), matches_of([]), scope=scope, now=T0 + timedelta(days=1))
    assert plan.rows["fingerprint"].to_list() == [fingerprint("idle-vm", "r1", "111")]
    assert plan.rows["status"].to_list() == ["resolved"]
    other_rule = Scope(frozenset({"unattached-volume"}))
    assert plan_reconcile(store.stored(), matches_of([]), scope=other_rule, now=T0).rows.height == 0


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        plan_reconcile(empty_stored(), matches_of([]), scope=SCOPE, now=datetime(2026, 1, 1))


@st.composite
def stored_rows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[bool]]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS)))
    rows = []
    for index, key in enumerate(keys):
        status = draw(st.sampled_from(Status))
        has_ticket = status is Status.TICKETED or draw(st.booleans())
        done = has_ticket and status in (Status.TICKETED, Status.REOPENED) and draw(st.booleans())
        snoozed_until = None
        if status is Status.DISMISSED:
            snoozed_until = draw(
                st.none() | st.sampled_from([T0 + timedelta(days=3), T0 - timedelta(days=3), T0])
            )
        rows.append(
            {
                "id": index + 1,
                "fingerprint": fingerprint(*key),
                "rule_id": key[0],
                "account_id": key[2],
                "status": status.value,
                "has_ticket": has_ticket,
                "ticket_done": done,
                "snoozed_until": snoozed_until,
                "first_seen": T0 - timedelta(days=30),
                "last_seen": T0 - timedelta(days=7),
                "times_seen": 1,
                "version": 1,
                "key": key,
            }
        )
    seen = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    return rows, seen


@settings(max_examples=150, deadline=None)
@given(stored_rows())
def test_columnar_plan_agrees_with_the_state_machine(
    case: tuple[list[dict[str, Any]], list[bool]],
) -> None:
    rows, seen = case
    stored = pl.DataFrame(
        [{k: v for k, v in row.items() if k != "key"} for row in rows],
        schema={**STORED_COLUMNS},
    )
    matched_keys = [row["key"] for row, hit in zip(rows, seen, strict=True) if hit]
    plan = plan_reconcile(stored, matches_of(matched_keys), scope=SCOPE, now=T0)
    by_fp = {row["fingerprint"]: row for row in plan.rows.iter_rows(named=True)}
    for row, hit in zip(rows, seen, strict=True):
        state = RecommendationState(
            Status(row["status"]), row["has_ticket"], row["ticket_done"], row["snoozed_until"]
        )
        expected = transition(state, Event.SEEN if hit else Event.GONE, now=T0)
        planned = by_fp.get(row["fingerprint"])
        if planned is None:
            assert not hit
            assert not expected.changed
            continue
        assert planned["status"] == expected.after.status.value
        assert planned["ticket_done"] == expected.after.ticket_done
        assert planned["snoozed_until"] == expected.after.snoozed_until
        assert planned["effect"] == (expected.effect.value if expected.effect else None)
        assert planned["observed"] == hit


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(KEYS), max_size=12), min_size=1, max_size=8))
def test_any_sequence_of_runs_keeps_one_row_per_fingerprint(
    runs: list[list[tuple[str, str, str | None]]],
) -> None:
    store = MemoryStore()
    seen_count: dict[str, int] = {}
    for index, keys in enumerate(runs):
        run(store, keys, T0 + timedelta(days=7 * index))
        for fp in {fingerprint(*key) for key in keys}:
            seen_count[fp] = seen_count.get(fp, 0) + 1
    assert set(store.rows) == set(seen_count)
    for fp, count in seen_count.items():
        assert store.rows[fp]["times_seen"] == count
    # Running the last run's matches again adds no row.
    before = len(store.rows)
    run(store, runs[-1], T0 + timedelta(days=365))
    assert len(store.rows) == before


def test_the_plan_lists_the_matched_rows_in_the_matches_order_then_the_gone_ones() -> None:
    # The matched rows keep the matches' own columns in their order (only the fingerprints are
    # joined with the stored rows): a join of the whole matches, the join with the
    # transitions and a filter over every row each copied their columns, the step's peak.
    keys = [("idle-vm", f"r{i}", "111") for i in range(8)]
    first = plan_reconcile(empty_stored(), matches_of(keys[:6]), scope=SCOPE, now=T0)
    stored = first.rows.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"),
        "fingerprint",
        "rule_id",
        "account_id",
        "status",
        pl.lit(False).alias("has_ticket"),
        pl.lit(False).alias("ticket_done"),
        "snoozed_until",
        "first_seen",
        "last_seen",
        "times_seen",
        pl.lit(1, pl.Int64).alias("version"),
    )
    later = matches_of([keys[7], keys[6], keys[4], keys[3]])
    plan = plan_reconcile(stored, later, scope=SCOPE, now=T0 + timedelta(days=1))
    rows = plan.rows
    assert rows.get_column("resource_id").to_list() == ["r7", "r6", "r4", "r3", *[None] * 4]
    assert rows.get_column("change").to_list() == ["new", "new", "seen", "seen", *["gone"] * 4]
    assert rows.get_column("id").to_list() == [None, None, 5, 4, 1, 2, 3, 6]


def test_the_plans_statuses_changes_and_effects_take_a_byte_a_row() -> None:
    # As text each was a 16-byte view a row (~22 MiB a column at 1.46 M matches), four of
    # them held through the write of the plan, the peak of a run seen again.
    store = MemoryStore()
    run(store, KEYS[:4], T0)
    plan = run(store, KEYS[2:6], T0 + timedelta(days=7))
    rows = plan.rows
    for name, values in (
        ("status", Status),
        ("status_before", Status),
        ("change", Change),
        ("effect", Effect),
    ):
        assert rows.schema[name] == pl.Enum([value.value for value in values]), name
        assert rows.get_column(name).to_physical().dtype == pl.UInt8, name
    assert rows.get_column("change").to_list() == ["seen", "seen", "new", "new", "gone", "gone"]
    assert rows.get_column("status").to_list() == ["open"] * 4 + ["resolved"] * 2
    assert rows.get_column("status_before").to_list() == ["open", "open", None, None] + ["open"] * 2
