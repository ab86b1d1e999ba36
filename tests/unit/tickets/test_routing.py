from __future__ import annotations

from pathlib import Path

import pytest

import reclaim.tickets
from reclaim.errors import ConfigError
from reclaim.rules import RuleFileError
from reclaim.tickets.routing import TicketRoute, load_routing, load_routing_text

EXAMPLE = Path(reclaim.tickets.__file__).parent / "examples" / "routing.yaml"


def facts(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "resource_id": "i-1",
        "account_id": "111111111111",
        "kind": "vm",
        "owner": None,
        "monthly_savings": 50.0,
        "tags": {},
    }
    return base | values


def test_the_example_routes_by_tag_kind_owner_account_then_default() -> None:
    router = load_routing(EXAMPLE, default_project="PLAT")
    tagged = router.route(facts(tags={"team": "Fin"}, monthly_savings=750))
    assert tagged == TicketRoute(
        project="FIN", team="fin", labels=("finops",), priority="High", rule_id="team-tag"
    )
    assert router.route(facts(tags={"team": "fin"}, monthly_savings=5000)).priority == "Highest"
    assert router.route(facts(tags={"team": "fin"}, monthly_savings=10)).priority == "Low"
    storage = router.route(facts(kind="volume", owner="alice"))
    assert (storage.project, storage.components, storage.priority) == (
        "OPS",
        ("storage",),
        "Medium",
    )
    owned = router.route(facts(owner="557058:alice"))
    assert (owned.project, owned.assignee, owned.components) == (
        "OPS",
        "557058:alice",
        ("compute",),
    )
    assert router.route(facts(account_id="222222222222")).project == "DATA"
    unowned = router.route(facts())
    assert (unowned.project, unowned.rule_id) == ("PLAT", None)


def test_without_a_default_an_unclaimed_item_is_a_clear_error() -> None:
    router = load_routing(EXAMPLE)
    with pytest.raises(ConfigError, match="no default project"):
        router.route(facts())


def test_routing_files_are_checked_like_any_rule_file() -> None:
    text = """
kind: routing
rules:
  - id: bad
    when: ownr == 'x'
    action: ticket
    params: {projet: OPS}
"""
    with pytest.raises(RuleFileError) as info:
        load_routing_text(text, name="routing.yaml")
    message = str(info.value)
    assert "routing.yaml" in message
    assert "projet" in message


def test_neither_rules_nor_default_is_refused() -> None:
    with pytest.raises(ConfigError, match="--default-project"):
        load_routing(None)
