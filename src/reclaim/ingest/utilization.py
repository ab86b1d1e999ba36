"""Utilization files: metric samples aggregated per resource over a window (avg, p95, max).

Two shapes are accepted, as CSV, JSON, JSON lines or Parquet:

- long: ``resource_id, timestamp, metric, value`` (one sample per row), the way monitoring
  systems export;
- wide: ``resource_id, timestamp, cpu, mem, network_in, …`` (one column per metric).

Metric names are matched without case from a few common spellings (``CPUUtilization``,
``cpu``, ``memory``, ``NetworkIn``, ``RequestCount``, ``DatabaseConnections``, ``iops``,
``read_iops``). Network in and out at the same timestamp add up to one ``network`` sample, in
bytes per second; read and write IOPS likewise to one ``iops`` sample. A sample whose
resource, time or value cannot be read, or whose metric we do not know, is skipped and reported.
"""

from __future__ import annotations

__all__ = [
    "METRIC_NAMES",
    "UTILIZATION_FORMATS",
    "UtilizationData",
    "aggregate_utilization",
    "read_and_aggregate",
    "read_utilization",
]

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from reclaim.errors import ConfigError, SourceLocation
from reclaim.ingest.facts import FACT_SCHEMA, UTC_TIME
from reclaim.ingest.files import InputFile
from reclaim.ingest.parsing import clean_text, find_column, parse_number, parse_time, unreadable
from reclaim.ingest.records import RECORD_FORMATS, read_records
from reclaim.ingest.report import SAMPLES_PER_FILE, BadRow, FileReport, new_content

UTILIZATION_FORMATS: Final = RECORD_FORMATS

METRIC_NAMES: Final[dict[str, str]] = {
    "cpu": "cpu",
    "cpu_utilization": "cpu",
    "cpuutilization": "cpu",
    "cpu_percent": "cpu",
    "mem": "mem",
    "memory": "mem",
    "memory_utilization": "mem",
    "memoryutilization": "mem",
    "mem_used_percent": "mem",
    "network": "network",
    "network_in": "network",
    "network_out": "network",
    "networkin": "network",
    "networkout": "network",
    "requests": "requests",
    "request_count": "requests",
    "requestcount": "requests",
    "connections": "connections",
    "database_connections": "connections",
    "databaseconnections": "connections",
    "iops": "iops",
    "volume_iops": "iops",
    "total_iops": "iops",
    "read_iops": "iops",
    "write_iops": "iops",
}
"""Accepted metric spelling (lower case) → the metric it feeds."""

SAMPLE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "resource_id": pl.Categorical(),
    "timestamp": UTC_TIME,
    "metric": pl.Categorical(),
    "value": pl.Float64(),
}
"""Normalized samples, the shape the AWS collector also produces.

Ids and metric names are categoricals: a million resources sampled for a month are tens of
millions of samples, and a 4-byte code per sample instead of the text is most of their size.
"""

UTILIZATION_COLUMNS: Final = (
    "cpu_avg",
    "cpu_p95",
    "cpu_max",
    "mem_avg",
    "mem_p95",
    "mem_max",
    "network_avg",
    "network_p95",
    "network_max",
    "iops_avg",
    "iops_p95",
    "iops_max",
    "requests_sum",
    "connections_avg",
    "connections_max",
    "samples",
    "metric_days",
)


BUCKET_SAMPLES: Final = 2_000_000
"""Above this many samples, they are aggregated a bucket of resources at a time (see
``aggregate_utilization``): exact quantiles need every sample of a resource in memory, and
a million resources sampled for a month are over a hundred million samples."""

MANY_BUCKETS: Final = 16
"""Beyond this many buckets of ``BUCKET_SAMPLES``, buckets grow instead (up to four times):
every bucket is a partition the sink holds a buffer for while it writes. At a million
resources over 30 days, 86 buckets took 1.67 GB to write, 22 buckets 0.89 GB."""


@dataclass(frozen=True)
class SamplePiece:
    """The good rows of one file, lazily: samples already (``metrics`` None), or wide rows
    with one column per metric (``metrics``: column → metric) that become samples later.

    Wide rows are what gets split into buckets: turning them into samples first, in the
    streaming engine, held them all in memory.
    """

    rows: pl.LazyFrame
    metrics: dict[str, str] | None = None

    def samples(self, rows: pl.LazyFrame | None = None) -> pl.LazyFrame:
        """``rows`` (by default this piece's) as samples: resource_id, timestamp, metric, value."""
        source = self.rows if rows is None else rows
        if self.metrics is None:
            return source
        return (
            source.unpivot(
                on=list(self.metrics),
                index=["resource_id", "timestamp"],
                variable_name="metric",
                value_name="value",
            )
            .filter(pl.col("value").is_not_null())
            .select(
                "resource_id",
                "timestamp",
                pl.col("metric").replace_strict(self.metrics, return_dtype=pl.String),
                "value",
            )
        )


@dataclass
class UtilizationData:
    """Normalized samples (``SAMPLE_SCHEMA``; lazily read from files) and the file reports."""

    samples: pl.DataFrame | pl.LazyFrame
    files: list[FileReport] = field(default_factory=list)
    count: int | None = None
    """How many samples there are; None: ``samples.height``."""
    pieces: list[SamplePiece] = field(default_factory=list)
    """Where lazy ``samples`` come from, file by file (for aggregating in buckets)."""

    def size(self) -> int:
        if self.count is not None:
            return self.count
        if isinstance(self.samples, pl.DataFrame):
            return self.samples.height
        return int(self.samples.select(pl.len()).collect(engine="streaming").item())

    def newest(self) -> datetime | None:
        """The time of the latest sample."""
        newest = self.samples.lazy().select(pl.col("timestamp").max()).collect().item()
        return newest if isinstance(newest, datetime) else None


def read_utilization(
    files: Sequence[InputFile], *, hashes: dict[Path, str] | None = None
) -> UtilizationData:
    """Check every file (one streaming pass each) and describe its good samples lazily.

    The samples are read again when they are aggregated, once the window is known: holding
    them all in memory in between is what made utilization most of a collection's memory.
    """
    pieces: list[SamplePiece] = []
    reports: list[FileReport] = []
    count = 0
    for file, digest in new_content(files, "utilization", hashes, reports):
        piece, report, good = _read_one(file, digest)
        pieces.append(piece)
        reports.append(report)
        count += good
    if not pieces:
        return UtilizationData(pl.DataFrame(schema=_LAZY_SCHEMA), reports, 0)
    samples = pl.concat([piece.samples() for piece in pieces], how="vertical")
    return UtilizationData(samples, reports, count, pieces)


_LAZY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "resource_id": pl.String(),
    "timestamp": UTC_TIME,
    "metric": pl.String(),
    "value": pl.Float64(),
}
"""Samples as read from files: ids as text, categoricals only once a bucket is in memory."""


def _checked(
    file: InputFile, rows: pl.LazyFrame, good_samples: pl.Expr
) -> tuple[FileReport, int, pl.DataFrame]:
    """Count a file's rows, bad rows and good samples in one streaming pass."""
    counts = rows.select(
        pl.len().alias("rows"),
        pl.col("_bad").is_not_null().sum().alias("bad"),
        good_samples.sum().alias("good"),
    )
    first_bad = (
        rows.filter(pl.col("_bad").is_not_null()).select("_row", "_bad").head(SAMPLES_PER_FILE)
    )
    try:
        counted, bad = pl.collect_all([counts, first_bad], engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise _unparsable(file, exc) from exc
    report = FileReport(
        path=str(file.path),
        kind="utilization",
        sha256="",
        rows=int(counted["rows"].item()),
        bad_rows=int(counted["bad"].item()),
        samples=tuple(
            BadRow(str(file.path), int(row), str(reason))
            for row, reason in bad.sort("_row").iter_rows()
        ),
    )
    return report, int(counted["good"].item() or 0), bad


@dataclass(frozen=True)
class _Plan:
    """How one file is checked and what its good samples are, before anything is read."""

    rows: pl.LazyFrame
    """Every row that holds samples, with ``_row`` and ``_bad`` (the reason it is bad)."""
    good_samples: pl.Expr
    """The good samples a row of ``rows`` holds."""
    piece: SamplePiece
    window: pl.LazyFrame | None = None
    """For a wide file: ``rows`` with ``_good`` (``good_samples``), ``_ok`` (the row's good
    cells are samples) and the piece's columns, for checking and aggregating in one read."""


def _unparsable(file: InputFile, exc: pl.exceptions.PolarsError) -> ConfigError:
    return ConfigError(
        f"cannot parse utilization file: {(str(exc).splitlines() or ['?'])[0]}",
        location=SourceLocation(str(file.path)),
        fix="check that it is an unbroken CSV or JSON file",
    )


def _read_one(file: InputFile, digest: str) -> tuple[SamplePiece, FileReport, int]:
    plan = _plan(file)
    report, good_count, _ = _checked(file, plan.rows, plan.good_samples)
    return plan.piece, replace(report, sha256=digest), good_count


def _plan(file: InputFile) -> _Plan:
    raw = read_records(file)
    dtypes = raw.collect_schema()
    names = [name for name in dtypes.names() if name != "_row"]
    resource = find_column(names, "resource_id", "id", "ResourceId")
    timestamp = find_column(names, "timestamp", "time", "ts", "datetime")
    for needed, found in (("resource_id", resource), ("timestamp", timestamp)):
        if found is None:
            raise ConfigError(
                f"utilization file lacks a {needed!r} column",
                location=SourceLocation(str(file.path), 1),
                fix="give resource_id, timestamp and either metric and value, or one column "
                "per metric (cpu, mem, network_in, requests, …)",
            )
    assert resource is not None
    assert timestamp is not None
    metric = find_column(names, "metric", "metric_name")
    value = find_column(names, "value", "average")
    time_dtype = dtypes[timestamp]
    if metric is not None and value is not None:
        long = raw.select(
            "_row",
            clean_text(pl.col(resource)).alias("resource_id"),
            parse_time(pl.col(timestamp), time_dtype).alias("timestamp"),
            clean_text(pl.col(metric))
            .str.to_lowercase()
            .replace_strict(METRIC_NAMES, default=None, return_dtype=pl.String)
            .alias("metric"),
            pl.col(value).alias("value"),
        )
        value_dtype = dtypes[value]
    else:
        metric_columns = [n for n in names if n.lower() in METRIC_NAMES]
        if not metric_columns:
            raise ConfigError(
                "utilization file has neither metric/value columns nor metric columns",
                location=SourceLocation(str(file.path), 1),
                fix="add columns metric and value, or columns named cpu, mem, network_in, …",
            )
        return _plan_wide(raw, resource, timestamp, metric_columns)
    prepared = long.with_columns(
        pl.col("value").alias("_raw_value"),
        parse_number(pl.col("value"), value_dtype).alias("value"),
    )
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("resource_id").is_null(), "resource_id is empty"),
        (pl.col("timestamp").is_null(), "timestamp is empty or not a timestamp"),
        (
            pl.col("metric").is_null(),
            "unknown metric (use cpu, mem, network, iops, requests, connections)",
        ),
        (unreadable(pl.col("_raw_value"), pl.col("value"), value_dtype), "value is not a number"),
        (pl.col("value").is_null(), "value is empty"),
    ]
    bad = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(checks):
        bad = pl.when(condition).then(pl.lit(reason)).otherwise(bad)
    rows = prepared.select("_row", "resource_id", "timestamp", "metric", "value", bad.alias("_bad"))
    good = rows.filter(pl.col("_bad").is_null()).select(
        pl.col(name).cast(dtype) for name, dtype in _LAZY_SCHEMA.items()
    )
    return _Plan(rows, pl.col("_bad").is_null(), SamplePiece(good))


def _plan_wide(
    raw: pl.LazyFrame, resource: str, timestamp: str, metric_columns: list[str]
) -> _Plan:
    """A file with one column per metric: rows checked as they are, good cells made samples.

    The checks run on the wide rows, before a row becomes one sample per metric, so the
    long samples carry no row numbers, raw values or reasons. A blank cell means "not
    measured"; a row with no measured cell is not a row of samples at all (neither counted
    nor bad).
    """
    dtypes = raw.collect_schema()
    time_dtype = dtypes[timestamp]
    present = pl.any_horizontal(
        [
            clean_text(pl.col(n)).is_not_null()
            if dtypes[n] == pl.String
            else pl.col(n).is_not_null()
            for n in metric_columns
        ]
    )
    unreadable_cell = pl.any_horizontal(
        [
            unreadable(pl.col(n), parse_number(pl.col(n), dtypes[n]), dtypes[n])
            for n in metric_columns
        ]
    )
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("resource_id").is_null(), "resource_id is empty"),
        (pl.col("timestamp").is_null(), "timestamp is empty or not a timestamp"),
        (unreadable_cell, "value is not a number"),
    ]
    bad = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(checks):
        bad = pl.when(condition).then(pl.lit(reason)).otherwise(bad)
    rows = (
        raw.select(
            "_row",
            clean_text(pl.col(resource)).alias("resource_id"),
            parse_time(pl.col(timestamp), time_dtype).alias("timestamp"),
            *metric_columns,
        )
        .filter(present)
        .with_columns(bad.alias("_bad"))
    )
    # In a row with an unreadable cell the readable cells are still good samples.
    ok = pl.col("resource_id").is_not_null() & pl.col("timestamp").is_not_null()
    cells = pl.sum_horizontal(
        [parse_number(pl.col(n), dtypes[n]).is_not_null().cast(pl.UInt32) for n in metric_columns]
    )
    good_samples = pl.when(ok).then(cells).otherwise(0)
    values = [parse_number(pl.col(n), dtypes[n]).alias(n) for n in metric_columns]
    good = rows.filter(ok).select("resource_id", "timestamp", *values)
    piece = SamplePiece(good, {n: METRIC_NAMES[n.lower()] for n in metric_columns})
    window = rows.select(
        "_row",
        "_bad",
        good_samples.alias("_good"),
        ok.alias("_ok"),
        "resource_id",
        "timestamp",
        *values,
    )
    return _Plan(rows, good_samples, piece, window)


def aggregate_utilization(
    samples: pl.DataFrame | pl.LazyFrame,
    as_of: datetime,
    *,
    window_days: int = 30,
    count: int | None = None,
    pieces: Sequence[SamplePiece] = (),
) -> pl.DataFrame:
    """One row per resource: avg/p95/max per metric over ``window_days`` ending at ``as_of``.

    When the samples come from files (``pieces``) and number more than ``BUCKET_SAMPLES``
    (``count``), the rows of the window are first written, in one streaming pass per file,
    to temporary Parquet files by bucket of resources, and each bucket is aggregated in
    memory in turn: all of a resource's samples land in one bucket, so the exact quantiles
    are unchanged and the memory is one bucket's. A longer history costs time, not memory.
    """
    wide = _wide_metrics(pieces)
    if pieces and count is not None and count > BUCKET_SAMPLES:
        if wide is not None:
            start = as_of - timedelta(days=window_days)
            in_window = (pl.col("timestamp") > start) & (pl.col("timestamp") <= as_of)
            sliced = _aggregate_in_slices(
                (
                    (piece.rows.filter(in_window).collect_batches(chunk_size=SLICE_ROWS), piece)
                    for piece in pieces
                ),
                wide,
            )
            if sliced is not None:
                return sliced
        return _aggregate_in_buckets(
            pieces, as_of, window_days=window_days, buckets=_buckets(count), wide=wide
        )
    if wide is not None:
        start = as_of - timedelta(days=window_days)
        in_window = (pl.col("timestamp") > start) & (pl.col("timestamp") <= as_of)
        return _aggregate_wide(
            [(piece.rows.filter(in_window), piece.metrics or {}) for piece in pieces], wide
        ).sort("resource_id")
    return _aggregate(samples, as_of, window_days=window_days)


def read_and_aggregate(
    files: Sequence[InputFile],
    as_of: datetime,
    *,
    window_days: int = 30,
    hashes: dict[Path, str] | None = None,
) -> tuple[UtilizationData, pl.DataFrame | None]:
    """``read_utilization`` then ``aggregate_utilization`` (None without samples), for a
    window end known before the files are read: wide files grouped by resource are then
    checked and aggregated in one read each, instead of a read to check them and another to
    aggregate them (at a million resources over 30 days, the checking read was 5 s of CPU).

    The reports are those of the two steps, and so are the figures: a slice holds every row
    of its resources, so its figures are those of the aggregation of all rows in memory that
    ``aggregate_utilization`` does for few samples. Whether the rows are grouped is only
    known once they are read: when they are not, or a file is in the long shape, the two
    steps run as before.
    """
    reports: list[FileReport] = []
    plans: list[tuple[InputFile, str, _Plan]] = []
    for file, digest in new_content(files, "utilization", hashes, reports):
        plans.append((file, digest, _plan(file)))
    wide = _wide_metrics([plan.piece for _, _, plan in plans])
    if wide is not None and plans:
        start = as_of - timedelta(days=window_days)
        in_window = (pl.col("timestamp") > start) & (pl.col("timestamp") <= as_of)
        tallies = [_Tally() for _ in plans]
        sliced = _aggregate_in_slices(
            (
                (tally.window_rows(file, plan, in_window), plan.piece)
                for (file, _, plan), tally in zip(plans, tallies, strict=True)
            ),
            wide,
        )
        count = sum(tally.good for tally in tallies)
        if sliced is not None:
            pieces = [plan.piece for _, _, plan in plans]
            for (file, digest, _), tally in zip(plans, tallies, strict=True):
                reports.append(tally.report(file, digest))
            samples = pl.concat([piece.samples() for piece in pieces], how="vertical")
            return UtilizationData(samples, reports, count, pieces), sliced
    data = read_utilization(files, hashes=hashes)
    if not data.size():
        return data, None
    return data, aggregate_utilization(
        data.samples, as_of, window_days=window_days, count=data.count, pieces=data.pieces
    )


@dataclass
class _Tally:
    """What ``_checked`` counts in a file, counted batch by batch as the file is read."""

    rows: int = 0
    bad: int = 0
    good: int = 0
    first_bad: list[pl.DataFrame] = field(default_factory=list)
    held_bad: int = 0

    def window_rows(
        self, file: InputFile, plan: _Plan, in_window: pl.Expr
    ) -> Iterator[pl.DataFrame]:
        """The good rows of the window in ``plan.window``, as they are read; counting every
        row on the way."""
        assert plan.window is not None
        columns = ["resource_id", "timestamp", *(plan.piece.metrics or {})]
        try:
            for batch in plan.window.collect_batches(chunk_size=SLICE_ROWS):
                self.rows += batch.height
                bad = batch.filter(pl.col("_bad").is_not_null())
                self.bad += bad.height
                self.good += int(batch.get_column("_good").sum() or 0)
                if self.held_bad < SAMPLES_PER_FILE and bad.height:
                    first = bad.select("_row", "_bad").head(SAMPLES_PER_FILE - self.held_bad)
                    self.first_bad.append(first)
                    self.held_bad += first.height
                yield batch.filter(pl.col("_ok") & in_window).select(columns)
        except pl.exceptions.PolarsError as exc:
            raise _unparsable(file, exc) from exc

    def report(self, file: InputFile, digest: str) -> FileReport:
        bad = (
            pl.concat(self.first_bad).sort("_row")
            if self.first_bad
            else pl.DataFrame(schema={"_row": pl.UInt32, "_bad": pl.String})
        )
        return FileReport(
            path=str(file.path),
            kind="utilization",
            sha256=digest,
            rows=self.rows,
            bad_rows=self.bad,
            samples=tuple(
                BadRow(str(file.path), int(row), str(reason)) for row, reason in bad.iter_rows()
            ),
        )


SLICE_ROWS: Final = 1_000_000
"""Wide rows grouped by resource are aggregated this many rows (and the rest of the last
resource's) at a time, as they are read: see ``_aggregate_in_slices``."""

_RUN_SEED: Final = 0x5E1C


def _aggregate_in_slices(
    sources: Iterable[tuple[Iterable[pl.DataFrame], SamplePiece]], wide: _WideMetrics
) -> pl.DataFrame | None:
    """``_aggregate_wide`` of the window's rows, a slice of about ``SLICE_ROWS`` rows at a
    time in one streaming pass per file, or None when the rows are not grouped by resource.
    ``sources``: per file, its good rows in the window as a streaming read yields them, and
    its piece.

    Exports and the generator write each resource's rows next to each other. Then a slice
    cut at a change of resource holds every row of its resources, and its figures are final:
    no temporary bucket files (writing them was a third of the collection's utilization time
    at a million resources). Whether the rows are so grouped is checked as they come: each
    run of one resource's rows leaves the hash of its id, and a hash seen twice (a resource
    in two places, in one file or two) stops the pass; the caller then uses the buckets. A
    hash collision only costs that detour.

    A slice is aggregated in a thread of its own while the next one is read: read and
    aggregated in turn, one waited for the other. A slice is handed over once the
    previous one is aggregated, so memory holds two slices' rows at most.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reclaim-slices") as pool:
        frames = _slices(sources, wide, pool)
        if not frames:
            return None
        return pl.concat([frame.result() for frame in frames], how="vertical").sort("resource_id")


def _slices(
    sources: Iterable[tuple[Iterable[pl.DataFrame], SamplePiece]],
    wide: _WideMetrics,
    pool: ThreadPoolExecutor,
) -> list[Future[pl.DataFrame]] | None:
    """The slices of ``_aggregate_in_slices``, each aggregated by ``pool``; None when the rows
    are not grouped by resource."""
    frames: list[Future[pl.DataFrame]] = []
    seen = pl.Series("run", [], dtype=pl.UInt64)

    def finished(rows: pl.DataFrame, columns: dict[str, str]) -> bool:
        nonlocal seen
        runs = rows.get_column("resource_id").rle().struct.field("value").hash(seed=_RUN_SEED)
        if runs.is_duplicated().any() or runs.is_in(seen.implode()).any():
            return False
        seen = seen.append(runs.rename("run"))
        if frames:
            frames[-1].result()
        frames.append(pool.submit(_aggregate_wide, [(rows.lazy(), columns)], wide))
        return True

    for batches, piece in sources:
        columns = piece.metrics or {}
        pending: list[pl.DataFrame] = []
        held = 0
        for batch in batches:
            if not batch.height:
                continue
            pending.append(batch)
            held += batch.height
            if held < SLICE_ROWS:
                continue
            rows = pl.concat(pending)
            # The last resource's rows may go on in the next batch: they wait for it.
            last = int(rows.get_column("resource_id").rle().struct.field("len")[-1])
            pending, held = [rows.slice(rows.height - last)], last
            if rows.height > last and not finished(rows.head(rows.height - last), columns):
                return None
        rest = pl.concat(pending) if pending else None
        if rest is not None and rest.height and not finished(rest, columns):
            return None
    return frames


def _buckets(samples: int) -> int:
    """How many buckets ``samples`` are aggregated in (see ``MANY_BUCKETS``)."""
    small = -(-samples // BUCKET_SAMPLES)
    large = -(-samples // (4 * BUCKET_SAMPLES))
    return min(small, max(MANY_BUCKETS, large))


def _aggregate_in_buckets(
    pieces: Sequence[SamplePiece],
    as_of: datetime,
    *,
    window_days: int,
    buckets: int,
    wide: _WideMetrics | None = None,
) -> pl.DataFrame:
    start = as_of - timedelta(days=window_days)
    in_window = (pl.col("timestamp") > start) & (pl.col("timestamp") <= as_of)
    frames: list[pl.DataFrame] = []
    with tempfile.TemporaryDirectory(prefix="reclaim-utilization-") as tmp:
        folder = Path(tmp)
        for index, piece in enumerate(pieces):
            piece.rows.filter(in_window).with_columns(
                (pl.col("resource_id").hash(seed=0xB0C) % buckets).alias("_bucket")
            ).sink_parquet(
                pl.PartitionBy(folder / str(index), key="_bucket", include_key=False),
                compression="lz4",
                mkdir=True,
            )
        names = sorted({b.name for p in folder.iterdir() for b in p.iterdir() if b.is_dir()})
        for name in names:
            if wide is not None:
                frames.append(
                    _aggregate_wide(
                        [
                            (
                                pl.scan_parquet(sorted((folder / str(index) / name).glob("*"))),
                                piece.metrics or {},
                            )
                            for index, piece in enumerate(pieces)
                            if (folder / str(index) / name).is_dir()
                        ],
                        wide,
                    )
                )
                continue
            # Ids become categorical codes before wide rows are unpivoted: one 4-byte code per
            # sample instead of a copy of the id text per metric.
            parts = [
                piece.samples(
                    pl.scan_parquet(sorted((folder / str(index) / name).glob("*"))).with_columns(
                        pl.col("resource_id").cast(pl.Categorical)
                    )
                ).with_columns(pl.col("resource_id").cast(pl.Categorical))
                for index, piece in enumerate(pieces)
                if (folder / str(index) / name).is_dir()
            ]
            bucket = pl.concat(parts, how="vertical").collect()
            frames.append(_aggregate(bucket, as_of, window_days=window_days))
            del bucket
    if not frames:
        return _aggregate(pl.DataFrame(schema=_LAZY_SCHEMA), as_of, window_days=window_days)
    return pl.concat(frames, how="vertical").sort("resource_id")


_DAYS_PER_SECOND: Final = 1.0 / 86400.0
"""Polars divides a column by a number as a product with its inverse, but one value by one
value exactly: ``/ 86400.0`` gave a resource alone in its bucket another last bit than the
same resource among others. A product is the same either way."""

_SUMMED: Final = frozenset({"network", "iops"})
"""Metrics whose samples at one time add up (in and out, reads and writes): see ``_aggregate``."""

_METRIC_ORDER: Final = ("cpu", "mem", "network", "iops", "requests", "connections")


@dataclass(frozen=True)
class _WideMetrics:
    """What wide pieces measure, for aggregating their rows without making them samples."""

    metrics: tuple[str, ...]
    """Every metric some piece has a column for, in ``_METRIC_ORDER``."""
    several: frozenset[str]
    """Summed metrics some piece gives in several columns (in and out): their rows carry a
    count of cells, since a row is then more than one sample."""


def _wide_metrics(pieces: Sequence[SamplePiece]) -> _WideMetrics | None:
    """The metrics of ``pieces`` when every piece is wide and each metric that is not summed
    has one column per piece; else None (the samples are then aggregated as samples)."""
    if not pieces:
        return None
    metrics: set[str] = set()
    several: set[str] = set()
    for piece in pieces:
        if piece.metrics is None:
            return None
        columns = list(piece.metrics.values())
        for metric in set(columns):
            if columns.count(metric) > 1:
                # Two columns of one averaged metric (cpu and CPUUtilization) are two samples
                # per row: the per-row value a wide aggregation needs does not exist.
                if metric not in _SUMMED:
                    return None
                several.add(metric)
        metrics.update(columns)
    return _WideMetrics(tuple(m for m in _METRIC_ORDER if m in metrics), frozenset(several))


def _metric_rows(rows: pl.LazyFrame, columns: dict[str, str], wide: _WideMetrics) -> pl.LazyFrame:
    """Wide rows as one value per metric: the cells of a summed metric added up (null when
    none is measured), a missing metric null, and for ``wide.several`` the count of cells."""
    values: list[pl.Expr] = []
    for metric in wide.metrics:
        cells = [pl.col(column) for column, name in columns.items() if name == metric]
        if not cells:
            value = pl.lit(None, dtype=pl.Float64)
        elif len(cells) == 1:
            value = cells[0]
        else:
            value = pl.when(pl.any_horizontal([cell.is_not_null() for cell in cells])).then(
                pl.sum_horizontal(cells)
            )
        values.append(value.cast(pl.Float64).alias(metric))
        if metric in wide.several:
            count = (
                pl.sum_horizontal([cell.is_not_null().cast(pl.UInt8) for cell in cells])
                if cells
                else pl.lit(0)
            )
            values.append(count.cast(pl.UInt8).alias(f"_n_{metric}"))
    return rows.select(pl.col("resource_id").cast(pl.Categorical), "timestamp", *values)


def _aggregate_wide(
    parts: Sequence[tuple[pl.LazyFrame, dict[str, str]]], wide: _WideMetrics
) -> pl.DataFrame:
    """``_aggregate`` of wide rows (already in the window; with their column → metric maps),
    grouped by resource alone: the same figures without one long row per sample.

    Unpivoting every row into a sample per metric, then grouping by (resource, metric) and,
    for network and IOPS, by (resource, metric, time) first, was most of the collection's
    time at a million resources (171 M samples). Here a row is one value per metric, so a
    summed metric's samples at one time (in and out) are already added up, provided the
    resource has one row per time. A resource with two rows at one time (duplicated rows, or
    in and out in two files) has its summed metrics aggregated again per time, as
    ``_aggregate`` does. Quantiles, maxima and counts are the same values; means and sums
    may differ from ``_aggregate``'s in the last bits (the order of additions).
    """
    rows = (
        pl.concat([_metric_rows(frame, columns, wide) for frame, columns in parts])
        .filter(pl.any_horizontal([pl.col(metric).is_not_null() for metric in wide.metrics]))
        .collect()
    )
    summed = [metric for metric in wide.metrics if metric in _SUMMED]

    def cells(metric: str) -> pl.Expr:
        if metric in wide.several:
            return pl.col(f"_n_{metric}").sum()
        return pl.col(metric).count()

    def statistic(metric: str, how: str) -> pl.Expr:
        value = pl.col(metric)
        if how == "avg":
            return value.mean()
        if how == "p95":
            return value.quantile(0.95, interpolation="linear")
        if how == "max":
            return value.max()
        # A sum over no sample is unknown, not 0 (as the join in ``_aggregate`` leaves it).
        return pl.when(value.count() > 0).then(value.sum())

    def statistics(metrics: Sequence[str]) -> list[pl.Expr]:
        wanted = [name.split("_") for name in UTILIZATION_COLUMNS if name.count("_") == 1]
        return [
            statistic(metric, how).alias(f"{metric}_{how}")
            for metric, how in wanted
            if metric in metrics
        ]

    aggregations = [
        pl.sum_horizontal([cells(metric) for metric in wide.metrics]).alias("samples"),
        (
            (pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_seconds()
            * _DAYS_PER_SECOND
        ).alias("metric_days"),
        *statistics(wide.metrics),
    ]
    if summed:
        aggregations.append((pl.col("timestamp").n_unique() < pl.len()).alias("_repeated"))
    frame = rows.group_by("resource_id").agg(aggregations)
    if summed:
        repeated = frame.filter(pl.col("_repeated")).get_column("resource_id")
        if repeated.len():
            per_time = (
                rows.filter(pl.col("resource_id").is_in(repeated.implode()))
                .group_by("resource_id", "timestamp")
                .agg(
                    pl.when(pl.col(metric).count() > 0).then(pl.col(metric).sum()).alias(metric)
                    for metric in summed
                )
                .group_by("resource_id")
                .agg(statistics(summed))
            )
            frame = frame.update(per_time, on="resource_id", include_nulls=True)
    return frame.select(
        pl.col("resource_id").cast(pl.String),
        *[
            (pl.col(name) if name in frame.columns else pl.lit(None))
            .cast(FACT_SCHEMA[name])
            .alias(name)
            for name in UTILIZATION_COLUMNS
        ],
    )


def _aggregate(
    samples: pl.DataFrame | pl.LazyFrame, as_of: datetime, *, window_days: int
) -> pl.DataFrame:
    start = as_of - timedelta(days=window_days)
    # Ids and metric names as categoricals: grouping tens of millions of samples on their
    # integer codes instead of strings is what keeps the per-resource quantiles affordable.
    in_window = (
        samples.lazy()
        .filter((pl.col("timestamp") > start) & (pl.col("timestamp") <= as_of))
        .with_columns(pl.col("resource_id", "metric").cast(pl.Categorical))
    )

    def statistics(count: pl.Expr) -> list[pl.Expr]:
        return [
            pl.col("value").mean().alias("avg"),
            pl.col("value").quantile(0.95, interpolation="linear").alias("p95"),
            pl.col("value").max().alias("max"),
            pl.col("value").sum().alias("sum"),
            count.cast(pl.Int64).alias("n"),
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
        ]

    columns = ["resource_id", "metric", "avg", "p95", "max", "sum", "n", "first", "last"]
    # Per (resource, metric) first, then one column per statistic: filtering inside a
    # per-resource aggregation, twelve times over, cost several times more. Network and the
    # other metrics are aggregated apart (their groups are disjoint) so that the samples are
    # never concatenated into one more copy.
    # In and out (reads and writes) arrive as two samples at one time; their sum is the
    # traffic (the I/O rate) at that time.
    summed = pl.col("metric").is_in(["network", "iops"])
    network = (
        in_window.filter(summed)
        .group_by("resource_id", "metric", "timestamp")
        .agg(pl.col("value").sum(), pl.len().alias("n"))
        .group_by("resource_id", "metric")
        .agg(statistics(pl.col("n").sum()))
        .select(columns)
    )
    others = (
        in_window.filter(~summed)
        .group_by("resource_id", "metric")
        .agg(statistics(pl.len()))
        .select(columns)
    )
    # The in-memory engine: the samples are in memory already, and the streaming engine
    # computed the per-group quantiles more than ten times slower (1M resources: 44 s).
    per_metric = pl.concat([others, network], how="vertical").collect()
    frame = per_metric.group_by("resource_id").agg(
        pl.col("n").sum().cast(pl.Int64).alias("samples"),
        (
            (pl.col("last").max() - pl.col("first").min()).dt.total_seconds() * _DAYS_PER_SECOND
        ).alias("metric_days"),
    )
    for name in UTILIZATION_COLUMNS:
        if name in ("samples", "metric_days"):
            continue
        metric, how = name.split("_")
        frame = frame.join(
            per_metric.filter(pl.col("metric") == metric).select(
                "resource_id", pl.col(how).alias(name)
            ),
            on="resource_id",
            how="left",
        )
    return frame.select(
        pl.col("resource_id").cast(pl.String),
        *[pl.col(name).cast(FACT_SCHEMA[name]) for name in UTILIZATION_COLUMNS],
    ).sort("resource_id")
