"""Recommendations: rule matches turned into tracked, deduplicated records with a lifecycle.

One run: :func:`recommend` (facts table + savings rule pack → stored recommendations).
The built-in pack is :func:`load_pack` with no path. :class:`RecommendationStore` reads
recommendations and applies ticket events (created, done, won't do, reopened, dismiss).
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
from reclaim.recommend.pack import builtin_pack_path, load_pack
from reclaim.recommend.recommender import RunResult, matches_from_frame, recommend, record_run
from reclaim.recommend.reconcile import Change, ReconcilePlan, Scope, plan_reconcile
from reclaim.recommend.records import ObservationRecord, RecommendationRecord, RunRecord
from reclaim.recommend.savings import realized_savings
from reclaim.recommend.store import RecommendationStore

__all__ = [
    "FINGERPRINT_LENGTH",
    "Change",
    "Effect",
    "Event",
    "LifecycleError",
    "ObservationRecord",
    "RecommendationRecord",
    "RecommendationState",
    "RecommendationStore",
    "ReconcilePlan",
    "RunRecord",
    "RunResult",
    "Scope",
    "Status",
    "Transition",
    "builtin_pack_path",
    "fingerprint",
    "fingerprint_column",
    "load_pack",
    "matches_from_frame",
    "plan_reconcile",
    "realized_savings",
    "recommend",
    "record_run",
    "transition",
]
