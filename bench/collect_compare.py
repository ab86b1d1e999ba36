"""Collect the same files with two source trees and compare the facts and the report.

    python bench/collect_compare.py bench/out/e2e_1000000x30 \
        --src before=/work/main/src --src after=src --out bench/out/collect2/compare

The folder is one written by ``bench/e2e_bench.py`` (``billing/``, ``inventory.parquet``,
``utilization.parquet``), or a folder of billing files alone. Each tree runs
``collect_facts`` in a fresh interpreter (its ``src`` first on ``PYTHONPATH``), which writes
the facts to Parquet and the report to JSON, and prints its CPU, wall and peak. Then every
non-float column of the facts and every field of the report (every file, every bad row and
its reason) must be equal, and floats equal to ``--rel`` (1e-12) relative: the streaming
group-by adds in thread order, so two runs of one tree differ in the last bits already.
Exits non-zero when anything differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _child(folder: Path, out: Path) -> None:
    import polars as pl

    from reclaim.ingest import collect_facts

    cpu, wall = time.process_time(), time.perf_counter()
    if (folder / "billing").is_dir():
        collection = collect_facts(
            [folder / "billing"], [folder / "inventory.parquet"], [folder / "utilization.parquet"]
        )
    else:
        collection = collect_facts([folder])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    out.mkdir(parents=True, exist_ok=True)
    collection.facts.write_parquet(out / "facts.parquet")
    report = dataclasses.asdict(collection.report)
    (out / "report.json").write_text(json.dumps(report, default=str, indent=1), encoding="utf-8")
    assert isinstance(collection.facts, pl.DataFrame)
    print(
        f"  {collection.facts.height:,} resources, {collection.report.rows:,} rows; "
        f"CPU {cpu:.1f} s, wall {wall:.1f} s, peak {peak:.2f} GiB, load {os.getloadavg()[0]:.1f}"
    )


def _close(a: float, b: float, rel: float) -> bool:
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def _compare(first: Path, second: Path, rel: float) -> list[str]:
    import polars as pl

    problems: list[str] = []
    a = pl.read_parquet(first / "facts.parquet")
    b = pl.read_parquet(second / "facts.parquet")
    if a.schema != b.schema or a.height != b.height:
        return [f"facts differ in shape: {a.shape} {b.shape} or schema"]
    for name in a.columns:
        x, y = a.get_column(name), b.get_column(name)
        if x.dtype.is_float():
            nulls = (x.is_null() != y.is_null()).sum()
            gaps = pl.DataFrame({"x": x, "y": y}).select(
                gap=(pl.col("x") - pl.col("y")).abs(),
                scale=pl.max_horizontal(pl.col("x").abs(), pl.col("y").abs()),
            )
            far = gaps.select((pl.col("gap") > rel * pl.col("scale")).fill_null(False).sum())
            far = int(far.item())
            worst = gaps.select((pl.col("gap") / pl.col("scale")).fill_nan(0.0).max()).item()
            if nulls or far:
                problems.append(f"{name}: {nulls} nulls and {far} values differ beyond {rel}")
            elif worst:
                print(f"  {name}: floats differ by at most {worst:.2e} relative")
        elif not x.equals(y, check_names=True, null_equal=True):
            problems.append(f"{name}: {(x.ne_missing(y)).sum()} values differ")
    ra = json.loads((first / "report.json").read_text(encoding="utf-8"))
    rb = json.loads((second / "report.json").read_text(encoding="utf-8"))
    ua, ub = ra.pop("unattributed_cost"), rb.pop("unattributed_cost")
    if not _close(ua, ub, rel):
        problems.append(f"unattributed cost {ua} against {ub}")
    if ra != rb:
        problems.append("the reports differ (files, rows, bad rows or their reasons)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--src", action="append", default=[], help="name=path of a src tree")
    parser.add_argument("--out", type=Path, default=Path("bench/out/collect_compare"))
    parser.add_argument("--rel", type=float, default=1e-12)
    parser.add_argument(
        "--no-run", action="store_true", help="compare what an earlier run wrote to --out"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.folder, args.child)
        return
    trees = [tuple(spec.split("=", 1)) for spec in args.src]
    if len(trees) != 2:
        parser.error("give two trees: --src before=PATH --src after=PATH")
    for name, src in [] if args.no_run else trees:
        print(f"{name} ({src}):", flush=True)
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        subprocess.run(
            [sys.executable, __file__, str(args.folder), "--child", str(args.out / name)],
            env=env,
            check=True,
        )
    problems = _compare(args.out / trees[0][0], args.out / trees[1][0], args.rel)
    for problem in problems:
        print("DIFFERS:", problem)
    print("same facts and report" if not problems else f"{len(problems)} difference(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
