"""The simulator keeps a create's ADF description as JSON text and indexes issues at search."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reclaim.tickets.document import adf_to_text
from reclaim.tickets.simulator import JiraFault, JiraState
from reclaim.tickets.simulator.body import RawDocument, decode_bulk, decode_create, is_document
from reclaim.tickets.simulator.render import Renderer
from reclaim.tickets.simulator.state import SimIssue

DOC = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "What"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "Stop vm-1 — 1.5 €/h"}]},
    ],
}


def fields(**more: Any) -> dict[str, Any]:
    return {"project": {"key": "OPS"}, "summary": "x", "issuetype": {"name": "Task"}, **more}


def bulk(*updates: dict[str, Any]) -> bytes:
    return json.dumps({"issueUpdates": list(updates)}).encode()


def test_a_bulk_create_keeps_descriptions_as_json_text_until_shown() -> None:
    updates = decode_bulk(bulk({"fields": fields(description=DOC, labels=["a"])}))
    assert updates is not None
    description = updates[0]["fields"]["description"]
    assert isinstance(description, RawDocument)
    assert updates[0]["fields"]["labels"] == ["a"]
    state = JiraState()
    issue = state.create(updates[0]["fields"], author="me", adf=True)
    assert isinstance(issue.description, RawDocument)
    shown = Renderer("http://sim", 3).issue(issue, ["description"])
    assert shown["fields"]["description"] == DOC
    v2 = Renderer("http://sim", 2).issue(issue, ["description"])
    assert v2["fields"]["description"] == adf_to_text(DOC)


def test_a_description_that_is_not_a_plain_document_takes_the_general_parser() -> None:
    state = JiraState()
    for value in ({"type": "paragraph"}, ["doc"], 3):
        assert decode_bulk(bulk({"fields": fields(description=value)})) is None
        with pytest.raises(JiraFault) as refused:
            state.create(fields(description=value), author="me", adf=True)
        assert "Atlassian Document" in refused.value.errors["description"]
    # A document with members beyond type, version and content is kept as it came.
    unusual = {**DOC, "attrs": {"x": 1}}
    assert decode_bulk(bulk({"fields": fields(description=unusual)})) is None
    assert state.create(fields(description=unusual), author="me", adf=True).description == unusual
    # Data Center's v2 takes a string, and refuses a document.
    (text,) = decode_bulk(bulk({"fields": fields(description="plain text")})) or []
    assert state.create(text["fields"], author="me", adf=False).key == "OPS-2"
    (document,) = decode_bulk(bulk({"fields": fields(description=DOC)})) or []
    assert is_document(document["fields"]["description"])
    with pytest.raises(JiraFault):
        state.create(document["fields"], author="me", adf=False)


def test_bodies_the_fast_reader_does_not_take_are_left_to_the_general_parser() -> None:
    assert decode_bulk(b"{not json") is None
    assert decode_bulk(b"[]") is None
    assert decode_bulk(b'{"issueUpdates": [{"fields": 1}]}') is None
    assert decode_bulk(b'{"issueUpdates": [{"properties": []}]}') is None
    assert decode_bulk(bulk({"fields": fields(customfield_10010="x")})) is None
    assert decode_create(b'{"fields": null}') is None
    single = decode_create(
        json.dumps({"fields": fields(description=None), "properties": [{"key": "k"}]}).encode()
    )
    assert single == {"fields": fields(description=None), "properties": [{"key": "k"}]}


def test_without_a_lag_an_issue_is_indexed_at_the_next_search_as_it_is_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[str] = []
    snapshot = SimIssue.snapshot

    def counted(issue: SimIssue) -> dict[str, Any]:
        taken.append(issue.key)
        return snapshot(issue)

    monkeypatch.setattr(SimIssue, "snapshot", counted)
    state = JiraState()
    for n in range(3):
        state.create(fields(summary=f"n{n}", labels=["fp"]), author="me", adf=True)
    state.edit("OPS-2", {"labels": ["other"]}, {}, author="me", adf=True)
    state.transition("OPS-3", "21", author="me")
    assert taken == []
    assert [i.key for i in state.search("labels = fp")] == ["OPS-1", "OPS-3"]
    assert sorted(taken) == ["OPS-1", "OPS-2", "OPS-3"]
    assert [i.key for i in state.search("status = 'In Progress'")] == ["OPS-3"]
    assert len(taken) == 3
    state.create(fields(summary="late", labels=["fp"]), author="me", adf=True)
    assert [i.key for i in state.search("labels = fp ORDER BY key DESC")] == [
        "OPS-4",
        "OPS-3",
        "OPS-1",
    ]
