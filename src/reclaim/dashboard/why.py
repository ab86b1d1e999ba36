"""Why a rule fired for a recommendation: the rules engine's explanation over the stored facts.

The explanation is computed, not stored: the resource's row of the newest fact collection is
evaluated against the rule (from the rule file the recommendation's run used, when it is still
there, else the built-in pack) at the moment the facts describe, as ``reclaim recommendations
show`` does. When either is missing the page says which and shows the stored parameters only.
"""

from __future__ import annotations

__all__ = ["Why", "WhyLine", "explain_recommendation"]

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.errors import ReclaimError
from reclaim.ingest.ledger import load_facts
from reclaim.recommend import load_pack
from reclaim.rules.expression import ExplainNode
from reclaim.store.tables.recommend import recommendation_runs


@dataclass(frozen=True)
class WhyLine:
    """One node of the condition tree: its text, depth and truth (None: not a boolean)."""

    depth: int
    text: str
    truth: bool | None


@dataclass(frozen=True)
class Why:
    status: str  # "fired", "not matched", ... or "unavailable"
    rule_id: str
    condition: str = ""
    description: str = ""
    location: str = ""
    lines: list[WhyLine] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    ruleset: str = ""
    reason: str = ""


def _walk(node: ExplainNode, depth: int, out: list[WhyLine]) -> None:
    truth = node.value if isinstance(node.value, bool) else None
    out.append(WhyLine(depth, node.line(), truth))
    if node.op is None:
        for child in node.children:
            _walk(child, depth + 1, out)


def _rules_path(engine: Engine, run_id: str | None) -> Path | None:
    if not run_id:
        return None
    with engine.connect() as connection:
        rules = connection.execute(
            sa.select(recommendation_runs.c.rules).where(recommendation_runs.c.id == run_id)
        ).scalar_one_or_none()
    if not rules:
        return None
    path = Path(rules)
    return path if path.is_file() else None


def explain_recommendation(engine: Engine, row: Any) -> Why:
    """Explain ``row`` (a ``recommendations`` row) against the newest facts."""
    try:
        facts = load_facts(engine)
    except ReclaimError as exc:
        return Why("unavailable", row.rule_id, reason=f"no facts to explain with: {exc}")
    matches = facts.filter(pl.col("resource_id") == row.resource_id)
    if row.account_id is not None and "account_id" in matches.columns:
        matches = matches.filter(pl.col("account_id") == row.account_id)
    if matches.height == 0:
        return Why(
            "unavailable",
            row.rule_id,
            reason="the resource is not in the newest fact collection (it may be gone)",
        )
    try:
        ruleset = load_pack(_rules_path(engine, row.last_run_id))
    except ReclaimError as exc:
        return Why("unavailable", row.rule_id, reason=f"the rules cannot be loaded: {exc}")
    if row.rule_id not in {rule.id for rule in ruleset.rules}:
        return Why(
            "unavailable",
            row.rule_id,
            reason=f"rule {row.rule_id!r} is not in the rule set {ruleset.name}",
        )
    fact = matches.row(0, named=True)
    # The run evaluated the rules at the end of the data; explain them at the same moment.
    as_of = fact.get("as_of")
    explanation = ruleset.explain(
        fact, rule_ids=[row.rule_id], now=as_of if isinstance(as_of, datetime) else None
    )
    for item in explanation.rules:
        if item.rule_id != row.rule_id:
            continue
        lines: list[WhyLine] = []
        if item.tree is not None:
            _walk(item.tree, 0, lines)
        return Why(
            status=item.status,
            rule_id=item.rule_id,
            condition=item.condition,
            description=item.description,
            location=str(item.location) if item.location else "",
            lines=lines,
            params={name: str(value) for name, value in (item.params or {}).items()},
            ruleset=explanation.ruleset,
        )
    return Why("unavailable", row.rule_id, reason="the rules engine did not explain this rule")
