"""Recommendations: rule matches turned into tracked, deduplicated records with a lifecycle.

One run: :func:`recommend` (facts table + savings rule pack → stored recommendations).
The built-in pack is :func:`load_pack` with no path. :class:`RecommendationStore` reads
recommendations and applies ticket events (created, done, won't do, reopened, dismiss);
:func:`totals`, :func:`iter_records` and :func:`realized_by_owner_and_month` report on them.
"""

from reclaim.recommend.fingerprint import FINGERPRINT_LENGTH, fingerprint, fingerprint_column
from reclaim.recommend.lifecycle import (
    Effect,
    Event,
    LifecycleError,
    RecommendationState,
    Status,
    Transition,
    transition,
)
from reclaim.recommend.overlap import ACTION_RANKS, supersede
from reclaim.recommend.pack import builtin_pack_path, load_pack
from reclaim.recommend.recommender import (
    RunResult,
    fact_columns,
    matches_from_frame,
    recommend,
    record_run,
)
from reclaim.recommend.reconcile import Change, ReconcilePlan, Scope, plan_reconcile
from reclaim.recommend.records import ObservationRecord, RecommendationRecord, RunRecord
from reclaim.recommend.reports import (
    TOTAL_KEYS,
    Filters,
    RealizedRow,
    Total,
    iter_records,
    realized_by_owner_and_month,
    totals,
)
from reclaim.recommend.savings import realized_savings
from reclaim.recommend.store import RecommendationStore

__all__ = [
    "ACTION_RANKS",
    "FINGERPRINT_LENGTH",
    "TOTAL_KEYS",
    "Change",
    "Effect",
    "Event",
    "Filters",
    "LifecycleError",
    "ObservationRecord",
    "RealizedRow",
    "RecommendationRecord",
    "RecommendationState",
    "RecommendationStore",
    "ReconcilePlan",
    "RunRecord",
    "RunResult",
    "Scope",
    "Status",
    "Total",
    "Transition",
    "builtin_pack_path",
    "fact_columns",
    "fingerprint",
    "fingerprint_column",
    "iter_records",
    "load_pack",
    "matches_from_frame",
    "plan_reconcile",
    "realized_by_owner_and_month",
    "realized_savings",
    "recommend",
    "record_run",
    "supersede",
    "totals",
    "transition",
]
