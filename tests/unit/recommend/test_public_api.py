import reclaim.recommend


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.recommend.__all__) == [
        "ACTION_RANKS",
        "Change",
        "Effect",
        "Event",
        "FINGERPRINT_LENGTH",
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
        "TOTAL_KEYS",
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
    for name in reclaim.recommend.__all__:
        assert hasattr(reclaim.recommend, name), name
