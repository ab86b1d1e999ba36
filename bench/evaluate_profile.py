"""The weekly job's evaluate step alone, by phase: CPU, wall and peak RSS of each.

    python bench/evaluate_profile.py --data bench/out/e2e_1000000x30 \
        --work bench/out/evalfast [--src before=/tmp/before/src] [--src after=src] [--postgres URL]

Collects the folder once into a SQLite file kept under ``--work`` (``collected.sqlite``; reused
by later invocations, so 1 M x 30 days is collected once), then, for each ``--src`` (a source
tree put first on ``PYTHONPATH``, so the code before and after a change run the same script),
copies that file and runs the evaluate step as the weekly job does (``load_facts`` then
``recommend``) twice in fresh processes: ``first`` (every match new) and ``again`` (a later
run over the same facts: every recommendation seen again). With ``--postgres`` the collected
facts are copied into a fresh schema there instead (SQLite stays the source of the facts).

Phases are the functions the step calls, wrapped in the child: reading the facts, the rules,
the matches, loading the stored rows, the plan and the supersession, the write (stage load
and apply, and each SQL statement of the apply by its first words), the realized savings. A
thread samples VmRSS every 10 ms; a phase's peak is the highest sample while it ran (nested
phases are each reported). Linux only. On the shared machine quote CPU and peaks, with the
load.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collect_profile import _status

# (module, attribute) of what the evaluate step calls; absent ones are skipped, so the same
# list profiles code before and after a change.
PHASES: tuple[tuple[str, str], ...] = (
    ("reclaim.ingest", "load_facts"),
    ("reclaim.rules.ruleset", "RuleSet.evaluate_frame"),
    ("reclaim.recommend.recommender", "_matches_in_slices"),
    ("reclaim.recommend.recommender", "columns_of"),
    ("reclaim.recommend.store", "RecommendationStore.load_stored"),
    ("reclaim.recommend.recommender", "plan_reconcile"),
    ("reclaim.recommend.recommender", "supersede_plan"),
    ("reclaim.recommend.store", "RecommendationStore.write_plan"),
    ("reclaim.recommend.store", "RecommendationStore._load_stage"),
    ("reclaim.recommend.store", "RecommendationStore._apply_stage"),
    ("reclaim.recommend.recommender", "load_implemented"),
    ("reclaim.recommend.recommender", "realized_savings"),
    ("reclaim.recommend.recommender", "record_realized"),
)


class Phases:
    """Totals of CPU, wall and peak RSS per named phase (a phase may run several times)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            rss = _status("VmRSS")
            for name in list(self.open):
                self.peak[name] = max(self.peak.get(name, 0.0), rss)
            time.sleep(0.01)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def enter(self, name: str) -> tuple[float, float]:
        self.open[name] = self.open.get(name, 0) + 1
        self.peak[name] = max(self.peak.get(name, 0.0), _status("VmRSS"))
        return time.process_time(), time.perf_counter()

    def leave(self, name: str, started: tuple[float, float]) -> None:
        self.peak[name] = max(self.peak.get(name, 0.0), _status("VmRSS"))
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - started[0]
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - started[1]
        self.calls[name] = self.calls.get(name, 0) + 1
        self.open[name] -= 1
        if not self.open[name]:
            del self.open[name]


def _wrap(phases: Phases, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        started = phases.enter(name)
        try:
            return function(*args, **kwargs)
        finally:
            phases.leave(name, started)

    return wrapped


def _instrument(phases: Phases, engine: Any) -> None:
    import sqlalchemy as sa

    for module_name, attribute in PHASES:
        module = importlib.import_module(module_name)
        owner: Any = module
        *path, last = attribute.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, last):
            continue
        setattr(owner, last, _wrap(phases, attribute.split(".")[-1], getattr(owner, last)))

    # Each SQL statement by its first words (only the big ones matter: the apply's three).
    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = "sql: " + " ".join(statement.split()[:3])[:40]
        conn.info.setdefault("_phase", []).append((key, phases.enter(key)))

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        stack = conn.info.get("_phase")
        if stack:
            key, started = stack.pop()
            phases.leave(key, started)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)


def child(url: str, schema: str | None, run: str, now: str) -> dict[str, Any]:
    import reclaim.ingest as ingest
    from reclaim.database import create_engine
    from reclaim.recommend import load_pack, recommend

    engine = create_engine(url, schema=schema)
    phases = Phases()
    _instrument(phases, engine)
    import reclaim.recommend

    pack = load_pack(None)
    # As the weekly job reads them: only the columns the run reads, where the code says so.
    fact_columns = getattr(reclaim.recommend, "fact_columns", None)
    columns = {} if fact_columns is None else {"columns": fact_columns(pack)}
    cpu = time.process_time()
    wall = time.perf_counter()
    result = recommend(
        engine,
        ingest.load_facts(engine, **columns),
        pack,
        run_id=run,
        now=datetime.fromisoformat(now),
    )
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    phases.stop()
    engine.dispose()
    return {
        "cpu": cpu,
        "wall": wall,
        "peak_mib": _status("VmHWM"),
        "counts": result.counts,
        "monthly_savings": str(result.run.monthly_savings),
        "phases": {
            name: {
                "cpu": phases.cpu[name],
                "wall": phases.wall[name],
                "peak_mib": phases.peak.get(name, 0.0),
                "calls": phases.calls[name],
            }
            for name in phases.cpu
            if phases.wall[name] >= 0.05 or not name.startswith("sql:")
        },
    }


def collect(data: Path, target: Path) -> None:
    """Collect ``data`` into a migrated SQLite file ``target`` (once)."""
    if target.exists():
        return
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    code = (
        "import sys; from pathlib import Path\n"
        "from reclaim.database import create_engine\n"
        "from reclaim.store import upgrade\n"
        "from reclaim.ingest import collect_into\n"
        "engine = create_engine('sqlite:///' + sys.argv[1]); upgrade(engine)\n"
        "data = Path(sys.argv[2])\n"
        "collect_into(engine, [data / 'billing'], [data / 'inventory.parquet'], "
        "[data / 'utilization.parquet'])\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(partial), str(data)], check=True)
    partial.rename(target)
    print(f"collected {data} into {target} in {time.perf_counter() - started:.0f} s", flush=True)


def copy_to_postgres(source: Path, url: str, src: str) -> str:
    """A fresh schema on ``url`` holding the collected facts of ``source`` (SQLite)."""
    schema = "evalprof_" + uuid.uuid4().hex[:8]
    code = (
        "import sys\n"
        "import sqlalchemy as sa\n"
        "from reclaim.database import create_engine\n"
        "from reclaim.store import upgrade\n"
        "from reclaim.store.schema import metadata\n"
        "source = create_engine('sqlite:///' + sys.argv[1])\n"
        "admin = sa.create_engine(sys.argv[2])\n"
        "with admin.begin() as c: c.execute(sa.text(f'CREATE SCHEMA {sys.argv[3]}'))\n"
        "target = create_engine(sys.argv[2], schema=sys.argv[3]); upgrade(target)\n"
        "names = ['fact_collections', 'ingest_files', 'fact_chunks']\n"
        "with source.connect() as s, target.begin() as t:\n"
        "    for name in names:\n"
        "        if name not in metadata.tables: continue\n"
        "        table = metadata.tables[name]\n"
        "        rows = [dict(r._mapping) for r in s.execute(sa.select(table))]\n"
        "        if rows: t.execute(table.insert(), rows)\n"
    )
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([sys.executable, "-c", code, str(source), url, schema], check=True, env=env)
    return schema


def spawn(src: str, url: str, schema: str | None, run: str, now: datetime) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": src}
    args = [sys.executable, __file__, "--child", url, "--run", run, "--now", now.isoformat()]
    if schema:
        args += ["--schema", schema]
    done = subprocess.run(args, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"the run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def show(label: str, result: dict[str, Any], load: tuple[float, float]) -> None:
    counts = result["counts"]
    print(
        f"{label}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, peak "
        f"{result['peak_mib'] / 1024:.2f} GiB; matched {counts['matched']:,}, new "
        f"{counts['new']:,}, seen again {counts['seen_again']:,}, savings "
        f"{result['monthly_savings']}; load {load[0]:.1f} - {load[1]:.1f}",
        flush=True,
    )
    for name, figures in result["phases"].items():
        print(
            f"    {figures['peak_mib']:7.0f} MiB  CPU {figures['cpu']:6.1f} s  wall "
            f"{figures['wall']:6.1f} s  x{figures['calls']:<3d} {name}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--src", action="append", default=[], help="label=path of a src tree")
    parser.add_argument("--postgres", help="run on a fresh schema of this PostgreSQL instead")
    parser.add_argument("--only", choices=("first", "again"), help="run just one of the two")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.schema, args.run, args.now)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    collected = args.work / "collected.sqlite"
    collect(args.data, collected)
    sources = args.src or ["after=" + str(Path(__file__).resolve().parent.parent / "src")]
    first_now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    for source in sources:
        label, _, src = source.partition("=")
        src = str(Path(src).resolve())
        if args.postgres:
            url = args.postgres
            schema: str | None = copy_to_postgres(collected, url, src)
        else:
            work = args.work / f"run-{label}.sqlite"
            shutil.copyfile(collected, work)
            url, schema = f"sqlite:///{work}", None
        for index, kind in enumerate(("first", "again")):
            load_before = os.getloadavg()[0]
            result = spawn(src, url, schema, f"{kind}-{label}", first_now + timedelta(days=index))
            if args.only in (None, kind):
                show(f"{label} {kind}", result, (load_before, os.getloadavg()[0]))
            if args.only == "first":
                break
        if args.postgres and schema:
            import sqlalchemy as sa

            with sa.create_engine(args.postgres).begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        else:
            (args.work / f"run-{label}.sqlite").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
