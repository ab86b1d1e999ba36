"""A Jira Cloud simulator shipped with reclaim, for tests, demos and benchmarks.

``reclaim jira-sim serve --port P`` runs it; :func:`run_in_thread` runs it on a free port
inside a test. It keeps projects with workflows, issues, comments, properties and changelog in
memory, answers a JQL subset from an index that lags writes, signs admin webhooks, and injects
faults (429 with Retry-After, 5xx, latency, creates whose answer is lost).
"""

from __future__ import annotations

from reclaim.tickets.simulator.app import SimulatorApp, build_app
from reclaim.tickets.simulator.faults import FaultPlan
from reclaim.tickets.simulator.jql import JqlError, parse_jql
from reclaim.tickets.simulator.server import RunningSimulator, run_in_thread, serve
from reclaim.tickets.simulator.state import JiraFault, JiraState
from reclaim.tickets.simulator.webhooks import sign
from reclaim.tickets.simulator.workflow import Project, Workflow, default_projects

__all__ = [
    "FaultPlan",
    "JiraFault",
    "JiraState",
    "JqlError",
    "Project",
    "RunningSimulator",
    "SimulatorApp",
    "Workflow",
    "build_app",
    "default_projects",
    "parse_jql",
    "run_in_thread",
    "serve",
    "sign",
]
