"""The webhook receiver: signed deliveries from the simulator move recommendations along."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from tests.integration.sync.test_exactly_once import add_recommendations

from reclaim.recommend import RecommendationStore, Status
from reclaim.store import upgrade
from reclaim.sync import WebhookReceiver, distribute_bulk, plan_items, verify_signature
from reclaim.tickets import JiraCredentials, connect
from reclaim.tickets.routing import load_routing
from reclaim.tickets.simulator import SimulatorApp, run_in_thread, sign
from reclaim.tickets.templates import load_templates

SECRET = "hook-secret"


def test_verify_signature() -> None:
    body = b'{"a": 1}'
    assert verify_signature(SECRET, body, sign(SECRET, body))
    assert not verify_signature(SECRET, body + b" ", sign(SECRET, body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "sha1=" + sign(SECRET, body)[7:])


@pytest.fixture
def receiver(engine: Engine) -> Iterator[tuple[WebhookReceiver, str]]:
    upgrade(engine)
    hook = WebhookReceiver(engine, SECRET)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(hook.app, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    try:
        yield hook, f"http://127.0.0.1:{sock.getsockname()[1]}/jira/webhook"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.timeout(300)
def test_signed_deliveries_apply_once_and_forgeries_are_refused(
    receiver: tuple[WebhookReceiver, str], engine: Engine
) -> None:
    _, url = receiver
    add_recommendations(engine, 2)
    store = RecommendationStore(engine)
    with (
        run_in_thread(SimulatorApp()) as sim,
        connect(JiraCredentials.cloud(sim.url, "b@x", "t"), requests_per_second=None) as jira,
    ):
        registered = httpx.post(
            f"{sim.url}/rest/webhooks/1.0/webhook",
            json={
                "name": "reclaim",
                "url": url,
                "events": ["jira:issue_updated"],
                "secret": SECRET,
            },
            auth=("admin@x", "t"),
        )
        assert registered.status_code == 201
        items = plan_items(
            store.find(statuses=[Status.OPEN], limit=None),
            load_routing(None, default_project="OPS"),
            load_templates(None),
        )
        keys, _ = distribute_bulk(engine, jira, items, grace=0)
        wont = sorted(keys)[0]
        jira.move_to(keys[wont], category="done", resolution="Won't Do")
        sim.app.hub.drain()
        delivered = [status for _, _, status in sim.app.hub.delivered]
    assert delivered == [200]
    by_fp = {item.fingerprint: item.recommendation_id for item in items}
    dismissed = store.get(by_fp[wont])
    assert dismissed is not None
    assert dismissed.status is Status.DISMISSED

    body = json.dumps({"webhookEvent": "jira:issue_updated"}).encode()
    forged = httpx.post(url, content=body, headers={"X-Hub-Signature": sign("wrong", body)})
    assert forged.status_code == 401
    headers = {"X-Hub-Signature": sign(SECRET, body), "X-Atlassian-Webhook-Identifier": "d-1"}
    assert httpx.post(url, content=body, headers=headers).json() == {"applied": 0}
    assert httpx.post(url, content=body, headers=headers).json() == {"duplicate": True}
