import reclaim.recommend


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.recommend.__all__) == [
        "Change",
        "Effect",
        "Event",
        "FINGERPRINT_LENGTH",
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
    for name in reclaim.recommend.__all__:
        assert hasattr(reclaim.recommend, name), name
