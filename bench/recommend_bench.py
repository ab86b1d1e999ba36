"""Recommend at scale: the built-in pack over N resources, from a facts file to stored rows.

    python bench/recommend_bench.py --resources 1000000 [--postgres URL] [--repeat 3]

The data come from the ingest engineer's generator: ``reclaim.ingest.sample.generate_sample``
writes a realistic estate of ``--base`` resources (FOCUS Parquet, inventory, utilization),
``collect_facts`` turns it into the per-resource facts table, and the table is tiled up to
``--resources`` rows with fresh resource ids (and costs jittered per copy), then written as one
Parquet file: the input of ``reclaim recommend --facts``.

Measured, per backend, each a median of ``--repeat`` runs on a fresh database:

- run 1 "first": empty store; read the Parquet facts, evaluate the pack (columnar), plan, write
  every recommendation and its observation;
- run 2 "again": the same facts a week later: every recommendation seen again (update, no
  duplicate), one observation each;
- run 3 "churn": 10% of the resources gone (resolved), 5% new ones.

The peer, in the same script: the straightforward way (evaluate each fact with the row
evaluator, then per recommendation SELECT by fingerprint and INSERT or UPDATE) over
``--peer-resources`` resources, reported as resources per second next to ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import sqlalchemy as sa

from reclaim.database import create_engine
from reclaim.ingest import conform_facts
from reclaim.ingest.collector import collect_facts
from reclaim.ingest.sample import generate_sample
from reclaim.recommend import fingerprint, load_pack, recommend
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def base_facts(base: int, workdir: Path) -> pl.DataFrame:
    started = time.perf_counter()
    files = generate_sample(workdir / "sample", resources=base, days=35, seed=5)
    facts = collect_facts([files.billing], [files.inventory], [files.utilization]).facts
    print(
        f"base estate: {base:,} resources generated and collected in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return facts


def tile(facts: pl.DataFrame, resources: int) -> pl.DataFrame:
    """``resources`` rows: copies of ``facts`` with fresh ids and costs scaled per copy."""
    copies = -(-resources // facts.height)
    parts = []
    for copy in range(copies):
        scale = 1.0 + 0.01 * (copy % 17)
        parts.append(
            facts.with_columns(
                (pl.col("resource_id") + pl.lit(f"#{copy}")).alias("resource_id"),
                pl.col("cost_30d") * scale,
                pl.col("billed_cost_30d") * scale,
                pl.col("cost_7d") * scale,
            )
        )
    return pl.concat(parts).head(resources)


def churn(facts: pl.DataFrame) -> pl.DataFrame:
    """10% of resources gone, 5% new (copies of others with new ids)."""
    n = facts.height
    kept = facts.slice(n // 10, n - n // 10)
    new = facts.slice(0, n // 20).with_columns(
        (pl.col("resource_id") + pl.lit("#new")).alias("resource_id")
    )
    return pl.concat([kept, new])


def fresh_engine(backend: str, postgres: str | None, workdir: Path) -> tuple[sa.Engine, Any]:
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        engine = create_engine(f"sqlite:///{path}")
        return engine, lambda: (
            engine.dispose(),
            [p.unlink() for p in workdir.glob(path.name + "*")],
        )
    assert postgres
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(postgres, schema=schema)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


def one_round(
    backend: str, postgres: str | None, facts_path: Path, churn_path: Path, workdir: Path
) -> dict[str, Any]:
    engine, cleanup = fresh_engine(backend, postgres, workdir)
    try:
        upgrade(engine)
        pack = load_pack()
        timings: dict[str, Any] = {}
        for name, path, now in (
            ("first", facts_path, NOW),
            ("again", facts_path, NOW + timedelta(days=7)),
            ("churn", churn_path, NOW + timedelta(days=14)),
        ):
            started = time.perf_counter()
            cpu_started = time.process_time()
            facts = conform_facts(pl.read_parquet(path)).collect()
            read = time.perf_counter() - started
            result = recommend(engine, facts, pack, run_id=name, now=now)
            total = time.perf_counter() - started
            timings[name] = {
                "seconds": total,
                "cpu": time.process_time() - cpu_started,
                "read": read,
                **{k: round(v, 2) for k, v in result.timings.items()},
                "counts": result.counts,
            }
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(sa.func.count()).select_from(recommendations)
            ).scalar_one()
        timings["rows"] = rows
        return timings
    finally:
        cleanup()


def peer(facts: pl.DataFrame, workdir: Path) -> float:
    """The straightforward way: row evaluator, then per recommendation SELECT and INSERT/UPDATE."""
    engine, cleanup = fresh_engine("sqlite", None, workdir)
    try:
        upgrade(engine)
        pack = load_pack()
        rec = recommendations
        started = time.perf_counter()
        with engine.begin() as connection:
            for fact in facts.iter_rows(named=True):
                for match in pack.evaluate(fact, now=NOW).matches:
                    key = fingerprint(match.rule_id, fact["resource_id"], fact["account_id"])
                    found = connection.execute(
                        sa.select(rec.c.id, rec.c.times_seen).where(rec.c.fingerprint == key)
                    ).first()
                    params = dict(match.params)
                    savings = params.get("savings") or 0
                    if found is None:
                        connection.execute(
                            rec.insert().values(
                                fingerprint=key,
                                rule_id=match.rule_id,
                                resource_id=fact["resource_id"],
                                account_id=fact["account_id"],
                                status="open",
                                monthly_savings=savings,
                                params=json.loads(json.dumps(params, default=str)),
                                first_seen=NOW,
                                last_seen=NOW,
                                times_seen=1,
                                status_changed_at=NOW,
                                version=1,
                            )
                        )
                    else:
                        connection.execute(
                            rec.update()
                            .where(rec.c.id == found.id)
                            .values(
                                last_seen=NOW,
                                times_seen=found.times_seen + 1,
                                monthly_savings=savings,
                            )
                        )
        return facts.height / (time.perf_counter() - started)
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("RECLAIM_TEST_POSTGRES_URL"))
    parser.add_argument("--peer-resources", type=int, default=20_000)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    process = psutil.Process()
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="reclaim-recommend-bench-") as tmp:
        workdir = Path(tmp)
        base = base_facts(args.base, workdir)
        facts = tile(base, args.resources)
        facts_path = workdir / "facts.parquet"
        churn_path = workdir / "facts-churn.parquet"
        facts.write_parquet(facts_path)
        churn(facts).write_parquet(churn_path)
        print(
            f"facts file: {facts.height:,} resources, "
            f"{facts_path.stat().st_size / 2**20:.0f} MiB Parquet"
        )
        peer_facts = facts.head(args.peer_resources)
        del facts, base
        backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
        medians: dict[str, dict[str, float]] = {}
        for backend in backends:
            rounds = [
                one_round(backend, args.postgres, facts_path, churn_path, workdir)
                for _ in range(args.repeat)
            ]
            last = rounds[-1]
            print(f"\n{backend}: {last['rows']:,} recommendations stored")
            medians[backend] = {}
            for name in ("first", "again", "churn"):
                seconds = statistics.median(r[name]["seconds"] for r in rounds)
                medians[backend][name] = seconds
                detail = {k: v for k, v in last[name].items() if k not in ("seconds", "counts")}
                print(
                    f"  {name:6s} median {seconds:6.1f} s  "
                    f"({args.resources / seconds:,.0f} resources/s)  last run: {detail}"
                )
                print(f"         counts {last[name]['counts']}")
        print(
            f"\npeak RSS {process.memory_info().rss / 2**30:.2f} GiB (current; see ru_maxrss below)"
        )
        try:
            import resource

            print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
        except ImportError:
            pass
        if not args.skip_peer:
            rate = peer(peer_facts, workdir)
            ours = args.resources / medians["sqlite"]["first"]
            print(
                f"\npeer (row evaluator + per-row SELECT/INSERT, SQLite) over "
                f"{peer_facts.height:,} resources: {rate:,.0f} resources/s; "
                f"ours (first run, SQLite): {ours:,.0f} resources/s = {ours / rate:.1f}x"
            )


if __name__ == "__main__":
    main()
