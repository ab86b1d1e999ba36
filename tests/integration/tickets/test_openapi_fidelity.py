"""Every answer the simulator gives validates against Atlassian's OpenAPI document for Jira Cloud.

A recording transport keeps each real HTTP exchange of a scenario that touches every endpoint
reclaim uses (successes and refusals); openapi-core then validates each against the document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.response.exceptions import MissingData
from tests.integration.tickets.conftest import EMAIL, TOKEN
from werkzeug.datastructures import Headers, ImmutableMultiDict

from reclaim.tickets import (
    Document,
    IssueDraft,
    JiraClient,
    JiraCredentials,
    JiraRequestError,
    JiraSession,
    open_http_client,
)
from reclaim.tickets.simulator import RunningSimulator

SPEC_HOST = "https://your-domain.atlassian.net"


class Recording(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response

    def close(self) -> None:
        self.inner.close()


class SpecRequest:
    """An httpx request seen by openapi-core, moved to the document's server URL."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    host_url = SPEC_HOST

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self.request.content or None

    @property
    def content_type(self) -> str:
        return self.request.headers.get("content-type", "application/json")


class SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return self.response.headers.get("content-type", "application/json")

    @property
    def headers(self) -> Headers:
        return Headers(dict(self.response.headers))

    @property
    def data(self) -> bytes:
        return self.response.content


@pytest.fixture(scope="module")
def openapi(shared_data_module: Path) -> OpenAPI:
    spec = json.loads((shared_data_module / "jira" / "swagger-v3.v3.json").read_text())
    # Atlassian's document has enum defaults that break its own schema; the shapes are what count.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@pytest.fixture(scope="module")
def shared_data_module() -> Path:
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (only beside the dev checkout)")
    return SHARED_DATA


def scenario(client: JiraClient) -> None:
    client.server_info()
    client.fields()
    client.project("OPS")
    drafts = [
        IssueDraft(
            "OPS", f"rec {n}", description=Document.of_text("why"), labels=("reclaim", f"fp-{n}")
        )
        for n in range(3)
    ]
    created = client.create_issue(drafts[0])
    client.create_issues([*drafts[1:], IssueDraft("NOPE", "bad")])
    client.set_property(created.key, "reclaim", {"fingerprint": "fp-0"})
    client.set_property(created.key, "reclaim", {"fingerprint": "fp-0", "v": 2})
    assert client.get_property(created.key, "reclaim") == {"fingerprint": "fp-0", "v": 2}
    assert client.get_property(created.key, "missing") is None
    assert len(list(client.search_all("labels = reclaim ORDER BY key", page_size=2))) == 3
    client.get_issue(created.key)
    client.transitions(created.key)
    client.move_to(created.key, category="indeterminate")
    client.add_comment(created.key, Document.of_text("a comment"))
    client.comments(created.key)
    client.update_labels(created.key, add=["more"])
    client.edit_issue(created.key, {"summary": "renamed"})
    client.changelog(created.key)
    for failing in (
        lambda: client.create_issue(IssueDraft("OPS", "x", issue_type="Nope")),
        lambda: client.get_issue("OPS-999"),
        lambda: client.project("NOPE"),
        lambda: client.search("project = OPS AND nosuchfield = 1"),
        lambda: client.transition(created.key, "999"),
    ):
        with pytest.raises(JiraRequestError):
            failing()


def test_every_answer_matches_the_openapi_document(
    simulator: RunningSimulator, openapi: OpenAPI
) -> None:
    recording = Recording()
    http = open_http_client(JiraCredentials.cloud(simulator.url, EMAIL, TOKEN), transport=recording)
    with JiraClient(JiraSession(http)) as client:
        scenario(client)
    assert len(recording.exchanges) >= 20
    problems: list[str] = []
    statuses = set()
    for request, response in recording.exchanges:
        statuses.add(response.status_code)
        errors = list(openapi.iter_response_errors(SpecRequest(request), SpecResponse(response)))
        for error in errors:
            if isinstance(error, MissingData) and not response.content:
                # The document gives 204s and property PUTs an empty JSON schema; Jira itself
                # (and HTTP, for 204) sends no body at all.
                continue
            detail: Any = getattr(error, "__cause__", None) or error
            problems.append(
                f"{request.method} {request.url.path} -> {response.status_code}: {detail}"
            )
    assert problems == [], "\n".join(problems)
    assert {200, 201, 204, 400, 404} <= statuses


def test_reclaims_requests_match_the_openapi_document(
    simulator: RunningSimulator, openapi: OpenAPI
) -> None:
    recording = Recording()
    http = open_http_client(JiraCredentials.cloud(simulator.url, EMAIL, TOKEN), transport=recording)
    with JiraClient(JiraSession(http)) as client:
        scenario(client)
    problems = []
    for request, _ in recording.exchanges:
        for error in openapi.iter_request_errors(SpecRequest(request)):
            cause = getattr(error, "__cause__", None) or error
            problems.append(f"{request.method} {request.url.path}: {cause}")
    assert problems == [], "\n".join(problems)
