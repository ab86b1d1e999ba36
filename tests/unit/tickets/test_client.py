"""The Jira client against ``httpx.MockTransport``: request shapes, paging, retries, errors."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reclaim.errors import ConfigError, ExecutionError
from reclaim.tickets import (
    CreateOutcomeUnknown,
    Document,
    IssueDraft,
    JiraClient,
    JiraCredentials,
    JiraRequestError,
    JiraUnavailableError,
    RetryPolicy,
    connect,
    credentials_from_env,
)

Handler = Callable[[httpx.Request], httpx.Response]
CLOUD = JiraCredentials.cloud("https://acme.atlassian.net", "bot@acme.io", "s3cr3t-token")
DC = JiraCredentials.data_center("https://jira.acme.io", "pat-s3cr3t")


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, credentials: JiraCredentials = CLOUD) -> JiraClient:
        client = connect(
            credentials,
            transport=httpx.MockTransport(self),
            requests_per_second=None,
            retry=RetryPolicy(max_attempts=4, rng=random.Random(0)),
        )
        client.session.sleep = self.sleeps.append
        return client

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.content]


def issue_json(key: str, *, updated: str = "2024-05-01T10:00:00.000+0000") -> dict[str, Any]:
    return {
        "id": key.split("-")[1],
        "key": key,
        "fields": {
            "summary": f"s {key}",
            "status": {"name": "To Do", "statusCategory": {"key": "new"}},
            "resolution": None,
            "labels": ["reclaim"],
            "updated": updated,
            "created": updated,
            "project": {"key": "OPS"},
        },
    }


def test_cloud_create_sends_adf_basic_auth_and_properties() -> None:
    rec = Recorder(lambda r: httpx.Response(201, json={"id": "1", "key": "OPS-1", "self": "u"}))
    draft = IssueDraft(
        "OPS",
        "Stop idle VM",
        description=Document.of_text("hello"),
        labels=("reclaim", "reclaim-fp-abc"),
        assignee="557058:abc",
        properties={"reclaim": {"fingerprint": "abc"}},
    )
    created = rec.client().create_issue(draft)
    assert created.key == "OPS-1"
    request = rec.requests[0]
    assert request.url.path == "/rest/api/3/issue"
    expected = base64.b64encode(b"bot@acme.io:s3cr3t-token").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    body = rec.bodies()[0]
    assert body["fields"]["description"]["type"] == "doc"
    assert body["fields"]["assignee"] == {"accountId": "557058:abc"}
    assert body["fields"]["labels"] == ["reclaim", "reclaim-fp-abc"]
    assert body["properties"] == [{"key": "reclaim", "value": {"fingerprint": "abc"}}]


def test_data_center_create_sends_wiki_markup_over_v2_with_a_bearer_token() -> None:
    rec = Recorder(lambda r: httpx.Response(201, json={"id": "1", "key": "OPS-1", "self": "u"}))
    rec.client(DC).create_issue(
        IssueDraft("OPS", "x", description=Document.of_text("a *b*"), assignee="jdoe")
    )
    request = rec.requests[0]
    assert request.url.path == "/rest/api/2/issue"
    assert request.headers["Authorization"] == "Bearer pat-s3cr3t"
    body = rec.bodies()[0]
    assert body["fields"]["description"] == r"a \*b\*"
    assert body["fields"]["assignee"] == {"name": "jdoe"}


def test_bulk_create_chunks_by_50_and_maps_failed_rows_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        updates = json.loads(request.content)["issueUpdates"]
        issues, errors = [], []
        for n, update in enumerate(updates):
            if update["fields"]["summary"].endswith("7"):
                errors.append(
                    {
                        "failedElementNumber": n,
                        "status": 400,
                        "elementErrors": {"errorMessages": [], "errors": {"summary": "bad"}},
                    }
                )
            else:
                number = update["fields"]["summary"].split()[-1]
                issues.append({"id": number, "key": f"OPS-{number}", "self": "u"})
        return httpx.Response(201, json={"issues": issues, "errors": errors})

    rec = Recorder(handler)
    drafts = [IssueDraft("OPS", f"rec {i}") for i in range(120)]
    result = rec.client().create_issues(drafts)
    assert [len(b["issueUpdates"]) for b in rec.bodies()] == [50, 50, 20]
    assert len(result.created) == 120
    failed_rows = sorted(f.index for f in result.failed)
    assert failed_rows == [i for i in range(120) if str(i).endswith("7")]
    for i, created in enumerate(result.created):
        if i in failed_rows:
            assert created is None
        else:
            assert created is not None
            assert created.key == f"OPS-{i}"
    assert result.failed[0].describe() == "summary: bad"


def test_a_bulk_create_writes_descriptions_as_json_text_without_adf_dicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reclaim.tickets.document as document

    def no_dicts(*_: object) -> None:
        raise AssertionError("the ADF dicts were built for a request body")

    # Building each description's ADF as dicts, then walking them to encode, cost about three
    # times writing its JSON text directly (a bulk create's blocks are mostly unique).
    monkeypatch.setattr(document, "_block_adf", no_dicts)
    created = {"issues": [{"id": "1", "key": "OPS-1", "self": "u"}], "errors": []}
    rec = Recorder(lambda _: httpx.Response(201, json=created))
    described = Document.of_text('first "one"\n\nsecond é')
    rec.client().create_issues([IssueDraft("OPS", "x", description=described)])
    (body,) = rec.bodies()
    assert body["issueUpdates"][0]["fields"]["description"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": 'first "one"'}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "second é"}]},
        ],
    }


def test_bulk_create_where_every_row_failed_comes_back_as_400_with_errors() -> None:
    rec = Recorder(
        lambda r: httpx.Response(
            400,
            json={
                "issues": [],
                "errors": [
                    {
                        "failedElementNumber": 0,
                        "status": 400,
                        "elementErrors": {"errors": {"project": "no"}},
                    }
                ],
            },
        )
    )
    result = rec.client().create_issues([IssueDraft("NOPE", "x")])
    assert result.created == (None,)
    assert result.failed[0].field_errors == {"project": "no"}


def test_search_pages_with_next_page_token_and_asks_for_fields() -> None:
    pages = {
        None: {
            "issues": [issue_json("OPS-1"), issue_json("OPS-2")],
            "nextPageToken": "t2",
            "isLast": False,
        },
        "t2": {"issues": [issue_json("OPS-3")], "isLast": True},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json=pages[body.get("nextPageToken")])

    rec = Recorder(handler)
    issues = list(rec.client().search_all("labels = reclaim", page_size=2, reconcile_issues=[9]))
    assert [i.key for i in issues] == ["OPS-1", "OPS-2", "OPS-3"]
    assert issues[0].updated_ms == 1714557600000
    assert issues[0].status_category == "new"
    first = rec.bodies()[0]
    assert rec.requests[0].url.path == "/rest/api/3/search/jql"
    assert "updated" in first["fields"]
    assert "status" in first["fields"]
    assert first["reconcileIssues"] == [9]
    assert "startAt" not in first


def test_data_center_search_pages_with_start_at() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        keys = ["OPS-1", "OPS-2", "OPS-3"][body["startAt"] : body["startAt"] + body["maxResults"]]
        return httpx.Response(200, json={"issues": [issue_json(k) for k in keys], "total": 3})

    rec = Recorder(handler)
    issues = list(rec.client(DC).search_all("project = OPS", page_size=2))
    assert [i.key for i in issues] == ["OPS-1", "OPS-2", "OPS-3"]
    assert rec.requests[0].url.path == "/rest/api/2/search"


def test_429_is_retried_after_retry_after_and_counted() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "2", "RateLimit-Reason": "jira-burst-based"}),
        httpx.Response(201, json={"id": "1", "key": "OPS-1", "self": "u"}),
    ]
    rec = Recorder(lambda r: answers.pop(0))
    client = rec.client()
    assert client.create_issue(IssueDraft("OPS", "x")).key == "OPS-1"
    assert rec.sleeps == [2.0]
    assert client.session.stats.throttled == 1
    assert client.session.stats.requests == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_create_is_never_resent_after_a_5xx_that_may_have_created_it(status: int) -> None:
    rec = Recorder(lambda r: httpx.Response(status))
    with pytest.raises(CreateOutcomeUnknown, match="search for the fingerprint label"):
        rec.client().create_issue(IssueDraft("OPS", "x"))
    assert len(rec.requests) == 1


def test_a_create_whose_answer_was_lost_is_not_resent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(handler)
    with pytest.raises(CreateOutcomeUnknown):
        rec.client().create_issue(IssueDraft("OPS", "x"))
    assert len(rec.requests) == 1


def test_a_create_that_never_connected_is_sent_again() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": "1", "key": "OPS-1", "self": "u"})

    assert Recorder(handler).client().create_issue(IssueDraft("OPS", "x")).key == "OPS-1"
    assert len(calls) == 2


def test_a_read_is_retried_after_a_lost_answer_and_gives_up_in_the_end() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(handler)
    with pytest.raises(JiraUnavailableError, match="after 4 attempts"):
        rec.client().get_issue("OPS-1")
    assert len(rec.requests) == 4


def test_permanent_errors_carry_jiras_messages_and_the_fix() -> None:
    rec = Recorder(
        lambda r: httpx.Response(
            400,
            json={
                "errorMessages": ["Bad things."],
                "errors": {"issuetype": "valid issue type is required"},
            },
        )
    )
    with pytest.raises(JiraRequestError) as info:
        rec.client().create_issue(IssueDraft("OPS", "x", issue_type="Tsk"))
    text = str(info.value)
    assert "HTTP 400" in text
    assert "Bad things." in text
    assert "issuetype: valid issue type is required" in text
    assert "reclaim jira check" in text
    assert len(rec.requests) == 1
    assert "s3cr3t" not in text


@pytest.mark.parametrize(
    ("status", "fix"), [(403, "permission"), (404, "project key"), (422, "Jira admin")]
)
def test_each_permanent_status_says_what_to_do(status: int, fix: str) -> None:
    rec = Recorder(lambda r: httpx.Response(status, json={"errorMessages": ["no"], "errors": {}}))
    with pytest.raises(JiraRequestError, match=fix):
        rec.client().get_issue("OPS-1")
    assert len(rec.requests) == 1


def test_move_to_discovers_the_transition_of_this_issue() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200,
                json={
                    "transitions": [
                        {
                            "id": "11",
                            "name": "Start",
                            "to": {
                                "name": "In Progress",
                                "statusCategory": {"key": "indeterminate"},
                            },
                        },
                        {
                            "id": "31",
                            "name": "Finish",
                            "to": {"name": "Done", "statusCategory": {"key": "done"}},
                        },
                    ]
                },
            )
        return httpx.Response(204)

    rec = Recorder(handler)
    client = rec.client()
    chosen = client.move_to(
        "OPS-1", category="done", resolution="Done", comment=Document.of_text("gone")
    )
    assert chosen.id == "31"
    body = rec.bodies()[0]
    assert body["transition"] == {"id": "31"}
    assert body["fields"] == {"resolution": {"name": "Done"}}
    assert body["update"]["comment"][0]["add"]["body"]["type"] == "doc"
    with pytest.raises(ExecutionError, match="no transition to 'Blocked'"):
        client.move_to("OPS-1", status="Blocked")


def test_labels_properties_and_comments() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/properties/missing"):
            return httpx.Response(404, json={"errorMessages": ["not found"]})
        if "/properties/" in path and request.method == "GET":
            return httpx.Response(200, json={"key": "reclaim", "value": {"fp": "abc"}})
        if path.endswith("/comment") and request.method == "POST":
            return httpx.Response(
                201,
                json={
                    "id": "5",
                    "body": json.loads(request.content)["body"],
                    "created": "2024-05-01T10:00:00.000+0000",
                },
            )
        return httpx.Response(204)

    rec = Recorder(handler)
    client = rec.client()
    client.update_labels("OPS-1", add=["a"], remove=["b"])
    assert rec.bodies()[0] == {"update": {"labels": [{"add": "a"}, {"remove": "b"}]}}
    client.set_property("OPS-1", "reclaim", {"fp": "abc"})
    assert client.get_property("OPS-1", "reclaim") == {"fp": "abc"}
    assert client.get_property("OPS-1", "missing") is None
    assert client.add_comment("OPS-1", Document.of_text("hi")).body_text == "hi"


def test_credentials_from_env_and_files_never_show_the_secret(tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-secret\n")
    creds = credentials_from_env(
        {
            "RECLAIM_JIRA_URL": "https://acme.atlassian.net/",
            "RECLAIM_JIRA_EMAIL": "bot@acme.io",
            "RECLAIM_JIRA_API_TOKEN_FILE": str(token_file),
        }
    )
    assert creds.secret == "file-secret"
    assert creds.base_url == "https://acme.atlassian.net"
    assert "file-secret" not in repr(creds)
    dc = credentials_from_env({"RECLAIM_JIRA_URL": "https://j", "RECLAIM_JIRA_PAT": "p"})
    assert dc.flavor.api_version == "2"
    with pytest.raises(ConfigError, match="RECLAIM_JIRA_PAT"):
        credentials_from_env({"RECLAIM_JIRA_URL": "https://j"})
    with pytest.raises(ConfigError, match="RECLAIM_JIRA_URL"):
        credentials_from_env({})
    with pytest.raises(ConfigError, match="cannot be read"):
        credentials_from_env(
            {"RECLAIM_JIRA_URL": "https://j", "RECLAIM_JIRA_PAT_FILE": str(tmp_path / "nope")}
        )
