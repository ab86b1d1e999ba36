"""``reclaim collect`` and ``reclaim sample`` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from reclaim.ingest import FACT_COLUMNS


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def cli_url(database_url: tuple[str, str | None]) -> str:
    url, schema = database_url
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


def test_generate_collect_twice_list_ledger(
    database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    db = cli_url(database_url)
    out = tmp_path / "sample"
    generated = run_cli("sample", "generate", "--out", str(out), "-n", "40", "-d", "32")
    assert generated.returncode == 0, generated.stderr
    assert "40 resources" in generated.stdout
    assert run_cli("--db", db, "db", "upgrade").returncode == 0
    args = ("-b", str(out / "billing"), "-i", str(out / "inventory.csv"))
    args += ("-u", str(out / "utilization.csv"))
    first = run_cli("--db", db, "collect", "files", *args)
    assert first.returncode == 0, first.stderr
    # 40 resources and the Savings Plan that covers some of them.
    assert "collection 1: 41 resources as of 2026-11-01 00:00 UTC" in first.stdout
    second = run_cli("--db", db, "collect", "files", *args)
    assert second.returncode == 0, second.stderr
    assert "nothing new: these inputs are collection 1" in second.stdout
    listed = run_cli("--db", db, "collect", "list")
    assert listed.returncode == 0
    assert listed.stdout.count("files") == 1
    ledger = run_cli("--db", db, "collect", "ledger")
    assert ledger.returncode == 0
    assert [kind in ledger.stdout for kind in ("billing", "inventory", "utilization")] == [True] * 3
    facts = tmp_path / "facts.parquet"
    exported = run_cli("--db", db, "collect", "files", *args, "--out", str(facts))
    assert exported.returncode == 0, exported.stderr
    assert pl.read_parquet(facts).height == 41


def test_bad_rows_are_listed_and_missing_column_fails(
    database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    db = cli_url(database_url)
    assert run_cli("--db", db, "db", "upgrade").returncode == 0
    bill = tmp_path / "bill.csv"
    header = "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName"
    bill.write_text(f"{header},BillingCurrency\n1,1,2026-10-01,2026-10-02,i-1,EC2,USD\n")
    bill.write_text(bill.read_text() + "oops,1,2026-10-01,2026-10-02,i-2,EC2,USD\n")
    result = run_cli("--db", db, "collect", "files", "-b", str(bill))
    assert result.returncode == 0, result.stderr
    assert f"{bill}: row 2: BilledCost is not a number (skipped)" in result.stderr
    assert "collection 1: 1 resources" in result.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text(f"{header}\n1,1,2026-10-01,2026-10-02,i-1,EC2\n")
    failed = run_cli("--db", db, "collect", "files", "-b", str(broken))
    assert failed.returncode == 2
    assert failed.stderr.startswith(f"error: {broken}:1: billing file lacks the required FOCUS")
    assert "'BillingCurrency'" in failed.stderr


def test_in_memory_collect_without_database(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    assert (
        run_cli(
            "sample", "generate", "--out", str(out), "-n", "25", "--format", "parquet"
        ).returncode
        == 0
    )
    facts = tmp_path / "facts.parquet"
    result = run_cli(
        "--db",
        f"sqlite:///{tmp_path / 'never.db'}",
        "collect",
        "files",
        "--no-db",
        "--out",
        str(facts),
        "-b",
        str(out / "billing"),
        "-i",
        str(out / "inventory.parquet"),
        "-u",
        str(out / "utilization.parquet"),
    )
    assert result.returncode == 0, result.stderr
    assert pl.read_parquet(facts).columns == list(FACT_COLUMNS)
    assert not (tmp_path / "never.db").exists()


def test_collect_the_bundled_sample(database_url: tuple[str, str | None]) -> None:
    db = cli_url(database_url)
    assert run_cli("--db", db, "db", "upgrade").returncode == 0
    first = run_cli("--db", db, "collect", "sample")
    assert first.returncode == 0, first.stderr
    assert "collection 1: 121 resources" in first.stdout  # and a Savings Plan
    second = run_cli("--db", db, "collect", "sample")
    assert "nothing new: these inputs are collection 1" in second.stdout


def test_recommend_reads_the_collection_just_reported_or_the_one_named(
    database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    db = cli_url(database_url)
    assert run_cli("--db", db, "db", "upgrade").returncode == 0
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    header = "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName"
    row = "1,1,2026-10-01,2026-10-02,{},EC2,USD"
    a.write_text(f"{header},BillingCurrency\n{row.format('i-1')}\n{row.format('i-2')}\n")
    b.write_text(f"{header},BillingCurrency\n{row.format('i-3')}\n")
    for bill in (a, b, a):
        collected = run_cli("--db", db, "collect", "files", "-b", str(bill))
        assert collected.returncode == 0, collected.stderr
    assert "nothing new: these inputs are collection 1" in collected.stdout
    listed = run_cli("--db", db, "collect", "list")
    assert listed.returncode == 0, listed.stderr
    ids = [_cells(line)[0] for line in listed.stdout.splitlines() if "files" in line]
    assert ids == ["2", "1*"]
    default = run_cli("--db", db, "recommend", "--run-id", "r1")
    assert default.returncode == 0, default.stderr
    assert _cells(next(x for x in default.stdout.splitlines() if "resources" in x))[1] == "2"
    named = run_cli("--db", db, "recommend", "--collection", "2", "--run-id", "r2")
    assert named.returncode == 0, named.stderr
    assert _cells(next(x for x in named.stdout.splitlines() if "resources" in x))[1] == "1"
    missing = run_cli("--db", db, "recommend", "--collection", "9")
    assert missing.returncode == 2
    assert "no fact collection 9" in missing.stderr


def _cells(line: str) -> list[str]:
    return line.replace("│", " ").split()


def test_list_and_show_report_bad_rows_and_unattributed_cost(
    database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    db = cli_url(database_url)
    assert run_cli("--db", db, "db", "upgrade").returncode == 0
    bill = tmp_path / "bill.csv"
    header = "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName"
    bill.write_text(
        f"{header},BillingCurrency\n1,1,2026-10-01,2026-10-02,i-1,EC2,USD\n"
        "oops,1,2026-10-01,2026-10-02,i-2,EC2,USD\n"
        "4.25,4.25,2026-10-01,2026-10-02,NULL,Tax,USD\n"
    )
    assert run_cli("--db", db, "collect", "files", "-b", str(bill)).returncode == 0
    listed = run_cli("--db", db, "collect", "list")
    [row] = [_cells(line) for line in listed.stdout.splitlines() if "files" in line]
    assert row[0] == "1*"
    assert row[-3:] == ["1", "0", "4.25"]
    shown = run_cli("--db", db, "collect", "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert f"{bill}: row 2: BilledCost is not a number (skipped)" in shown.stdout
    assert "cost without a resource id (tax, support, credits): 4.25" in shown.stdout
