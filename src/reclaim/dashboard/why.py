"""Why a rule fired for a recommendation: the rules engine's explanation over the stored facts.

The explanation is computed, not stored: the resource's row of the newest fact collection is
evaluated against the rule (from the rule file the recommendation's run used, when it is still
there, else the built-in pack) at the moment the facts describe, as ``reclaim recommendations
show`` does. When either is missing the page says which and shows the stored parameters only.
"""

from __future__ import annotations

__all__ = ["Why", "WhyLine", "explain_recommendation"]

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.errors import ReclaimError
from reclaim.ingest import FACTS_VERSION, latest_collection, read_facts_parquet
from reclaim.recommend import load_pack
from reclaim.rules.expression import ExplainNode
from reclaim.store.tables.ingest import fact_chunks, fact_collections
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


def _fact_row(engine: Engine, resource_id: str, account_id: str | None) -> dict[str, Any] | str:
    """The resource's row of the newest fact collection, or why there is none.

    Chunk by chunk, reading only the key columns of each until the resource is found, then
    that one chunk whole: a million facts are never all in memory for one page.
    """
    newest = latest_collection(engine)
    if newest is None:
        return "no facts collected yet"
    with engine.connect() as connection:
        version = connection.execute(
            sa.select(fact_collections.c.facts_version).where(fact_collections.c.id == newest.id)
        ).scalar_one()
        if version != FACTS_VERSION:
            return f"fact collection {newest.id} was stored by another version of reclaim"
        seqs = list(
            connection.execute(
                sa.select(fact_chunks.c.seq)
                .where(fact_chunks.c.collection_id == newest.id)
                .order_by(fact_chunks.c.seq)
            ).scalars()
        )
        for seq in seqs:
            blob = connection.execute(
                sa.select(fact_chunks.c.parquet).where(
                    fact_chunks.c.collection_id == newest.id, fact_chunks.c.seq == seq
                )
            ).scalar_one()
            names = pl.read_parquet_schema(io.BytesIO(blob))
            keys: list[str] = [name for name in ("resource_id", "account_id") if name in names]
            if "resource_id" not in keys:
                continue
            index = pl.read_parquet(io.BytesIO(blob), columns=keys).with_row_index("_row")
            wanted = pl.col("resource_id") == resource_id
            if account_id is not None and "account_id" in keys:
                wanted = wanted & (pl.col("account_id") == account_id)
            found = index.filter(wanted)
            if found.height:
                row = int(found["_row"][0])
                return read_facts_parquet(io.BytesIO(blob)).row(row, named=True)
    return "the resource is not in the newest fact collection (it may be gone)"


def explain_recommendation(engine: Engine, row: Any) -> Why:
    """Explain ``row`` (a ``recommendations`` row) against the newest facts."""
    try:
        fact = _fact_row(engine, row.resource_id, row.account_id)
    except ReclaimError as exc:
        return Why("unavailable", row.rule_id, reason=f"no facts to explain with: {exc}")
    if isinstance(fact, str):
        return Why("unavailable", row.rule_id, reason=fact)
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
