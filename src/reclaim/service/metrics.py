"""Prometheus metrics of the service and of workers.

Each app gets a registry of its own (tests build many apps in one process). Counts that live
in the database (recommendations, runs, tickets, cursor lag) are read when Prometheus scrapes,
by a collector, so every replica reports the same truth and nothing drifts from the tables.
"""

from __future__ import annotations

__all__ = ["DatabaseCollector", "ServiceMetrics", "WorkerCollector"]

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from reclaim.durable import Worker
from reclaim.durable.schema import runs
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import sync_cursors, tickets

log = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape; ``reclaim_database_up`` 0 when it fails."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("reclaim_database_up", "1 if the database answered this scrape")
        try:
            families = self._read()
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: reading the database failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        rec = recommendations.c
        count = GaugeMetricFamily(
            "reclaim_recommendations", "Recommendations by status", labels=["status"]
        )
        savings = GaugeMetricFamily(
            "reclaim_recommendations_monthly_savings",
            "Monthly savings of the recommendations by status and currency",
            labels=["status", "currency"],
        )
        run_count = GaugeMetricFamily(
            "reclaim_runs", "Durable runs by workflow and status", labels=["workflow", "status"]
        )
        ticket_count = GaugeMetricFamily(
            "reclaim_tickets",
            "Tickets by state and Jira status category",
            labels=["state", "status_category"],
        )
        lag = GaugeMetricFamily(
            "reclaim_sync_cursor_lag_seconds",
            "How far each inbound poll cursor is behind now",
            labels=["source"],
        )
        now = datetime.now(UTC)
        with self.engine.connect() as connection:
            by_status: dict[str, int] = {}
            for status, currency, n, total in connection.execute(
                sa.select(
                    rec.status, rec.currency, sa.func.count(), sa.func.sum(rec.monthly_savings)
                ).group_by(rec.status, rec.currency)
            ):
                by_status[status] = by_status.get(status, 0) + int(n)
                savings.add_metric([status, currency or ""], float(total or 0))
            for status, n in sorted(by_status.items()):
                count.add_metric([status], n)
            for workflow, status, n in connection.execute(
                sa.select(runs.c.workflow, runs.c.status, sa.func.count()).group_by(
                    runs.c.workflow, runs.c.status
                )
            ):
                run_count.add_metric([workflow, status], int(n))
            for state, category, n in connection.execute(
                sa.select(tickets.c.state, tickets.c.status_category, sa.func.count()).group_by(
                    tickets.c.state, tickets.c.status_category
                )
            ):
                ticket_count.add_metric([state, category or ""], int(n))
            for source, cursor_ms in connection.execute(
                sa.select(sync_cursors.c.source, sync_cursors.c.cursor_ms)
            ):
                lag.add_metric([source], max(now.timestamp() - cursor_ms / 1000, 0.0))
        return [count, savings, run_count, ticket_count, lag]


class ServiceMetrics:
    """The service's own counters and the database collector, in one registry."""

    def __init__(self, engine: Engine | None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "reclaim_http_requests",
            "HTTP requests answered, by method, route and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reclaim_http_request_duration_seconds",
            "Server time of HTTP requests, by method and route",
            ["method", "route"],
            registry=self.registry,
        )
        self.schedule_ticks = Counter(
            "reclaim_schedule_ticks",
            "Schedule ticks this process saw due: created (it started the run) or not (another "
            "scheduler had)",
            ["created"],
            registry=self.registry,
        )
        self.schedule_errors = Counter(
            "reclaim_schedule_errors", "Scheduler passes that failed", registry=self.registry
        )
        self.auth_failures = Counter(
            "reclaim_http_auth_failures",
            "API requests refused for a missing or wrong token",
            registry=self.registry,
        )
        if engine is not None:
            self.registry.register(DatabaseCollector(engine))

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)


_OUTCOMES = ("claimed", "succeeded", "failed", "released", "lost", "cancelled", "errors")


class WorkerCollector(Collector):
    """A worker's counters (claimed, succeeded, handed back, items, …) read at each scrape."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        stats = self.worker.stats.as_dict()
        outcomes = CounterMetricFamily(
            "reclaim_worker_runs",
            "Runs this worker claimed, and how each claim ended",
            labels=["worker", "outcome"],
        )
        for outcome in (
            "claimed",
            "succeeded",
            "failed",
            "released",
            "lost",
            "cancelled",
            "errors",
        ):
            outcomes.add_metric([self.worker.worker_id, outcome], stats.get(outcome, 0))
        yield outcomes
        items = CounterMetricFamily(
            "reclaim_worker_items", "Queued map items this worker ran", labels=["worker"]
        )
        items.add_metric([self.worker.worker_id], stats.get("items", 0))
        yield items
        scheduled = CounterMetricFamily(
            "reclaim_worker_scheduled_runs",
            "Runs this worker's scheduler started",
            labels=["worker"],
        )
        scheduled.add_metric([self.worker.worker_id], stats.get("scheduled", 0))
        yield scheduled
        stopping = GaugeMetricFamily(
            "reclaim_worker_stopping",
            "1 once the worker is handing its work back",
            labels=["worker"],
        )
        stopping.add_metric([self.worker.worker_id], 1 if self.worker.stopping else 0)
        yield stopping
