"""Projects and their workflows as the simulator knows them: statuses, categories, transitions."""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "RESOLUTIONS",
    "Project",
    "Status",
    "Workflow",
    "WorkflowTransition",
    "default_projects",
]

from dataclasses import dataclass, field

# Jira's three status categories, with the ids and colours Jira Cloud reports.
CATEGORIES = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
RESOLUTIONS = {
    "Done": "10000",
    "Won't Do": "10001",
    "Duplicate": "10002",
    "Cannot Reproduce": "10003",
}


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str


@dataclass(frozen=True)
class WorkflowTransition:
    id: str
    name: str
    to: str
    sources: tuple[str, ...] = ()  # empty: a global transition, available from every status


@dataclass(frozen=True)
class Workflow:
    statuses: tuple[Status, ...]
    transitions: tuple[WorkflowTransition, ...]
    initial: str

    def status(self, name: str) -> Status:
        return next(s for s in self.statuses if s.name == name)

    def available(self, current: str) -> list[WorkflowTransition]:
        return [
            t
            for t in self.transitions
            if t.to != current and (not t.sources or current in t.sources)
        ]


@dataclass
class Project:
    id: str
    key: str
    name: str
    workflow: Workflow
    issue_types: tuple[tuple[str, str], ...] = (
        ("10001", "Task"),
        ("10002", "Bug"),
        ("10003", "Story"),
    )
    components: tuple[tuple[str, str], ...] = ()
    next_number: int = field(default=1)


SIMPLE = Workflow(
    statuses=(
        Status("10000", "To Do", "new"),
        Status("3", "In Progress", "indeterminate"),
        Status("10001", "Done", "done"),
    ),
    transitions=(
        WorkflowTransition("11", "To Do", "To Do", ("In Progress", "Done")),
        WorkflowTransition("21", "Start Progress", "In Progress", ("To Do",)),
        WorkflowTransition("31", "Done", "Done", ("To Do", "In Progress")),
    ),
    initial="To Do",
)

# A service-desk-like workflow with other names, so nothing may assume "Done" is called Done.
REVIEWED = Workflow(
    statuses=(
        Status("10100", "Backlog", "new"),
        Status("10101", "Selected", "new"),
        Status("10102", "Working", "indeterminate"),
        Status("10103", "Closed", "done"),
    ),
    transitions=(
        WorkflowTransition("101", "Select", "Selected", ("Backlog",)),
        WorkflowTransition("111", "Start", "Working", ("Selected", "Backlog")),
        WorkflowTransition("121", "Close", "Closed"),
        WorkflowTransition("131", "Reopen", "Backlog", ("Closed",)),
    ),
    initial="Backlog",
)


def default_projects() -> list[Project]:
    return [
        Project(
            "10000",
            "OPS",
            "Operations",
            SIMPLE,
            components=(("10500", "compute"), ("10501", "storage")),
        ),
        Project("10001", "FIN", "FinOps", REVIEWED),
        Project("10002", "DATA", "Data Platform", SIMPLE, components=(("10502", "warehouse"),)),
    ]
