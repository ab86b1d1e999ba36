"""One whole run on each backend: sample files → ingest facts → built-in pack → stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.ingest import conform_facts
from reclaim.ingest.collector import collect_facts
from reclaim.recommend import Event, RecommendationStore, Status, load_pack, recommend
from reclaim.store import upgrade
from reclaim.store.tables.recommend import observations, recommendations


@pytest.fixture(scope="module")
def sample_facts(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    sample = pytest.importorskip("reclaim.ingest.sample")
    files = sample.generate_sample(
        tmp_path_factory.mktemp("sample"), resources=400, days=35, seed=11
    )
    return collect_facts([files.billing], [files.inventory], [files.utilization]).facts


def rows(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_runs_over_sample_facts_never_duplicate(engine: Engine, sample_facts: pl.DataFrame) -> None:
    upgrade(engine)
    pack = load_pack()
    now = datetime(2026, 11, 27, tzinfo=UTC)
    first = recommend(engine, sample_facts, pack, run_id="week-1", now=now)
    assert first.run.new > 0
    assert first.run.matched == first.run.new
    assert len({rec.rule_id for rec in RecommendationStore(engine).find(limit=None)}) >= 8
    second = recommend(engine, sample_facts, pack, run_id="week-2", now=now + timedelta(days=7))
    assert second.run.new == 0
    assert second.run.seen_again == first.run.matched
    assert rows(engine, recommendations) == first.run.matched
    assert rows(engine, observations) == 2 * first.run.matched
    again = recommend(engine, sample_facts, pack, run_id="week-2")
    assert again.already_recorded
    assert rows(engine, observations) == 2 * first.run.matched


def test_a_resource_carries_at_most_one_saving(engine: Engine, sample_facts: pl.DataFrame) -> None:
    upgrade(engine)
    recommend(
        engine, sample_facts, load_pack(), run_id="w1", now=datetime(2026, 11, 27, tzinfo=UTC)
    )
    records = RecommendationStore(engine).find(limit=None)
    saving: dict[tuple[str, str | None], list[str]] = {}
    for record in records:
        if record.monthly_savings > 0:
            saving.setdefault((record.resource_id, record.account_id), []).append(record.rule_id)
    assert saving
    assert {key: rules for key, rules in saving.items() if len(rules) > 1} == {}
    superseded = [record for record in records if "superseded_by" in record.params]
    assert superseded  # the sample has VMs several rules fire on
    for record in superseded:
        assert record.monthly_savings == 0
        assert (record.resource_id, record.account_id) in saving


def test_implemented_work_shows_realized_savings(engine: Engine) -> None:
    upgrade(engine)
    pack = load_pack()
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    volume = {
        "resource_id": ["vol-1", "i-1"],
        "account_id": ["111", "111"],
        "kind": ["volume", "vm"],
        "attached": [False, True],
        "days_since_attached": [40.0, 0.0],
        "cost_30d": [9.5, 100.0],
        "in_bill": [True, True],
        "owner": ["a", "b"],
        "tag_count": [1, 1],
        "as_of": [t0, t0],
    }
    facts = conform_facts(pl.DataFrame(volume)).collect()
    recommend(engine, facts, pack, run_id="r1", now=t0)
    store = RecommendationStore(engine)
    [rec] = store.find()
    assert rec.rule_id == "unattached-volume"
    store.apply_event(rec.id, Event.TICKET_CREATED, now=t0)
    store.apply_event(rec.id, Event.TICKET_DONE, now=t0 + timedelta(days=2))
    # Next week's bill no longer has the volume: implemented, and all of its cost saved.
    later = t0 + timedelta(days=7)
    only_vm = conform_facts(
        pl.DataFrame({k: v[1:] for k, v in volume.items()}).with_columns(
            pl.lit(later).dt.replace_time_zone("UTC").alias("as_of")
        )
    ).collect()
    result = recommend(engine, only_vm, pack, run_id="r2", now=later)
    assert result.run.implemented == 1
    after = store.get(rec.id)
    assert after is not None
    assert after.status is Status.IMPLEMENTED
    assert result.realized == 1
    assert str(after.realized_monthly_savings) == "9.5000"
    assert after.realized_method == "gone from the bill"
    # A final figure is not measured again.
    third = recommend(engine, only_vm, pack, run_id="r3", now=later + timedelta(days=7))
    assert third.realized == 0
    final = store.get(rec.id)
    assert final is not None
    assert final.realized_checked_at == later


def test_matches_are_made_a_slice_at_a_time_and_come_out_the_same(
    tmp_path_factory: pytest.TempPathFactory,
    sample_facts: pl.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The join with the facts and the parameters' JSON are built per slice of matches, so
    # their intermediate frames are a slice's size, not the whole run's (at 1 M resources the
    # one-go version took the evaluate step from 1.4 to 2.3 GiB).
    from reclaim.database import create_engine
    from reclaim.recommend import recommender

    now = datetime(2026, 11, 27, tzinfo=UTC)

    def stored(name: str) -> list[tuple[object, ...]]:
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp(name) / 'r.db'}")
        upgrade(engine)
        recommend(engine, sample_facts, load_pack(), run_id="w1", now=now)
        rec = recommendations.c
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    rec.fingerprint, rec.rule_id, rec.title, rec.monthly_savings, rec.params
                ).order_by(rec.fingerprint)
            ).all()
        engine.dispose()
        return [tuple(row) for row in rows]

    whole = stored("whole")
    sizes: list[int] = []
    make = recommender.matches_from_frame

    def spy(facts: pl.DataFrame, matched: pl.DataFrame, *args: object) -> pl.DataFrame:
        sizes.append(matched.height)
        return make(facts, matched, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(recommender, "MATCH_SLICE", 7)
    monkeypatch.setattr(recommender, "matches_from_frame", spy)
    sliced = stored("sliced")
    assert len(whole) > 20
    assert max(sizes) == 7
    assert sum(sizes) >= len(whole)
    assert sliced == whole


def test_the_run_lets_go_of_its_matches_once_they_are_planned(
    tmp_path_factory: pytest.TempPathFactory,
    sample_facts: pl.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The plan holds every row the run writes; the matches it came from (~0.3 GiB at 1 M
    # resources) must not be kept alive through the write as well.
    import gc
    import weakref

    from reclaim.database import create_engine
    from reclaim.recommend import recommender
    from reclaim.recommend import store as store_module

    made: list[weakref.ref[pl.DataFrame]] = []
    make = recommender._matches_in_slices

    def remember(*args: Any) -> pl.DataFrame:
        matches = make(*args)
        made.append(weakref.ref(matches))
        return matches

    alive_at_write: list[bool] = []
    write_plan = store_module.RecommendationStore.write_plan

    def writing(self: Any, *args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive_at_write.append(made[0]() is not None)
        return write_plan(self, *args, **kwargs)

    monkeypatch.setattr(recommender, "_matches_in_slices", remember)
    monkeypatch.setattr(store_module.RecommendationStore, "write_plan", writing)
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('letgo') / 'r.db'}")
    upgrade(engine)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    result = recommend(engine, sample_facts, load_pack(), run_id="w1", now=now)
    engine.dispose()
    assert result.run.new > 0
    assert alive_at_write == [False]


def test_matches_take_their_facts_by_position_without_copying_the_facts(
    sample_facts: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stored facts come a chunk at a time. At 1 M resources a left join of each slice of
    # matches with every fact row, and `select` on the many-chunk facts (Polars rechunked all
    # 72 columns for it: ~730 MiB), took the evaluate step to its peak.
    from reclaim.recommend import recommender

    chunked = pl.concat([sample_facts.slice(offset, 50) for offset in range(0, 400, 50)])
    assert chunked.n_chunks() > 1
    pack = load_pack()
    matched = pack.evaluate_frame(chunked, now=datetime(2026, 11, 27, tzinfo=UTC))
    rule_params = {rule.id: list(rule.params) for rule in pack.active_rules}
    expected = recommender.matches_from_frame(sample_facts, matched, rule_params)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the facts were joined or selected whole")

    monkeypatch.setattr(pl.DataFrame, "join", refuse)
    monkeypatch.setattr(pl.DataFrame, "select", refuse, raising=True)
    narrow = recommender.columns_of(chunked, ["resource_id", "cost_30d"])
    assert narrow.n_chunks("all") == [chunked.n_chunks()] * 2
    monkeypatch.undo()
    monkeypatch.setattr(pl.DataFrame, "join", refuse)
    got = recommender.matches_from_frame(chunked, matched, rule_params)
    assert got.equals(expected)


def test_the_rules_inputs_are_let_go_before_the_matches_are_made(
    tmp_path_factory: pytest.TempPathFactory,
    sample_facts: pl.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past the rules only the columns the matches and the realized savings read are needed;
    # the rest (~0.4 GiB at 1 M resources) stayed beside the matches, the step's peak.
    from reclaim.database import create_engine
    from reclaim.recommend import recommender

    seen: list[set[str]] = []
    make = recommender._matches_in_slices

    def remember(facts: pl.DataFrame, *args: Any) -> pl.DataFrame:
        seen.append(set(facts.columns))
        return make(facts, *args)

    monkeypatch.setattr(recommender, "_matches_in_slices", remember)
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('inputs') / 'r.db'}")
    upgrade(engine)
    pack = load_pack()
    now = datetime(2026, 11, 27, tzinfo=UTC)
    result = recommend(engine, sample_facts, pack, run_id="w1", now=now)
    engine.dispose()
    assert result.run.new > 0
    kept = {
        "resource_id",
        "account_id",
        "resource_name",
        "kind",
        "region",
        "owner",
        "cost_30d",
        "currency",
        "cost_7d",
        "as_of",
        "in_bill",
    }
    assert seen == [kept & set(sample_facts.columns)]
    assert len(sample_facts.columns) > len(seen[0])


def evaluated_sample(facts: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """The bundled pack's evaluation of ``facts``, and its rules' parameters by rule id."""
    pack = load_pack()
    matched = pack.evaluate_frame(facts, now=datetime(2026, 11, 27, tzinfo=UTC))
    return matched, {rule.id: list(rule.params) for rule in pack.active_rules}


def test_matches_made_in_slices_come_in_one_chunk(
    sample_facts: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polars rechunks every column of a frame cut into chunks before each operation over it:
    # the plan made from matches left in their slices' chunks copied their text columns'
    # views at every step (~0.4 GiB at 1.46 M matches).
    from reclaim.recommend import recommender

    matched, rule_params = evaluated_sample(sample_facts)
    monkeypatch.setattr(recommender, "MATCH_SLICE", 2)
    assert matched.height > 4
    matches = recommender._matches_in_slices(sample_facts, matched, rule_params)
    assert set(matches.n_chunks("all")) == {1}
    assert matches.equals(recommender.matches_from_frame(sample_facts, matched, rule_params))


def test_matches_made_in_slices_are_joined_a_column_at_a_time(
    sample_facts: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Joined as whole frames, the slices and the joined matches were held together (~0.35 GiB
    # each at 1.46 M matches), the peak of the weekly job's first run; a column at a time,
    # only one column's slices are held beside the joined columns.
    from reclaim.recommend import recommender

    matched, rule_params = evaluated_sample(sample_facts)
    joined: list[int] = []
    concat = pl.concat

    def counting(items: Any, *args: Any, **kwargs: Any) -> Any:
        items = list(items)
        if kwargs.get("how", "vertical") == "vertical":  # not matches_from_frame's own
            joined.append(max(getattr(item, "width", 1) for item in items))
        return concat(items, *args, **kwargs)

    monkeypatch.setattr(recommender, "MATCH_SLICE", 2)
    monkeypatch.setattr(pl, "concat", counting)
    matches = recommender._matches_in_slices(sample_facts, matched, rule_params)
    monkeypatch.setattr(pl, "concat", concat)
    assert joined
    assert set(joined) == {1}
    assert matches.equals(recommender.matches_from_frame(sample_facts, matched, rule_params))
