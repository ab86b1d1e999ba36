"""The command line as a user runs it: a subprocess against a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from reclaim.ingest import conform_facts, write_facts_parquet


def reclaim(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def facts_file(tmp_path: Path) -> Path:
    facts = conform_facts(
        pl.DataFrame(
            {
                "resource_id": ["vol-1", "i-1", "eipalloc-1"],
                "account_id": ["111", "111", "111"],
                "kind": ["volume", "vm", "ip_address"],
                "attached": [False, True, False],
                "days_since_attached": [40.0, 0.0, 3.0],
                "size_gb": [100.0, None, None],
                "cost_30d": [9.5, 100.0, 3.6],
                "in_bill": [True, True, True],
                "owner": ["storage", "web", "net"],
                "tag_count": [1, 1, 1],
                "currency": ["USD", "USD", "USD"],
                "tags": [{"env": "prod"}, {"env": "prod"}, {"env": None}],
            }
        )
    ).collect()
    path = tmp_path / "facts.parquet"
    facts.write_parquet(path)
    return path


def test_recommend_list_show_dismiss(tmp_path: Path, facts_file: Path) -> None:
    db = tmp_path / "reclaim.db"
    assert reclaim(db, "db", "upgrade").returncode == 0
    run = reclaim(db, "recommend", "--facts", str(facts_file), "--run-id", "week-1")
    assert run.returncode == 0, run.stderr
    assert "new              2" in run.stdout
    assert "13.10" in run.stdout  # 9.50 + 3.60 a month
    listed = reclaim(db, "recommendations", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["rule_id"] for r in records} == {"unattached-volume", "unassociated-ip"}
    volume = next(r for r in records if r["rule_id"] == "unattached-volume")
    assert volume["monthly_savings"] == "9.5000"
    shown = reclaim(db, "recommendations", "show", str(volume["id"]), "--facts", str(facts_file))
    assert shown.returncode == 0, shown.stderr
    assert "why" in shown.stdout
    assert "✓ unattached-volume: fired" in shown.stdout
    assert "days_since_attached > unattached_days" in shown.stdout
    assert "40.0 > 7" in shown.stdout
    by_fingerprint = reclaim(db, "recommendations", "show", volume["fingerprint"])
    assert by_fingerprint.returncode == 0
    assert "no explanation" in by_fingerprint.stdout
    dismissed = reclaim(db, "recommendations", "dismiss", str(volume["id"]), "--days", "30")
    assert dismissed.returncode == 0, dismissed.stderr
    again = reclaim(db, "recommend", "--facts", str(facts_file), "--run-id", "week-2")
    assert "still snoozed    1" in again.stdout
    assert "new              0" in again.stdout
    repeated = reclaim(db, "recommend", "--facts", str(facts_file), "--run-id", "week-2")
    assert "already recorded" in repeated.stdout
    opened = reclaim(db, "recommendations", "list", "--status", "open", "--json")
    assert [json.loads(line)["rule_id"] for line in opened.stdout.splitlines()] == [
        "unassociated-ip"
    ]
    runs = reclaim(db, "recommendations", "runs")
    assert "week-1" in runs.stdout
    assert "week-2" in runs.stdout


def test_bad_rules_file_names_file_line_and_fix(tmp_path: Path, facts_file: Path) -> None:
    db = tmp_path / "reclaim.db"
    reclaim(db, "db", "upgrade")
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        "kind: savings\nrules:\n  - id: r\n    when: cost_30dd > 1\n    action: recommend\n"
        "    params: {type: x}\nfacts: {cost_30d: number}\n"
    )
    result = reclaim(db, "recommend", "--rules", str(rules), "--facts", str(facts_file))
    assert result.returncode == 2
    assert f"{rules}:4:" in result.stderr
    assert "cost_30d" in result.stderr


def test_unknown_recommendation_and_bad_facts(tmp_path: Path) -> None:
    db = tmp_path / "reclaim.db"
    reclaim(db, "db", "upgrade")
    missing = reclaim(db, "recommendations", "show", "42")
    assert missing.returncode == 2
    assert "no recommendation '42'" in missing.stderr
    bad = tmp_path / "facts.csv"
    bad.write_text("name,cost\nx,1\n")
    result = reclaim(db, "recommend", "--facts", str(bad))
    assert result.returncode == 2
    assert "no resource_id column" in result.stderr


def _collected(tmp_path: Path, resources: int) -> Path:
    """A SQLite database holding one collection of a generated sample."""
    from reclaim.database import create_engine
    from reclaim.ingest.ledger import collect_into
    from reclaim.ingest.sample import generate_sample
    from reclaim.store import upgrade

    db = tmp_path / "reclaim.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade(engine)
    files = generate_sample(tmp_path / "sample", resources=resources, days=31, seed=3)
    collect_into(engine, [files.billing], [files.inventory], [files.utilization])
    engine.dispose()
    return db


def test_recommend_reads_the_newest_stored_collection(tmp_path: Path) -> None:
    db = _collected(tmp_path, 150)
    result = reclaim(db, "recommend", "--run-id", "w1")
    assert result.returncode == 0, result.stderr
    assert "resources        151" in result.stdout  # 150 and the sample's Savings Plan
    listed = reclaim(db, "recommendations", "list", "--json", "--limit", "1")
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    shown = reclaim(db, "recommendations", "show", str(record["id"]))
    assert f"✓ {record['rule_id']}: fired" in shown.stdout


def _volumes(count: int) -> pl.DataFrame:
    return conform_facts(
        pl.DataFrame(
            {
                "resource_id": [f"vol-{index:03d}" for index in range(count)],
                "account_id": ["111" if index % 3 else "222" for index in range(count)],
                "region": ["eu-west-1" if index % 2 else "us-east-1" for index in range(count)],
                "kind": ["volume"] * count,
                "attached": [False] * count,
                "days_since_attached": [40.0] * count,
                "size_gb": [100.0] * count,
                "cost_30d": [float(index + 1) for index in range(count)],
                "in_bill": [True] * count,
                "owner": ["storage" if index % 2 else "web" for index in range(count)],
                "tag_count": [1] * count,
                "currency": ["EUR"] * count,
            }
        )
    ).collect()


def test_list_shows_where_and_what_filters_totals_and_exports_everything(tmp_path: Path) -> None:
    db = tmp_path / "reclaim.db"
    facts = tmp_path / "volumes.parquet"
    write_facts_parquet(_volumes(60), facts)
    assert reclaim(db, "db", "upgrade").returncode == 0
    assert reclaim(db, "recommend", "--facts", str(facts)).returncode == 0
    command = [sys.executable, "-m", "reclaim", "--db", f"sqlite:///{db}", "recommendations"]
    totals = ["--totals-by", "owner", "--totals-by", "account", "--totals-by", "rule"]
    narrow = subprocess.run(
        [*command, "list", *totals],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"},
        timeout=120,
        check=True,
    ).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "vol-059" in narrow
    for text in ("us-east-1 · volume", "delete", "EUR", "by owner", "by account", "by rule"):
        assert text in narrow, text
    # 1 + 2 + … + 60 = 1,830 a month, of which the odd indexes (storage) hold 930.
    assert "1,830.00" in narrow
    assert "930.00" in narrow
    exported = reclaim(db, "recommendations", "list", "--format", "csv").stdout.splitlines()
    assert len(exported) == 61  # every recommendation, not the table's 50
    header = exported[0].split(",")
    assert {"resource_id", "region", "kind", "action", "currency", "owner"} <= set(header)
    as_json = reclaim(db, "recommendations", "list", "-f", "json", "--owner", "web").stdout
    records = [json.loads(line) for line in as_json.splitlines()]
    assert len(records) == 30
    assert {record["owner"] for record in records} == {"web"}
    assert {record["action"] for record in records} == {"delete"}
    in_region = reclaim(db, "recommendations", "list", "-f", "csv", "--region", "eu-west-1")
    assert len(in_region.stdout.splitlines()) == 31
    shown = reclaim(db, "recommendations", "show", "1").stdout
    assert "region" in shown
    assert "kind             volume" in shown


def test_realized_savings_report_by_owner_and_month(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from reclaim.database import create_engine
    from reclaim.recommend import Event, RecommendationStore, load_pack, recommend
    from reclaim.store import upgrade

    db = tmp_path / "reclaim.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade(engine)
    end = datetime(2026, 10, 29, tzinfo=UTC)
    volumes = _volumes(4).with_columns(pl.lit(end).dt.replace_time_zone("UTC").alias("as_of"))
    keeper = volumes.head(1).with_columns(
        pl.lit("i-keep").alias("resource_id"), pl.lit("vm").alias("kind")
    )
    recommend(engine, pl.concat([volumes, keeper]), load_pack(), run_id="w1", now=end)
    store = RecommendationStore(engine)
    for record in store.find(limit=None):
        store.apply_event(record.id, Event.TICKET_CREATED, now=end)
        store.apply_event(record.id, Event.TICKET_DONE, now=end)
    # A week later (November) the volumes have left the bill of both accounts.
    later = end + timedelta(days=7)
    others = keeper.with_columns(pl.lit(later).dt.replace_time_zone("UTC").alias("as_of"))
    others = pl.concat([others, others.with_columns(pl.lit("111").alias("account_id"))])
    recommend(engine, others, load_pack(), run_id="w2", now=later)
    engine.dispose()
    report = reclaim(db, "recommendations", "realized", "--format", "csv").stdout.splitlines()
    assert report == [
        "owner,month,implemented,realized_monthly_savings,currency",
        "storage,2026-11,2,6.00,EUR",
        "web,2026-11,2,4.00,EUR",
    ]
    table = reclaim(db, "recommendations", "realized", "--owner", "web").stdout
    assert "2026-11" in table
    assert "storage" not in table


def test_recommend_loads_only_the_fact_columns_its_rules_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the weekly job: of a stored collection's 72 columns the built-in pack reads 46.
    from typer.testing import CliRunner

    import reclaim.ingest.ledger as ledger
    from reclaim.cli.app import app
    from reclaim.recommend import fact_columns, load_pack

    db = _collected(tmp_path, 40)
    loaded: list[list[str]] = []
    real_load = ledger.load_facts

    def load(*args: Any, **kwargs: Any) -> Any:
        facts = real_load(*args, **kwargs)
        loaded.append(list(facts.columns))
        return facts

    monkeypatch.setattr(ledger, "load_facts", load)
    done = CliRunner().invoke(app, ["--db", f"sqlite:///{db}", "recommend", "--run-id", "w1"])
    assert done.exit_code == 0, done.output
    [columns] = loaded
    assert set(columns) == set(fact_columns(load_pack()))
    assert len(columns) < 72
