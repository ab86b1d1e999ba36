"""Reading plans and states, and refusing everything else with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.policy.conftest import FIXTURES

from reclaim.policy import PlanError, load_plan, parse_plan


def test_a_plan_is_read_with_its_changes_prior_state_and_configuration() -> None:
    plan = load_plan(FIXTURES / "aws_plan.json")
    assert plan.kind == "plan"
    assert plan.format_version == "1.2"
    assert plan.terraform_version == "1.9.5"
    by_address = {change.address: change for change in plan.changes}
    replaced = by_address['module.app["blue"].aws_ebs_volume.data']
    assert replaced.actions == ("delete", "create")
    assert replaced.module_address == 'module.app["blue"]'
    assert replaced.action_reason == "replace_because_cannot_update"
    assert by_address["data.aws_ami.ubuntu"].mode == "data"
    assert "aws_db_instance.billing" in plan.prior
    assert "module.legacy.aws_instance.app" in plan.prior
    assert "root_module" in plan.configuration


def test_a_state_is_read_as_existing_resources_with_their_module() -> None:
    state = load_plan(FIXTURES / "aws_state.json", expect="state")
    assert state.kind == "state"
    by_address = {change.address: change for change in state.changes}
    assert by_address["module.legacy.aws_instance.app"].module_address == "module.legacy"
    assert all(change.actions == ("no-op",) for change in state.changes)


def _error(data: bytes | str, expect: str = "plan") -> str:
    with pytest.raises(PlanError) as caught:
        parse_plan(data, "plan.json", expect=expect)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_wrong_format_version_is_refused() -> None:
    text = json.dumps({"format_version": "2.0", "resource_changes": []})
    assert _error(text) == (
        "plan.json: format_version '2.0' is not supported; reclaim reads format 1.x; "
        "use Terraform >= 0.12 or OpenTofu, whose 'show -json' writes format 1.x"
    )


def test_truncated_json_names_the_line_and_column() -> None:
    text = (FIXTURES / "aws_plan.json").read_text()[:5000]
    message = _error(text)
    assert message.startswith("plan.json:")
    assert "the JSON ends early (truncated?)" in message
    line = text.count("\n") + 1
    assert f"plan.json:{line}:" in message


def test_invalid_json_in_the_middle_is_not_called_truncated() -> None:
    message = _error('{"format_version": "1.2",, "resource_changes": []}')
    assert message.startswith("plan.json:1:26: invalid JSON")


def test_a_state_given_as_a_plan_says_how_to_check_a_state() -> None:
    message = _error((FIXTURES / "aws_state.json").read_text())
    assert "this is a state, not a plan" in message
    assert "--state" in message


def test_a_plan_given_as_a_state_is_refused() -> None:
    message = _error((FIXTURES / "aws_plan.json").read_text(), expect="state")
    assert "this is a plan, not a state" in message


def test_a_raw_tfstate_file_is_refused() -> None:
    raw = {"version": 4, "terraform_version": "1.9.5", "serial": 3, "lineage": "x", "resources": []}
    assert "raw state file" in _error(json.dumps(raw))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04binary", "binary plan file"),
        (b"", "the file is empty"),
        (b"\xff\xfe", "not UTF-8"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"resource_changes": []}', "no 'format_version'"),
        (
            '{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a"}]}',
            "resource_changes[0] (a.b): 'change' is missing",
        ),
        (
            '{"format_version": "1.2", "resource_changes": '
            '[{"address": "a.b", "type": "a", "change": {"actions": []}}]}',
            "'change.actions' must be a non-empty list",
        ),
        ('{"format_version": "1.2", "resource_changes": {}}', "'resource_changes' must be a list"),
    ],
)
def test_malformed_input_gets_one_clear_line(data: bytes | str, expected: str) -> None:
    message = _error(data)
    assert expected in message
    assert "\n" not in message


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"nope.json: cannot read the file"):
        load_plan(tmp_path / "nope.json")
