"""Same money before and after a change of the evaluate step: every row the runs write, compared.

    python bench/evaluate_money.py --work bench/out/evalfast \
        --src before=/tmp/before/src --src after=src [--postgres URL] [--stage-batch 7000]

Over the facts of ``generate_sample(resources=100_000, days=7, seed=5)`` (generated and
collected once into ``--work``, with the first ``--src``, so every tree reads the same facts),
each source tree (put first on ``PYTHONPATH``) runs three recommend runs in a fresh process on
a copy of that database (or a fresh PostgreSQL schema): ``new`` (every match new), ``again``
(the same facts a day later: every recommendation seen again) and ``gone`` (a tenth of the
resources left out of the facts two days later: their recommendations resolve). Then every
column of every recommendation, observation and run record (except the runs' ``started_at``,
the wall clock) is dumped in key order and the dumps of the trees compared. ``--stage-batch``
makes the write go through its stage in small batches, so the batching is exercised too.
Exit status 1 when any tree differs from the first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evaluate_profile import copy_to_postgres

_TABLES = {
    "recommendations": "id",
    "observations": "recommendation_id, run_id",
    "recommendation_runs": "id",
}
_RUNS = ("new", "again", "gone")


def child(url: str, schema: str | None, dump: str, stage_batch: int | None) -> None:
    import polars as pl
    import sqlalchemy as sa

    import reclaim.recommend.store as store_module
    from reclaim.database import create_engine
    from reclaim.ingest import load_facts
    from reclaim.recommend import recommend
    from reclaim.recommend.pack import load_pack

    if stage_batch:
        store_module.STAGE_BATCH = stage_batch  # type: ignore[misc]
    engine = create_engine(url, schema=schema)
    ruleset = load_pack(None)
    start = datetime(2026, 12, 7, 12, tzinfo=UTC)
    summary = []
    import reclaim.recommend

    # As the weekly job reads them: only the columns the run reads, where the code says so.
    fact_columns = getattr(reclaim.recommend, "fact_columns", None)
    load_kwargs = {} if fact_columns is None else {"columns": fact_columns(ruleset)}
    for index, name in enumerate(_RUNS):
        facts = load_facts(engine, **load_kwargs)
        if name == "gone":
            # A tenth of the resources, picked by their id, gone from the bill.
            facts = facts.filter(pl.col("resource_id").hash(seed=1) % 10 != 0)
        result = recommend(
            engine, facts, ruleset, run_id=f"run-{name}", now=start + timedelta(days=index)
        )
        del facts
        summary.append({"run": name, **result.counts, "savings": str(result.run.monthly_savings)})
    digest = hashlib.sha256()
    rows = 0
    with open(dump, "w") as out, engine.connect() as connection:
        for table, key in _TABLES.items():
            query = f"SELECT * FROM {table} ORDER BY {key}"
            table_rows = connection.execute(sa.text(query))
            columns = [
                c
                for c in table_rows.keys()  # noqa: SIM118 (a Result, not a dict)
                if not (table == "recommendation_runs" and c == "started_at")
            ]
            for row in table_rows:
                values = row._mapping
                canonical = [
                    # The rule file's path is inside the source tree that ran.
                    Path(values[c]).name if c == "rules" else _canonical(values[c])
                    for c in columns
                ]
                line = json.dumps([table, *canonical], ensure_ascii=False)
                out.write(line + "\n")
                digest.update(line.encode())
                rows += 1
    engine.dispose()
    print(json.dumps({"runs": summary, "rows": rows, "sha256": digest.hexdigest()}))


def _canonical(value: Any) -> Any:
    """One text per value on either backend (SQLite gives floats and text, PostgreSQL
    Decimals, datetimes and parsed JSON)."""
    from decimal import Decimal

    if value is None:
        return None
    if isinstance(value, (float, Decimal)):
        return f"{Decimal(str(value)):.4f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, bool):
        return int(value)
    return value


def prepare(work: Path, src: str) -> Path:
    """The 100,000-resource sample, collected once into a SQLite file."""
    data = work / "sample_100000x7"
    collected = work / "money-collected.sqlite"
    if collected.exists():
        return collected
    code = (
        "import sys; from pathlib import Path\n"
        "from reclaim.database import create_engine\n"
        "from reclaim.store import upgrade\n"
        "from reclaim.ingest import collect_into, generate_sample\n"
        "data = Path(sys.argv[2])\n"
        "if not (data / 'DONE').exists():\n"
        "    generate_sample(data, resources=100_000, days=7, seed=5, table_format='parquet')\n"
        "    (data / 'DONE').write_text('done')\n"
        "engine = create_engine('sqlite:///' + sys.argv[1]); upgrade(engine)\n"
        "collect_into(engine, [data / 'billing'], [data / 'inventory.parquet'], "
        "[data / 'utilization.parquet'])\n"
    )
    partial = work / "money-collected.partial"
    partial.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-c", code, str(partial), str(data)],
        check=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    partial.rename(collected)
    return collected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--src", action="append", default=[], help="label=path of a src tree")
    parser.add_argument("--postgres")
    parser.add_argument("--stage-batch", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.schema, args.dump, args.stage_batch or None)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    sources = [
        (label, str(Path(path).resolve()))
        for label, _, path in (source.partition("=") for source in args.src)
    ]
    collected = prepare(args.work, sources[0][1])
    backend = "postgresql" if args.postgres else "sqlite"
    results: dict[str, dict[str, Any]] = {}
    for label, src in sources:
        if args.postgres:
            url, schema = args.postgres, copy_to_postgres(collected, args.postgres, src)
        else:
            work = args.work / f"money-{label}.sqlite"
            shutil.copyfile(collected, work)
            url, schema = f"sqlite:///{work}", None
        dump = args.work / f"money-{backend}-{label}.jsonl"
        command = [sys.executable, __file__, "--child", url, "--dump", str(dump)]
        if schema:
            command += ["--schema", schema]
        if args.stage_batch:
            command += ["--stage-batch", str(args.stage_batch)]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}
        )
        if done.returncode:
            sys.exit(f"{label} failed:\n{done.stderr[-4000:]}")
        results[label] = json.loads(done.stdout.strip().splitlines()[-1])
        results[label]["dump"] = str(dump)
        if schema:
            import sqlalchemy as sa

            with sa.create_engine(args.postgres).begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        else:
            (args.work / f"money-{label}.sqlite").unlink(missing_ok=True)
        print(
            f"{backend} {label}: {results[label]['rows']:,} rows, sha256 "
            f"{results[label]['sha256'][:16]}",
            flush=True,
        )
        for run in results[label]["runs"]:
            print("    " + json.dumps(run), flush=True)
    first = sources[0][0]
    differ = [label for label in results if results[label]["sha256"] != results[first]["sha256"]]
    for label in differ:
        with open(results[first]["dump"]) as a, open(results[label]["dump"]) as b:
            shown = 0
            for number, (left, right) in enumerate(zip(a, b, strict=False)):
                if left != right and shown < 5:
                    print(
                        f"  line {number}: {first} {left.strip()[:300]}\n"
                        f"           {label} {right.strip()[:300]}"
                    )
                    shown += 1
    print("identical" if not differ else f"DIFFERENT: {', '.join(differ)}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
