"""Reading record files (CSV, JSON array, JSON lines) into lazy frames with row numbers.

Inventory and utilization files share this: a CSV is read as text so our parsers judge every
cell; JSON keeps its own types, and nested values (tags as an object) become JSON text.
"""

from __future__ import annotations

__all__ = ["RECORD_FORMATS", "read_records", "rename_columns"]

from collections.abc import Mapping
from typing import Final

import polars as pl

from reclaim.errors import ConfigError, SourceLocation
from reclaim.ingest.files import FileFormat, InputFile
from reclaim.ingest.parsing import NULL_STRINGS, find_column

RECORD_FORMATS: Final = frozenset(
    {FileFormat.CSV, FileFormat.CSV_GZ, FileFormat.JSON, FileFormat.NDJSON, FileFormat.PARQUET}
)


def read_records(file: InputFile) -> pl.LazyFrame:
    """The file's records with a 1-based ``_row`` column; nested JSON values as JSON text."""
    path = file.path
    try:
        if file.format in (FileFormat.CSV, FileFormat.CSV_GZ):
            frame = pl.scan_csv(
                path,
                infer_schema=False,
                null_values=list(NULL_STRINGS),
                truncate_ragged_lines=True,
                encoding="utf8-lossy",
            )
        elif file.format is FileFormat.PARQUET:
            frame = pl.scan_parquet(path)
        elif file.format is FileFormat.NDJSON:
            frame = pl.scan_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_json(path, infer_schema_length=None).lazy()
        schema = frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {file.format.value} file: {_first_line(exc)}",
            location=SourceLocation(str(path)),
            fix="give a CSV with a header row, a JSON array of objects, or JSON lines",
        ) from exc
    nested = {
        name: _as_text(name, dtype)
        for name, dtype in schema.items()
        if isinstance(dtype, pl.Struct | pl.List | pl.Array)
    }
    if nested:
        frame = frame.with_columns(expr.alias(name) for name, expr in nested.items())
    return frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.UInt32))


def rename_columns(
    frame: pl.LazyFrame, aliases: Mapping[str, tuple[str, ...]]
) -> tuple[pl.LazyFrame, set[str]]:
    """Rename the first present alias of each canonical name (any case) to that name."""
    names = frame.collect_schema().names()
    mapping: dict[str, str] = {}
    for canonical, candidates in aliases.items():
        found = find_column(names, canonical, *candidates)
        if found is not None and found not in mapping:
            mapping[found] = canonical
    renamed = frame.select(
        [pl.col("_row")] + [pl.col(actual).alias(name) for actual, name in mapping.items()]
    )
    return renamed, set(mapping.values())


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Struct):
        return column.struct.json_encode()
    inner = dtype.inner if isinstance(dtype, pl.List | pl.Array) else None
    if isinstance(dtype, pl.Array):
        column = column.arr.to_list()
    if isinstance(inner, pl.Struct):
        # AWS writes tags as [{"Key": …, "Value": …}]: keep it as a JSON array of objects.
        items = column.list.eval(pl.element().struct.json_encode()).list.join(",")
    else:
        items = column.list.eval(pl.element().cast(pl.String)).list.join(",")
        return items
    return (
        pl.when(column.is_null())
        .then(None)
        .otherwise(pl.concat_str(pl.lit("["), items, pl.lit("]")))
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
