"""The identity of a recommendation: a stable hash of (rule id, resource id, account).

The fingerprint is the unique key of the ``recommendations`` table, the label that marks its
ticket in Jira, and what makes "the same recommendation seen again" a key lookup instead of a
scan. It must therefore never change between releases, Python versions or machines: it is a
SHA-256 over an unambiguous encoding of the three parts, not Python's ``hash`` or Polars' hash
(both of which are seeded or version dependent).
"""

from __future__ import annotations

__all__ = ["FINGERPRINT_LENGTH", "fingerprint", "fingerprint_column"]

import hashlib
from typing import Final

import polars as pl

FINGERPRINT_LENGTH: Final = 32
"""Hex characters kept (128 bits): collisions are out of reach for any number of resources."""

_VERSION: Final = "rf1"
_NULL: Final = "~"


def _encode(part: str | None) -> str:
    # Length-prefixing each part makes the encoding injective: ("a:b", "c") and ("a", "b:c")
    # cannot meet, whatever characters resource ids contain. A null account is "~", which no
    # length-prefixed string can be.
    if part is None:
        return _NULL
    return f"{len(part)}:{part}"


def fingerprint(rule_id: str, resource_id: str, account_id: str | None) -> str:
    """The fingerprint of ``rule_id`` matching ``resource_id`` in ``account_id`` (may be None)."""
    text = _VERSION + _encode(rule_id) + _encode(resource_id) + _encode(account_id)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def fingerprint_column(
    frame: pl.DataFrame,
    *,
    rule_id: str = "rule_id",
    resource_id: str = "resource_id",
    account_id: str = "account_id",
) -> pl.Series:
    """``fingerprint`` of every row of ``frame``, as a String Series named ``fingerprint``.

    The encoding is built column-wise in Polars; only the hashing itself runs per row, in C.
    """
    if frame.height == 0:
        return pl.Series("fingerprint", [], dtype=pl.String)

    def encoded(name: str) -> pl.Expr:
        column = pl.col(name).cast(pl.String)
        return (
            pl.when(column.is_null())
            .then(pl.lit(_NULL))
            .otherwise(column.str.len_chars().cast(pl.String) + pl.lit(":") + column)
        )

    texts = frame.select(
        (pl.lit(_VERSION) + encoded(rule_id) + encoded(resource_id) + encoded(account_id)).alias(
            "text"
        )
    ).to_series()
    sha256 = hashlib.sha256
    values = [
        sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH] for text in texts.to_list()
    ]
    return pl.Series("fingerprint", values, dtype=pl.String)
