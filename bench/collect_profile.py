"""Collect alone, in one process: CPU, wall and peak memory, and the peak of each phase.

    python bench/collect_profile.py bench/out/e2e_1000000x30

The folder is one written by ``bench/e2e_bench.py`` (``billing/``, ``inventory.parquet``,
``utilization.parquet``). ``collect_facts`` names its phases through its ``progress`` callback;
a thread samples VmRSS every 20 ms and keeps the highest value per phase; the CPU and wall
time between two messages are the phase's. Linux only (reads
``/proc/self/status``). A figure for the shared machine: quote CPU and peaks, with the load.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path


def _status(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from reclaim.ingest import collect_facts

    data = Path(sys.argv[1])
    phase = ["start"]
    peaks: dict[str, float] = {}
    cpu_in: dict[str, float] = {}
    wall_in: dict[str, float] = {}
    entered = [time.process_time(), time.perf_counter()]

    def enter(message: str) -> None:
        # CPU and wall time are charged to the phase being left.
        now = [time.process_time(), time.perf_counter()]
        cpu_in[phase[0]] = cpu_in.get(phase[0], 0.0) + now[0] - entered[0]
        wall_in[phase[0]] = wall_in.get(phase[0], 0.0) + now[1] - entered[1]
        entered[:] = now
        phase[0] = message[:60]

    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = _status("VmRSS")
            peaks[phase[0]] = max(peaks.get(phase[0], 0.0), now)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = os.getloadavg()[0]
    cpu = time.process_time()
    wall = time.perf_counter()
    collection = collect_facts(
        [data / "billing"],
        [data / "inventory.parquet"],
        [data / "utilization.parquet"],
        progress=enter,
    )
    enter("end")
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    done.set()
    sampler.join()
    print(
        f"{data.name}: {collection.report.rows:,} rows read, {collection.facts.height:,} "
        f"resources; CPU {cpu:.1f} s, wall {wall:.1f} s, peak {_status('VmHWM') / 1024:.2f} GiB; "
        f"load {load:.1f} - {os.getloadavg()[0]:.1f}"
    )
    for name, peak in peaks.items():
        print(
            f"  {peak:8.0f} MiB  CPU {cpu_in.get(name, 0.0):6.1f} s  "
            f"wall {wall_in.get(name, 0.0):6.1f} s  {name}"
        )


if __name__ == "__main__":
    main()
