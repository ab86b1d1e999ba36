"""``reclaim jira check`` and ``reclaim jira-sim serve|act`` (the bundled simulator)."""

from __future__ import annotations

__all__ = ["jira_app", "sim_app"]

import gc
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reclaim.cli.context import console, err_console, state
from reclaim.errors import ConfigError
from reclaim.recommend import RecommendationStore, Status
from reclaim.sync import recommendation_facts
from reclaim.tickets import JiraCredentials, connect, credentials_from_env
from reclaim.tickets.check import check_routes
from reclaim.tickets.routing import load_routing
from reclaim.tickets.simulator import FaultPlan, JiraState, SimulatorApp, serve
from reclaim.tickets.simulator.actor import Shares, act
from reclaim.tickets.templates import load_templates

jira_app = typer.Typer(help="Connect reclaim to Jira.", no_args_is_help=True)
sim_app = typer.Typer(
    help="A Jira Cloud simulator for trying reclaim without a Jira site.", no_args_is_help=True
)


@sim_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second before answering 429.")
    ] = None,
    index_lag: Annotated[
        float, typer.Option(help="Seconds before a write shows up in search.")
    ] = 0.0,
    time_zone: Annotated[str, typer.Option(help="The users' time zone for JQL dates.")] = "UTC",
    latency: Annotated[float, typer.Option(help="Seconds added to every answer.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 503.")] = 0.0,
    lose_rate: Annotated[
        float, typer.Option(help="Share of creates whose answer is dropped after creating.")
    ] = 0.0,
    data_center: Annotated[
        bool, typer.Option("--data-center", help="Report itself as Jira Data Center.")
    ] = False,
) -> None:
    """Serve the simulator until interrupted (any credentials are accepted)."""
    try:
        state = JiraState(index_lag=index_lag, time_zone=time_zone)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {time_zone!r}", fix="use an IANA name such as Europe/Berlin"
        ) from exc
    plan = FaultPlan(
        rate_limit=rate_limit, latency=latency, error_rate=error_rate, lose_rate=lose_rate
    )
    app = SimulatorApp(
        state,
        faults=plan,
        deployment_type="Server" if data_center else "Cloud",
        base_url=f"http://{host}:{port}",
    )
    console.print(f"Jira simulator on http://{host}:{port} (Ctrl-C to stop)", highlight=False)
    # The imported code lives as long as the process: out of the cyclic collector's reach, or
    # every full collection walks it again (most of the simulator's CPU per bulk create).
    gc.freeze()
    serve(app, host=host, port=port)


@sim_app.command("act")
def act_command(
    url: Annotated[
        str | None,
        typer.Option(help="Simulator URL. Default: $RECLAIM_JIRA_URL, else http://127.0.0.1:8080."),
    ] = None,
    jql: Annotated[
        str, typer.Option(help="Which tickets the humans look at.")
    ] = "labels = reclaim",
    seed: Annotated[int, typer.Option(help="Seed: the same seed does the same things.")] = 0,
    done: Annotated[float, typer.Option(help="Share of open tickets resolved as Done.")] = 0.25,
    wont_do: Annotated[float, typer.Option(help="Share of open tickets closed as Won't Do.")] = 0.1,
    reopen: Annotated[float, typer.Option(help="Share of done tickets reopened.")] = 0.3,
) -> None:
    """Play the humans once: move tickets, resolve some as Won't Do, reopen some, comment."""
    try:
        credentials = credentials_from_env()
        if url:
            credentials = JiraCredentials(
                url.rstrip("/"), credentials.flavor, credentials.email, credentials.secret
            )
    except ConfigError:
        credentials = JiraCredentials.cloud(
            url or "http://127.0.0.1:8080", "human@example.com", "sim"
        )
    with connect(credentials, requests_per_second=None) as client:
        actions = act(
            client, jql, seed=seed, shares=Shares(done=done, wont_do=wont_do, reopen=reopen)
        )
    counts: dict[str, int] = {}
    for action in actions:
        counts[action.kind] = counts.get(action.kind, 0) + 1
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "nothing to do"
    console.print(f"{len(actions)} actions: {summary}", highlight=False)


def _facts_from_file(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read facts: {exc.strerror}", fix=f"check the path {path}"
        ) from exc
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"{path}: not JSON or JSON lines ({exc})", fix="give one JSON object per line"
        ) from exc
    return [dict(row) for row in rows]


@jira_app.command("check")
def check_command(
    ctx: typer.Context,
    routing: Annotated[
        Path | None, typer.Option(help="Routing rule file (kind routing, action ticket).")
    ] = None,
    templates: Annotated[
        Path | None, typer.Option(help="Ticket templates (summary, description, labels).")
    ] = None,
    default_project: Annotated[
        str | None, typer.Option(help="Project for items no routing rule claims.")
    ] = None,
    facts: Annotated[
        Path | None,
        typer.Option(help="Items to route (JSON lines); default: the open recommendations."),
    ] = None,
) -> None:
    """Check routing, templates and the Jira site before the first ticket is created."""
    router = load_routing(routing, default_project=default_project)
    ticket_templates = load_templates(templates)
    if facts is not None:
        items = _facts_from_file(facts)
    else:
        store = RecommendationStore(state(ctx).engine())
        records = store.find(statuses=[Status.OPEN, Status.REOPENED], limit=None)
        items = [recommendation_facts(r) for r in records]
    routes = {}
    for item in items:
        route = router.route(item)
        ticket_templates.render(item)
        routes[route] = item
    if not routes and default_project:
        routes[router.route({})] = {}
    with connect(credentials_from_env()) as client:
        problems = check_routes(client, routes)
    for problem in problems:
        err_console.print(f"[red]✗[/] {problem}", highlight=False, soft_wrap=True)
    projects = sorted({r.project for r in routes})
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) with the Jira setup",
            fix="fix them before running reclaim tickets distribute",
        )
    console.print(
        f"ok: {len(items)} item(s) route to {', '.join(projects) or 'no project'}; "
        "projects, issue types, components, fields and workflows exist",
        highlight=False,
    )
