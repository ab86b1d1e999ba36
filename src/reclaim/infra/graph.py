"""The stacks' dependency DAG: checked for cycles, ordered, selected, drawn."""

from __future__ import annotations

__all__ = ["GraphFormat", "StackGraph"]

import itertools
from collections.abc import Iterable, Mapping
from typing import Literal

from reclaim.errors import ConfigError
from reclaim.infra.config import Edge, InfraConfig

GraphFormat = Literal["text", "dot", "mermaid"]


class StackGraph:
    """Stacks and their edges (``source`` before ``reader``), known to be acyclic.

    A cycle is a ``ConfigError`` that names every stack on it and the file and line of each
    edge, so both ends can be found.
    """

    def __init__(self, config: InfraConfig) -> None:
        self.config = config
        self.names: tuple[str, ...] = tuple(config.stacks)
        self.edges: tuple[Edge, ...] = config.edges
        self._upstream: dict[str, list[str]] = {name: [] for name in self.names}
        self._downstream: dict[str, list[str]] = {name: [] for name in self.names}
        for edge in self.edges:
            self._upstream[edge.reader].append(edge.source)
            self._downstream[edge.source].append(edge.reader)
        self.order: tuple[str, ...] = self._topological_order()
        self.depth: Mapping[str, int] = self._depths()

    def upstream(self, name: str) -> tuple[str, ...]:
        """The stacks ``name`` depends on (declared or through remote state)."""
        return tuple(self._upstream[name])

    def downstream(self, name: str) -> tuple[str, ...]:
        """The stacks that depend on ``name``: those its run triggers may start."""
        return tuple(self._downstream[name])

    def select(self, targets: Iterable[str]) -> tuple[str, ...]:
        """``targets`` and every stack downstream of them, in topological order.

        No targets means every stack. The downstream ones are in the run because a changed
        output may trigger them; whether they run is decided as the run goes.
        """
        wanted = list(targets)
        for name in wanted:
            self.config.stack(name)  # unknown names are a ConfigError listing the known ones
        if not wanted:
            return self.order
        chosen: set[str] = set()
        pending = list(wanted)
        while pending:
            name = pending.pop()
            if name not in chosen:
                chosen.add(name)
                pending.extend(self._downstream[name])
        return tuple(name for name in self.order if name in chosen)

    def _topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm in declaration order, so one configuration always gives one order.
        remaining = {name: len(set(self._upstream[name])) for name in self.names}
        ready = [name for name in self.names if remaining[name] == 0]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for reader in dict.fromkeys(self._downstream[name]):
                remaining[reader] -= 1
                if remaining[reader] == 0:
                    ready.append(reader)
        if len(order) < len(self.names):
            raise self._cycle_error({name for name in self.names if name not in order})
        return tuple(order)

    def _cycle_error(self, stuck: set[str]) -> ConfigError:
        # Walk upstream inside the stuck set until a stack repeats: that loop is a cycle.
        start = min(stuck, key=self.names.index)
        path = [start]
        while True:
            following = next(s for s in self._upstream[path[-1]] if s in stuck)
            if following in path:
                cycle = [*path[path.index(following) :], following]
                break
            path.append(following)
        cycle.reverse()  # now each stack is followed by one that reads it
        lines = []
        for source, reader in itertools.pairwise(cycle):
            edge = next(e for e in self.edges if e.source == source and e.reader == reader)
            how = "depends on" if edge.kind == "declared" else "reads the remote state of"
            lines.append(f"{reader} {how} {source} ({edge.location})")
        return ConfigError(
            "stacks form a cycle: " + " -> ".join(cycle) + "; " + "; ".join(lines),
            fix="remove one of these dependencies (an output both need belongs in a third stack)",
        )

    def _depths(self) -> dict[str, int]:
        depth: dict[str, int] = {}
        for name in self.order:
            depth[name] = 1 + max((depth[s] for s in self._upstream[name]), default=0)
        return depth

    # --------------------------------------------------------------- drawing

    def render(self, fmt: GraphFormat = "text") -> str:
        """The DAG as indented text, Graphviz DOT or a Mermaid flowchart."""
        if fmt == "dot":
            return self._dot()
        if fmt == "mermaid":
            return self._mermaid()
        return self._text()

    def _label(self, name: str) -> str:
        stack = self.config.stacks[name]
        marks = []
        if stack.auto_apply:
            marks.append("auto-apply")
        if stack.tracks:
            marks.append(f"tracks {stack.tracks}")
        if name in self.config.global_outputs:
            marks.append("global")
        return name + (f" [{', '.join(marks)}]" if marks else "")

    def _text(self) -> str:
        lines = []
        for level in range(1, max(self.depth.values(), default=0) + 1):
            lines.append(f"level {level}")
            for name in self.order:
                if self.depth[name] != level:
                    continue
                lines.append(f"  {self._label(name)}")
                for edge in self.edges:
                    if edge.reader == name:
                        via = "depends_on" if edge.kind == "declared" else "remote state"
                        lines.append(f"    <- {edge.source} ({via})")
        return "\n".join(lines) + "\n"

    def _dot(self) -> str:
        lines = ["digraph stacks {", "  rankdir=LR;"]
        for name in self.order:
            lines.append(f'  "{name}" [label="{self._label(name)}"];')
        for edge in self.edges:
            style = "solid" if edge.kind == "declared" else "dashed"
            lines.append(f'  "{edge.source}" -> "{edge.reader}" [style={style}];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _mermaid(self) -> str:
        ids = {name: f"s{index}" for index, name in enumerate(self.order)}
        lines = ["flowchart LR"]
        for name in self.order:
            lines.append(f'  {ids[name]}["{self._label(name)}"]')
        for edge in self.edges:
            arrow = "-->" if edge.kind == "declared" else "-.->"
            lines.append(f"  {ids[edge.source]} {arrow} {ids[edge.reader]}")
        return "\n".join(lines) + "\n"
