from __future__ import annotations

from reclaim.errors import ConfigError, DatabaseError, ExecutionError, ReclaimError, SourceLocation


def test_message_names_place_and_fix() -> None:
    error = ConfigError(
        "unknown field 'cpu_avgg'",
        location=SourceLocation("rules/aws.yaml", 14, 9),
        fix="did you mean 'cpu_avg'?",
    )
    assert str(error) == "rules/aws.yaml:14:9: unknown field 'cpu_avgg'; did you mean 'cpu_avg'?"


def test_docstring_is_the_default_message() -> None:
    assert str(DatabaseError()) == "The database could not be used."
    assert isinstance(DatabaseError(), ExecutionError)
    assert isinstance(ConfigError(), ReclaimError)
