"""``reclaim demo``: three weeks of the whole loop, told as a story on one screen.

Week 1 runs the loop on the bundled sample against a Jira simulator started in this process;
then simulated people work the tickets (some done, some won't do, some left alone); week 2
reads a new week of bills in which the fixed resources are gone (and a few "done" ones are
not), syncs the tickets back, implements and reopens; week 3's bill is the first whole week
after the work, on which the savings are measured (realized). It ends with found → ticketed →
done → realized and an HTML report.
Everything is local: a SQLite file in the user's data folder and the simulator on 127.0.0.1.
"""

from __future__ import annotations

__all__ = ["demo", "next_week"]

import os
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import polars as pl
import sqlalchemy as sa
import typer
from platformdirs import user_data_path
from rich.rule import Rule
from sqlalchemy.engine import Engine

from reclaim.cli.context import console, state
from reclaim.cli.report import write_html_report
from reclaim.cli.run import loop_progress, print_loop_totals
from reclaim.config import JiraConfig
from reclaim.ingest import bundled_sample
from reclaim.pipeline import WeeklyInput, WeeklyRun, run_weekly
from reclaim.store import create_engine, upgrade
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.tickets import JiraCredentials, connect
from reclaim.tickets.simulator import JiraState, SimulatorApp, run_in_thread
from reclaim.tickets.simulator.actor import Shares, act

# The demo's Jira account; the simulator accepts any token, and the token is only ever read
# from this variable, as a real deployment's is.
_TOKEN_ENV = "RECLAIM_DEMO_JIRA_TOKEN"  # noqa: S105 - a variable name, not a secret
_SEED = 11
# Of the tickets closed as done, this share's resources are left running in week 2: the team
# said done, the bill says otherwise, and reclaim reopens them.
_NOT_REALLY_DONE = 0.2

_ROUTING = """\
kind: routing
mode: first
facts:
  kind: string
  account_id: string
rules:
  - id: storage
    when: kind in ['volume', 'snapshot', 'bucket']
    action: ticket
    params: {project: OPS, components: [storage]}
  - id: databases
    when: kind == 'database'
    action: ticket
    params: {project: DATA, components: [warehouse]}
  - id: compute
    when: "true"
    action: ticket
    params: {project: OPS, components: [compute]}
"""


def _demo_folder() -> Path:
    return user_data_path("reclaim", appauthor=False) / "demo"


@dataclass(frozen=True)
class HumanWork:
    done: int
    wont_do: int
    started: int
    untouched: int
    done_keys: frozenset[str]


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the last demo database instead of starting fresh."),
    ] = False,
) -> None:
    """Three weeks of the whole loop on the bundled sample, with a Jira simulator."""
    cli_state = state(ctx)
    folder = _demo_folder()
    folder.mkdir(parents=True, exist_ok=True)
    if cli_state.db_option:
        url = cli_state.database_url
    else:
        path = folder / "demo.db"
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine)
    routing = folder / "routing.yaml"
    routing.write_text(_ROUTING, encoding="utf-8")
    os.environ.setdefault(_TOKEN_ENV, "demo")

    sample = bundled_sample()
    console.print(Rule("reclaim demo: three weeks of finding, ticketing and realizing savings"))
    console.print(
        f"A made-up company: {sample.resources} cloud resources, 35 days of AWS bills (FOCUS),"
        " an inventory and CPU metrics. Jira is a simulator on this machine; the database is"
        f" {url}.",
        highlight=False,
    )
    with run_in_thread(SimulatorApp(JiraState())) as sim:
        jira = JiraConfig(
            url=sim.url,
            email="finops-bot@example.com",
            api_token_env=_TOKEN_ENV,
            requests_per_second=None,
            grace_seconds=1.0,
        )
        spec = WeeklyInput(
            sample=True,
            jira=jira,
            routing=str(routing),
            default_project="OPS",
            poll_lag_seconds=0.0,
        )

        console.print(Rule("week 1: reclaim finds the waste and opens a ticket for each saving"))
        with loop_progress():
            first = run_weekly(engine, spec)
        _tell_week_one(first)

        console.print(Rule("between the weeks: the teams work their tickets"))
        work = _humans_act(jira)
        console.print(
            f"[bold]people[/]     {work.done} done, {work.wont_do} closed as won't do,"
            f" {work.started} started, {work.untouched} not touched yet",
            highlight=False,
        )

        console.print(Rule("week 2: a new week of bills; reclaim syncs back and checks the work"))
        fixed, kept = _fixed_resources(engine, work.done_keys)
        week2 = next_week(
            sample.billing, sample.inventory, sample.utilization, folder / "week2", fixed
        )
        with loop_progress():
            second = run_weekly(engine, _files(spec, week2))
        _tell_week_two(second, fixed=len(fixed), kept=len(kept))

        console.print(Rule("week 3: the bill after the work measures the money saved"))
        week3 = next_week(
            week2 / "billing",
            week2 / "inventory.csv",
            week2 / "utilization.csv",
            folder / "week3",
            fixed,
        )
        with loop_progress():
            third = run_weekly(engine, _files(spec, week3))
        loop = third.report.loop
        console.print(
            f"[bold]realized[/]   {loop.realized:,} implemented savings measured on the new"
            f" bill: [bold green]${loop.realized_monthly:,.2f}[/] a month less spending (the"
            " fixed resources were deleted, which saves their whole cost, more than the rules'"
            " estimate of a resize)",
            highlight=False,
        )

    console.print(Rule("the loop: found → ticketed → done → realized"))
    print_loop_totals(third)
    report = write_html_report(engine, folder / "report.html", runs=[first, second, third])
    console.print(f"[bold]report[/]  {report}", highlight=False)
    console.print(
        f"[dim]look around: reclaim --db {url} recommendations list | tickets list |"
        " runs list; start your own with `reclaim init`[/]",
        highlight=False,
        soft_wrap=True,
    )


def _files(spec: WeeklyInput, week: Path) -> WeeklyInput:
    return spec.model_copy(
        update={
            "sample": False,
            "billing": [str(week / "billing")],
            "inventory": [str(week / "inventory.csv")],
            "utilization": [str(week / "utilization.csv")],
        }
    )


def _tell_week_one(run: WeeklyRun) -> None:
    counts = run.recommend.counts
    loop = run.report.loop
    console.print(
        f"[bold]collect[/]    {run.collect.resources:,} resources from"
        f" {run.collect.rows_read:,} bill rows",
        highlight=False,
    )
    console.print(
        f"[bold]evaluate[/]   {counts.get('new', 0):,} savings found by the built-in rules,"
        f" worth [bold]${loop.found_monthly:,.2f}[/] a month",
        highlight=False,
    )
    alternatives = counts.get("new", 0) - run.distribute.created
    console.print(
        f"[bold]tickets[/]    {run.distribute.created:,} created in Jira, each routed to the"
        " owning team's project, each exactly once (a rerun never duplicates one);"
        f" {alternatives:,} more savings are alternatives on a resource that already has a"
        " ticket (one ticket per resource, for the bigger saving; counted once)",
        highlight=False,
    )


def _tell_week_two(run: WeeklyRun, *, fixed: int, kept: int) -> None:
    events = run.sync.events
    counts = run.recommend.counts
    by_status = run.report.by_status
    console.print(
        f"[bold]collect[/]    7 more days of bills: {fixed} resources the teams fixed are"
        f" gone from them; {kept} whose tickets say done still run",
        highlight=False,
    )
    console.print(
        f"[bold]sync back[/]  {run.sync.changed:,} tickets read back from Jira:"
        f" {events.get('ticket_done', 0)} done, {events.get('ticket_wont_do', 0)} won't do"
        " (those savings are snoozed, not ticketed again)",
        highlight=False,
    )
    console.print(
        f"[bold]evaluate[/]   {by_status.get('implemented', 0)} implemented (ticket done and"
        f" gone from the bill), {counts.get('reopened', 0)} reopened (done, but the waste is"
        f" still there), {by_status.get('resolved', 0)} resolved (gone on their own)",
        highlight=False,
    )
    written = run.write_back
    console.print(
        f"[bold]write back[/] {written.reopened} tickets reopened with a comment (the waste came"
        f" back; never a second ticket), {written.closed} closed (gone without a ticket's work),"
        f" {written.commented} comments in all",
        highlight=False,
    )
    console.print(
        f"[bold]tickets[/]    {run.distribute.created:,} new; no ticket was created twice",
        highlight=False,
    )


def _humans_act(jira: JiraConfig) -> HumanWork:
    credentials = JiraCredentials.cloud(jira.url, "teams@example.com", "demo")
    shares = Shares(start=0.15, done=0.5, wont_do=0.15, reopen=0.0, comment=0.05)
    with connect(credentials, requests_per_second=None) as client:
        actions = act(client, "labels = reclaim", seed=_SEED, shares=shares)
        total = sum(1 for _ in client.search_all("labels = reclaim"))
        done_keys = [a.key for a in actions if a.kind == "done"]
    kinds = [a.kind for a in actions]
    return HumanWork(
        done=kinds.count("done"),
        wont_do=kinds.count("wont_do"),
        started=kinds.count("start"),
        untouched=total - kinds.count("done") - kinds.count("wont_do") - kinds.count("start"),
        done_keys=frozenset(done_keys),
    )


def _fixed_resources(engine: Engine, done_keys: frozenset[str]) -> tuple[set[str], set[str]]:
    """The resources of the tickets closed as done, less the few the team did not really fix."""
    rec = recommendations.c
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(tickets.c.key, rec.resource_id)
            .join(recommendation_tickets, recommendation_tickets.c.ticket_id == tickets.c.id)
            .join(recommendations, rec.id == recommendation_tickets.c.recommendation_id)
            .where(tickets.c.key.in_(sorted(done_keys)))
            .order_by(tickets.c.key)
        ).all()
    resources = sorted({resource for _key, resource in rows})
    rng = random.Random(_SEED)  # noqa: S311 - a demo's choice, not a secret
    kept = set(rng.sample(resources, k=round(len(resources) * _NOT_REALLY_DONE)))
    return set(resources) - kept, kept


def next_week(
    billing: Path, inventory: Path, utilization: Path, folder: Path, removed: set[str]
) -> Path:
    """Write the following week to ``folder``: the data as it was, plus seven more days of
    bills and metrics in which the ``removed`` resources are gone (and from the inventory)."""
    (folder / "billing").mkdir(parents=True, exist_ok=True)
    for old in (folder / "billing").glob("*.parquet"):
        old.unlink()
    bill = pl.read_parquet(billing / "*.parquet")
    end = bill["ChargePeriodStart"].max()
    assert end is not None
    week = timedelta(days=7)
    last = bill.filter(pl.col("ChargePeriodStart") > pl.lit(end) - week)
    added = last.filter(~pl.col("ResourceId").is_in(sorted(removed))).with_columns(
        pl.col("ChargePeriodStart") + week, pl.col("ChargePeriodEnd") + week
    )
    bill.write_parquet(folder / "billing" / "part-0000.parquet")
    added.write_parquet(folder / "billing" / "part-0001.parquet")
    pl.read_csv(inventory, infer_schema=False).filter(
        ~pl.col("resource_id").is_in(sorted(removed))
    ).write_csv(folder / "inventory.csv")
    metrics = pl.read_csv(utilization, infer_schema=False)
    stamp = pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    newest = metrics.select(stamp.max()).item()
    recent = metrics.filter(stamp > pl.lit(newest) - week)
    shifted = recent.filter(~pl.col("resource_id").is_in(sorted(removed))).with_columns(
        (stamp + week).dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("timestamp")
    )
    pl.concat([metrics, shifted]).write_csv(folder / "utilization.csv")
    return folder
