"""Which changes of a map step's items a resume accepts: a pure check, no database."""

from __future__ import annotations

from typing import Any

import pytest

from reclaim.durable import DefinitionMismatch, StepContext, StepSpec, Workflow
from reclaim.durable.item_keys import check_item_keys

ELEMENTS = [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}, {"id": "c", "title": "C"}]


def _spec(key: Any) -> StepSpec:
    wf = Workflow("items", register=False)
    wf.step(name="rows")(lambda ctx: ELEMENTS)

    @wf.map_step(over="rows", key=key)
    def each(ctx: StepContext, item: dict[str, str]) -> str:
        return item["id"]

    return wf["each"]


def _check(key: Any, stored: set[str], *, finished: bool = False) -> None:
    check_item_keys(
        run_id="r1", spec=_spec(key), elements=ELEMENTS, stored=stored, finished=finished
    )


def test_stored_items_among_the_current_keys_resume_in_any_order() -> None:
    by_id = lambda row: row["id"]  # noqa: E731
    _check(by_id, set())  # nothing stored yet
    _check(by_id, {"c", "a"})  # some done, in another order than the list: keyed, not positional
    _check(by_id, {"a", "b", "c"}, finished=True)


def test_a_stored_key_the_code_no_longer_gives_is_refused() -> None:
    with pytest.raises(DefinitionMismatch) as refused:
        _check(lambda row: row["title"], {"a", "b"})
    message = str(refused.value)
    assert "map step 'each' of run r1" in message
    assert "stored 'a', 'b'" in message
    assert "now gives 'A', 'B', 'C'" in message


def test_a_finished_map_step_needs_an_item_for_every_current_key() -> None:
    with pytest.raises(DefinitionMismatch, match="no stored item for 'c'"):
        _check(lambda row: row["id"], {"a", "b"}, finished=True)


def test_many_keys_are_summarised() -> None:
    with pytest.raises(DefinitionMismatch, match=r"stored 'k0', 'k1', 'k2' and 2 more"):
        _check(lambda row: row["id"], {f"k{n}" for n in range(5)})
