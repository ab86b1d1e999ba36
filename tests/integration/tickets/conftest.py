"""The Jira simulator on a real port, and a reclaim client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reclaim.tickets import JiraClient, JiraCredentials, RetryPolicy, connect
from reclaim.tickets.simulator import RunningSimulator, SimulatorApp, run_in_thread

EMAIL = "reclaim-bot@example.com"
TOKEN = "sim-token"


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    with run_in_thread(SimulatorApp(accounts={EMAIL: TOKEN})) as running:
        yield running


def client_for(sim: RunningSimulator, *, rate: float | None = None, **retry: float) -> JiraClient:
    client = connect(
        JiraCredentials.cloud(sim.url, EMAIL, TOKEN),
        requests_per_second=rate,
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
        timeout=10,
    )
    return client


@pytest.fixture
def jira(simulator: RunningSimulator) -> Iterator[JiraClient]:
    with client_for(simulator, base_delay=0.01, max_delay=0.05) as client:
        yield client
