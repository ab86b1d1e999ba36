"""Where the weekly job's first run peaks: VmRSS sampled every 50 ms, with the phase it is in.

    python bench/peak_profile.py bench/out/e2e_1000000x30 [--db PATH]

Runs what ``bench/e2e_bench.py``'s ``first`` run does (a fresh, migrated SQLite database;
``run_weekly`` collects the files then evaluates the built-in pack) in this process. Phases are
``collect_facts``'s progress messages and the functions the steps call, wrapped here (a wrapper
names the phase on entry and ``after <name>`` on exit). Prints per phase: VmRSS when it began,
its highest VmRSS, CPU and wall; then the process's VmHWM. Linux only (``/proc/self/status``).
A figure for a shared machine: quote CPU and peaks, with the load.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collect_profile import _status


class Phases:
    def __init__(self) -> None:
        self.name = "start"
        self.order: list[str] = ["start"]
        self.began: dict[str, float] = {"start": _status("VmRSS")}
        self.peaks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._entered = (time.process_time(), time.perf_counter())

    def enter(self, name: str) -> None:
        now = (time.process_time(), time.perf_counter())
        self.cpu[self.name] = self.cpu.get(self.name, 0.0) + now[0] - self._entered[0]
        self.wall[self.name] = self.wall.get(self.name, 0.0) + now[1] - self._entered[1]
        self._entered = now
        name = name[:50]
        if name not in self.began:
            self.order.append(name)
            self.began[name] = _status("VmRSS")
        self.name = name

    def sample(self, done: threading.Event) -> None:
        while not done.is_set():
            name = self.name
            self.peaks[name] = max(self.peaks.get(name, 0.0), _status("VmRSS"))
            time.sleep(0.05)


def _wrap(phases: Phases, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        phases.enter(name)
        try:
            return function(*args, **kwargs)
        finally:
            phases.enter(f"after {name}")

    return wrapped


WRAPPED = (
    "reclaim.ingest.ledger.save_collection",
    "reclaim.pipeline.load_facts",
    "reclaim.rules.RuleSet.evaluate_frame",
    "reclaim.recommend.recommender.matches_from_frame",
    "reclaim.recommend.store.RecommendationStore.load_stored",
    "reclaim.recommend.recommender.plan_reconcile",
    "reclaim.recommend.recommender.supersede_plan",
    "reclaim.recommend.store.RecommendationStore.write_plan",
    "reclaim.recommend.store.RecommendationStore._insert_new",
    "reclaim.recommend.store.RecommendationStore._load_stage",
    "reclaim.recommend.recommender.load_implemented",
    "reclaim.recommend.recommender.realized_savings",
)


def _install(phases: Phases) -> None:
    for path in WRAPPED:
        parts = path.split(".")
        for split in range(len(parts) - 1, 0, -1):
            try:
                owner: Any = importlib.import_module(".".join(parts[:split]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[split:-1]:
                owner = getattr(owner, attribute)
            setattr(owner, parts[-1], _wrap(phases, parts[-1], getattr(owner, parts[-1])))
            break
    import reclaim.pipeline

    collect_into = reclaim.pipeline.collect_into

    def collect_with_progress(*args: Any, **kwargs: Any) -> Any:
        phases.enter("collect")
        try:
            return collect_into(*args, progress=phases.enter, **kwargs)
        finally:
            phases.enter("after collect")

    reclaim.pipeline.collect_into = collect_with_progress  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--db", help="the SQLite file (default: a temporary one)")
    args = parser.parse_args()

    from reclaim.database import create_engine
    from reclaim.pipeline import WeeklyInput, run_weekly
    from reclaim.store import upgrade

    phases = Phases()
    _install(phases)
    with tempfile.TemporaryDirectory(dir=args.data.parent) as tmp:
        engine = create_engine(f"sqlite:///{args.db or Path(tmp) / 'peak.db'}")
        upgrade(engine)
        spec = WeeklyInput(
            billing=[str(args.data / "billing")],
            inventory=[str(args.data / "inventory.parquet")],
            utilization=[str(args.data / "utilization.parquet")],
        )
        done = threading.Event()
        sampler = threading.Thread(target=phases.sample, args=(done,), daemon=True)
        load = os.getloadavg()[0]
        cpu, wall = time.process_time(), time.perf_counter()
        sampler.start()
        run = run_weekly(engine, spec)
        phases.enter("end")
        done.set()
        sampler.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        engine.dispose()
    print(f"{'phase':<52} {'began':>7} {'peak':>7} {'CPU':>7} {'wall':>7}  (MiB, s)")
    for name in phases.order:
        print(
            f"{name:<52} {phases.began[name]:7.0f} {phases.peaks.get(name, 0.0):7.0f} "
            f"{phases.cpu.get(name, 0.0):7.1f} {phases.wall.get(name, 0.0):7.1f}"
        )
    top = max(phases.peaks, key=lambda name: phases.peaks[name])
    print(
        f"counts {run.recommend.counts}\n"
        f"CPU {cpu:.1f} s, wall {wall:.1f} s, VmHWM {_status('VmHWM'):.0f} MiB "
        f"(highest sample in {top!r}), load {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
