"""What orchestrating Terraform stacks costs: reclaim infra beside a bare loop over Terraform.

50 stacks in a DAG of depth 5 (10 per level; each stack past level 1 reads two stacks of the
level above through ``terraform_remote_state``), built-in ``terraform_data`` resources only, so
nothing but Terraform itself is measured. Each configuration runs on a fresh copy of the stacks:

- ``bare``: a plain loop in topological order, one stack at a time: ``init``, ``plan -out``,
  ``show -json``, ``apply`` — the Terraform work reclaim does per stack, with no durable
  engine, no policy check, no locks and no output history. The floor.
- ``reclaim N``: ``reclaim infra apply`` over the DAG with N slots.
- ``cascade``: after a full apply, the one global stack ``g00_0`` changes an input; the run
  trigger re-plans and re-applies exactly the stacks that read it, directly or not.

"stacks' own time" is the sum of the wall times of the Terraform processes a run started;
at 1 slot, the overhead is the rest of the run's wall time. CPU times are this process's own
(the orchestrator: durable checkpoints, policy checks, locks) against its children's
(Terraform). The machine is shared: the load average is printed beside the figures.

Run: .venv/bin/python bench/infra_bench.py [--stacks 50] [--depth 5] [--slots 1 2 4]
     [--repeats 1] [--terraform terraform|embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reclaim.infra import Orchestrator, Terraform, load_config
from reclaim.infra.terraform import Result
from reclaim.store import create_engine, upgrade

_STACK = """\
variable "value" {{
  type    = string
  default = "v1"
}}
{reads}
resource "terraform_data" "this" {{
  input = join("+", [var.value{inputs}])
}}

output "value" {{
  value = sha256(terraform_data.this.output)
}}
"""

_READ = """\
data "terraform_remote_state" "{source}" {{
  backend = "local"
  config = {{ path = "../{source}/terraform.tfstate" }}
}}
"""


def build(root: Path, stacks: int, depth: int, global_value: str = "v1") -> dict[str, list[str]]:
    """Write the stacks and reclaim-infra.yaml; return {stack: the stacks it reads}."""
    per_level = max(1, stacks // depth)
    levels = [[f"g{level:02d}_{i}" for i in range(per_level)] for level in range(depth)]
    graph: dict[str, list[str]] = {}
    for level, names in enumerate(levels):
        for index, name in enumerate(names):
            above = levels[level - 1] if level else []
            reads = (
                sorted({above[index % len(above)], above[(index + 1) % len(above)]})
                if above
                else []
            )
            graph[name] = reads
    root.mkdir(parents=True, exist_ok=True)
    for name, reads in graph.items():
        (root / name).mkdir(exist_ok=True)
        (root / name / "main.tf").write_text(
            _STACK.format(
                reads="".join(_READ.format(source=s) for s in reads),
                inputs="".join(f", data.terraform_remote_state.{s}.outputs.value" for s in reads),
            )
        )
    write_config(root, graph, global_value)
    return graph


def write_config(root: Path, graph: dict[str, list[str]], global_value: str) -> None:
    document = {
        "terraform": "terraform",
        "policies": [],
        "global_outputs": ["g00_0"],
        "stacks": {
            name: {"auto_apply": True, "vars": {"value": global_value if name == "g00_0" else "v1"}}
            for name in graph
        },
    }
    (root / "reclaim-infra.yaml").write_text(json.dumps(document, indent=2))


class TimedTerraform(Terraform):
    """Records the wall time of every Terraform process it starts."""

    def __init__(self, command: Sequence[str]) -> None:
        super().__init__(command)
        self.spans: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def _run(
        self, stack: str, folder: Path, args: list[str], log: Path | None, *, stream: bool
    ) -> Result:
        start = time.perf_counter()
        try:
            return super()._run(stack, folder, args, log, stream=stream)
        finally:
            with self._lock:
                self.spans.append((stack, start, time.perf_counter()))

    def own_time(self) -> float:
        return sum(end - start for _stack, start, end in self.spans)


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def bare(root: Path, graph: dict[str, list[str]], terraform: TimedTerraform) -> float:
    """The floor: the same Terraform commands per stack, one after another, nothing else."""
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(graph):
        for name, reads in graph.items():
            if name not in done and all(r in done for r in reads):
                order.append(name)
                done.add(name)
    start = time.perf_counter()
    for name in order:
        folder = root / name
        plan = folder / "bare.tfplan"
        terraform.init(name, folder)
        terraform.plan(name, folder, plan, variables={"value": "v1"})
        terraform.show_json(name, folder, plan)
        result = terraform.apply(name, folder, plan)
        if result.code:
            raise SystemExit(result.stdout)
    return time.perf_counter() - start


def measure(
    kind: str, slots: int, args: argparse.Namespace, command: Sequence[str]
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="infra-bench-"))
    try:
        root = workdir / "repo"
        graph = build(root, args.stacks, args.depth)
        engine = create_engine(f"sqlite:///{workdir / 'reclaim.db'}")
        upgrade(engine)
        terraform = TimedTerraform(command)
        cpu_before = _cpu()
        ran = len(graph)
        if kind == "bare":
            wall = bare(root, graph, terraform)
        else:
            orchestrator = Orchestrator(load_config(root), engine, slots=slots, terraform=terraform)
            start = time.perf_counter()
            run = orchestrator.run("apply")
            wall = time.perf_counter() - start
            assert all(s.status == "applied" for s in run.stacks), run
            if kind == "cascade":
                write_config(root, graph, "v2")
                terraform.spans.clear()
                cpu_before = _cpu()
                orchestrator = Orchestrator(
                    load_config(root), engine, slots=slots, terraform=terraform
                )
                start = time.perf_counter()
                run = orchestrator.run("apply", ["g00_0"])
                wall = time.perf_counter() - start
                ran = sum(1 for s in run.stacks if s.status == "applied")
        cpu_after = _cpu()
        engine.dispose()
        return {
            "wall": wall,
            "own": terraform.own_time(),
            "stacks": ran,
            "cpu_self": cpu_after[0] - cpu_before[0],
            "cpu_children": cpu_after[1] - cpu_before[1],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=50)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--terraform", default="terraform")
    args = parser.parse_args()
    command = (
        Terraform.from_setting(args.terraform).command
        if args.terraform != "terraform"
        else Terraform.from_setting("terraform").command
    )
    version = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
    print(
        f"{version.stdout.splitlines()[0] if version.stdout else command}, "
        f"{args.stacks} stacks, depth {args.depth}, load average {os.getloadavg()[0]:.1f}"
    )
    configurations = [("bare", 1)] + [("reclaim", n) for n in args.slots] + [("cascade", 4)]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configurations}
    for _ in range(args.repeats):
        for kind, slots in configurations:  # interleaved, so load drifts hit all alike
            results[(kind, slots)].append(measure(kind, slots, args, command))
    floor = statistics.median(r["wall"] for r in results[("bare", 1)])
    print(
        f"{'run':<12}{'slots':>6}{'stacks':>8}{'wall s':>9}{'own s':>9}{'own/wall':>10}"
        f"{'vs bare':>9}{'cpu self':>10}{'cpu tf':>9}"
    )
    for (kind, slots), runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        own = statistics.median(r["own"] for r in runs)
        print(
            f"{kind:<12}{slots:>6}{runs[0]['stacks']:>8}{wall:>9.1f}{own:>9.1f}{own / wall:>10.2f}"
            f"{wall / floor:>9.2f}{statistics.median(r['cpu_self'] for r in runs):>10.1f}"
            f"{statistics.median(r['cpu_children'] for r in runs):>9.1f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
