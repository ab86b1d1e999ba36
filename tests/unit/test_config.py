"""reclaim.yaml: validated with file:line errors and the fix; secrets only named, never held."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclaim.config import (
    ConfigFileError,
    JiraConfig,
    ReclaimConfig,
    find_config,
    load_config,
    parse_config,
    starter_config,
)
from reclaim.errors import ConfigError

JIRA = """\
jira:
  url: https://acme.atlassian.net/
  email: bot@acme.example
  api_token_env: ACME_JIRA_TOKEN
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, "reclaim.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_the_starter_file_is_valid_and_means_the_sample_on_sqlite() -> None:
    config = parse_config(starter_config(), "reclaim.yaml")
    assert config.sources.sample is True
    assert config.database.url == "sqlite:///reclaim.db"
    assert config.jira is None
    assert [s.cron for s in config.schedules] == ["0 6 * * MON"]
    assert config.rules.default_project == "OPS"


def test_an_empty_file_is_every_default() -> None:
    assert parse_config("", "reclaim.yaml") == ReclaimConfig(path="reclaim.yaml")


def test_a_misspelt_key_names_its_line_and_the_likely_key() -> None:
    text = "sources:\n  sample: true\n  biling: [a.csv]\n"
    assert problems(text) == [
        "reclaim.yaml:3:3: unknown key 'sources.biling'; did you mean 'billing'?"
    ]


def test_every_problem_is_reported_with_its_own_line() -> None:
    text = (
        "database:\n  url: sqlite:///x.db\n"
        "snooze:\n  wont_do_days: 0\n"
        "schedules:\n  - name: weekly\n    cron: '0 6 * *'\n"
        "colour: blue\n"
    )
    found = problems(text)
    assert len(found) == 3
    assert found[0].startswith("reclaim.yaml:4:17: snooze.wont_do_days: Input should be greater")
    assert found[1].startswith("reclaim.yaml:7:11: schedules.0.cron: invalid cron expression")
    assert "five fields" in found[1]
    assert found[2].startswith("reclaim.yaml:8:1: unknown key 'colour'")


def test_schedules_take_a_time_zone_and_each_its_own_name() -> None:
    config = parse_config(
        "schedules:\n  - name: weekly\n    cron: '0 6 * * MON'\n    timezone: Europe/Paris\n",
        "reclaim.yaml",
    )
    assert [(s.name, s.cron, s.timezone) for s in config.schedules] == [
        ("weekly", "0 6 * * MON", "Europe/Paris")
    ]
    (zone,) = problems(
        "schedules:\n  - name: weekly\n    cron: '0 6 * * MON'\n    timezone: Mars/Olympus\n"
    )
    assert zone.startswith(
        "reclaim.yaml:4:15: schedules.0.timezone: unknown time zone 'Mars/Olympus'"
    )
    (twice,) = problems(
        "schedules:\n  - name: weekly\n    cron: '0 6 * * MON'\n"
        "  - name: weekly\n    cron: '0 7 * * MON'\n"
    )
    assert twice.startswith("reclaim.yaml:2:3: schedules: schedule name(s) 'weekly' appear more")


def test_a_wrong_type_says_what_to_write() -> None:
    (found,) = problems("sources:\n  sample: maybe\n")
    assert found.startswith("reclaim.yaml:2:11: sources.sample:")
    assert found.endswith("write true or false")


def test_a_password_in_the_database_url_is_refused() -> None:
    (found,) = problems("database:\n  url: postgresql://reclaim:hunter2@db/reclaim\n")
    assert "url_env" in found
    assert "reclaim.yaml:2:8" in found


def test_jira_needs_one_token_source_and_an_email_on_cloud() -> None:
    (no_token,) = problems("jira:\n  url: https://a.example\n  email: x@y.z\n")
    assert "no token source" in no_token
    assert no_token.startswith("reclaim.yaml:2:3: jira:")
    (no_email,) = problems("jira:\n  url: https://a.example\n  api_token_env: T\n")
    assert "e-mail" in no_email
    (both,) = problems(
        "jira:\n  url: https://a.example\n  email: a@b.c\n  api_token_env: T\n"
        "  api_token_file: t.txt\n"
    )
    assert "only one" in both
    (bad_url,) = problems("jira:\n  url: acme.atlassian.net\n  email: a@b.c\n  api_token_env: T\n")
    assert "not an http(s) URL" in bad_url


def test_a_missing_required_key_points_at_its_section() -> None:
    (found,) = problems("jira:\n  email: a@b.c\n  api_token_env: T\n")
    assert found == (
        "reclaim.yaml:1:1: jira.url is required; add url: to that section (see `reclaim init`)"
    )


def test_the_token_is_read_when_needed_and_never_held() -> None:
    config = parse_config(JIRA, "reclaim.yaml")
    assert config.jira is not None
    secret = "s3cret-token-value"
    credentials = config.jira.credentials({"ACME_JIRA_TOKEN": secret})
    assert credentials.secret == secret
    assert credentials.base_url == "https://acme.atlassian.net"
    for shown in (repr(config), config.model_dump_json(), repr(credentials)):
        assert secret not in shown


def test_an_unset_token_variable_is_a_clear_error() -> None:
    jira = JiraConfig(url="https://a.example", email="a@b.c", api_token_env="NOT_SET_ANYWHERE")
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE, which is not set; export"):
        jira.secret({})


def test_a_token_file_is_read_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n", encoding="utf-8")
    path = tmp_path / "reclaim.yaml"
    path.write_text(
        "database:\n  url: sqlite:///state.db\n"
        "sources:\n  billing: [focus/]\n  inventory: [/abs/inventory.csv]\n"
        "rules:\n  routing: routing.yaml\n"
        "jira:\n  url: https://dc.example\n  flavor: datacenter\n  api_token_file: token\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.path == str(path)
    assert config.sources.billing == [str(tmp_path / "focus/")]
    assert config.sources.inventory == ["/abs/inventory.csv"]
    assert config.rules.routing == str(tmp_path / "routing.yaml")
    assert config.database.url == f"sqlite:///{tmp_path / 'state.db'}"
    assert config.jira is not None
    assert config.jira.credentials({}).authorization() == "Bearer from-a-file"


def test_the_database_url_may_come_from_a_variable() -> None:
    config = parse_config("database:\n  url_env: MY_DB\n", "reclaim.yaml")
    assert config.database.resolve({"MY_DB": "postgresql://u:p@h/d"}) == "postgresql://u:p@h/d"
    with pytest.raises(ConfigError, match="MY_DB, which is not set"):
        config.database.resolve({})


def test_lookup_order_is_option_then_variable_then_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECLAIM_CONFIG", raising=False)
    assert find_config(None) is None
    (tmp_path / "reclaim.yaml").write_text("", encoding="utf-8")
    (tmp_path / "other.yaml").write_text("", encoding="utf-8")
    assert find_config(None) == Path("reclaim.yaml")
    monkeypatch.setenv("RECLAIM_CONFIG", str(tmp_path / "other.yaml"))
    assert find_config(None) == tmp_path / "other.yaml"
    assert find_config(tmp_path / "reclaim.yaml") == tmp_path / "reclaim.yaml"
    monkeypatch.setenv("RECLAIM_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"\$RECLAIM_CONFIG names .*missing.yaml"):
        find_config(None)


def test_a_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sources:\n  billing: [a.csv\n", "reclaim.yaml")
    assert str(caught.value).startswith("reclaim.yaml:")


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        parse_config("sources:\n  sample: true\n  sample: false\n", "reclaim.yaml")
