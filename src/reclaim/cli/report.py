"""A self-contained HTML report of the loop: one file, no scripts, no outside resources.

For ``reclaim demo`` and ``reclaim run --report``: something to open in a browser or attach to
an e-mail. The live, filterable view is the dashboard of ``reclaim serve``.
"""

from __future__ import annotations

__all__ = ["render_html_report", "write_html_report"]

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.pipeline import LoopTotals, WeeklyRun, loop_totals
from reclaim.recommend import realized_by_owner_and_month
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, tickets

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2329}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.funnel{display:flex;gap:.75rem}.stage{flex:1;border:1px solid #d0d7de;border-radius:8px;
padding:.75rem}.stage b{display:block;font-size:1.4rem}.stage small{color:#57606a}
.realized{border-color:#1a7f37;background:#f0fff4}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{border-bottom:1px solid #eaeef2;padding:.3rem .5rem;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.9em}
"""

_STAGES = (
    ("found", "found", "savings the rules found"),
    ("ticketed", "ticketed", "with a ticket in the owning team's Jira project"),
    ("done", "done", "tickets the teams closed as done"),
    ("realized", "realized", "measured on a later bill"),
)


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _funnel(loop: LoopTotals) -> str:
    cells = []
    for name, attribute, meaning in _STAGES:
        count = getattr(loop, attribute)
        monthly = getattr(loop, f"{attribute}_monthly")
        css = "stage realized" if name == "realized" else "stage"
        cells.append(
            f'<div class="{css}">{escape(name)}<b>{_money(monthly)}/mo</b>'
            f"{count:,} recommendations<br><small>{escape(meaning)}</small></div>"
        )
    return f'<div class="funnel">{"".join(cells)}</div>'


def _weeks(runs: Sequence[WeeklyRun]) -> str:
    rows = []
    for number, run in enumerate(runs, start=1):
        counts = run.recommend.counts
        events = ", ".join(f"{n} {event}" for event, n in sorted(run.sync.events.items()))
        rows.append(
            f"<tr><td>{number}</td><td><code>{escape(run.run_id[:12])}</code></td>"
            f'<td class="n">{run.collect.resources:,}</td>'
            f'<td class="n">{counts.get("new", 0):,}</td>'
            f"<td>{escape(events or '-')}</td>"
            f'<td class="n">{run.distribute.created:,}</td></tr>'
        )
    return (
        "<table><tr><th>week</th><th>durable run</th><th class=n>resources</th>"
        "<th class=n>new savings</th><th>synced back</th><th class=n>tickets created</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _top(engine: Engine, limit: int) -> str:
    rec = recommendations.c
    query = (
        sa.select(
            rec.rule_id, rec.resource_id, rec.owner, rec.status, rec.monthly_savings, tickets.c.key
        )
        .select_from(
            recommendations.outerjoin(
                recommendation_tickets, recommendation_tickets.c.recommendation_id == rec.id
            ).outerjoin(tickets, tickets.c.id == recommendation_tickets.c.ticket_id)
        )
        .order_by(rec.monthly_savings.desc(), rec.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    body = "".join(
        f"<tr><td>{escape(rule)}</td><td><code>{escape(resource)}</code></td>"
        f"<td>{escape(owner or '-')}</td><td>{escape(status)}</td>"
        f"<td>{escape(key or '-')}</td>"
        f'<td class="n">{_money(Decimal(str(saving)))}</td></tr>'
        for rule, resource, owner, status, saving, key in rows
    )
    return (
        "<table><tr><th>rule</th><th>resource</th><th>owner</th><th>status</th><th>ticket</th>"
        f"<th class=n>monthly savings</th></tr>{body}</table>"
    )


def _realized(engine: Engine) -> str:
    rows = realized_by_owner_and_month(engine)
    if not rows:
        return "<p>Nothing realized yet: savings are measured on the bills after the work.</p>"
    body = "".join(
        f"<tr><td>{escape(row.owner or '(no owner)')}</td><td>{escape(row.month)}</td>"
        f'<td class="n">{row.implemented}</td>'
        f'<td class="n">{_money(row.realized_monthly_savings)}</td></tr>'
        for row in rows
    )
    return (
        "<table><tr><th>owner</th><th>month</th><th class=n>implemented</th>"
        f"<th class=n>realized monthly savings</th></tr>{body}</table>"
    )


def render_html_report(engine: Engine, runs: Sequence[WeeklyRun] = (), *, top: int = 25) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    weeks = f"<h2>Runs</h2>{_weeks(runs)}" if runs else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>reclaim report</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>reclaim: cloud savings, found to realized</h1><p>Generated {generated}.</p>"
        f"{_funnel(loop_totals(engine))}{weeks}"
        f"<h2>Realized savings by owner and month</h2>{_realized(engine)}"
        f"<h2>Biggest savings (top {top})</h2>{_top(engine, top)}"
        "</body></html>\n"
    )


def write_html_report(engine: Engine, path: Path, runs: Sequence[WeeklyRun] = ()) -> Path:
    path.write_text(render_html_report(engine, runs), encoding="utf-8")
    return path.resolve()
