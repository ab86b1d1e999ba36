from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from reclaim.recommend.fingerprint import FINGERPRINT_LENGTH, fingerprint, fingerprint_column

text = st.text(max_size=20)


def test_fingerprint_is_frozen_across_releases() -> None:
    # Tickets in Jira carry this value as a label: changing the encoding orphans every ticket.
    assert fingerprint("idle-vm", "i-0abc", "123456789012") == fingerprint(
        "idle-vm", "i-0abc", "123456789012"
    )
    assert fingerprint("a", "b", None) == "100a0928d57ce36ac560c5893f24b6c1"
    assert len(fingerprint("a", "b", "c")) == FINGERPRINT_LENGTH


@given(text, text, st.none() | text, text, text, st.none() | text)
def test_distinct_parts_give_distinct_fingerprints(
    r1: str, i1: str, a1: str | None, r2: str, i2: str, a2: str | None
) -> None:
    if (r1, i1, a1) != (r2, i2, a2):
        assert fingerprint(r1, i1, a1) != fingerprint(r2, i2, a2)


def test_separators_inside_parts_cannot_collide() -> None:
    assert fingerprint("a:b", "c", None) != fingerprint("a", "b:c", None)
    assert fingerprint("a", "b", "") != fingerprint("a", "b", None)
    assert fingerprint("a", "b", "~") != fingerprint("a", "b", None)


@given(st.lists(st.tuples(text, text, st.none() | text), max_size=30))
def test_column_version_agrees_with_scalar(rows: list[tuple[str, str, str | None]]) -> None:
    frame = pl.DataFrame(
        rows,
        schema={"rule_id": pl.String, "resource_id": pl.String, "account_id": pl.String},
        orient="row",
    )
    assert fingerprint_column(frame).to_list() == [fingerprint(*row) for row in rows]
