"""``reclaim jira-sim act``: the humans on the other side of the tickets.

The plan is a pure function of the issues and a seeded random generator, so a test can say
exactly what the humans will do; :func:`act` then does it through the ordinary Jira client,
as a person working in Jira would, which leaves a changelog and fires webhooks.
"""

from __future__ import annotations

__all__ = ["Action", "Shares", "act", "plan_actions"]

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reclaim.tickets.document import Document
from reclaim.tickets.errors import JiraError
from reclaim.tickets.jira import JiraClient
from reclaim.tickets.model import Issue

Kind = Literal["start", "done", "wont_do", "reopen", "comment"]


@dataclass(frozen=True)
class Shares:
    """Chance of each action per issue (at most one action per issue per round)."""

    start: float = 0.2
    done: float = 0.25
    wont_do: float = 0.1
    reopen: float = 0.3
    comment: float = 0.1


@dataclass(frozen=True)
class Action:
    key: str
    kind: Kind


def plan_actions(issues: Sequence[Issue], rng: random.Random, shares: Shares) -> list[Action]:
    actions: list[Action] = []
    for issue in issues:
        roll = rng.random()
        if issue.status_category == "done":
            if roll < shares.reopen:
                actions.append(Action(issue.key, "reopen"))
            continue
        choices: list[tuple[Kind, float]] = [
            ("done", shares.done),
            ("wont_do", shares.wont_do),
            ("comment", shares.comment),
        ]
        if issue.status_category == "new":
            choices.insert(0, ("start", shares.start))
        threshold = 0.0
        for kind, share in choices:
            threshold += share
            if roll < threshold:
                actions.append(Action(issue.key, kind))
                break
    return actions


def act(
    client: JiraClient, jql: str, *, seed: int = 0, shares: Shares | None = None
) -> list[Action]:
    """Play one round over the issues ``jql`` finds; returns what was done."""
    issues = list(client.search_all(jql))
    actions = plan_actions(issues, random.Random(seed), shares or Shares())  # noqa: S311
    done: list[Action] = []
    for action in actions:
        try:
            if action.kind == "start":
                client.move_to(action.key, category="indeterminate")
            elif action.kind == "done":
                client.move_to(action.key, category="done", resolution="Done")
            elif action.kind == "wont_do":
                client.move_to(
                    action.key,
                    category="done",
                    resolution="Won't Do",
                    comment=Document.of_text("Not worth it for us right now."),
                )
            elif action.kind == "reopen":
                client.move_to(action.key, category="new")
            else:
                client.add_comment(action.key, Document.of_text("Looking into this."))
        except JiraError:
            # A person who cannot do something in Jira just moves on to the next ticket.
            continue
        done.append(action)
    return done
