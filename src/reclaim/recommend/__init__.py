"""Recommendations: rule matches turned into tracked, deduplicated records with a lifecycle."""

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
from reclaim.recommend.reconcile import Change, ReconcilePlan, Scope, plan_reconcile

__all__ = [
    "FINGERPRINT_LENGTH",
    "Change",
    "Effect",
    "Event",
    "LifecycleError",
    "RecommendationState",
    "ReconcilePlan",
    "Scope",
    "Status",
    "Transition",
    "fingerprint",
    "fingerprint_column",
    "plan_reconcile",
    "transition",
]
