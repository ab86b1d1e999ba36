"""ISO 8601 text for declared datetime fields, and fields no fact of a batch has."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.rules import absent_fields, load_rules_text, parse_declared_datetimes

NOW = datetime(2024, 6, 1, tzinfo=UTC)
DATED = """
facts:
  created: datetime
  meta: {seen: datetime}
rules:
  - id: old
    when: days_since(created) > 30
  - id: seen-before-created
    when: meta.seen < created
"""


def test_iso_text_in_a_declared_datetime_field_evaluates_on_every_path() -> None:
    ruleset = load_rules_text(DATED)
    fact = {"created": "2020-01-01T00:00:00Z", "meta": {"seen": "2019-12-31T23:00:00-02:00"}}
    assert ruleset.evaluate(fact, now=NOW).fired == ["old"]
    assert ruleset.explain(fact, now=NOW).fired == ["old"]
    parsed = parse_declared_datetimes(ruleset.schema, fact)
    assert parsed["created"] == datetime(2020, 1, 1, tzinfo=UTC)
    assert parsed["meta"]["seen"] == datetime(2020, 1, 1, 1, tzinfo=UTC)
    assert ruleset.evaluate(parsed, now=NOW).fired == ["old"]
    frame = pl.DataFrame({"created": ["2020-01-01T00:00:00Z", None]})
    assert ruleset.evaluate_frame(frame, now=NOW)["rule_id"].to_list() == ["old"]


def test_text_that_is_not_iso_8601_names_the_field() -> None:
    ruleset = load_rules_text(DATED)
    with pytest.raises(ConfigError, match="field 'created' is declared datetime"):
        parse_declared_datetimes(ruleset.schema, {"created": "last tuesday"})


def test_fields_no_fact_has_are_reported_with_a_suggestion() -> None:
    ruleset = load_rules_text(
        "rules:\n"
        "  - {id: typo, condition: invoice_numbr}\n"
        "  - {id: word, condition: yes}\n"
        "  - {id: fine, condition: invoice_number and true}\n"
        "  - {id: sets, condition: invoice_number, action: set, params: {seen: 'true'}}\n"
        "  - {id: reads-set, condition: seen}\n",
        "r.yaml",
    )
    found = absent_fields(ruleset, ["invoice_number"])
    assert [(a.rule_id, a.field, a.suggestion) for a in found] == [
        ("typo", "invoice_numbr", "invoice_number"),
        ("word", "yes", None),
    ]
    assert str(found[0]).startswith("r.yaml:2:5: rule 'typo' reads field 'invoice_numbr'")
    assert str(found[0]).endswith("did you mean 'invoice_number'?")
