"""The JSON API on a real database of each backend, over HTTP (uvicorn in a thread)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus, StepContext, Workflow
from reclaim.recommend import Filters, RecommendationStore, totals
from reclaim.service import ServiceSettings, TokenStore, create_app, hash_token
from reclaim.store.tables.sync import sync_cursors
from reclaim.sync import DistributeInput, distribute_workflow
from reclaim.tickets.credentials import EMAIL_ENV, TOKEN_ENV, URL_ENV
from reclaim.tickets.simulator import SimulatorApp, run_in_thread

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]

two_items = Workflow("service-test.items", version="1")


@two_items.step()
def pick(ctx: StepContext) -> list[str]:
    return ["a", "b"]


@two_items.map_step(over="pick", key=lambda item: str(item))
def shout(ctx: StepContext, item: str) -> str:
    return item.upper()


# ------------------------------------------------------------------------------- auth


def test_the_api_refuses_requests_without_a_valid_token(
    client: httpx.Client, loaded: Engine
) -> None:
    bare = {"Authorization": ""}
    response = client.get("/api/v1/recommendations", headers=bare)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    for wrong in ("nope", "rct_000000000000_" + "x" * 43, client.headers["Authorization"][7:-1]):
        answer = client.get("/api/v1/recommendations", headers={"Authorization": f"Bearer {wrong}"})
        assert answer.status_code == 401, wrong
    assert client.get("/api/v1/recommendations").status_code == 200
    # Probes and scrapers carry no token.
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(open_path, headers=bare).status_code == 200, open_path


def test_a_revoked_token_is_refused_from_the_next_request(
    client: httpx.Client, loaded: Engine
) -> None:
    assert client.get("/api/v1/totals").status_code == 200
    assert TokenStore(loaded).revoke("tests")
    assert client.get("/api/v1/totals").status_code == 401


def test_tokens_are_stored_as_hashes_only(loaded: Engine, token: str) -> None:
    with loaded.connect() as connection:
        stored = connection.execute(sa.text("SELECT id, hash FROM api_tokens")).all()
    assert len(stored) == 1
    assert token not in repr(stored)
    assert stored[0].hash == hashlib.sha256(token.encode()).hexdigest()


def test_a_configured_hash_admits_its_token(loaded: Engine, serve: Serve) -> None:
    token = "rct_0123456789ab_" + "k" * 43
    settings = ServiceSettings(schedules=False, token_hashes=(hash_token(token),))
    with serve(create_app(settings, engine=loaded, dashboard=False)) as client:
        ok = client.get("/api/v1/totals", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        bad = client.get("/api/v1/totals", headers={"Authorization": f"Bearer {token[:-1]}x"})
        assert bad.status_code == 401


# -------------------------------------------------------------------- recommendations


def test_paging_with_the_cursor_returns_every_row_once_biggest_first(
    client: httpx.Client, loaded: Engine
) -> None:
    expected = [r.id for r in RecommendationStore(loaded).find(limit=None)]
    assert len(expected) > 20
    seen: list[int] = []
    savings: list[Decimal] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/recommendations", params=params).json()
        seen += [item["id"] for item in page["items"]]
        savings += [Decimal(item["monthly_savings"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # The store's order (savings desc, then id) breaks ties the other way; compare as sets
    # and check the order itself.
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert savings == sorted(savings, reverse=True)


@pytest.mark.parametrize("sort", ["id", "first_seen", "savings"])
def test_ascending_pages_follow_the_sort_key(client: httpx.Client, sort: str) -> None:
    rows: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 11, "sort": sort, "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/recommendations", params=params).json()
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    field = {"savings": "monthly_savings"}.get(sort, sort)
    keys = [
        (Decimal(str(row[field])) if sort == "savings" else row[field], row["id"]) for row in rows
    ]
    assert keys == sorted(keys)
    assert len({row["id"] for row in rows}) == len(rows)


def test_filters_narrow_the_list(client: httpx.Client, loaded: Engine) -> None:
    store = RecommendationStore(loaded)
    some = store.find(limit=1)[0]
    page = client.get(
        "/api/v1/recommendations",
        params={"rule": some.rule_id, "team": some.owner, "limit": 1000, "status": "open"},
    ).json()
    assert page["items"]
    assert {(i["rule_id"], i["owner"], i["status"]) for i in page["items"]} == {
        (some.rule_id, some.owner, "open")
    }
    floor = some.monthly_savings / 2
    rich = client.get(
        "/api/v1/recommendations", params={"min_savings": str(floor), "limit": 1000}
    ).json()
    assert all(Decimal(i["monthly_savings"]) >= floor for i in rich["items"])
    none = client.get("/api/v1/recommendations", params={"status": "dismissed"}).json()
    assert none == {"items": [], "next_cursor": None}


def test_bad_list_requests_say_what_is_wrong(client: httpx.Client) -> None:
    first = client.get("/api/v1/recommendations", params={"limit": 2}).json()
    cases = [
        ({"status": "opne"}, "unknown status 'opne'"),
        ({"sort": "name"}, "cannot sort by 'name'"),
        ({"cursor": "garbage!"}, "damaged"),
        ({"cursor": first["next_cursor"], "sort": "id"}, "another sort order"),
        ({"limit": 5000}, "limit is at most 1000"),
    ]
    for params, message in cases:
        response = client.get("/api/v1/recommendations", params=params)
        assert response.status_code == 400, params
        assert message in response.json()["detail"], params


def test_one_recommendation_comes_with_its_ticket_history_and_explanation(
    client: httpx.Client, loaded: Engine
) -> None:
    top = RecommendationStore(loaded).find(limit=1)[0]
    body = client.get(f"/api/v1/recommendations/{top.id}").json()
    assert body["recommendation"]["fingerprint"] == top.fingerprint
    assert body["ticket"]["key"] == "OPS-1"
    assert body["ticket"]["recommendation_id"] == top.id
    assert [o["run_id"] for o in body["observations"]] == ["week-1"]
    assert body["explanation_missing"] is None
    assert top.rule_id in body["explanation"]["text"]
    assert body["explanation"]["detail"]["status"] == "fired"
    bare = client.get(f"/api/v1/recommendations/{top.id}", params={"explain": "false"}).json()
    assert bare["explanation"] is None
    assert client.get("/api/v1/recommendations/999999999").status_code == 404


def test_totals_match_the_report_module(client: httpx.Client, loaded: Engine) -> None:
    for by, key in (("team", "owner"), ("account", "account"), ("rule", "rule")):
        body = client.get("/api/v1/totals", params={"by": by}).json()
        expected = totals(loaded, key, Filters())
        assert [(g["key"], g["count"], Decimal(g["monthly_savings"])) for g in body["groups"]] == [
            (t.key, t.count, t.monthly_savings) for t in expected
        ]
    assert client.get("/api/v1/totals", params={"by": "colour"}).status_code == 400


# ------------------------------------------------------------------------------- runs


def test_runs_show_steps_and_map_items_and_can_be_cancelled_and_resumed(
    client: httpx.Client, loaded: Engine
) -> None:
    durable = DurableEngine(loaded, workflows=[two_items])
    done = durable.start(two_items, None)
    durable.run(done)
    waiting = durable.start(two_items, None)

    listed = client.get("/api/v1/runs", params={"workflow": two_items.name}).json()
    assert {run["id"] for run in listed} == {done, waiting}
    detail = client.get(f"/api/v1/runs/{done}").json()
    assert detail["run"]["status"] == "succeeded"
    # The map step has a row of its own beside its items.
    assert [step["step"] for step in detail["steps"]] == ["pick", "shout"]
    assert sorted(item["item_key"] for item in detail["items"]) == ["a", "b"]
    assert detail["item_summary"] == [
        {"step": "shout", "by_status": {"succeeded": 2}, "unit": "item", "tickets_by_status": None}
    ]

    cancelled = client.post(f"/api/v1/runs/{waiting}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{waiting}/cancel").status_code == 409
    resumed = client.post(f"/api/v1/runs/{waiting}/resume")
    assert resumed.status_code == 202
    assert resumed.json()["status"] == "pending"
    assert durable.get_run(waiting).status is RunStatus.PENDING
    assert client.post(f"/api/v1/runs/{done}/resume").status_code == 409
    assert client.get("/api/v1/runs/nope").status_code == 404
    assert client.post("/api/v1/runs/nope/resume").status_code == 404
    assert client.get("/api/v1/runs", params={"status": "sleeping"}).status_code == 400


def test_ticket_steps_count_their_chunks_and_the_tickets_in_them(
    client: httpx.Client, loaded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real distribution against the Jira simulator: 7 tickets in chunks of 3 (in FIN, as
    # the seeded tickets are OPS-1 and OPS-2).
    with run_in_thread(SimulatorApp()) as sim:
        monkeypatch.setenv(URL_ENV, sim.url)
        monkeypatch.setenv(EMAIL_ENV, "bot@example.com")
        monkeypatch.setenv(TOKEN_ENV, "t")
        options = DistributeInput(
            default_project="FIN", grace=0, limit=7, ticket_batch=3, requests_per_second=None
        )
        durable = DurableEngine(loaded)
        run_id = durable.start(distribute_workflow, options.model_dump())
        durable.run(run_id)
    detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert detail["item_summary"] == [
        {
            "step": "distribute",
            "by_status": {"succeeded": 3},
            "unit": "ticket chunk",
            "tickets_by_status": {"succeeded": 7},
        }
    ]
    assert sorted(item["item_key"].rsplit("+", 1)[1] for item in detail["items"]) == [
        "1",
        "3",
        "3",
    ]


# ------------------------------------------------------------------- tickets and sync


def test_tickets_page_by_id_and_sync_health_reports_lag_and_intents(
    client: httpx.Client, loaded: Engine
) -> None:
    first = client.get("/api/v1/tickets", params={"limit": 2}).json()
    assert [t["key"] for t in first["items"]] == ["OPS-1", "OPS-2"]
    rest = client.get("/api/v1/tickets", params={"after": first["next_after"]}).json()
    assert [t["state"] for t in rest["items"]] == ["creating"]
    assert rest["next_after"] is None
    created = client.get("/api/v1/tickets", params={"state": "created"}).json()
    assert len(created["items"]) == 2

    with loaded.begin() as connection:
        connection.execute(
            sa.insert(sync_cursors).values(
                source="jira:OPS", cursor_ms=1_000, page_token=None, updated_at=sa.func.now()
            )
        )
    asked = datetime.now(UTC)
    health = client.get("/api/v1/sync/health").json()
    answered = datetime.now(UTC)
    assert health["open_intents"] == 1
    assert health["tickets_by_state"] == {"created": 2, "creating": 1}
    assert [c["source"] for c in health["cursors"]] == ["jira:OPS"]
    # The cursor stands at 1 s after the epoch: its lag is the time since then, as the server
    # read its clock between our two readings.
    cursor_at = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    lag = health["cursors"][0]["lag_seconds"]
    assert (
        (asked - cursor_at).total_seconds() - 1 <= lag <= (answered - cursor_at).total_seconds() + 1
    )


# ----------------------------------------------------------- health, metrics, openapi


def test_readyz_needs_a_migrated_database(
    client: httpx.Client, tmp_path: Path, serve: Serve
) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    from reclaim.database import create_engine

    empty = create_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        with serve(
            create_app(ServiceSettings(schedules=False), engine=empty, dashboard=False)
        ) as fresh:
            response = fresh.get("/readyz")
            assert response.status_code == 503
            assert "reclaim db upgrade" in response.json()["reason"]
            assert fresh.get("/healthz").status_code == 200
    finally:
        empty.dispose()


def test_metrics_count_requests_and_read_the_tables(client: httpx.Client, loaded: Engine) -> None:
    client.get("/api/v1/recommendations")
    client.get("/api/v1/recommendations", headers={"Authorization": "Bearer wrong"})
    text = client.get("/metrics").text
    assert (
        'reclaim_http_requests_total{method="GET",route="/api/v1/recommendations",status="200"} 1.0'
        in text
    )
    assert "reclaim_http_auth_failures_total 1.0" in text
    assert "reclaim_database_up 1.0" in text
    opened = RecommendationStore(loaded).count_by_status()
    for status, (count, _) in opened.items():
        assert f'reclaim_recommendations{{status="{status.value}"}} {float(count)}' in text
    assert 'reclaim_tickets{state="created",status_category=""} 2.0' in text


def test_openapi_documents_the_api_and_its_bearer_scheme(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/recommendations",
        "/api/v1/recommendations/{recommendation_id}",
        "/api/v1/totals",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/resume",
        "/api/v1/runs/{run_id}/cancel",
        "/api/v1/tickets",
        "/api/v1/sync/health",
    ):
        assert path in paths, path
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_api_docs_load_their_scripts_from_the_service_not_a_cdn(
    client: httpx.Client,
) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, html
        # Every script, stylesheet and icon is served here: the docs work offline.
        assert all(asset.startswith("/") for asset in assets), assets
        for asset in assets:
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            assert len(answer.content) > 1000, asset


# ------------------------------------------------------------------------------ webhook


def _signed(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_the_jira_webhook_is_mounted_when_a_secret_is_set(loaded: Engine, serve: Serve) -> None:
    settings = ServiceSettings(schedules=False, webhook_secret="s3cret")
    issue = {
        "id": "1001",
        "key": "OPS-1",
        "fields": {
            "status": {"name": "Done", "statusCategory": {"key": "done"}},
            "resolution": {"name": "Done"},
            "updated": "2026-12-07T10:00:00.000+0000",
            "project": {"key": "OPS"},
        },
    }
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": issue}).encode()
    with serve(create_app(settings, engine=loaded, dashboard=False)) as client:
        forged = client.post("/jira/webhook", content=body, headers=_signed("other", body))
        assert forged.status_code == 401
        applied = client.post("/jira/webhook", content=body, headers=_signed("s3cret", body))
        assert applied.json() == {"applied": 1}
    with loaded.connect() as connection:
        category = connection.execute(
            sa.text("SELECT status_category FROM tickets WHERE key = 'OPS-1'")
        ).scalar_one()
    assert category == "done"
    # Without a secret anyone could post ticket changes, so the endpoint is off.
    with serve(
        create_app(ServiceSettings(schedules=False), engine=loaded, dashboard=False)
    ) as client:
        assert client.post("/jira/webhook", content=body).status_code == 404
