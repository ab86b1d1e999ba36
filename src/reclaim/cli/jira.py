"""``reclaim jira-sim serve|act``: the bundled Jira simulator and the humans who use it."""

from __future__ import annotations

__all__ = ["sim_app"]

from typing import Annotated

import typer

from reclaim.cli.context import console
from reclaim.errors import ConfigError
from reclaim.tickets import JiraCredentials, connect, credentials_from_env
from reclaim.tickets.simulator import FaultPlan, JiraState, SimulatorApp, serve
from reclaim.tickets.simulator.actor import Shares, act

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
