"""The simulator's JQL: parsed (never evaluated as code), with Jira's semantics and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.tickets.simulator.jql import JqlError, parse_jql

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def ms(text: str, zone: ZoneInfo = UTC) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).timestamp() * 1000)


def issue(**values: Any) -> dict[str, Any]:
    base = {
        "id": 1,
        "project": "OPS",
        "key": "OPS-1",
        "labels": ("reclaim", "reclaim-fp-abc"),
        "status": "To Do",
        "statuscategory": "new",
        "resolution": None,
        "issuetype": "Task",
        "summary": "Stop idle VM",
        "created": ms("2024-05-01 10:00:00"),
        "updated": ms("2024-05-01 10:00:30"),
    }
    return base | values


def matches(jql: str, zone: ZoneInfo = UTC, **values: Any) -> bool:
    return parse_jql(jql).matches(issue(**values), zone)


def test_fields_and_operators() -> None:
    assert matches("project = OPS")
    assert matches("project = ops")  # keys and names compare case-insensitively
    assert not matches("project = FIN")
    assert matches("labels = reclaim-fp-abc")
    assert matches('labels IN ("x", "reclaim")')
    assert matches("labels NOT IN (x, y)")
    assert not matches("labels != reclaim")
    assert matches('status = "To Do" AND statusCategory = new')
    assert matches("statusCategory != done")
    assert matches("resolution IS EMPTY")
    assert matches("resolution IS NOT EMPTY", resolution="Done")
    assert matches('summary ~ "idle"')
    assert matches("issuekey = OPS-1")


def test_precedence_and_grouping() -> None:
    assert matches("project = FIN OR project = OPS AND labels = reclaim")
    assert not matches("(project = FIN OR project = OPS) AND labels = nope")
    assert matches("NOT project = FIN")
    assert matches("NOT (project = FIN OR labels = nope)")


def test_updated_against_epoch_milliseconds() -> None:
    at = ms("2024-05-01 10:00:30")
    assert matches(f"updated >= {at}")
    assert not matches(f"updated > {at}")
    assert matches(f"updated >= {at - 5000} AND updated <= {at + 5000}")


def test_date_literals_are_read_in_the_users_time_zone() -> None:
    # 10:00:30 UTC is 12:00:30 in Berlin (summer time).
    assert matches('updated >= "2024-05-01 12:00"', BERLIN)
    assert not matches('updated >= "2024-05-01 12:01"', BERLIN)
    assert not matches('updated >= "2024-05-01 12:00"', UTC)
    assert matches('updated >= "2024-05-01 10:00"', UTC)
    assert matches('updated < "2024-05-02"', UTC)
    assert matches('updated >= "2024/05/01 10:00"', UTC)


def test_order_by() -> None:
    query = parse_jql("project = OPS ORDER BY updated DESC, key ASC")
    assert [(o.field, o.descending) for o in query.order] == [("updated", True), ("key", False)]
    assert parse_jql("ORDER BY created").predicate is None


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("nosuch = 1", "Field 'nosuch' does not exist"),
        ("project = ", "Expecting a field name, found the end"),
        ("project = OPS AND", "found the end"),
        ("project = OPS labels = x", "Expecting either 'OR' or 'AND'"),
        ("status > 3", "operator '>' is not supported"),
        ('updated >= "yesterday"', "Date value 'yesterday'"),
        ("project = OPS ORDER key", "Expecting 'by'"),
        ("labels NOT x", "Expecting 'IN'"),
        ("project = OPS; DROP", "reserved JQL character"),
        ("__import__('os')", "Field '__import__' does not exist"),
    ],
)
def test_errors_read_like_jiras(jql: str, message: str) -> None:
    with pytest.raises(JqlError, match=message):
        parse_jql(jql).matches(issue(), UTC)


LABELS = ["a", "b", "c"]
clause = st.sampled_from(LABELS).map(
    lambda label: (f"labels = {label}", lambda ls, wanted=label: wanted in ls)
)


def combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(
            lambda p: (f"({p[0][0]} AND {p[1][0]})", lambda ls, p=p: p[0][1](ls) and p[1][1](ls))
        ),
        pair.map(
            lambda p: (f"({p[0][0]} OR {p[1][0]})", lambda ls, p=p: p[0][1](ls) or p[1][1](ls))
        ),
        children.map(lambda c: (f"NOT {c[0]}", lambda ls, c=c: not c[1](ls))),
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    tree=st.recursive(clause, combine, max_leaves=8),
    labels=st.sets(st.sampled_from(LABELS)),
)
def test_boolean_structure_agrees_with_a_reference(tree: Any, labels: set[str]) -> None:
    jql, reference = tree
    assert parse_jql(jql).matches(issue(labels=tuple(labels)), UTC) == reference(labels)
