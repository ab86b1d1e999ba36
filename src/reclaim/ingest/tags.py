"""Tags: from JSON text to a Struct of String fields, with the owner and the count.

Decoding runs once per *distinct* tag set, not per billing row: resources share tag sets, so
this is a few thousand small ``json.loads`` even for a million resources.
"""

from __future__ import annotations

__all__ = ["OWNER_TAG_KEYS", "decode_tags"]

import json
from typing import Any, Final

import polars as pl

OWNER_TAG_KEYS: Final = (
    "owner",
    "team",
    "owner_team",
    "owning_team",
    "owner_email",
    "squad",
    "contact",
)
"""Tag keys that name an owner, in order of preference, compared after lower-casing, removing
a ``user:`` or ``tag:`` prefix and turning ``-`` and spaces into ``_``."""

_PREFIXES: Final = ("user:", "tag:")


def _normalize_key(key: str) -> str:
    lowered = key.strip().lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    return lowered.replace("-", "_").replace(" ", "_")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _parse(text: str) -> dict[str, str | None] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        return {str(k): _as_text(v) for k, v in value.items() if str(k)}
    if isinstance(value, list):
        # [{"key": …, "value": …}] (Parquet maps) or [{"Key": …, "Value": …}] (AWS APIs).
        pairs: dict[str, str | None] = {}
        for item in value:
            if not isinstance(item, dict):
                return None
            key = item.get("key", item.get("Key"))
            if key is None or not str(key):
                return None
            pairs[str(key)] = _as_text(item.get("value", item.get("Value")))
        return pairs
    return None


def _decode_flat_objects(distinct: pl.Series) -> pl.Series | None:
    """Polars' own JSON decoder, when every value is an object of scalars (the usual case).

    None when a value is not JSON, not an object, or nests: ``_decode_each`` handles those.
    """
    if not distinct.len():
        return None
    try:
        decoded = distinct.rename("tags").str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return None
    dtype = decoded.dtype
    scalar = (pl.String, pl.Int64, pl.Float64, pl.Boolean, pl.Null)
    if not isinstance(dtype, pl.Struct) or not dtype.fields:
        return None
    if not all(field.dtype in scalar and field.name for field in dtype.fields):
        return None
    # Fields sorted by key, as the general decoder makes them; casts go by position.
    fields = decoded.struct.unnest()
    return (
        fields.select(pl.col(name).cast(pl.String) for name in sorted(fields.columns))
        .to_struct("tags")
        .set(decoded.is_null(), None)
    )


def _decode_each(distinct: list[str]) -> tuple[pl.Series, list[str], int, pl.Series]:
    """One ``json.loads`` per distinct value: any JSON, bad values counted."""
    decoded = [_parse(text) for text in distinct]
    unreadable = sum(1 for value in decoded if value is None)
    keys = sorted({key for value in decoded if value for key in value})
    # Column by column: building a Struct from one dict per row is several times slower.
    columns: dict[str, list[str | None]] = {key: [None] * len(distinct) for key in keys}
    for index, value in enumerate(decoded):
        for key, text in (value or {}).items():
            columns[key][index] = text
    valid = pl.Series("valid", [value is not None for value in decoded], dtype=pl.Boolean)
    if keys:
        struct = pl.DataFrame(columns, schema={key: pl.String() for key in keys}).to_struct("tags")
    else:
        struct = pl.Series("tags", [{}] * len(distinct), dtype=pl.Struct([]))
    return struct, keys, unreadable, valid


def decode_tags(tags_json: pl.Series) -> tuple[pl.DataFrame, int]:
    """Decode a column of JSON tag text.

    Returns a frame with columns ``tags`` (Struct of String), ``tag_count`` (Int32) and
    ``owner`` (String) aligned with the input, and how many distinct values were unreadable
    (those resources get null tags).
    """
    # A Series, not a list: at a million resources nearly every tag set is distinct, and a
    # Python string per value was ~100 MB held while the facts were made.
    distinct = tags_json.drop_nulls().unique().sort()
    fast = _decode_flat_objects(distinct)
    if fast is not None:
        struct = fast
        keys = (
            [field.name for field in struct.dtype.fields]
            if isinstance(struct.dtype, pl.Struct)
            else []
        )
        unreadable = 0
        valid = pl.repeat(True, distinct.len(), dtype=pl.Boolean, eager=True).rename("valid")
    else:
        struct, keys, unreadable, valid = _decode_each(distinct.to_list())
    # The owner is looked up per key, not per row: the first owner-like key that has a value.
    by_preference = sorted(
        (OWNER_TAG_KEYS.index(_normalize_key(key)), key)
        for key in keys
        if _normalize_key(key) in OWNER_TAG_KEYS
    )
    owner_fields = [
        pl.col("tags").struct.field(key).replace("", None) for _rank, key in by_preference
    ]
    present = [
        (pl.col("tags").struct.field(key).fill_null("") != "").cast(pl.Int32) for key in keys
    ]
    lookup = pl.DataFrame({"tags_json": distinct.cast(pl.String), "tags": struct}).with_columns(
        pl.when(valid).then(pl.col("tags")).otherwise(None).alias("tags"),
        (pl.sum_horizontal(present) if present else pl.lit(0)).cast(pl.Int32).alias("tag_count"),
        (pl.coalesce(owner_fields) if owner_fields else pl.lit(None, dtype=pl.String)).alias(
            "owner"
        ),
    )
    joined = (
        pl.DataFrame({"tags_json": tags_json})
        .join(lookup, on="tags_json", how="left", maintain_order="left")
        .with_columns(pl.col("tag_count").fill_null(0))
    )
    return joined.select("tags", "tag_count", "owner"), unreadable
