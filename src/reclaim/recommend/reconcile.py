"""Reconciliation as a pure function: (stored recommendations, this run's matches) → a plan.

The plan says, for every recommendation the run touches, what its row must become:

- **new**: matched for the first time → a new ``open`` row;
- **seen again**: matched again → the same row, ``last_seen`` and figures updated, ``times_seen``
  incremented (never a second row: the user's "repeated recommendation" rule). Its status may
  move: a done ticket whose waste is still there, or an implemented/resolved/dismissed one
  whose snooze is over, is ``reopened``;
- **gone**: stored, in the run's scope, not matched → ``resolved`` (its ticket was open) or
  ``implemented`` (its ticket was done);
- **snoozed**: a dismissed recommendation still snoozed keeps its status whatever the run says.

Everything is computed column-wise in Polars: one join of the matches with the stored rows,
and one join with the transition table of :mod:`reclaim.recommend.lifecycle`, from which the
statuses come, so this planner and ``lifecycle.transition`` cannot disagree.

"In scope" matters: a run over one account's facts must not resolve another account's
recommendations. A stored recommendation is in scope when its rule was evaluated in this run
and its account appears in this run's facts.
"""

from __future__ import annotations

__all__ = [
    "MATCH_COLUMNS",
    "PLAN_COLUMNS",
    "STORED_COLUMNS",
    "Change",
    "ReconcilePlan",
    "Scope",
    "empty_matches",
    "empty_stored",
    "plan_reconcile",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

import polars as pl

from reclaim.recommend.lifecycle import RUN_TRANSITIONS, Effect, Event, Status

_TIME: Final = pl.Datetime("us", "UTC")

MATCH_COLUMNS: Final[Mapping[str, pl.DataType]] = {
    "fingerprint": pl.String(),
    "rule_id": pl.String(),
    "resource_id": pl.String(),
    "account_id": pl.String(),
    "resource_name": pl.String(),
    "kind": pl.String(),
    "region": pl.String(),
    "owner": pl.String(),
    "title": pl.String(),
    "monthly_savings": pl.Float64(),
    "savings_method": pl.String(),
    "cost_30d": pl.Float64(),
    "currency": pl.String(),
    "params": pl.String(),
    "action": pl.String(),
}
"""One row per rule match of this run; ``params`` is a JSON object (text); ``action`` is the
action's ``type`` parameter (decides which of several matches on a resource keeps its saving)."""

STORED_COLUMNS: Final[Mapping[str, pl.DataType]] = {
    "id": pl.Int64(),
    "fingerprint": pl.String(),
    "rule_id": pl.String(),
    "account_id": pl.String(),
    "status": pl.String(),
    "has_ticket": pl.Boolean(),
    "ticket_done": pl.Boolean(),
    "snoozed_until": _TIME,
    "first_seen": _TIME,
    "last_seen": _TIME,
    "times_seen": pl.Int64(),
    "version": pl.Int64(),
}
"""The lifecycle part of each stored recommendation that the planner needs."""


class Change(StrEnum):
    NEW = "new"
    SEEN = "seen"
    GONE = "gone"
    SNOOZED = "snoozed"


# The plan's statuses, changes and effects are Enums: a byte a row, where text is a 16-byte
# view a row even for "open" (at 1.46 M matches ~22 MiB a column, four of them held through
# the plan's write).
_STATUS_TYPE: Final = pl.Enum([status.value for status in Status])
_CHANGE_TYPE: Final = pl.Enum([change.value for change in Change])
_EFFECT_TYPE: Final = pl.Enum([effect.value for effect in Effect])


PLAN_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "fingerprint",
    "change",
    "observed",
    "status_before",
    "status",
    "effect",
    "status_changed",
    "ticket_done",
    "snoozed_until",
    "first_seen",
    "last_seen",
    "times_seen",
    "version_before",
    *(name for name in MATCH_COLUMNS if name != "fingerprint"),
)


@dataclass(frozen=True)
class Scope:
    """What a run looked at: the rules it evaluated and the accounts in its facts.

    ``accounts=None`` means every account (a run over the whole estate).
    """

    rule_ids: frozenset[str]
    accounts: frozenset[str | None] | None = None


@dataclass(frozen=True)
class ReconcilePlan:
    """The rows a run writes (``rows``, columns ``PLAN_COLUMNS``) and what happened, counted.

    ``rows`` holds every matched recommendation (``observed`` true) and every stored one whose
    status the run changes; stored rows the run leaves as they are do not appear. ``status``,
    ``status_before``, ``change`` and ``effect`` are ``pl.Enum`` of the lifecycle's values.
    """

    rows: pl.DataFrame
    now: datetime
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def observed(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("observed"))


def empty_matches() -> pl.DataFrame:
    return pl.DataFrame(schema=dict(MATCH_COLUMNS))


def empty_stored() -> pl.DataFrame:
    return pl.DataFrame(schema=dict(STORED_COLUMNS))


def _transition_table() -> pl.DataFrame:
    rows = [
        {
            "status": status.value,
            "seen": event is Event.SEEN,
            "ticket_done": done,
            "t_status": after.value,
            "t_effect": effect.value if effect else None,
        }
        for (status, event, done), (after, effect) in RUN_TRANSITIONS.items()
    ]
    return pl.DataFrame(
        rows,
        schema={
            "status": pl.String,
            "seen": pl.Boolean,
            "ticket_done": pl.Boolean,
            "t_status": pl.String,
            "t_effect": pl.String,
        },
    )


_TRANSITIONS: Final = _transition_table()


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str) -> pl.DataFrame:
    missing = [name for name in ("fingerprint",) if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing}")
    return frame.select(
        [
            pl.col(name).cast(dtype)
            if name in frame.columns
            else pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


def plan_reconcile(
    stored: pl.DataFrame,
    matches: pl.DataFrame,
    *,
    scope: Scope,
    now: datetime,
) -> ReconcilePlan:
    """Plan a run: which rows to insert or update, and how each status moves.

    ``stored`` has ``STORED_COLUMNS`` (one row per fingerprint); ``matches`` has
    ``MATCH_COLUMNS``. A fingerprint matched twice in one run counts once (first row wins).
    ``now`` must be timezone-aware; it becomes ``first_seen``/``last_seen`` of what is seen.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    stored = _conform(stored, STORED_COLUMNS, "stored recommendations")
    matches = _conform(matches, MATCH_COLUMNS, "matches")
    if matches.get_column("fingerprint").is_duplicated().any():
        matches = matches.unique(subset="fingerprint", keep="first", maintain_order=True)
    now_lit = pl.lit(now, dtype=_TIME)

    in_scope = pl.col("rule_id").is_in(list(scope.rule_ids))
    if scope.accounts is not None:
        named = [account for account in scope.accounts if account is not None]
        account_ok = pl.col("account_id").is_in(named)
        if None in scope.accounts:
            account_ok = account_ok | pl.col("account_id").is_null()
        in_scope = in_scope & account_ok.fill_null(False)

    # Stored rows not matched and out of scope are untouched, so they never enter the plan.
    matched_fps = matches.get_column("fingerprint").implode()
    is_matched = pl.col("fingerprint").is_in(matched_fps)
    stored_relevant = stored.filter(is_matched | in_scope).rename(
        {name: f"s_{name}" for name in STORED_COLUMNS if name != "fingerprint"}
    )
    # The matched rows keep the matches' own columns, in their order: only the fingerprints
    # are joined with the stored rows, and the stored side is set beside them. A join of the
    # whole matches copied every column of theirs (params, titles: ~0.5 GiB at 1.46 M
    # matches), and so did the join with the transitions and the final filter, the peak of
    # the evaluate step.
    found = (
        matches.select("fingerprint")
        .join(stored_relevant, on="fingerprint", how="left", maintain_order="left")
        .drop("fingerprint")
    )
    seen_rows = pl.concat([matches, found], how="horizontal").with_columns(
        pl.lit(True).alias("observed")
    )
    gone_rows = stored_relevant.filter(~is_matched).select(
        pl.col(name) if name in stored_relevant.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in seen_rows.schema.items()
    )
    observed_height = seen_rows.height
    joined = pl.concat([seen_rows, gone_rows], how="vertical", rechunk=False)
    observed = pl.col("observed").fill_null(False)
    is_new = pl.col("s_id").is_null()
    joined = joined.with_columns(
        observed.alias("observed"),
        pl.col("s_status").alias("status"),
        pl.col("s_ticket_done").fill_null(False).alias("ticket_done"),
        pl.coalesce("rule_id", "s_rule_id").alias("rule_id"),
        pl.coalesce("account_id", "s_account_id").alias("account_id"),
        observed.alias("seen"),
    )
    keys = ["status", "seen", "ticket_done"]
    moves = (
        joined.select(keys)
        .join(_TRANSITIONS, on=keys, how="left", nulls_equal=False, maintain_order="left")
        .drop(keys)
    )
    joined = joined.hstack(moves.get_columns())
    snoozed = (
        (pl.col("s_status") == Status.DISMISSED.value)
        & pl.col("s_snoozed_until").is_not_null()
        & (pl.col("s_snoozed_until") > now_lit)
    ).fill_null(False)
    status_after = (
        pl.when(is_new)
        .then(pl.lit(Status.OPEN.value))
        .when(snoozed)
        .then(pl.col("s_status"))
        .otherwise(pl.col("t_status"))
    )
    has_ticket = pl.col("s_has_ticket").fill_null(False)
    raw_effect = pl.when(is_new | snoozed).then(pl.lit(None, pl.String)).otherwise("t_effect")
    comment = raw_effect.is_in(
        [Effect.COMMENT_AND_REOPEN_TICKET.value, Effect.COMMENT_AND_CLOSE_TICKET.value]
    ).fill_null(False)
    effect = (
        pl.when(comment & ~has_ticket & (pl.col("status") == Status.REOPENED.value))
        .then(pl.lit(Effect.CREATE_TICKET.value))
        .when(comment & ~has_ticket)
        .then(pl.lit(None, pl.String))
        .otherwise(raw_effect)
    )
    change = (
        pl.when(is_new)
        .then(pl.lit(Change.NEW.value))
        .when(snoozed)
        .then(pl.lit(Change.SNOOZED.value))
        .when(pl.col("observed"))
        .then(pl.lit(Change.SEEN.value))
        .otherwise(pl.lit(Change.GONE.value))
    )
    plan = joined.with_columns(
        status_after.cast(_STATUS_TYPE).alias("status"),
        pl.col("s_status").cast(_STATUS_TYPE).alias("status_before"),
        change.cast(_CHANGE_TYPE).alias("change"),
    ).with_columns(effect.cast(_EFFECT_TYPE).alias("effect"))
    reopened = pl.col("status") == Status.REOPENED.value
    plan = plan.with_columns(
        pl.col("s_id").alias("id"),
        (pl.col("status_before").is_null() | (pl.col("status_before") != pl.col("status"))).alias(
            "status_changed"
        ),
        pl.when(reopened).then(False).otherwise(pl.col("ticket_done")).alias("ticket_done"),
        pl.when(pl.col("status") == Status.DISMISSED.value)
        .then(pl.col("s_snoozed_until"))
        .otherwise(pl.lit(None, _TIME))
        .alias("snoozed_until"),
        pl.coalesce(pl.col("s_first_seen"), now_lit).alias("first_seen"),
        pl.when(pl.col("observed"))
        .then(now_lit)
        .otherwise(pl.col("s_last_seen"))
        .alias("last_seen"),
        (pl.col("s_times_seen").fill_null(0) + pl.col("observed").cast(pl.Int64)).alias(
            "times_seen"
        ),
        pl.col("s_version").fill_null(0).alias("version_before"),
    )
    # A gone row whose status does not move needs no write. Every matched row is written:
    # they come first, so only the gone rows are filtered (a filter copies every column).
    plan = plan.select(PLAN_COLUMNS)
    plan = pl.concat(
        [
            plan.slice(0, observed_height),
            plan.slice(observed_height).filter(pl.col("status_changed")),
        ],
        how="vertical",
        rechunk=False,
    )
    return ReconcilePlan(rows=plan, now=now, counts=_count(plan))


def _count(plan: pl.DataFrame) -> dict[str, int]:
    counts = {
        "matched": 0,
        "new": 0,
        "seen_again": 0,
        "snoozed": 0,
        "reopened": 0,
        "resolved": 0,
        "implemented": 0,
    }
    if plan.height == 0:
        return counts
    summary = plan.select(
        pl.col("observed").sum().alias("matched"),
        (pl.col("change") == Change.NEW.value).sum().alias("new"),
        (pl.col("change") == Change.SEEN.value).sum().alias("seen_again"),
        (pl.col("change") == Change.SNOOZED.value).sum().alias("snoozed"),
        (pl.col("status_changed") & (pl.col("status") == Status.REOPENED.value))
        .sum()
        .alias("reopened"),
        (pl.col("status_changed") & (pl.col("status") == Status.RESOLVED.value))
        .sum()
        .alias("resolved"),
        (pl.col("status_changed") & (pl.col("status") == Status.IMPLEMENTED.value))
        .sum()
        .alias("implemented"),
    ).row(0, named=True)
    counts.update({key: int(value) for key, value in summary.items()})
    return counts
