"""Persistence of recommendations, observations and runs, on SQLite and PostgreSQL.

A run's plan (from :func:`reclaim.recommend.reconcile.plan_reconcile`) is written set-wise,
``STAGE_BATCH`` rows at a time within the run's one transaction: the rows are bulk-loaded into
a temporary staging table (PostgreSQL ``COPY``, SQLite ``executemany`` on the driver), then
three statements apply them — an ``INSERT … SELECT … ON
CONFLICT (fingerprint) DO UPDATE`` for every matched recommendation, an ``UPDATE … FROM`` for
those whose status moved because they were gone, and an ``INSERT … SELECT … ON CONFLICT DO
NOTHING`` for the observations. No statement runs per recommendation.

Every write is guarded by the row's ``version``: a row whose version moved since the run read
it (the ticket sync changed its status meanwhile) is left alone and counted as a conflict; the
next run sees the new state and plans again. Within one run, reading, planning and writing
happen in one transaction (``BEGIN IMMEDIATE`` on SQLite; a transaction-level advisory lock on
PostgreSQL), so two runs never interleave.
"""

from __future__ import annotations

__all__ = ["RecommendationStore"]

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from reclaim.database import Backend, backend_of
from reclaim.errors import ConfigError
from reclaim.recommend.feeder import ATTACHED_KEY, StageFeeder
from reclaim.recommend.lifecycle import (
    Event,
    LifecycleError,
    RecommendationState,
    Status,
    Transition,
    transition,
)
from reclaim.recommend.reconcile import STORED_COLUMNS, ReconcilePlan
from reclaim.recommend.records import (
    ObservationRecord,
    RecommendationRecord,
    RunRecord,
    record_of,
    replace_run,
    run_values,
)
from reclaim.recommend.reports import recommendation_filters
from reclaim.store.tables.recommend import (
    MONEY,
    RUN_ID_LENGTH,
    UtcDateTime,
    observations,
    recommendation_runs,
    recommendations,
)

# An arbitrary constant: the key of the PostgreSQL advisory lock that serializes recommend runs.
_RUN_LOCK_KEY: Final = 0x7265636C61696D  # "reclaim"
_SQLITE_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S.%6f"
_CHUNK: Final = 50_000
# Plan rows staged and applied at a time (see write_plan).
STAGE_BATCH: Final = 100_000
# SQLite's page cache for a run's write transaction, in KiB (a negative cache_size). The
# default 2 MiB holds a sliver of the seven indexes a run inserts a million rows into, so
# every insert into the savings-ordered ones re-read and spilled pages: at 200,000 new rows
# the write took 8.6 s of CPU and 30.6 s of wall, and 3.9 s / 10.8 s with 128 MiB. Given
# back when the run ends, so pooled connections do not keep it.
RUN_CACHE_KIB: Final = 131_072

# The secondary indexes of recommendations a bulk insert builds afresh after it (see
# _drop_indexes): those whose row-by-row upkeep cost more CPU than a build, measured one by
# one on a synthetic 1.46 M-row first run (upkeep / build, s): savings 4.0 / 1.5, status and
# saving ~4-9 / 1.6, account and saving 5.5 / 3.2. The others take the rows at a few places
# (owner or rule, then saving: 1.6 / 3.0 and 1.3 / 2.8) or append them (first_seen: 1.0 /
# 1.4), so they are kept; dropping all six cost as much as keeping them.
REBUILT_INDEXES: Final = frozenset(
    {
        "ix_recommendations_savings",
        "ix_recommendations_status_savings",
        "ix_recommendations_account_savings",
    }
)
# The unique index of the fingerprints, also built afresh by an insert into an empty table
# (see _insert_new): its keys are random, so every row landed on a random page of it (upkeep
# ~5.5 s of CPU at 1.46 M rows, build ~3 s). Kept when the table holds rows, since then
# ``ON CONFLICT`` needs it to find the fingerprints stored already.
FINGERPRINT_INDEX: Final = "uq_recommendations_fingerprint"

_stage_metadata = sa.MetaData()
_stage = sa.Table(
    "recommend_stage",
    _stage_metadata,
    # No key: every join probes the unique index of recommendations, so an index here would
    # only slow the bulk load.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("observed", sa.Boolean(), nullable=False),
    sa.Column("version_before", sa.Integer(), nullable=False),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("resource_id", sa.String(2048)),
    sa.Column("account_id", sa.String(256)),
    sa.Column("resource_name", sa.String(1024)),
    sa.Column("kind", sa.String(32)),
    sa.Column("region", sa.String(64)),
    sa.Column("owner", sa.String(256)),
    sa.Column("title", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("monthly_savings", MONEY),
    sa.Column("savings_method", sa.String(64)),
    sa.Column("cost_30d", MONEY),
    sa.Column("currency", sa.String(8)),
    sa.Column("params", sa.JSON()),
    sa.Column("first_seen", UtcDateTime()),
    sa.Column("last_seen", UtcDateTime()),
    sa.Column("times_seen", sa.Integer(), nullable=False),
    sa.Column("snoozed_until", UtcDateTime()),
    sa.Column("ticket_done", sa.Boolean(), nullable=False),
    # The stored row's id (null for a new one): rows seen again are found by it.
    sa.Column("id", sa.BigInteger()),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_STAGE_COLUMNS: Final = tuple(column.name for column in _stage.columns)
_TIME_COLUMNS: Final = ("first_seen", "last_seen", "snoozed_until")
_STORED_TIMES: Final = ("snoozed_until", "first_seen", "last_seen")
# What the upsert of a row seen again writes besides its sightings and status.
_UPSERTED_FIGURES: Final = (
    "resource_name",
    "kind",
    "region",
    "owner",
    "title",
    "monthly_savings",
    "savings_method",
    "cost_30d",
    "currency",
    "params",
    "snoozed_until",
)
# What a new row binds on SQLite (see _insert_new); the rest are the same for every new row.
_NEW_FIGURES: Final = (
    "fingerprint",
    "rule_id",
    "resource_id",
    "account_id",
    *(name for name in _UPSERTED_FIGURES if name != "snoozed_until"),
)
# The columns an insert writes after the figures, in this order.
_SIGHTINGS: Final = (
    "first_seen",
    "last_seen",
    "times_seen",
    "last_run_id",
    "status_changed_at",
    "snoozed_until",
    "version",
)
# What an observation records, in this order.
_OBSERVED: Final = (
    "run_id",
    "recommendation_id",
    "seen_at",
    "monthly_savings",
    "savings_method",
    "cost_30d",
)
# The new rows' stage; ``position`` is their order in the plan.
_new_stage = sa.Table(
    "recommend_new",
    _stage_metadata,
    # INTEGER PRIMARY KEY: the rowid itself, so reading in this order is a plain scan.
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    *(
        sa.Column(name, _stage.c[name].type, nullable=name not in ("fingerprint", "rule_id"))
        for name in _NEW_FIGURES
    ),
    prefixes=["TEMPORARY"],
)


class RecommendationStore:
    """The recommendations of one database. Thread-safe as far as its engine is."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = backend_of(engine)
        # An in-memory SQLite database lives in its one connection, which must never be closed.
        self._shared_connection = isinstance(engine.pool, StaticPool)

    # --- one run ----------------------------------------------------------------------------

    @contextmanager
    def run_transaction(self) -> Iterator[Connection]:
        """A transaction no other recommend run can interleave with."""
        with self.engine.connect() as connection:
            if self.backend is not Backend.SQLITE:
                with connection.begin():
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_RUN_LOCK_KEY)))
                    yield connection
                return
            # The staging table is rebuilt every run: keep it in memory rather than in a
            # temporary file. SQLite accepts this only outside a transaction, so it goes to
            # the driver (in autocommit) before SQLAlchemy begins one.
            driver: Any = connection.connection.driver_connection
            driver.execute("PRAGMA temp_store = MEMORY")
            default_cache = driver.execute("PRAGMA cache_size").fetchone()[0]
            driver.execute(f"PRAGMA cache_size = -{RUN_CACHE_KIB}")
            try:
                with connection.begin():
                    yield connection
            finally:
                if self._shared_connection:
                    driver.execute(f"PRAGMA cache_size = {int(default_cache)}")
                    # Stages attached in the transaction could not be detached inside it.
                    for schema in connection.info.pop(ATTACHED_KEY, []):
                        driver.execute(f"DETACH DATABASE {schema}")
                else:
                    # The connection is closed, not pooled, and takes its staging table and
                    # its big cache with it: dropping the stage inside the transaction copied
                    # its pages into the temporary database's journal, in memory (~330 MiB
                    # more at 915,000 rows, the peak of the run).
                    connection.invalidate()

    @contextmanager
    def snapshot(self) -> Iterator[Connection | None]:
        """A connection to read what a run plans from *without* the write lock, or None.

        On SQLite every transaction takes the database's one write lock (BEGIN IMMEDIATE), so
        loading and planning a million recommendations inside :meth:`run_transaction` kept
        every other writer (the durable engine's heartbeat among them) out for as long as the
        planning took. Reads through the driver in autocommit see a committed snapshot and
        lock nothing. On PostgreSQL reads never block writers; None says "plan inside".
        """
        if self.backend is not Backend.SQLITE:
            yield None
            return
        with self.engine.connect() as connection:
            yield connection

    def runs_recorded(self, connection: Connection, run_id: str) -> tuple[int, bool]:
        """How many recommend runs are recorded, and whether ``run_id`` is one of them.

        Read through the driver, as :meth:`load_stored` does: SQLAlchemy would begin a
        transaction, which on SQLite takes the write lock.
        """
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        placeholder = "?" if self.backend is Backend.SQLITE else "%s"
        try:
            cursor.execute(
                "SELECT count(*), coalesce(sum(CASE WHEN id = "
                f"{placeholder} THEN 1 ELSE 0 END), 0) FROM recommendation_runs",
                (run_id,),
            )
            row = cursor.fetchone()
        finally:
            cursor.close()
        return (int(row[0]), bool(row[1])) if row else (0, False)

    def find_run(self, connection: Connection, run_id: str) -> RunRecord | None:
        row = connection.execute(
            sa.select(recommendation_runs).where(recommendation_runs.c.id == run_id)
        ).first()
        return None if row is None else RunRecord(**row._mapping)

    def load_stored(self, connection: Connection, rule_ids: Sequence[str]) -> pl.DataFrame:
        """The lifecycle columns of every stored recommendation of these rules."""
        # Read through the driver, not SQLAlchemy's per-value result processing: a million
        # rows of three timestamps each cost seconds there, and Polars parses them column-wise.
        sql = (
            "SELECT id, fingerprint, rule_id, account_id, status, "
            "ticketed_at IS NOT NULL, ticket_done_at IS NOT NULL, "
            "snoozed_until, first_seen, last_seen, times_seen, version FROM recommendations"
        )
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        frames: list[pl.DataFrame] = []
        wanted = list(rule_ids)
        try:
            cursor.execute(sql)
            # A slice of rows at a time: fetched whole, 1.46 M rows were ~1 GiB of Python
            # tuples and strings next to the run's matches, the peak of a run seen again.
            while rows := cursor.fetchmany(_CHUNK):
                frames.append(self._stored_frame(rows).filter(pl.col("rule_id").is_in(wanted)))
        finally:
            cursor.close()
        if not frames:
            return self._stored_frame([]).filter(pl.col("rule_id").is_in(wanted))
        return pl.concat(frames, how="vertical")

    def _stored_frame(self, rows: list[Any]) -> pl.DataFrame:
        if self.backend is not Backend.SQLITE:
            return pl.DataFrame(rows, schema=dict(STORED_COLUMNS), orient="row")
        raw_schema: dict[str, pl.DataType] = dict(STORED_COLUMNS)
        for name in _STORED_TIMES:
            raw_schema[name] = pl.String()
        return pl.DataFrame(rows, schema=raw_schema, orient="row").with_columns(
            pl.col("has_ticket").cast(pl.Boolean),
            pl.col("ticket_done").cast(pl.Boolean),
            *(
                pl.col(name)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=True)
                .dt.replace_time_zone("UTC")
                for name in _STORED_TIMES
            ),
        )

    def write_plan(
        self, connection: Connection, plan: ReconcilePlan, *, run: RunRecord
    ) -> RunRecord:
        """Apply ``plan`` and record ``run`` (its counts come from the plan); returns the run.

        Must be called inside :meth:`run_transaction`. Rows whose version moved since
        :meth:`load_stored` are skipped and counted in ``conflicts``.
        """
        connection.execute(recommendation_runs.insert().values(**run_values(run)))
        rows = plan.rows
        if rows.height == 0:
            return run
        # Work is dated by the data that showed it done, not by when the run happened, so
        # realized savings can be measured by later data whenever the runs take place.
        data_time = run.as_of if run.as_of is not None else plan.now
        _stage.create(connection)
        try:
            # The plan goes through the stage a batch at a time, in one order (so new rows get
            # their ids in the same order as in one go), all in this one transaction:
            # staged whole, 915,000 rows held ~0.5 GiB in SQLite's in-memory temporary
            # database (and PostgreSQL's server the same on disk) on top of the plan itself.
            moved = 0
            # New rows first, largest saving first (their ids are given in insertion order),
            # then the stored ones by id, so their writes walk the table and its primary key
            # in order rather than jump about pages of a table larger than the page cache.
            # Five of the six secondary indexes are ordered by saving within a few values
            # (status, owner, account, rule, or none), so rows inserted by saving append at a
            # handful of places instead of landing on random pages of indexes larger than the
            # cache: at 1.46 M new rows the insert took half the CPU in this order.
            order = rows.select(
                pl.arg_sort_by(
                    pl.col("id").is_not_null(),
                    pl.col("id"),
                    pl.col("monthly_savings").fill_null(0.0),
                    descending=[False, False, True],
                    maintain_order=True,
                )
            ).to_series()
            start = inserted = 0
            if self.backend is Backend.SQLITE:
                start, inserted = self._insert_new(connection, rows, order, plan.now, run.id)
            for offset in range(start, rows.height, STAGE_BATCH):
                if offset > start:
                    connection.execute(_stage.delete())
                self._load_stage(connection, rows[order.slice(offset, STAGE_BATCH)])
                moved += self._apply_stage(connection, plan.now, run.id, data_time)
            # Every row new and inserted without the stage (a first run): the inserts counted
            # what they wrote, and the count below would scan the whole table for it.
            written = (
                inserted if start == rows.height else self._upserted(connection, run.id) + moved
            )
        finally:
            # On SQLite the stage goes with the run's connection (see run_transaction), except
            # in memory, where that connection is the database.
            if self.backend is Backend.SQLITE and self._shared_connection:
                _stage.drop(connection)
        conflicts = rows.height - written
        if conflicts:
            connection.execute(
                recommendation_runs.update()
                .where(recommendation_runs.c.id == run.id)
                .values(conflicts=conflicts)
            )
            run = replace_run(run, conflicts=conflicts)
        return run

    def _insert_new(
        self,
        connection: Connection,
        rows: pl.DataFrame,
        order: pl.Series,
        now: datetime,
        run_id: str,
    ) -> tuple[int, int]:
        """Insert the plan's new rows (SQLite); returns how many of the first rows of
        ``order`` (the new ones come first) it took, 0 if it left them to the stage, and how
        many of them it inserted (those whose fingerprint was stored meanwhile are not).

        On a first run every row is new. Through the stage each was bound with 23 values,
        copied by an upsert and its observation found by fingerprint, one probe of the unique
        index each. Here a new row is staged with only the 14 figures that differ from row to
        row (into narrow stages of their own, filled by a thread while the run's connection
        inserts from the other: see reclaim.recommend.feeder), the rest are literals of the
        insert, and its observation is read back by id: SQLite gives a new row the highest id
        plus one, so the rows above the highest id before an insert are exactly those it
        inserted.
        (Bound straight into ``recommendations`` by ``executemany``, the rows cost more CPU
        than staged: the table's eight B-trees are updated between rows of Python work,
        not in one pass of the statement.)

        Into an empty table (a first run) the unique index of the fingerprints is built after
        the rows as well, and they are inserted without ``ON CONFLICT``, which needs that
        index: the run's transaction holds SQLite's write lock from before it found the table
        empty (``BEGIN IMMEDIATE``), and the new fingerprints of the plan are distinct, so no
        row can conflict and a plain insert writes what ``ON CONFLICT DO NOTHING`` would.
        Were that ever wrong, building the unique index would fail the run, not store a
        duplicate.
        """
        new = int(rows.select(pl.col("id").is_null().sum()).item())
        if not new:
            return 0, 0
        is_new = pl.col("id").is_null()
        now_time = pl.lit(now, dtype=rows.schema["last_seen"])
        # A new row is planned open, seen once, now, unsnoozed, over no stored version (see
        # reconcile.plan_reconcile); anything else is left to the general path.
        uniform = rows.select(
            (
                ~is_new
                | (
                    pl.col("observed")
                    & (pl.col("status") == Status.OPEN.value)
                    & (pl.col("first_seen") == now_time)
                    & (pl.col("last_seen") == now_time)
                    & (pl.col("times_seen") == 1)
                    & pl.col("snoozed_until").is_null()
                    & (pl.col("version_before") == 0)
                ).fill_null(False)
            ).all()
        ).item()
        if not uniform:
            return 0, 0
        rec = recommendations
        now_param = sa.bindparam("now", now, type_=UtcDateTime())
        run_param = sa.literal(run_id, sa.String(RUN_ID_LENGTH))

        inserts: dict[str, Any] = {}

        def insert_from(schema: str) -> Any:
            # One statement per stage, reused for each batch it holds.
            if schema in inserts:
                return inserts[schema]
            stage = _new_stage.to_metadata(sa.MetaData(), schema=schema)
            insert = _insert_for(self.backend)(rec).from_select(
                [*_NEW_FIGURES, "status", *_SIGHTINGS],
                sa.select(
                    *(stage.c[name] for name in _NEW_FIGURES),
                    sa.literal(Status.OPEN.value, sa.String(16)),
                    now_param,
                    now_param,
                    sa.literal(1, sa.Integer()),
                    run_param,
                    now_param,
                    sa.null(),
                    sa.literal(1, sa.Integer()),
                ).order_by(stage.c.position),
            )
            if not fresh:
                # A fingerprint stored meanwhile is left alone, as the upsert leaves it (its
                # stored version is never the 0 a new row was planned over), and counted as a
                # conflict.
                insert = insert.on_conflict_do_nothing(index_elements=[rec.c.fingerprint])
            inserts[schema] = insert
            return insert

        stored = connection.execute(sa.select(sa.func.max(rec.c.id))).scalar() or 0
        # One column filtered, not the plan's every column (~0.3 GiB at 1.46 M rows).
        fresh = (
            not stored
            and not rows.select(pl.col("fingerprint").filter(is_new).is_duplicated().any()).item()
        )
        # An insert that at least doubles the table builds the secondary indexes afresh
        # after it (see _drop_indexes); max(id) is at least the row count, so a table
        # with gaps in its ids only keeps its indexes more often.
        rebuilt = REBUILT_INDEXES | {FINGERPRINT_INDEX} if fresh else REBUILT_INDEXES
        dropped = _drop_indexes(connection, rebuilt) if new >= stored else []
        # Only the bound columns are gathered (the plan's others were copied only to be
        # dropped), from the plan's own memory: a select can rechunk every column.
        figures = pl.DataFrame([rows.get_column(name) for name in _NEW_FIGURES])
        # Half a stage batch to each of the feeder's two stages: together they hold what the
        # one stage held, not twice that (~90 MiB more at the peak of the write).
        batch = max(1, STAGE_BATCH // 2)
        batches = (
            _new_rows(figures, order, start, min(batch, new - start))
            for start in range(0, new, batch)
        )
        driver: Any = connection.connection.driver_connection
        inserted = 0
        with StageFeeder(driver, _new_stage, batches) as feeder:
            # A stage attached to the run's connection can only be detached once its
            # transaction is over (see run_transaction).
            connection.info.setdefault(ATTACHED_KEY, []).extend(feeder.schemas)
            for schema in feeder:
                insert = insert_from(schema)
                high = connection.execute(sa.select(sa.func.max(rec.c.id))).scalar()
                inserted += connection.execute(insert).rowcount
                connection.execute(
                    observations.insert().from_select(
                        list(_OBSERVED),
                        sa.select(
                            run_param,
                            rec.c.id,
                            now_param,
                            rec.c.monthly_savings,
                            rec.c.savings_method,
                            rec.c.cost_30d,
                        )
                        .where(rec.c.id > (high or 0))
                        .order_by(rec.c.id),
                    )
                )
        for sql in dropped:
            connection.exec_driver_sql(sql)
        return new, inserted

    def _load_stage(self, connection: Connection, rows: pl.DataFrame) -> None:
        frame = rows.select(
            pl.col("fingerprint"),
            pl.col("observed"),
            pl.col("version_before").cast(pl.Int64),
            *(pl.col(name) for name in _STAGE_COLUMNS[3:]),
        ).with_columns(
            pl.col("monthly_savings").fill_null(0.0).round(4),
            pl.col("cost_30d").round(4),
        )
        if self.backend is Backend.POSTGRESQL:
            self._copy_stage(connection, frame)
            return
        frame = frame.with_columns(
            pl.col(name).dt.convert_time_zone("UTC").dt.strftime(_SQLITE_TIME_FORMAT)
            for name in _TIME_COLUMNS
        ).with_columns(pl.col("observed").cast(pl.Int8), pl.col("ticket_done").cast(pl.Int8))
        placeholders = ", ".join("?" for _ in _STAGE_COLUMNS)
        sql = f"INSERT INTO recommend_stage ({', '.join(_STAGE_COLUMNS)}) VALUES ({placeholders})"
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for offset in range(0, frame.height, _CHUNK):
                cursor.executemany(sql, frame.slice(offset, _CHUNK).iter_rows())
        finally:
            cursor.close()

    def _copy_stage(self, connection: Connection, frame: pl.DataFrame) -> None:
        frame = frame.with_columns(
            pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f+00")
            for name in _TIME_COLUMNS
        )
        columns = ", ".join(_STAGE_COLUMNS)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(
                f"COPY recommend_stage ({columns}) FROM STDIN WITH (FORMAT csv)"
            ) as copy:
                for offset in range(0, frame.height, _CHUNK):
                    buffer = io.BytesIO()
                    frame.slice(offset, _CHUNK).write_csv(
                        buffer, include_header=False, null_value=""
                    )
                    copy.write(buffer.getvalue())
        finally:
            cursor.close()

    def _apply_stage(
        self, connection: Connection, now: datetime, run_id: str, data_time: datetime
    ) -> int:
        """Apply what the stage holds; returns how many gone rows it moved (the upserted ones
        are counted once, after the last batch)."""
        rec = recommendations
        stage = _stage.c
        now_param = sa.bindparam("now", now, type_=UtcDateTime())
        data_time_param = sa.bindparam("data_time", data_time, type_=UtcDateTime())
        insert_columns = [
            "fingerprint",
            "rule_id",
            "resource_id",
            "account_id",
            "resource_name",
            "kind",
            "region",
            "owner",
            "title",
            "status",
            "monthly_savings",
            "savings_method",
            "cost_30d",
            "currency",
            "params",
            *_SIGHTINGS,
        ]
        select = sa.select(
            stage.fingerprint,
            stage.rule_id,
            stage.resource_id,
            stage.account_id,
            stage.resource_name,
            stage.kind,
            stage.region,
            stage.owner,
            stage.title,
            stage.status,
            stage.monthly_savings,
            stage.savings_method,
            stage.cost_30d,
            stage.currency,
            stage.params,
            stage.first_seen,
            stage.last_seen,
            stage.times_seen,
            sa.literal(run_id, sa.String(RUN_ID_LENGTH)),
            now_param,
            stage.snoozed_until,
            stage.version_before + 1,
        ).where(stage.observed.is_(True))
        if self.backend is Backend.SQLITE:
            # Rows seen again as they were get only their sightings counted, by a statement
            # that writes no indexed column, so SQLite leaves the six secondary indexes alone;
            # the upsert below skips them. Run weekly over the same estate, that is nearly
            # every row: at 1 M resources the upsert rewrote 1.46 M rows and ~10 M index
            # entries to change nothing but their sightings. (PostgreSQL writes a new version
            # of the row and of its index entries either way, so it gains nothing there.)
            connection.execute(self._seen_unchanged(run_id))
            select = select.where(
                (stage.version_before == 0)
                | ~sa.exists().where(rec.c.id == stage.id, rec.c.last_run_id == run_id)
            )
        dialect_insert = _insert_for(self.backend)
        insert = dialect_insert(rec).from_select(insert_columns, select)
        excluded = insert.excluded
        changed = excluded.status != rec.c.status
        reopened = excluded.status == Status.REOPENED.value
        upsert = insert.on_conflict_do_update(
            index_elements=[rec.c.fingerprint],
            set_={
                "status": excluded.status,
                "resource_name": excluded.resource_name,
                "kind": excluded.kind,
                "region": excluded.region,
                "owner": excluded.owner,
                "title": excluded.title,
                "monthly_savings": excluded.monthly_savings,
                "savings_method": excluded.savings_method,
                "cost_30d": excluded.cost_30d,
                "currency": excluded.currency,
                "params": excluded.params,
                "last_seen": excluded.last_seen,
                "times_seen": excluded.times_seen,
                "last_run_id": excluded.last_run_id,
                "status_changed_at": sa.case(
                    (changed, excluded.status_changed_at), else_=rec.c.status_changed_at
                ),
                "snoozed_until": excluded.snoozed_until,
                # Reopened: the done ticket was not done after all; sync will set it again.
                "ticket_done_at": sa.case(
                    (reopened, None),
                    else_=rec.c.ticket_done_at,
                ),
                # … and the work it recorded, with what it saved, no longer stands.
                "implemented_at": sa.case((reopened, None), else_=rec.c.implemented_at),
                "resolved_at": sa.case((reopened, None), else_=rec.c.resolved_at),
                "realized_monthly_savings": sa.case(
                    (reopened, None), else_=rec.c.realized_monthly_savings
                ),
                "realized_method": sa.case((reopened, None), else_=rec.c.realized_method),
                "realized_checked_at": sa.case((reopened, None), else_=rec.c.realized_checked_at),
                "version": rec.c.version + 1,
            },
            where=rec.c.version == excluded.version - 1,
        )
        connection.execute(upsert)
        gone = (
            sa.update(rec)
            .where(
                rec.c.id == stage.id,
                stage.observed.is_(False),
                rec.c.version == stage.version_before,
            )
            .values(
                status=stage.status,
                status_changed_at=sa.case(
                    (rec.c.status != stage.status, now_param), else_=rec.c.status_changed_at
                ),
                resolved_at=sa.case(
                    (stage.status == Status.RESOLVED.value, now_param), else_=rec.c.resolved_at
                ),
                implemented_at=sa.case(
                    (stage.status == Status.IMPLEMENTED.value, data_time_param),
                    else_=rec.c.implemented_at,
                ),
                snoozed_until=stage.snoozed_until,
                version=rec.c.version + 1,
            )
        )
        moved = int(connection.execute(gone).rowcount)
        columns = (
            sa.literal(run_id, sa.String(RUN_ID_LENGTH)),
            rec.c.id,
            now_param,
            stage.monthly_savings,
            stage.savings_method,
            stage.cost_30d,
        )
        # A row seen again is found by its id, a new one by its fingerprint (its id is given
        # by the insert above); stored rows come first since new ids are higher, so each
        # statement inserts in the order of the observations' key, as one ordered pass.
        for join, which in (
            (rec.c.id == stage.id, stage.id.is_not(None)),
            (rec.c.fingerprint == stage.fingerprint, stage.id.is_(None)),
        ):
            observation_select = (
                sa.select(*columns)
                .select_from(_stage.join(rec, join))
                .where(which, stage.observed.is_(True), rec.c.last_run_id == run_id)
                .order_by(rec.c.id)
            )
            connection.execute(
                dialect_insert(observations)
                .from_select(
                    list(_OBSERVED),
                    observation_select,
                )
                .on_conflict_do_nothing()
            )
        return moved

    def _seen_unchanged(self, run_id: str) -> sa.Update:
        """The staged rows seen again with every figure and status as stored: only
        ``last_seen``, ``times_seen``, ``last_run_id`` and ``version`` move, as the upsert
        would move them (``status_changed_at`` stays since the status does). A reopened row
        is left to the upsert, which clears its ticket's and its savings' dates."""
        rec = recommendations
        stage = _stage.c
        same = [
            sa.type_coerce(rec.c[name], sa.Text).is_not_distinct_from(
                sa.type_coerce(stage[name], sa.Text)
            )
            if name == "params"
            else rec.c[name].is_not_distinct_from(stage[name])
            for name in _UPSERTED_FIGURES
        ]
        return (
            sa.update(rec)
            .where(
                rec.c.id == stage.id,
                stage.observed.is_(True),
                rec.c.version == stage.version_before,
                rec.c.status == stage.status,
                stage.status != Status.REOPENED.value,
                *same,
            )
            .values(
                last_seen=stage.last_seen,
                times_seen=stage.times_seen,
                last_run_id=sa.literal(run_id, sa.String(RUN_ID_LENGTH)),
                version=rec.c.version + 1,
            )
        )

    def _upserted(self, connection: Connection, run_id: str) -> int:
        # psycopg reports no rowcount for INSERT … SELECT through SQLAlchemy; count instead.
        rec = recommendations.c
        count = connection.execute(
            sa.select(sa.func.count()).select_from(recommendations).where(rec.last_run_id == run_id)
        ).scalar_one()
        return int(count)

    # --- reading ----------------------------------------------------------------------------

    def get(self, key: int | str) -> RecommendationRecord | None:
        """The recommendation with this id, or this fingerprint."""
        column = recommendations.c.id if isinstance(key, int) else recommendations.c.fingerprint
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(recommendations).where(column == key)).first()
        return None if row is None else record_of(row)

    def find(
        self,
        *,
        statuses: Sequence[Status] | None = None,
        rule_id: str | None = None,
        account_id: str | None = None,
        owner: str | None = None,
        region: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[RecommendationRecord]:
        """Recommendations, biggest monthly savings first."""
        rec = recommendations.c
        filters = recommendation_filters(
            statuses=statuses, rule_id=rule_id, account_id=account_id, owner=owner, region=region
        )
        order = (rec.monthly_savings.desc(), rec.id)
        if limit is None:
            query = sa.select(recommendations).where(*filters).order_by(*order).offset(offset)
        else:
            # The page's ids first, from the (filter, saving, id) indexes alone, then only their
            # rows: ordered by saving descending and id ascending, no index gives the order, so
            # the plain query read and sorted every matching row, JSON and all (the select step
            # of the weekly loop read 920,000 for its 10,000 tickets at 1 M resources).
            page = sa.select(rec.id).where(*filters).order_by(*order).offset(offset).limit(limit)
            query = sa.select(recommendations).where(rec.id.in_(page)).order_by(*order)
        with self.engine.connect() as connection:
            return [record_of(row) for row in connection.execute(query)]

    def count_by_status(self) -> dict[Status, tuple[int, Decimal]]:
        """Per status: how many recommendations and their monthly savings."""
        rec = recommendations.c
        query = sa.select(
            rec.status, sa.func.count(), sa.func.coalesce(sa.func.sum(rec.monthly_savings), 0)
        ).group_by(rec.status)
        with self.engine.connect() as connection:
            return {
                Status(status): (int(count), Decimal(str(total)).quantize(Decimal("0.01")))
                for status, count, total in connection.execute(query)
            }

    def observations(self, recommendation_id: int) -> list[ObservationRecord]:
        """What each run saw of a recommendation, oldest first."""
        obs = observations.c
        query = (
            sa.select(
                obs.run_id, obs.seen_at, obs.monthly_savings, obs.savings_method, obs.cost_30d
            )
            .where(obs.recommendation_id == recommendation_id)
            .order_by(obs.seen_at, obs.run_id)
        )
        with self.engine.connect() as connection:
            return [ObservationRecord(**row._mapping) for row in connection.execute(query)]

    def runs(self, *, limit: int = 20) -> list[RunRecord]:
        """The latest recommend runs, newest first."""
        query = (
            sa.select(recommendation_runs)
            .order_by(recommendation_runs.c.finished_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [RunRecord(**row._mapping) for row in connection.execute(query)]

    # --- lifecycle events from the ticket side and from people ------------------------------

    def apply_event(
        self,
        key: int | str,
        event: Event,
        *,
        now: datetime | None = None,
        snooze: timedelta | None = None,
    ) -> Transition:
        """Apply a ticket or person event (ticket created, done, won't do, reopened, dismiss).

        Raises ``LifecycleError`` when the event cannot happen in the current status, and
        ``ConfigError`` when no recommendation has this id or fingerprint. The row is locked
        for the decision, so a concurrent run or event cannot slip in between.
        """
        if event in (Event.SEEN, Event.GONE):
            raise ConfigError(
                f"event {event.value!r} comes from runs only",
                fix="run `reclaim recommend` to record what a run saw",
            )
        now = now or datetime.now(UTC)
        column = recommendations.c.id if isinstance(key, int) else recommendations.c.fingerprint
        with self.engine.begin() as connection:
            query = sa.select(recommendations).where(column == key)
            if self.backend is Backend.POSTGRESQL:
                query = query.with_for_update()
            row = connection.execute(query).first()
            if row is None:
                raise ConfigError(
                    f"no recommendation {key!r}",
                    fix="list them with `reclaim recommendations list`",
                )
            return _apply(connection, row, event, now, snooze)

    def apply_event_to_many(
        self,
        ids: Sequence[int],
        event: Event,
        *,
        now: datetime | None = None,
        connection: Connection | None = None,
    ) -> list[int]:
        """Apply ``event`` to every recommendation of ``ids`` in one transaction.

        For a chunk of tickets: one commit instead of one per recommendation. Those the event
        cannot happen to in their status (already ticketed after a crash, say) are left as they
        are and returned; an unknown id raises ``ConfigError`` and changes nothing. With
        ``connection`` it runs in the caller's transaction (the sync ledger marks a chunk
        ticketed in the commit that records its tickets), which the caller commits.
        """
        if event in (Event.SEEN, Event.GONE):
            raise ConfigError(
                f"event {event.value!r} comes from runs only",
                fix="run `reclaim recommend` to record what a run saw",
            )
        now = now or datetime.now(UTC)
        wanted = sorted(set(ids))
        if not wanted:
            return []
        if connection is not None:
            return self._apply_many(connection, wanted, event, now)
        with self.engine.begin() as connection:
            return self._apply_many(connection, wanted, event, now)

    def _apply_many(
        self, connection: Connection, wanted: list[int], event: Event, now: datetime
    ) -> list[int]:
        skipped: list[int] = []
        postgresql_ = self.backend is Backend.POSTGRESQL
        rows = connection.execute(_lock_states(postgresql_), {"ids": wanted}).all()
        missing = set(wanted) - {row.id for row in rows}
        if missing:
            raise ConfigError(
                f"no recommendation {sorted(missing)[0]!r}",
                fix="list them with `reclaim recommendations list`",
            )
        # One UPDATE per distinct outcome (a chunk of open ones is a single statement),
        # not one per recommendation.
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        # The transition depends on the state alone, and a chunk's rows share a few states
        # (all open, typically): each distinct one is decided once.
        outcomes: dict[tuple[Any, ...], tuple[tuple[str, Any], ...] | None] = {}
        for row in rows:
            seen = (
                row.status,
                row.ticketed_at is None,
                row.ticket_done_at is None,
                row.snoozed_until,
            )
            if seen not in outcomes:
                state = RecommendationState(
                    status=Status(row.status),
                    has_ticket=row.ticketed_at is not None,
                    ticket_done=row.ticket_done_at is not None,
                    snoozed_until=row.snoozed_until,
                )
                try:
                    _, values = _values_after(state, event, now, None)
                    outcomes[seen] = tuple(sorted(values.items()))
                except LifecycleError:
                    outcomes[seen] = None
            outcome = outcomes[seen]
            if outcome is None:
                skipped.append(row.id)
            else:
                groups.setdefault(outcome, []).append(row.id)
        for outcome, group in groups.items():
            columns = tuple(name for name, _ in outcome)
            connection.execute(
                _update_states(postgresql_, columns),
                {"ids": group, **{f"v_{name}": value for name, value in outcome}},
            )
        return skipped


def _ids_match(postgresql_: bool) -> sa.ColumnElement[bool]:
    if postgresql_:
        # One array parameter: a chunk's statement is compiled and parsed once and cached,
        # where an IN list renders and parses a new statement of one parameter per id
        # every time (a third of the CPU of marking a chunk of tickets).
        return recommendations.c.id == sa.any_(
            sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger()))
        )
    return recommendations.c.id.in_(sa.bindparam("ids", expanding=True))


# Built once: a chunk of tickets marks its recommendations with these two statements, and
# building and keying a statement anew cost the worker as much as sending it.
@lru_cache(maxsize=2)
def _lock_states(postgresql_: bool) -> sa.Select[Any]:
    # Locked in id order, so two workers marking overlapping chunks cannot deadlock. Only
    # the columns of the lifecycle state: a whole row (its params JSON) costs more to read
    # than the transition itself.
    query = (
        sa.select(
            recommendations.c.id,
            recommendations.c.status,
            recommendations.c.ticketed_at,
            recommendations.c.ticket_done_at,
            recommendations.c.snoozed_until,
        )
        .where(_ids_match(postgresql_))
        .order_by(recommendations.c.id)
    )
    return query.with_for_update() if postgresql_ else query


@lru_cache(maxsize=64)
def _update_states(postgresql_: bool, columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE that writes ``columns`` (bound as ``v_<name>``) to the rows of ``ids``."""
    values: dict[str, Any] = {
        name: sa.bindparam(f"v_{name}", type_=recommendations.c[name].type) for name in columns
    }
    return (
        recommendations.update()
        .where(_ids_match(postgresql_))
        .values({**values, "version": recommendations.c.version + 1})
    )


def _apply(
    connection: Connection,
    row: sa.Row[Any],
    event: Event,
    now: datetime,
    snooze: timedelta | None,
) -> Transition:
    decision, values = _values_after(record_of(row).state, event, now, snooze)
    connection.execute(
        recommendations.update()
        .where(recommendations.c.id == row.id)
        .values({**values, "version": recommendations.c.version + 1})
    )
    return decision


def _values_after(
    state: RecommendationState, event: Event, now: datetime, snooze: timedelta | None
) -> tuple[Transition, dict[str, Any]]:
    """The transition ``event`` makes and the columns it writes (``LifecycleError`` if none)."""
    decision = transition(state, event, now=now, snooze=snooze)
    after = decision.after
    values: dict[str, Any] = {
        "status": after.status.value,
        "snoozed_until": after.snoozed_until,
    }
    if decision.changed:
        values["status_changed_at"] = now
    if event is Event.TICKET_CREATED:
        values["ticketed_at"] = now
        values["ticket_done_at"] = None
    elif event is Event.TICKET_REOPENED:
        values["ticket_done_at"] = None
    elif event is Event.TICKET_DONE:
        values["ticket_done_at"] = now
    elif event is Event.TICKET_WONT_DO:
        values["ticket_done_at"] = None
    return decision, values


def _drop_indexes(connection: Connection, rebuilt: frozenset[str]) -> list[str]:
    """Drop the indexes of ``recommendations`` named in ``rebuilt`` (SQLite); returns the
    statements that create them again, as the database stored them (byte for byte).

    A bulk insert maintained each index row by row; built after the insert, an index is one
    scan and sort of the finished table. The indexes are taken from the SQLAlchemy table,
    so a name the schema drops is never dropped here (nor the fingerprints' index of a
    database still at ``recommend_0002``, where it is a constraint's). SQLite's DDL is
    transactional: the caller creates them again before the run's transaction commits,
    other connections see the last committed table (with its indexes) meanwhile, and a run
    that fails or dies in between rolls back to the table as it was, indexes and all.
    """
    names = sorted(str(index.name) for index in recommendations.indexes if index.name in rebuilt)
    stored = connection.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = :table AND name IN :names AND sql IS NOT NULL ORDER BY name"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"table": recommendations.name, "names": names},
    ).all()
    for name, _sql in stored:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [str(sql) for _name, sql in stored]


def _insert_for(backend: Backend) -> Any:
    if backend is Backend.POSTGRESQL:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _new_rows(
    figures: pl.DataFrame, order: pl.Series, start: int, length: int
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``_new_stage`` for positions ``start`` to ``start + length`` of ``order``,
    made a slice at a time (run by the feeder's thread, as the stage is filled)."""
    for offset in range(start, start + length, _CHUNK):
        size = min(_CHUNK, start + length - offset)
        chunk = figures[order.slice(offset, size)].select(
            pl.int_range(offset, offset + size, dtype=pl.Int64).alias("position"),
            *(pl.col(name) for name in _NEW_FIGURES),
        )
        chunk = chunk.with_columns(
            pl.col("monthly_savings").fill_null(0.0).round(4),
            pl.col("cost_30d").round(4),
        )
        yield from chunk.iter_rows()
