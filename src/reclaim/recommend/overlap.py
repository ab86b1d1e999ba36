"""Several rules on one resource: the saving is counted once, on the dominant action.

An idle VM of a previous-generation family matches ``idle-vm`` (stop it: saves its whole
cost) and ``previous-generation-instance`` (move it: saves ~5%). Both cannot happen: a stopped
VM is not modernized. Adding the two figures promises more than the resource costs, and when
the VM is terminated both would "realize" its whole cost. So, per resource (resource id and
account), only one recommendation carries a saving: the **dominant** one, by the class of its
action (remove beats resize beats modernize beats commit), then by the larger saving, then by
rule id. The
others stay recommendations (their rule still holds) but are **superseded**: their
``monthly_savings`` is 0, ``savings_method`` says which rule supersedes them, and their
``params`` keep ``superseded_by`` and ``savings_alone`` (what they would save on their own).

Recommendations with no saving (governance: ``tag``) neither supersede nor are superseded, and
neither do dismissed ones (:func:`supersede_plan`). It runs on each run's plan, so a saving
moves back to a recommendation whose dominant one went away.
"""

from __future__ import annotations

__all__ = [
    "ACTION_RANKS",
    "SUPERSEDED_METHOD_PREFIX",
    "action_rank",
    "supersede",
    "supersede_plan",
]

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

import polars as pl

from reclaim.recommend.lifecycle import Status
from reclaim.recommend.reconcile import ReconcilePlan

ACTION_RANKS: Final[Mapping[str, int]] = {
    # Removing the resource saves all it costs; nothing else can be done to it afterwards.
    "stop": 4,
    "delete": 4,
    "terminate": 4,
    "release": 4,
    # Resizing (or running it fewer hours) keeps the resource and saves a share of its cost.
    "rightsize": 3,
    "schedule": 3,
    # Modernizing keeps the resource and its size and saves a smaller share.
    "modify": 2,
    "modernize": 2,
    "lifecycle": 2,
    # A commitment changes only the price of what is left after every change above, so it is
    # bought last.
    "commit": 1,
}
"""Action ``type`` → class: 4 remove, 3 resize, 2 modernize, 1 commit; other types rank 2."""

_DEFAULT_RANK: Final = 2

_METHOD_WIDTH: Final = 64  # recommendations.savings_method

SUPERSEDED_METHOD_PREFIX: Final = "superseded by "
"""``savings_method`` of a superseded recommendation starts with this, then the rule id."""


def action_rank(action: pl.Expr) -> pl.Expr:
    """The class of each action type (``ACTION_RANKS``; unknown types rank 2)."""
    return action.replace_strict(
        dict(ACTION_RANKS), default=_DEFAULT_RANK, return_dtype=pl.Int8
    ).fill_null(_DEFAULT_RANK)


def supersede(
    matches: pl.DataFrame,
    *,
    action: str | pl.Expr = "action",
    eligible: pl.Expr | None = None,
) -> pl.DataFrame:
    """Keep one saving per resource: zero the savings of all but the dominant match.

    ``matches`` has ``MATCH_COLUMNS`` of :mod:`reclaim.recommend.reconcile`; ``action`` is the
    column (or expression) giving each action's ``type``. Rows where ``eligible`` is false
    neither supersede nor are superseded and keep their figures. Row order and columns are
    kept.
    """
    if matches.height == 0:
        return matches
    competing = pl.col("monthly_savings").fill_null(0.0) > 0
    if eligible is not None:
        competing = competing & eligible.fill_null(False)
    action_expr = pl.col(action) if isinstance(action, str) else action
    ranked = matches.with_row_index("_row").with_columns(
        competing.alias("_competing"),
        action_rank(action_expr).alias("_rank"),
    )
    winners = (
        ranked.filter(pl.col("_competing"))
        .sort(
            ["_rank", "monthly_savings", "rule_id"],
            descending=[True, True, False],
            nulls_last=True,
        )
        .unique(subset=["resource_id", "account_id"], keep="first", maintain_order=True)
        .select(
            "resource_id",
            "account_id",
            pl.col("_row").alias("_winner_row"),
            pl.col("rule_id").alias("_winner_rule"),
        )
    )
    joined = ranked.join(winners, on=["resource_id", "account_id"], how="left", nulls_equal=True)
    superseded = pl.col("_competing") & (pl.col("_row") != pl.col("_winner_row"))
    note = pl.struct(
        pl.col("_winner_rule").alias("superseded_by"),
        pl.col("monthly_savings").alias("savings_alone"),
    ).struct.json_encode()
    # Merge the note into the params object: '{"superseded_by":…}' + the params' members.
    rest = pl.col("params").fill_null("{}").str.strip_chars().str.slice(1)
    merged = (
        pl.when(rest.str.strip_chars() == "}")
        .then(note)
        .otherwise(pl.concat_str(note.str.slice(0, note.str.len_chars() - 1), pl.lit(","), rest))
    )
    return (
        joined.sort("_row")
        .with_columns(
            pl.when(superseded)
            .then(
                pl.concat_str(pl.lit(SUPERSEDED_METHOD_PREFIX), pl.col("_winner_rule")).str.slice(
                    0, _METHOD_WIDTH
                )
            )
            .otherwise(pl.col("savings_method"))
            .alias("savings_method"),
            pl.when(superseded).then(merged).otherwise(pl.col("params")).alias("params"),
            pl.when(superseded)
            .then(pl.lit(0.0))
            .otherwise(pl.col("monthly_savings"))
            .alias("monthly_savings"),
        )
        .select(matches.columns)
    )


def supersede_plan(plan: ReconcilePlan) -> ReconcilePlan:
    """:func:`supersede` over what a run matched, once its statuses are planned.

    A dismissed recommendation (the team said it will not do it) does not compete: the next
    action on that resource carries the saving instead of being superseded by work that will
    not happen.
    """
    rows = plan.rows
    if rows.height == 0:
        return plan
    eligible = pl.col("observed") & (pl.col("status") != Status.DISMISSED.value)
    action = pl.col("params").str.json_path_match("$.type")
    return replace(plan, rows=supersede(rows, action=action, eligible=eligible))
