"""The action vocabulary: every example is a real rule set whose tests pass; registration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import reclaim.rules.examples.invoice_actions  # noqa: F401  host actions are vocabulary too
from reclaim.errors import ConfigError
from reclaim.rules import ACTIONS, ActionRegistry, load_rules_text, register_action
from reclaim.rules.actions import CONSTANTS, example_from_docstring, register_constants


@pytest.mark.parametrize("name", ACTIONS.names())
def test_every_action_has_a_schema_and_a_runnable_example(name: str) -> None:
    spec = ACTIONS[name]
    assert spec.schema.get("type") == "object"
    assert spec.summary
    assert spec.example, f"action {name!r} has no YAML example in its docstring"
    ruleset = load_rules_text(spec.example, f"<example of {name}>")
    assert any(rule.action is spec for rule in ruleset.rules), "the example must use its action"
    assert ruleset.tests, "the example must carry tests"
    report = ruleset.run_tests()
    assert report.passed, report.render()


def test_builtins_are_registered() -> None:
    assert {"set", "recommend", "emit", "route", "verdict"} <= set(ACTIONS.names())
    assert ACTIONS["set"].updates_context
    assert all(ACTIONS[name].pure and ACTIONS[name].builtin for name in ("set", "route"))


def test_register_action_bare_and_named() -> None:
    registry = ActionRegistry()

    @register_action(registry=registry)
    def page_oncall(fact: Mapping[str, Any]) -> str:
        """Page whoever is on call.

        ```yaml
        rules:
          - {id: p, when: "True", action: page_oncall}
        ```
        """
        return "paged"

    @register_action("open-ticket", registry=registry, schema={"type": "object"})
    def open_ticket(fact: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        return dict(params)

    assert registry.names() == ["open-ticket", "page_oncall"]
    assert registry["page_oncall"].summary == "Page whoever is on call."
    assert (
        registry["page_oncall"].example
        == 'rules:\n  - {id: p, when: "True", action: page_oncall}\n'
    )
    assert not registry["page_oncall"].pure
    assert page_oncall({}) == "paged"  # the decorator returns the function unchanged


def test_register_action_into_the_global_registry_by_default() -> None:
    try:

        @register_action
        def test_only_global_action(fact: Mapping[str, Any]) -> None:
            return None

        assert "test_only_global_action" in ACTIONS
    finally:
        ACTIONS._specs.pop("test_only_global_action", None)


def test_duplicate_and_invalid_names_are_refused() -> None:
    registry = ACTIONS.copy()
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("set", lambda fact: None)
    registry.register("set", lambda fact: None, replace=True)
    with pytest.raises(ConfigError, match="invalid action name"):
        registry.register("no spaces", lambda fact: None)
    with pytest.raises(ConfigError, match="must have type 'object'"):
        registry.register("x", lambda fact: None, schema={"type": "array"})
    assert ACTIONS["set"].builtin  # the copy did not touch the global registry


def test_registered_constants_reach_conditions() -> None:
    try:
        register_constants(test_only_limit=7)
        ruleset = load_rules_text("rules:\n  - {id: a, when: x > test_only_limit}\n")
        assert ruleset.evaluate({"x": 8}).fired == ["a"]
        # The file's vars win.
        ruleset = load_rules_text(
            "vars: {test_only_limit: 100}\nrules:\n  - {id: a, when: x > test_only_limit}\n"
        )
        assert ruleset.evaluate({"x": 8}).fired == []
    finally:
        CONSTANTS.pop("test_only_limit", None)
    with pytest.raises(ConfigError, match="invalid constant name"):
        register_constants(**{"bad-name": 1})


def test_example_from_docstring() -> None:
    assert example_from_docstring(None) is None
    assert example_from_docstring("No example here.") is None
    assert example_from_docstring("Doc.\n\n    ```yaml\n    a: 1\n    ```\n") == "a: 1\n"
