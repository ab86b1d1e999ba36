"""Figures the user acts on: counted once per resource, timed by the data, reset when reopened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from reclaim.ingest import conform_facts
from reclaim.recommend import Event, RecommendationStore, Status, load_pack, recommend
from reclaim.store import upgrade

DATA_END = datetime(2026, 11, 1, tzinfo=UTC)
# Runs happen long after the data they read (a backfill, or a late weekly job).
WALL_CLOCK = datetime(2027, 3, 1, tzinfo=UTC)


def facts(as_of: datetime, *resources: dict[str, Any]) -> pl.DataFrame:
    """A facts table; each resource gets the ingest facts every bill line carries."""
    rows = []
    for resource in resources:
        row: dict[str, Any] = {
            "account_id": "111",
            "in_bill": True,
            "currency": "USD",
            "first_seen": as_of - timedelta(days=60),
            "last_seen": as_of,
            "as_of": as_of,
        }
        row.update(resource)
        rows.append(row)
    return conform_facts(pl.DataFrame(rows)).collect()


IDLE_OLD_VM: dict[str, Any] = {
    "resource_id": "i-1",
    "kind": "vm",
    "provider": "aws",
    "state": "running",
    "instance_type": "m4.xlarge",
    "family": "m4",
    "previous_generation": True,
    "cost_30d": 150.0,
    "cost_7d": 35.0,
    "owner": "web",
    "tag_count": 1,
    "metric_days": 14.0,
    "cpu_p95": 1.0,
    "cpu_max": 2.0,
    "mem_p95": 10.0,
    "network_avg": 10.0,
}
KEEPER: dict[str, Any] = {
    "resource_id": "i-keep",
    "kind": "vm",
    "state": "running",
    "cost_30d": 40.0,
    "cost_7d": 9.0,
    "owner": "web",
    "tag_count": 1,
}


def finish(store: RecommendationStore, rec_id: int, at: datetime) -> None:
    store.apply_event(rec_id, Event.TICKET_CREATED, now=at)
    store.apply_event(rec_id, Event.TICKET_DONE, now=at)


def test_several_rules_on_one_vm_save_and_realize_its_cost_once(engine: Engine) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    recommend(engine, facts(DATA_END, IDLE_OLD_VM, KEEPER), pack, run_id="w1", now=WALL_CLOCK)
    found = {rec.rule_id: rec for rec in store.find(limit=None)}
    assert {"idle-vm", "previous-generation-instance"} <= set(found)
    # Stopping the VM saves what it costs; moving it to m5 as well is not a further saving.
    assert found["idle-vm"].monthly_savings == Decimal("150.0000")
    modern = found["previous-generation-instance"]
    assert modern.monthly_savings == 0
    assert modern.savings_method == "superseded by idle-vm"
    assert modern.params["superseded_by"] == "idle-vm"
    assert modern.params["savings_alone"] > 0
    _count, total = store.count_by_status()[Status.OPEN]
    assert total == Decimal("150.00")
    # Both tickets are closed as done and the VM is terminated: 150 saved, not 300.
    for rec in found.values():
        finish(store, rec.id, WALL_CLOCK)
    week2 = DATA_END + timedelta(days=7)
    recommend(engine, facts(week2, KEEPER), pack, run_id="w2", now=WALL_CLOCK)
    after = [store.get(rec.id) for rec in found.values()]
    assert all(rec is not None and rec.status is Status.IMPLEMENTED for rec in after)
    realized = sum(rec.realized_monthly_savings or 0 for rec in after if rec is not None)
    assert realized == Decimal("150")


def test_realized_savings_are_timed_by_the_data_not_the_wall_clock(engine: Engine) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    volume: dict[str, Any] = {
        "resource_id": "vol-1",
        "kind": "volume",
        "volume_type": "gp3",
        "attached": False,
        "days_since_attached": 40.0,
        "size_gb": 100.0,
        "cost_30d": 8.0,
        "cost_7d": 1.9,
        "owner": "web",
        "tag_count": 1,
    }
    recommend(engine, facts(DATA_END, volume, KEEPER), pack, run_id="w1", now=WALL_CLOCK)
    [rec] = store.find(rule_id="unattached-volume")
    finish(store, rec.id, WALL_CLOCK)
    # Deleted during the next week: the bill still has its earlier days, the inventory not.
    deleted = {
        "resource_id": "vol-1",
        "cost_30d": 6.0,
        "cost_7d": 0.0,
        "last_seen": DATA_END + timedelta(days=1),
    }
    week2 = DATA_END + timedelta(days=7)
    run = recommend(
        engine, facts(week2, deleted, KEEPER), pack, run_id="w2", now=WALL_CLOCK + timedelta(1)
    )
    assert run.run.implemented == 1
    done = store.get(rec.id)
    assert done is not None
    assert done.implemented_at == week2
    week3 = DATA_END + timedelta(days=14)
    gone_soon = {**deleted, "cost_30d": 2.0}
    run = recommend(
        engine, facts(week3, gone_soon, KEEPER), pack, run_id="w3", now=WALL_CLOCK + timedelta(2)
    )
    measured = store.get(rec.id)
    assert measured is not None
    assert measured.realized_method == "7-day run rate after"
    assert measured.realized_monthly_savings == Decimal("8.0000")


def test_a_reopened_recommendation_forgets_its_implementation_and_savings(
    engine: Engine,
) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    volume: dict[str, Any] = {
        "resource_id": "vol-2",
        "kind": "volume",
        "volume_type": "gp3",
        "attached": False,
        "days_since_attached": 40.0,
        "size_gb": 100.0,
        "cost_30d": 8.0,
        "cost_7d": 1.9,
        "owner": "web",
        "tag_count": 1,
    }
    recommend(engine, facts(DATA_END, volume, KEEPER), pack, run_id="w1", now=DATA_END)
    [rec] = store.find(rule_id="unattached-volume")
    finish(store, rec.id, DATA_END)
    week2 = DATA_END + timedelta(days=7)
    recommend(engine, facts(week2, KEEPER), pack, run_id="w2", now=week2)
    done = store.get(rec.id)
    assert done is not None
    assert done.realized_method == "gone from the bill"
    # The volume was restored and is unattached again: the work no longer stands.
    week3 = DATA_END + timedelta(days=14)
    recommend(engine, facts(week3, volume, KEEPER), pack, run_id="w3", now=week3)
    back = store.get(rec.id)
    assert back is not None
    assert back.status is Status.REOPENED
    assert back.implemented_at is None
    assert back.realized_monthly_savings is None
    assert back.realized_method is None
    assert back.realized_checked_at is None


def test_a_deleted_untagged_resource_does_not_reopen_its_done_tagging_ticket(
    engine: Engine,
) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    orphan: dict[str, Any] = {
        "resource_id": "i-orphan",
        "kind": "vm",
        "cost_30d": 30.0,
        "cost_7d": 7.0,
        "tag_count": 0,
    }
    recommend(engine, facts(DATA_END, orphan, KEEPER), pack, run_id="w1", now=DATA_END)
    [rec] = store.find(rule_id="unowned-resource")
    finish(store, rec.id, DATA_END)
    # The team deleted it instead of tagging it: its last days are still in the 30-day bill.
    week2 = DATA_END + timedelta(days=7)
    deleted = {**orphan, "cost_7d": 1.0, "last_seen": DATA_END + timedelta(days=1)}
    recommend(engine, facts(week2, deleted, KEEPER), pack, run_id="w2", now=week2)
    after = store.get(rec.id)
    assert after is not None
    assert after.status is Status.IMPLEMENTED


def test_a_dismissed_action_leaves_the_saving_to_the_next_one(engine: Engine) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    recommend(engine, facts(DATA_END, IDLE_OLD_VM, KEEPER), pack, run_id="w1", now=DATA_END)
    [idle] = store.find(rule_id="idle-vm")
    [modern] = store.find(rule_id="previous-generation-instance")
    assert modern.monthly_savings == 0
    # The team needs the VM: stopping it will not happen, so moving it to m5 is the saving.
    store.apply_event(idle.id, Event.DISMISS, now=DATA_END, snooze=timedelta(days=90))
    week2 = DATA_END + timedelta(days=7)
    recommend(engine, facts(week2, IDLE_OLD_VM, KEEPER), pack, run_id="w2", now=week2)
    again = store.get(modern.id)
    assert again is not None
    assert again.monthly_savings == Decimal("6.0000")  # m4 → m5: 4% of 150
    assert again.savings_method == "run rate x family price difference"
    assert "superseded_by" not in again.params
    _count, total = store.count_by_status()[Status.OPEN]
    assert total == Decimal("6.00")


UNATTACHED_IO1: dict[str, Any] = {
    # io1, 500 GiB, 10,000 IOPS peaking at 2,000 and detached for 40 days: 62.5 of storage
    # and 650 of IOPS a month.
    "resource_id": "vol-io1",
    "kind": "volume",
    "provider": "aws",
    "volume_type": "io1",
    "size_gb": 500.0,
    "attached": False,
    "days_since_attached": 40.0,
    "provisioned_iops": 10000.0,
    "iops_max": 2000.0,
    "metric_days": 14.0,
    "cost_30d": 712.5,
    "cost_7d": 166.25,
    "iops_cost_30d": 650.0,
    "owner": "data",
    "tag_count": 1,
}


def test_deleting_a_volume_supersedes_lowering_its_iops(engine: Engine) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    recommend(engine, facts(DATA_END, UNATTACHED_IO1), pack, run_id="w1", now=DATA_END)
    found = {rec.rule_id: rec for rec in store.find(limit=None)}
    assert set(found) == {"unattached-volume", "overprovisioned-iops"}
    assert found["unattached-volume"].monthly_savings == Decimal("712.5000")
    # Alone, cutting 10,000 IOPS to 2,400 would save 650 - 156 = 494 of the 650.
    lowered = found["overprovisioned-iops"]
    assert lowered.monthly_savings == 0
    assert lowered.savings_method == "superseded by unattached-volume"
    assert lowered.params["savings_alone"] == 494.0
    _count, total = store.count_by_status()[Status.OPEN]
    assert total == Decimal("712.50")


def test_an_underused_commitment_realizes_the_unused_cost_it_stops_wasting(
    engine: Engine,
) -> None:
    upgrade(engine)
    pack = load_pack()
    store = RecommendationStore(engine)
    plan = {
        "resource_id": "arn:aws:savingsplans::111:savingsplan/sp1",
        "kind": "commitment",
        "commitment_type": "Savings Plan",
        "commitment_used_30d": 90.0,
        "commitment_unused_30d": 60.0,
        # The unused part is the plan's own EffectiveCost: 60 over 30 days, 14 the last week.
        "cost_30d": 60.0,
        "cost_7d": 14.0,
        "owner": "finops",
        "tag_count": 1,
    }
    recommend(engine, facts(DATA_END, plan), pack, run_id="w1", now=DATA_END)
    [rec] = store.find(limit=None)
    assert rec.rule_id == "underused-commitment"
    assert rec.monthly_savings == Decimal("60.0000")
    assert rec.owner == "finops"
    assert rec.params["utilization"] == 0.6
    finish(store, rec.id, DATA_END)
    # Usage moved under the plan: 90% used now, so the rule no longer fires and the work is
    # done. A week later the plan's unused cost is 1.75 a week: 7.5 a month, 52.5 saved.
    moved = {**plan, "commitment_used_30d": 135.0, "commitment_unused_30d": 15.0}
    week2 = DATA_END + timedelta(days=7)
    recommend(engine, facts(week2, moved | {"cost_30d": 15.0}), pack, run_id="w2", now=week2)
    done = store.get(rec.id)
    assert done is not None
    assert done.status is Status.IMPLEMENTED
    week3 = DATA_END + timedelta(days=14)
    moved |= {"cost_30d": 9.0, "cost_7d": 1.75}
    recommend(engine, facts(week3, moved), pack, run_id="w3", now=week3)
    after = store.get(rec.id)
    assert after is not None
    assert after.realized_monthly_savings == Decimal("52.5")
    assert after.realized_method == "7-day run rate after"
