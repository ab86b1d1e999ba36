"""``reclaim policy`` as a user runs it: exit codes, formats, malformed input, policy tests."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reclaim.cli import main
from reclaim.cli.context import console, err_console
from reclaim.policy import builtin_pack_path

FIXTURES = Path(__file__).resolve().parents[2] / "unit" / "policy" / "fixtures"
Run = Callable[..., tuple[int, str, str]]
_run: Run


@pytest.fixture(autouse=True)
def _runner(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Run the console entry point in this process, as the shell would: argv in, exit code,
    stdout and stderr out (main() turns errors into one line and exit 2)."""
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 200)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["reclaim", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 0 if code is None else 1), out, err

    global _run
    _run = run


def _clean_plan(tmp_path: Path) -> Path:
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "resource_changes": [
            {
                "address": "aws_instance.web",
                "mode": "managed",
                "type": "aws_instance",
                "name": "web",
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": {
                        "instance_type": "t3.small",
                        "tags": {"owner": "a", "cost-center": "b"},
                    },
                    "after_unknown": {"id": True},
                },
            }
        ],
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_a_clean_plan_exits_0(tmp_path: Path) -> None:
    code, out, _ = _run("policy", "check", str(_clean_plan(tmp_path)))
    assert code == 0
    assert "PASS" in out
    assert "0 deny" in out


def test_a_denied_plan_exits_1_and_warn_only_exits_0() -> None:
    plan = str(FIXTURES / "aws_plan.json")
    code, out, _ = _run("policy", "check", plan, "--now", "2026-12-01")
    assert code == 1
    assert "FAIL" in out
    assert "public-bucket" in out
    code, out, _ = _run("policy", "check", plan, "--warn-only", "--now", "2026-12-01")
    assert code == 0
    assert "FAIL" in out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("state.json", "this is a state, not a plan"),
        ("truncated.json", "the JSON ends early (truncated?)"),
        ("v2.json", "format_version '2.0' is not supported"),
    ],
)
def test_malformed_plans_exit_2_with_one_line(tmp_path: Path, name: str, expected: str) -> None:
    texts = {
        "state.json": (FIXTURES / "aws_state.json").read_text(),
        "truncated.json": (FIXTURES / "aws_plan.json").read_text()[:3000],
        "v2.json": json.dumps({"format_version": "2.0", "resource_changes": []}),
    }
    path = tmp_path / name
    path.write_text(texts[name])
    code, out, err = _run("policy", "check", str(path))
    assert code == 2
    assert expected in err
    assert out == ""
    assert "Traceback" not in err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = _run("policy", "check")
    assert code == 2
    assert "give a plan file or --state FILE" in err
    code, _, _ = _run("policy", "check", str(_clean_plan(tmp_path)), "--format", "yaml")
    assert code == 2


def test_bad_policy_files_print_every_error_and_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text(
        "kind: policy\nrules:\n  - id: a\n    when: cpu_avgg > 1 and\n    action: finding\n"
        "    params: {effect: block, message: x}\n"
    )
    code, _, err = _run("policy", "check", str(_clean_plan(tmp_path)), "--rules", str(rules))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("error: ") for line in lines)
    assert "bad.yaml:4:" in err
    assert "bad.yaml:6:" in err


def test_a_state_is_checked_with_state(tmp_path: Path) -> None:
    code, out, _ = _run("policy", "check", "--state", str(FIXTURES / "aws_state.json"))
    assert code == 1
    assert "aws_instance.old_worker" in out


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "markdown"])
def test_formats_to_stdout_and_to_a_file(tmp_path: Path, fmt: str) -> None:
    plan = str(FIXTURES / "gcp_plan.json")
    code, out, _ = _run("policy", "check", plan, "--format", fmt, "--now", "2026-12-01")
    assert code == 1
    if fmt in ("json", "sarif"):
        json.loads(out)
    assert "Gcp-Sql-Us3r-S3cret" not in out
    target = tmp_path / f"out.{fmt}"
    code, out, _ = _run(
        "policy", "check", plan, "-f", fmt, "-o", str(target), "--now", "2026-12-01"
    )
    assert code == 1
    assert target.read_text().strip()
    assert "FAIL" in out


def test_own_rules_with_the_builtin_pack(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mine.yaml").write_text(
        "kind: policy\nrules:\n  - id: small-only\n    when: size == 't3.small'\n"
        "    action: finding\n    params: {effect: warn, message: '{address} is small'}\n"
    )
    plan = str(_clean_plan(tmp_path))
    code, out, _ = _run("policy", "check", plan, "--rules", str(rules), "-f", "json")
    assert code == 0
    findings = json.loads(out)["findings"]
    assert [(f["policy"], f["rule"]) for f in findings] == [("mine", "small-only")]
    code, out, _ = _run("policy", "check", plan, "--rules", str(rules), "--builtin", "-f", "json")
    assert json.loads(out)["policies"] == ["mine", "finops"]


def test_policy_test_runs_the_packs_tests() -> None:
    code, out, _ = _run("policy", "test", str(builtin_pack_path()))
    assert code == 0
    assert "0 failed" in out


def test_policy_test_reports_failures_with_exit_1(tmp_path: Path) -> None:
    for item in builtin_pack_path().iterdir():
        if item.suffix in (".yaml", ".csv") and item.name != "finops.tests.yaml":
            shutil.copyfile(item, tmp_path / item.name)
    test_file = tmp_path / "finops_test.yaml"
    test_file.write_text(
        test_file.read_text().replace(
            "deny: [no-gp2, owner-tag-required, cost-center-tag-required]", "deny: [no-gp2]"
        )
    )
    code, out, _ = _run("policy", "test", str(tmp_path))
    assert code == 1
    assert "FAIL" in out
    assert "1 failed" in out
    assert "- expected ['no-gp2']" in out


def test_policy_test_with_a_broken_test_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "kind: policy\nrules:\n  - id: a\n    when: 'true'\n    action: finding\n"
        "    params: {effect: info, message: x}\n"
    )
    (tmp_path / "p_test.yaml").write_text("tests:\n  - name: x\n    plan: {}\n    denny: []\n")
    code, _, err = _run("policy", "test", str(tmp_path))
    assert code == 2
    assert "p_test.yaml: tests.0.denny: Extra inputs are not permitted" in err


def test_pack_copies_the_builtin_pack(tmp_path: Path) -> None:
    target = tmp_path / "pack"
    code, _, _ = _run("policy", "pack", str(target))
    assert code == 0
    assert sorted(path.name for path in target.iterdir()) == [
        "finops.tests.yaml",
        "finops.yaml",
        "finops_test.yaml",
        "prices.csv",
    ]
    code, _, _ = _run("policy", "test", str(target))
    assert code == 0
    code, _, err = _run("policy", "pack", str(target))
    assert code == 2
    assert "is not empty" in err
