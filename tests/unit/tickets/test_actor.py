from __future__ import annotations

import random

from reclaim.tickets import Issue
from reclaim.tickets.simulator.actor import Shares, plan_actions


def issue(key: str, category: str) -> Issue:
    return Issue(key.split("-")[1], key, "s", "x", category, None, (), 0, 0, "OPS")


def test_the_plan_is_reproducible_and_respects_the_status() -> None:
    issues = [issue(f"OPS-{n}", ["new", "indeterminate", "done"][n % 3]) for n in range(300)]
    first = plan_actions(issues, random.Random(7), Shares())
    assert first == plan_actions(issues, random.Random(7), Shares())
    by_key = {i.key: i for i in issues}
    for action in first:
        category = by_key[action.key].status_category
        if category == "done":
            assert action.kind == "reopen"
        else:
            assert action.kind != "reopen"
        if category == "indeterminate":
            assert action.kind != "start"
    kinds = {a.kind for a in first}
    assert kinds == {"start", "done", "wont_do", "reopen", "comment"}


def test_zero_shares_do_nothing() -> None:
    issues = [issue(f"OPS-{n}", "new") for n in range(50)]
    nothing = Shares(start=0, done=0, wont_do=0, reopen=0, comment=0)
    assert plan_actions(issues, random.Random(1), nothing) == []
