"""Collect at scale: FOCUS Parquet rows → the per-resource facts table, beside pandas.

    python bench/ingest_bench.py [--rows 10000000] [--resources 100000] [--repeat 3]
                                 [--pandas-rows 2000000]

The billing data come from reclaim's own generator (``reclaim sample generate``): ``--resources``
resources billed daily for as many days as it takes to reach ``--rows`` rows, written as a folder
of Parquet parts under ``bench/out/`` (git-ignored) and reused by later runs with the same
arguments. Generating 10 million rows takes about 20 s.

Each measurement runs in a fresh subprocess, so "peak" is the whole process's maximum resident
set (interpreter and libraries included), read from ``getrusage``:

- reclaim: ``collect_facts`` over every part, the real code path: row checks with bad-row
  reporting, 30- and 7-day costs, attributes, latest tags decoded to a Struct, the full
  facts schema; and, once, storing the facts as a collection in a SQLite file;
- DuckDB: the SQL a user would write over the same Parquet parts (all rows): 30- and 7-day
  sums, first and last seen, and each resource's attributes and tags from its latest row
  (``arg_max``), without reclaim's row checks, outliers, restated runs and duplicates; the
  same data, aggregated out of core by DuckDB's engine;
- pandas: the straightforward implementation of the same aggregation (``read_parquet``, window
  masks, ``groupby().agg`` with sums, min/max and ``last`` for attributes and tags, then
  ``json.loads`` of each resource's tags), without reclaim's row checks and reports. pandas holds every string as a Python object, so it runs on
  the first ``--pandas-rows`` rows; reclaim is measured on the same subset for the ratio.

Medians of ``--repeat`` runs are printed with the ratio, with the CPU time of the process (all
threads): on a shared machine the wall time follows the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_OUT = Path(__file__).resolve().parent / "out"


def dataset(rows: int, resources: int) -> Path:
    from reclaim.ingest import generate_sample

    # Stopped VMs stop billing, so ask for a little more than rows / resources days.
    days = math.ceil(rows / resources * 1.012)
    folder = BENCH_OUT / f"focus_{resources}x{days}"
    marker = folder / "done.json"
    if marker.exists():
        return folder
    started = time.perf_counter()
    files = generate_sample(folder, resources=resources, days=days, seed=11, table_format="parquet")
    elapsed = time.perf_counter() - started
    marker.write_text(json.dumps({"rows": files.billing_rows, "seconds": elapsed}))
    print(f"generated {files.billing_rows:,} FOCUS rows in {elapsed:.1f} s into {folder}")
    return folder


def parts(folder: Path, rows: int | None) -> list[Path]:
    """The Parquet parts holding the first ``rows`` rows (all of them when None)."""
    import polars as pl

    chosen: list[Path] = []
    total = 0
    for part in sorted((folder / "billing").glob("part-*.parquet")):
        chosen.append(part)
        total += pl.scan_parquet(part).select(pl.len()).collect().item()
        if rows is not None and total >= rows:
            break
    return chosen


def peak_mib() -> float:
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a worker would report the
    # parent's peak if that were higher.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work_reclaim(files: list[str], store: bool) -> dict[str, Any]:
    from reclaim.database import create_engine
    from reclaim.ingest import collect_facts, load_facts, save_collection
    from reclaim.store import upgrade

    started, cpu = time.perf_counter(), time.process_time()
    collection = collect_facts(files)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "rows": collection.report.rows,
        "resources": collection.facts.height,
        "cost_30d": collection.facts["cost_30d"].sum(),
        "peak_mib": peak_mib(),
    }
    if store:
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(f"sqlite:///{tmp}/bench.db")
            upgrade(engine)
            started = time.perf_counter()
            save_collection(engine, collection)
            result["store_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            assert load_facts(engine).height == collection.facts.height
            result["load_seconds"] = time.perf_counter() - started
            engine.dispose()
    return result


def work_pandas(files: list[str], rows: int) -> dict[str, Any]:
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    columns = [
        "ResourceId", "ResourceName", "ResourceType", "ProviderName", "SubAccountId",
        "SubAccountName", "BillingAccountId", "ServiceName", "ServiceCategory", "RegionId",
        "BillingCurrency", "EffectiveCost", "BilledCost", "ListCost", "ChargePeriodStart",
        "ChargePeriodEnd", "Tags",
    ]  # fmt: skip
    frame = pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)
    frame = frame.iloc[:rows]
    frame = frame[frame["ResourceId"].notna()]
    as_of = frame["ChargePeriodEnd"].max()
    in_30 = frame["ChargePeriodStart"] >= as_of - pd.Timedelta(days=30)
    in_7 = frame["ChargePeriodStart"] >= as_of - pd.Timedelta(days=7)
    frame = frame.assign(
        cost_30d=frame["EffectiveCost"].where(in_30, 0.0),
        billed_cost_30d=frame["BilledCost"].where(in_30, 0.0),
        list_cost_30d=frame["ListCost"].where(in_30, 0.0),
        cost_7d=frame["EffectiveCost"].where(in_7, 0.0),
    )
    facts = frame.groupby("ResourceId", sort=True).agg(
        cost_30d=("cost_30d", "sum"),
        billed_cost_30d=("billed_cost_30d", "sum"),
        list_cost_30d=("list_cost_30d", "sum"),
        cost_7d=("cost_7d", "sum"),
        first_seen=("ChargePeriodStart", "min"),
        last_seen=("ChargePeriodEnd", "max"),
        **{name: (name, "last") for name in columns[1:11]},
        tags=("Tags", "last"),
    )
    # Tags as a mapping per resource, as the facts table has them.
    facts["tags"] = facts["tags"].map(lambda text: json.loads(text) if text else None)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "rows": len(frame),
        "resources": len(facts),
        "cost_30d": float(facts["cost_30d"].sum()),
        "peak_mib": peak_mib(),
    }


def work_duckdb(files: list[str]) -> dict[str, Any]:
    import duckdb

    started, cpu = time.perf_counter(), time.process_time()
    connection = duckdb.connect()
    attributes = [
        "ResourceName", "ResourceType", "ProviderName", "SubAccountId", "SubAccountName",
        "BillingAccountId", "ServiceName", "ServiceCategory", "RegionId", "BillingCurrency",
        "Tags",
    ]  # fmt: skip
    latest = ", ".join(f"arg_max({name}, ChargePeriodEnd) AS {name}" for name in attributes)
    # The facts stay a DuckDB table (as a DuckDB user would keep them); only totals come out.
    query = f"""
        CREATE TEMP TABLE facts AS
        WITH bill AS (SELECT * FROM read_parquet(?) WHERE ResourceId IS NOT NULL),
        bounds AS (SELECT max(ChargePeriodEnd) AS as_of FROM bill)
        SELECT ResourceId,
            sum(CASE WHEN ChargePeriodStart >= as_of - INTERVAL 30 DAY
                THEN EffectiveCost ELSE 0 END) AS cost_30d,
            sum(CASE WHEN ChargePeriodStart >= as_of - INTERVAL 30 DAY
                THEN BilledCost ELSE 0 END) AS billed_cost_30d,
            sum(CASE WHEN ChargePeriodStart >= as_of - INTERVAL 30 DAY
                THEN ListCost ELSE 0 END) AS list_cost_30d,
            sum(CASE WHEN ChargePeriodStart >= as_of - INTERVAL 7 DAY
                THEN EffectiveCost ELSE 0 END) AS cost_7d,
            min(ChargePeriodStart) AS first_seen, max(ChargePeriodEnd) AS last_seen,
            {latest}
        FROM bill, bounds GROUP BY ResourceId ORDER BY ResourceId
    """
    connection.execute(query, [files])
    totals = connection.execute("SELECT count(*), sum(cost_30d) FROM facts").fetchone()
    rows = connection.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "rows": int(rows[0]) if rows else 0,
        "resources": int(totals[0]) if totals else 0,
        "cost_30d": float(totals[1]) if totals else 0.0,
        "peak_mib": peak_mib(),
    }


def subset(files: list[Path], rows: int, out: Path) -> Path:
    """The first ``rows`` rows as one Parquet file, so both tools read exactly the same data."""
    import polars as pl

    pl.scan_parquet(files).head(rows).sink_parquet(out)
    return out


def spawn(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pandas-rows", type=int, default=2_000_000)
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB peer")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas peer")
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "reclaim":
            store, *files = rest
            print(json.dumps(work_reclaim(files, store == "store")))
        elif kind == "duckdb":
            print(json.dumps(work_duckdb(rest)))
        else:
            rows, *files = rest
            print(json.dumps(work_pandas(files, int(rows))))
        return

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    folder = dataset(args.rows, args.resources)
    every = [str(p) for p in parts(folder, None)]
    full = [spawn("reclaim", "store" if i == 0 else "nostore", *every) for i in range(args.repeat)]
    rows = full[0]["rows"]
    runs = ", ".join(f"{run['seconds']:.2f}" for run in full)
    print(
        f"reclaim, {rows:,} FOCUS rows in {len(every)} Parquet parts → "
        f"{full[0]['resources']:,} resources: median {median(full, 'seconds'):.2f} s "
        f"(runs {runs}), CPU {median(full, 'cpu'):.2f} s, "
        f"peak {max(r['peak_mib'] for r in full):,.0f} MiB; "
        f"{rows / median(full, 'seconds') / 1e6:.2f} M rows/s"
    )
    print(
        f"  storing the facts as a collection in SQLite: {full[0]['store_seconds']:.2f} s, "
        f"loading them back: {full[0]['load_seconds']:.2f} s"
    )

    if not args.no_duckdb:
        duck = [spawn("duckdb", *every) for _ in range(args.repeat)]
        assert duck[0]["resources"] == full[0]["resources"], (duck[0], full[0])
        assert math.isclose(duck[0]["cost_30d"], full[0]["cost_30d"], rel_tol=1e-9)
        print(
            f"same {rows:,} rows, DuckDB SQL: median {median(duck, 'seconds'):.2f} s "
            f"(CPU {median(duck, 'cpu'):.2f} s), peak "
            f"{max(r['peak_mib'] for r in duck):,.0f} MiB; "
            f"time reclaim/DuckDB {median(full, 'seconds') / median(duck, 'seconds'):.2f}, "
            f"peak reclaim/DuckDB "
            f"{max(r['peak_mib'] for r in full) / max(r['peak_mib'] for r in duck):.2f}"
        )
    if args.no_pandas:
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        small = subset([Path(p) for p in every], args.pandas_rows, Path(tmp) / "subset.parquet")
        ours = [spawn("reclaim", "nostore", str(small)) for _ in range(args.repeat)]
        theirs = [spawn("pandas", str(args.pandas_rows), str(small)) for _ in range(args.repeat)]
    assert ours[0]["resources"] == theirs[0]["resources"], (ours[0], theirs[0])
    assert math.isclose(ours[0]["cost_30d"], theirs[0]["cost_30d"], rel_tol=1e-9)
    n = ours[0]["rows"]
    print(
        f"same {n:,} rows: reclaim median {median(ours, 'seconds'):.2f} s "
        f"(CPU {median(ours, 'cpu'):.2f} s), peak "
        f"{max(r['peak_mib'] for r in ours):,.0f} MiB; pandas median "
        f"{median(theirs, 'seconds'):.2f} s (CPU {median(theirs, 'cpu'):.2f} s), "
        f"peak {max(r['peak_mib'] for r in theirs):,.0f} MiB; "
        f"time pandas/reclaim {median(theirs, 'seconds') / median(ours, 'seconds'):.2f}, "
        f"peak pandas/reclaim "
        f"{max(r['peak_mib'] for r in theirs) / max(r['peak_mib'] for r in ours):.2f}"
    )


if __name__ == "__main__":
    main()
