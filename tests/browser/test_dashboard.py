"""The dashboard in Chromium: every page renders, the list filters, sorts, pages and exports,
the detail page explains and links its ticket, and Resume and Cancel act on real runs.

Each test saves a screenshot in tests/browser/screenshots for a person to look at.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from tests.browser.conftest import Site, shoot

from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import tickets

rec = recommendations.c


def _savings(page: Page) -> list[Decimal]:
    return [
        Decimal(v)
        for v in page.locator("td[data-savings]").evaluate_all(
            "cells => cells.map(c => c.dataset.savings)"
        )
    ]


def _count(site: Site, *clauses: Any) -> int:
    with site.engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).select_from(recommendations).where(*clauses)
            ).scalar_one()
        )


def test_overview_shows_the_funnel_and_charts(page: Page, site: Site) -> None:
    page.goto(site.url + "/")
    expect(page.locator("h1")).to_have_text("Savings overview")
    for stage in ("found", "ticketed", "done", "realized"):
        expect(page.locator(f'[data-kpi="{stage}"]')).not_to_have_text("")
    total = _count(site)
    expect(page.locator(".kpi.found .sub")).to_contain_text(f"{total:,} recommendations")
    # The time chart has the four lines, one point per week of the seeded history.
    expect(page.locator("svg.chart polyline.line")).to_have_count(4)
    # By team, account and rule: each a table of bars whose links filter the list.
    expect(page.locator("table.bars")).to_have_count(3)
    shoot(page, "overview")
    page.locator("table.bars").nth(2).locator("td.key a").first.click()
    expect(page).to_have_url(re.compile(r"/recommendations\?rule="))


def test_list_filters_sorts_and_pages(page: Page, site: Site) -> None:
    page.goto(site.url + "/recommendations?size=25")
    rows = page.locator("tbody tr[data-id]")
    expect(rows).to_have_count(25)
    expect(page.locator("[data-total]")).to_have_text(f"{_count(site):,}")
    first = _savings(page)
    assert first == sorted(first, reverse=True)
    shoot(page, "recommendations")

    # Paging by cursor visits every row exactly once, forward, and comes back.
    seen = [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")]
    pages = 1
    while page.locator("a[rel=next]").count():
        page.locator("a[rel=next]").click()
        seen += [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")]
        pages += 1
    assert len(seen) == len(set(seen)) == _count(site)
    assert pages == -(-_count(site) // 25)
    page.locator("a[rel=prev]").first.click()
    expect(rows).to_have_count(25)

    # Filters: status and team from the form.
    page.goto(site.url + "/recommendations")
    page.select_option("select[name=status]", "implemented")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=implemented"))
    expect(page.locator("[data-total]")).to_have_text(
        f"{_count(site, rec.status == 'implemented'):,}"
    )
    statuses = set(page.locator("tbody .pill").all_inner_texts())
    assert statuses == {"implemented"}
    with site.engine.connect() as connection:
        owner = connection.execute(
            sa.select(rec.owner).where(rec.owner.is_not(None)).group_by(rec.owner).limit(1)
        ).scalar_one()
    page.fill("input[name=owner]", owner)
    page.click("button[type=submit]")
    expected = _count(site, rec.status == "implemented", rec.owner == owner)
    expect(page.locator("[data-total]")).to_have_text(f"{expected:,}")
    shoot(page, "recommendations-filtered")

    # Sorting: smallest saving first, by clicking the column header.
    page.goto(site.url + "/recommendations")
    page.click("th.num a")
    expect(page).to_have_url(re.compile(r"sort=-savings"))
    ascending = _savings(page)
    assert ascending == sorted(ascending)
    assert ascending[0] == min(_all_savings(site))


def _all_savings(site: Site) -> list[Decimal]:
    with site.engine.connect() as connection:
        return [
            Decimal(str(v)) for v in connection.execute(sa.select(rec.monthly_savings)).scalars()
        ]


def test_export_downloads_csv_and_json(page: Page, site: Site) -> None:
    page.goto(site.url + "/recommendations?status=ticketed")
    expected = _count(site, rec.status == "ticketed")
    with page.expect_download() as csv_download:
        page.click("text=CSV")
    rows = list(csv.DictReader(io.StringIO(csv_download.value.path().read_text())))
    assert csv_download.value.suggested_filename == "recommendations.csv"
    assert len(rows) == expected
    assert {row["status"] for row in rows} == {"ticketed"}
    with page.expect_download() as json_download:
        page.click("text=JSON")
    records = json.loads(json_download.value.path().read_text())
    assert [r["id"] for r in records] == [int(r["id"]) for r in rows]


def test_detail_explains_the_rule_and_links_the_ticket(page: Page, site: Site) -> None:
    page.goto(site.url + f"/recommendations/{site.explained_id}")
    tree = page.locator("ol.tree[data-why=fired]")
    expect(tree).to_be_visible()
    # The rules engine's tree: at least the condition, with true parts marked.
    assert tree.locator("li").count() >= 1
    expect(tree.locator("li.yes").first).to_be_visible()
    shoot(page, "recommendation")

    page.goto(site.url + f"/recommendations/{site.ticketed_id}")
    link = page.locator("#ticket-link")
    expect(link).to_have_text("OPS-42 ↗")
    expect(link).to_have_attribute("href", "http://127.0.0.1:9/browse/OPS-42")
    expect(page.locator(".ticket .pill")).to_have_text("In Progress")
    shoot(page, "recommendation-ticketed")


def _wait_status(page: Page, site: Site, run_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while site.durable.get_run(run_id).status.value != status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.1)
    page.goto(site.url + f"/runs/{run_id}")
    expect(page.locator("[data-status]")).to_have_text(status)


def test_runs_page_and_timeline(page: Page, site: Site) -> None:
    page.goto(site.url + "/runs")
    expect(page.locator(f'tr[data-run="{site.batch_run}"] .pill')).to_have_text("succeeded")
    expect(page.locator(f'tr[data-run="{site.failed_run}"] .pill')).to_have_text("failed")
    shoot(page, "runs")
    page.click(f'a[href="/runs/{site.batch_run}"]')
    expect(page.locator("svg.timeline rect.bar")).to_have_count(3)
    expect(page.locator("svg.timeline")).to_contain_text("12/12 items")
    expect(page.locator("table.list").last).to_contain_text("item-00")
    shoot(page, "run-batch")


def test_ticket_runs_count_chunks_and_the_tickets_in_them(page: Page, site: Site) -> None:
    page.goto(site.url + "/runs")
    row = page.locator(f'tr[data-run="{site.chunk_run}"]')
    expect(row.locator("[data-items]")).to_have_text("3 chunks · 23 tickets")
    expect(page.locator(f'tr[data-run="{site.batch_run}"] [data-items]')).to_have_text("12 items")
    page.click(f'a[href="/runs/{site.chunk_run}"]')
    expect(page.locator('[data-map="distribute"] [data-units]')).to_have_text(
        "3 chunks · 23 tickets"
    )
    expect(page.locator('[data-map="distribute"] .legend')).to_contain_text(
        "succeeded 3 (23 tickets)"
    )
    # The item timeline stays: one bar for the step, its note in both units.
    expect(page.locator("svg.timeline")).to_contain_text("3/3 chunks · 23/23 tickets")
    sizes = page.locator("td[data-tickets]").all_inner_texts()
    assert sorted(int(size) for size in sizes) == [3, 10, 10]
    shoot(page, "run-ticket-chunks")


def test_resume_button_finishes_a_failed_run(page: Page, site: Site) -> None:
    page.goto(site.url + f"/runs/{site.failed_run}")
    expect(page.locator("[data-status]")).to_have_text("failed")
    expect(page.locator(".error-box")).to_contain_text("blocked by blocker")
    shoot(page, "run-failed")
    site.blocker.unlink()
    page.click("#resume")
    expect(page.locator(".flash")).to_contain_text("Resumed")
    _wait_status(page, site, site.failed_run, "succeeded")
    expect(page.locator("#resume")).to_have_count(0)
    # The step that had succeeded before the failure was not run again.
    steps = {s.step: s for s in site.durable.steps(site.failed_run)}
    assert steps["prepare"].attempts == 1
    assert site.durable.result(site.failed_run) == "ready and done"
    shoot(page, "run-resumed")


def test_cancel_then_resume_a_pending_run(page: Page, site: Site) -> None:
    page.goto(site.url + f"/runs/{site.pending_run}")
    expect(page.locator("[data-status]")).to_have_text("pending")
    page.click("#cancel")
    expect(page.locator(".flash")).to_contain_text("Cancelled")
    expect(page.locator("[data-status]")).to_have_text("cancelled")
    assert site.durable.get_run(site.pending_run).status.value == "cancelled"
    shoot(page, "run-cancelled")
    page.click("#resume")
    _wait_status(page, site, site.pending_run, "succeeded")


def test_sync_health(page: Page, site: Site) -> None:
    page.goto(site.url + "/sync")
    with site.engine.connect() as connection:
        created = connection.execute(
            sa.select(sa.func.count()).select_from(tickets).where(tickets.c.state == "created")
        ).scalar_one()
    # The seeded OPS-42 and the 23 the distribute run made.
    assert created == 24
    expect(page.locator('[data-kpi="tickets"]')).to_have_text(str(created))
    expect(page.locator("body")).to_contain_text("jira:OPS")
    expect(page.locator("body")).to_contain_text("1 intent awaiting a key")
    expect(page.locator('[data-kpi="lag"]')).to_have_text(re.compile(r"min ago"))
    shoot(page, "sync")


def test_unknown_pages_answer_404(page: Page, site: Site) -> None:
    assert page.goto(site.url + "/recommendations/999999").status == 404
    assert page.goto(site.url + "/runs/no-such-run").status == 404
    # A hand-edited cursor is ignored, not an error.
    assert page.goto(site.url + "/recommendations?page=garbage").status == 200
