"""The two most used Python Jira clients work through the simulator unchanged."""

from __future__ import annotations

import warnings

import pytest
from tests.integration.tickets.conftest import EMAIL, TOKEN

from reclaim.tickets.simulator import RunningSimulator


def test_the_jira_library_creates_searches_transitions_and_comments(
    simulator: RunningSimulator,
) -> None:
    from jira import JIRA

    client = JIRA(server=simulator.url, basic_auth=(EMAIL, TOKEN))
    try:
        issue = client.create_issue(
            project="OPS",
            summary="Stop idle VM i-1",
            issuetype={"name": "Task"},
            labels=["reclaim"],
        )
        assert issue.key == "OPS-1"
        found = client.search_issues("project = OPS AND labels = reclaim")
        assert [i.key for i in found] == ["OPS-1"]
        assert {t["name"] for t in client.transitions(issue)} == {"Start Progress", "Done"}
        client.transition_issue(issue, "Done")
        client.add_comment(issue, "saved $120/month")
        again = client.issue("OPS-1")
        assert again.fields.status.name == "Done"
        assert again.fields.resolution.name == "Done"
        assert [c.body for c in client.comments(issue)] == ["saved $120/month"]
    finally:
        client.close()


def test_atlassian_python_api_creates_searches_transitions_and_comments(
    simulator: RunningSimulator,
) -> None:
    with warnings.catch_warnings():
        # The library imports modules that warn about their own deprecations.
        warnings.simplefilter("ignore", DeprecationWarning)
        from atlassian import Jira

    client = Jira(url=simulator.url, username=EMAIL, password=TOKEN, cloud=True)
    try:
        created = client.issue_create(
            fields={
                "project": {"key": "FIN"},
                "summary": "Delete snapshot",
                "issuetype": {"name": "Task"},
            }
        )
        key = created["key"]
        assert key == "FIN-1"
        found = client.enhanced_jql("project = FIN")
        assert [i["key"] for i in found["issues"]] == [key]
        client.set_issue_status(key, "Closed")
        assert client.get_issue_status(key) == "Closed"
        client.issue_add_comment(key, "done by the owner")
        comments = client.issue_get_comments(key)
        assert [c["body"] for c in comments["comments"]] == ["done by the owner"]
    finally:
        client.close()


@pytest.mark.parametrize("password", ["wrong"])
def test_a_wrong_token_is_refused_with_401(simulator: RunningSimulator, password: str) -> None:
    import httpx

    response = httpx.get(f"{simulator.url}/rest/api/3/myself", auth=(EMAIL, password))
    assert response.status_code == 401
    assert response.json()["errorMessages"]
