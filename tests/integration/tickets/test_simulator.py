"""The simulator's behaviour over real HTTP: index lag, faults, paging, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from tests.integration.tickets.conftest import EMAIL, TOKEN, client_for

from reclaim.tickets import (
    CreateOutcomeUnknown,
    IssueDraft,
    JiraClient,
    JiraRequestError,
    JiraUnavailableError,
)
from reclaim.tickets.simulator import (
    JiraState,
    RunningSimulator,
    SimulatorApp,
    run_in_thread,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_714_557_600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lagging() -> Iterator[tuple[RunningSimulator, Clock]]:
    clock = Clock()
    app = SimulatorApp(JiraState(index_lag=30, clock=clock), accounts={EMAIL: TOKEN})
    with run_in_thread(app) as running:
        yield running, clock


def test_search_lags_writes_unless_the_issue_is_reconciled(
    lagging: tuple[RunningSimulator, Clock],
) -> None:
    sim, clock = lagging
    with client_for(sim) as jira:
        created = jira.create_issue(IssueDraft("OPS", "x", labels=("reclaim-fp-1",)))
        assert list(jira.search_all("labels = reclaim-fp-1")) == []
        found = list(jira.search_all("labels = reclaim-fp-1", reconcile_issues=[int(created.id)]))
        assert [i.key for i in found] == [created.key]
        clock.now += 31
        assert [i.key for i in jira.search_all("labels = reclaim-fp-1")] == [created.key]


def test_search_pages_with_tokens_and_refuses_unbounded_queries(jira: JiraClient) -> None:
    result = jira.create_issues([IssueDraft("OPS", f"n{n}", labels=("bulk",)) for n in range(120)])
    assert not result.failed
    first = jira.search("labels = bulk ORDER BY key DESC", max_results=50)
    assert first.issues[0].key == "OPS-120"
    assert first.next_page_token
    keys = [i.key for i in jira.search_all("labels = bulk ORDER BY key DESC", page_size=50)]
    assert len(keys) == 120
    assert len(set(keys)) == 120
    with pytest.raises(JiraRequestError, match="Unbounded JQL"):
        jira.search("ORDER BY key")
    with pytest.raises(JiraRequestError, match="next page token"):
        jira.search("labels = bulk", next_page_token="garbage")


def test_bulk_create_refuses_more_than_50(simulator: RunningSimulator) -> None:
    body = {
        "issueUpdates": [
            {"fields": {"project": {"key": "OPS"}, "summary": "x", "issuetype": {"name": "Task"}}}
        ]
        * 51
    }
    response = httpx.post(f"{simulator.url}/rest/api/3/issue/bulk", json=body, auth=(EMAIL, TOKEN))
    assert response.status_code == 400
    assert "50" in response.json()["errorMessages"][0]


def configure(sim: RunningSimulator, **plan: Any) -> None:
    response = httpx.put(f"{sim.url}/_sim/faults", json=plan)
    assert response.status_code == 200, response.text


@pytest.fixture
def frozen() -> Iterator[tuple[RunningSimulator, Clock]]:
    """A simulator whose rate limiter only sees time pass when the test (or client) says so."""
    clock = Clock()
    app = SimulatorApp(accounts={EMAIL: TOKEN}, fault_clock=clock)
    with run_in_thread(app) as running:
        yield running, clock


def advance(clock: Clock) -> Any:
    def sleep(seconds: float) -> None:
        clock.now += seconds

    return sleep


def test_rate_limit_answers_429_with_retry_after_and_the_client_waits(
    frozen: tuple[RunningSimulator, Clock],
) -> None:
    sim, clock = frozen
    configure(sim, rate_limit=5)
    with client_for(sim, rate=None) as jira:
        jira.session.sleep = advance(clock)
        for _ in range(12):
            jira.server_info()
        # 5 from the full bucket, then each 429's Retry-After of 1 s refills 5 more.
        assert jira.session.stats.throttled == 2
        assert jira.session.stats.by_status[200] == 12
    assert httpx.get(f"{sim.url}/_sim/stats").json()["throttled"] == 2
    with httpx.Client(auth=(EMAIL, TOKEN)) as http:
        answers = [http.get(f"{sim.url}/rest/api/3/serverInfo") for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].headers["RateLimit-Reason"] == "jira-burst-based"
    assert limited[0].json()["errorMessages"]


def test_a_paced_client_stays_under_the_limit(frozen: tuple[RunningSimulator, Clock]) -> None:
    sim, clock = frozen
    configure(sim, rate_limit=10)
    with client_for(sim, rate=8) as jira:
        pacer = jira.session.pacer
        assert pacer is not None
        pacer.clock, pacer.sleep, pacer.burst = clock, advance(clock), 1
        for _ in range(40):
            jira.server_info()
        assert jira.session.stats.throttled == 0


def test_server_errors_are_retried_then_reported(simulator: RunningSimulator) -> None:
    configure(simulator, error_rate=1.0, error_status=503)
    with client_for(simulator, max_attempts=3, base_delay=0.01) as jira:
        with pytest.raises(JiraUnavailableError, match="after 3 attempts"):
            jira.server_info()
        # 503 is "not processed": a create may be sent again, and still fails in the end.
        with pytest.raises(JiraUnavailableError):
            jira.create_issue(IssueDraft("OPS", "x"))
    configure(simulator, error_rate=1.0, error_status=500)
    with client_for(simulator, max_attempts=3, base_delay=0.01) as jira:
        with pytest.raises(CreateOutcomeUnknown):
            jira.create_issue(IssueDraft("OPS", "x"))
        assert jira.session.stats.requests == 1


def test_a_lost_create_answer_leaves_the_issue_created(simulator: RunningSimulator) -> None:
    configure(simulator, lose_creates=2)
    with client_for(simulator) as jira:
        with pytest.raises(CreateOutcomeUnknown, match="answer was lost"):
            jira.create_issue(IssueDraft("OPS", "single", labels=("fp-single",)))
        with pytest.raises(CreateOutcomeUnknown):
            jira.create_issues([IssueDraft("OPS", f"b{n}", labels=("fp-bulk",)) for n in range(3)])
        assert [i.summary for i in jira.search_all("labels = fp-single")] == ["single"]
        assert len(list(jira.search_all("labels = fp-bulk"))) == 3
        # The next create is answered normally.
        assert jira.create_issue(IssueDraft("OPS", "after")).key == "OPS-5"


def test_latency_beyond_the_timeout_makes_a_create_ambiguous(simulator: RunningSimulator) -> None:
    configure(simulator, latency=0.5)
    jira = client_for(simulator, max_attempts=2, base_delay=0.01)
    jira.session.http.timeout = httpx.Timeout(0.2)
    with jira, pytest.raises(JiraUnavailableError):
        jira.server_info()
    configure(simulator)


def test_unknown_fault_settings_are_refused(simulator: RunningSimulator) -> None:
    response = httpx.put(f"{simulator.url}/_sim/faults", json={"rate_limt": 5})
    assert response.status_code == 400
    assert "rate_limt" in response.json()["errorMessages"][0]


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_admin_webhooks_are_signed_and_identified(
    simulator: RunningSimulator, jira: JiraClient
) -> None:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = {
            "name": "reclaim",
            "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "events": ["jira:issue_created", "jira:issue_updated"],
            "secret": "hook-secret",
        }
        registered = httpx.post(
            f"{simulator.url}/rest/webhooks/1.0/webhook", json=hook, auth=(EMAIL, TOKEN)
        )
        assert registered.status_code == 201
        created = jira.create_issue(IssueDraft("OPS", "hooked"))
        jira.move_to(created.key, category="done", resolution="Won't Do")
        simulator.app.hub.drain()
    finally:
        server.shutdown()
        server.server_close()
    assert len(Receiver.received) == 2
    identifiers = set()
    events = []
    for headers, body in Receiver.received:
        expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature"] == expected
        identifiers.add(headers["X-Atlassian-Webhook-Identifier"])
        payload = json.loads(body)
        events.append(payload["webhookEvent"])
        assert payload["issue"]["key"] == created.key
    assert events == ["jira:issue_created", "jira:issue_updated"]
    assert len(identifiers) == 2
    change = json.loads(Receiver.received[1][1])["changelog"]["items"]
    assert {"field": "resolution", "toString": "Won't Do"}.items() <= change[1].items()


def test_changelog_and_transitions_follow_the_projects_workflow(jira: JiraClient) -> None:
    created = jira.create_issue(IssueDraft("FIN", "x"))
    assert {t.to_status for t in jira.transitions(created.key)} == {"Selected", "Working", "Closed"}
    jira.move_to(created.key, status="Closed", resolution="Won't Do")
    issue = jira.get_issue(created.key)
    assert (issue.status, issue.status_category, issue.resolution) == ("Closed", "done", "Won't Do")
    assert [t.to_status for t in jira.transitions(created.key)] == ["Backlog"]
    jira.move_to(created.key, status="Backlog")
    assert jira.get_issue(created.key).resolution is None
    fields = [[i.field for i in entry.items] for entry in jira.changelog(created.key)]
    assert fields == [["status", "resolution"], ["status", "resolution"]]


def test_concurrent_requests_wait_out_their_latency_side_by_side(
    simulator: RunningSimulator,
) -> None:
    configure(simulator, latency=1.0)
    body = {
        "issueUpdates": [
            {"fields": {"project": {"key": "OPS"}, "summary": "x", "issuetype": {"name": "Task"}}}
        ]
    }
    clients = 8
    start = threading.Barrier(clients)
    statuses: list[int] = []

    def create() -> None:
        start.wait()
        response = httpx.post(
            f"{simulator.url}/rest/api/3/issue/bulk", json=body, auth=(EMAIL, TOKEN), timeout=30
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    configure(simulator)
    assert statuses == [201] * clients
    # Had the latency been served one request at a time (a lock, a blocking sleep), at most
    # one request would ever have been waiting.
    assert httpx.get(f"{simulator.url}/_sim/stats").json()["latency_peak"] == clients


def test_a_bulk_created_description_reads_back_as_it_was_sent(
    simulator: RunningSimulator,
) -> None:
    sent = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Ünïcode 1.5"}]}],
    }
    body = {
        "issueUpdates": [
            {
                "fields": {
                    "project": {"key": "OPS"},
                    "summary": f"d{n}",
                    "issuetype": {"name": "Task"},
                    "labels": ["described"],
                    "description": sent if n else None,
                }
            }
            for n in range(3)
        ]
    }
    url = simulator.url
    with httpx.Client(auth=(EMAIL, TOKEN)) as http:
        created = http.post(f"{url}/rest/api/3/issue/bulk", json=body).json()
        assert created["errors"] == []
        keys = [i["key"] for i in created["issues"]]
        for version, expected in ((3, sent), (2, "Ünïcode 1.5")):
            shown = http.get(f"{url}/rest/api/{version}/issue/{keys[1]}").json()
            assert shown["fields"]["description"] == expected
        assert http.get(f"{url}/rest/api/3/issue/{keys[0]}").json()["fields"]["description"] is None
        found = http.post(
            f"{url}/rest/api/3/search/jql",
            json={"jql": "labels = described ORDER BY key", "fields": ["description"]},
        ).json()
        assert [i["fields"]["description"] for i in found["issues"]] == [None, sent, sent]
        bad = dict(body["issueUpdates"][1], fields={**body["issueUpdates"][1]["fields"]})
        bad["fields"]["description"] = {"type": "paragraph"}
        refused = http.post(f"{url}/rest/api/3/issue/bulk", json={"issueUpdates": [bad]})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["elementErrors"]["errors"]["description"]
        broken = http.post(
            f"{url}/rest/api/3/issue/bulk",
            content=b'{"issueUpdates": [',
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 400
        assert broken.json()["errorMessages"][0].startswith("Unexpected character")
