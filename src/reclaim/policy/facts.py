"""Each planned change becomes a fact for the rules engine; the plan as a whole becomes one more.

A resource fact holds the change as Terraform wrote it (``actions``, ``before``, ``after``) with
unknown values null and listed in ``unknown``, sensitive values already replaced by
``(sensitive)``, and normalized fields so one rule covers AWS, Azure and Google (``category``,
``size``, ``family``, ``tags``, ``public``, ``encrypted``, ``has_lifecycle``, monthly cost).
The plan fact (``scope == 'plan'``) carries totals, for rules on the whole change such as the
monthly cost increase. docs/policy.md lists every field.
"""

from __future__ import annotations

__all__ = ["FACT_FIELDS", "PLAN_ADDRESS", "build_facts", "summarize_actions"]

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from reclaim.policy.plan import Plan, ResourceChange
from reclaim.policy.pricing import PriceTable
from reclaim.policy.resources import (
    CATEGORIES,
    COMPANIONS,
    encrypted_of,
    family_of,
    lookup,
    provider_of,
    size_of,
    tags_of,
    volume_types_of,
)
from reclaim.policy.values import marked_paths, redact, with_unknown

#: The address of the fact that stands for the whole plan.
PLAN_ADDRESS: Final = "(plan)"

#: Every field of a fact and its type, as a rule file's ``facts:`` declares them.
FACT_FIELDS: Final[dict[str, str]] = {
    "scope": "string",
    "source": "string",
    "address": "string",
    "type": "string",
    "name": "string",
    "mode": "string",
    "index": "any",
    "module": "string",
    "module_path": "list",
    "provider": "string",
    "provider_name": "string",
    "actions": "list",
    "action": "string",
    "action_reason": "string",
    "before": "map",
    "after": "map",
    "unknown": "list",
    "sensitive": "list",
    "tags": "map",
    "tag_keys": "list",
    "before_tags": "map",
    "taggable": "boolean",
    "category": "string",
    "size": "string",
    "family": "string",
    "vcpus": "integer",
    "volume_types": "list",
    "encrypted": "boolean",
    "public": "boolean",
    "has_lifecycle": "boolean",
    "monthly_cost_before": "number",
    "monthly_cost_after": "number",
    "monthly_cost_delta": "number",
    "changes": "integer",
    "unpriced_changes": "integer",
    "cost_drivers": "string",
}

_TAG_KEYS: Final = ("tags", "tags_all", "labels", "effective_labels")
_PUBLIC_ACLS: Final = frozenset({"public-read", "public-read-write", "authenticated-read"})
_PUBLIC_MEMBERS: Final = frozenset({"allUsers", "allAuthenticatedUsers"})
_INDEX = re.compile(r"\[[^\]]*\]")
_TRAILING_INDEX = re.compile(r"\[[^\]]*\]$")
_REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_NOT_RESOURCES: Final = frozenset(
    {"var", "local", "module", "data", "each", "count", "path", "terraform", "self"}
)


def summarize_actions(actions: Sequence[str]) -> str:
    """One word for Terraform's action list: ``['delete', 'create']`` is ``replace``."""
    if "create" in actions and "delete" in actions:
        return "replace"
    return actions[0] if actions else "no-op"


def build_facts(plan: Plan, prices: PriceTable) -> list[dict[str, Any]]:
    """One fact per resource change (per resource for a state), then the plan fact."""
    views = [_View(change, plan.kind) for change in plan.changes]
    companions = _companions(views, plan.configuration)
    facts = [
        _resource_fact(view, plan.kind, prices, companions.get(view.address, ())) for view in views
    ]
    facts.append(_plan_fact(plan, facts))
    return facts


class _View:
    """A change with its values cleaned: unknowns null, sensitive parts redacted."""

    __slots__ = ("address", "after", "before", "change", "sensitive", "unknown")

    def __init__(self, change: ResourceChange, kind: str) -> None:
        self.change = change
        self.address = change.address
        self.before = redact(change.before, change.before_sensitive)
        if kind == "state":
            self.after = self.before
        else:
            self.after = redact(
                with_unknown(change.after, change.after_unknown), change.after_sensitive
            )
        self.unknown = marked_paths(change.after_unknown)
        sensitive = set(marked_paths(change.after_sensitive))
        sensitive.update(marked_paths(change.before_sensitive))
        self.sensitive = sorted(sensitive)


def _resource_fact(
    view: _View,
    kind: str,
    prices: PriceTable,
    linked: Sequence[tuple[str, Any]],
) -> dict[str, Any]:
    change = view.change
    actions = list(change.actions)
    action = "existing" if kind == "state" else summarize_actions(actions)
    provider = provider_of(change.provider_name, change.type)
    after = view.after if isinstance(view.after, Mapping) else None
    before = view.before if isinstance(view.before, Mapping) else None
    unknown_root = change.after_unknown if isinstance(change.after_unknown, Mapping) else {}
    tags = tags_of(change.type, after)
    managed = change.mode == "managed"
    taggable = (
        managed
        and after is not None
        and any(key in after for key in ("tags", "tags_all", "labels", "effective_labels"))
    )
    if any(unknown_root.get(key) is True for key in _TAG_KEYS):
        # Tags set from values unknown until apply, or effective tags that include the
        # provider's default tags, which we cannot see yet: unknown, not missing.
        tags = None
    elif tags is None and taggable:
        tags = {}
    size = size_of(change.type, after)
    cost_before = prices.monthly_cost(change.type, before) if action != "create" else None
    cost_after = prices.monthly_cost(change.type, after) if action != "delete" else None
    if action == "create":
        delta = cost_after
    elif action == "delete":
        delta = -cost_before if cost_before is not None else None
    elif action in ("no-op", "read", "existing"):
        delta = 0.0
    else:
        delta = (
            round(cost_after - cost_before, 2)
            if cost_after is not None and cost_before is not None
            else None
        )
    category = CATEGORIES.get(change.type) if managed else None
    public, has_lifecycle = (
        _bucket_properties(change.type, after, linked) if category == "bucket" else (None, None)
    )
    module = change.module_address
    return {
        "scope": "resource",
        "source": kind,
        "address": change.address,
        "type": change.type,
        "name": change.name,
        "mode": change.mode,
        "index": change.index,
        "module": module,
        "module_path": [part for part in _INDEX.sub("", module).split(".") if part != "module"]
        if module
        else [],
        "provider": provider,
        "provider_name": change.provider_name,
        "actions": actions,
        "action": action,
        "action_reason": change.action_reason,
        "before": before,
        "after": after,
        "unknown": view.unknown,
        "sensitive": view.sensitive,
        "tags": tags if isinstance(tags, Mapping) else None,
        "tag_keys": sorted(tags) if isinstance(tags, Mapping) else None,
        "before_tags": tags_of(change.type, before),
        "taggable": taggable,
        "category": category,
        "size": size,
        "family": family_of(provider, size),
        "vcpus": prices.vcpus(change.type, size),
        "volume_types": volume_types_of(change.type, after),
        "encrypted": encrypted_of(change.type, after),
        "public": public,
        "has_lifecycle": has_lifecycle,
        "monthly_cost_before": cost_before,
        "monthly_cost_after": cost_after,
        "monthly_cost_delta": delta,
    }


def _plan_fact(plan: Plan, facts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    resources = [fact for fact in facts if fact["mode"] == "managed"]
    counts: dict[str, int] = defaultdict(int)
    for fact in resources:
        counts[fact["action"]] += 1
    priced = [fact for fact in resources if fact["monthly_cost_delta"] is not None]
    unpriced = [
        fact
        for fact in resources
        if fact["monthly_cost_delta"] is None
        and fact["action"] not in ("no-op", "existing")
        and (fact["size"] is not None or fact["category"] in ("compute", "database", "volume"))
    ]
    drivers = sorted(
        (fact for fact in priced if fact["monthly_cost_delta"]),
        key=lambda fact: -abs(fact["monthly_cost_delta"]),
    )[:3]
    return {
        "scope": "plan",
        "source": plan.kind,
        "address": PLAN_ADDRESS,
        "type": "terraform_plan",
        "name": PLAN_ADDRESS,
        "mode": "plan",
        "module": "",
        "module_path": [],
        "actions": [],
        "action": "plan",
        "unknown": [],
        "sensitive": [],
        "monthly_cost_before": round(
            sum(fact["monthly_cost_before"] or 0.0 for fact in resources), 2
        ),
        "monthly_cost_after": round(
            sum(fact["monthly_cost_after"] or 0.0 for fact in resources), 2
        ),
        "monthly_cost_delta": round(sum(fact["monthly_cost_delta"] for fact in priced), 2),
        "changes": sum(counts[name] for name in ("create", "update", "delete", "replace")),
        "unpriced_changes": len(unpriced),
        "cost_drivers": ", ".join(
            f"{fact['address']} {fact['monthly_cost_delta']:+,.2f}" for fact in drivers
        ),
    }


def _bucket_properties(
    resource_type: str, after: Mapping[str, Any] | None, linked: Sequence[tuple[str, Any]]
) -> tuple[bool | None, bool | None]:
    """(public, has_lifecycle) of a bucket, from its attributes and its companions."""
    if after is None:
        return None, None
    kinds = {kind for kind, _ in linked}
    if resource_type == "aws_s3_bucket":
        acls = [after.get("acl")] + [lookup(v, ("acl",)) for k, v in linked if k == "acl"]
        blocked = any(
            lookup(v, ("block_public_acls",)) is True and lookup(v, ("ignore_public_acls",)) is True
            for k, v in linked
            if k == "public_access_block"
        )
        public = not blocked and any(acl in _PUBLIC_ACLS for acl in acls)
        inline_rules = after.get("lifecycle_rule")
        lifecycle = "lifecycle" in kinds or bool(inline_rules)
        return public, lifecycle
    if resource_type == "azurerm_storage_account":
        allowed = after.get("allow_nested_items_to_be_public")
        exposed = any(
            lookup(v, ("container_access_type",)) in ("blob", "container")
            for k, v in linked
            if k == "container"
        )
        return (allowed is not False and exposed), "lifecycle" in kinds
    if resource_type == "google_storage_bucket":
        members: set[str] = set()
        for kind, values in linked:
            if kind == "iam":
                member = lookup(values, ("member",))
                if isinstance(member, str):
                    members.add(member)
                members.update(m for m in lookup(values, ("members",)) or () if isinstance(m, str))
        enforced = after.get("public_access_prevention") == "enforced"
        return (not enforced and bool(members & _PUBLIC_MEMBERS)), bool(after.get("lifecycle_rule"))
    return None, None


def _bucket_keys(view: _View) -> Iterator[str]:
    """The values a companion may use to name this bucket (name, id)."""
    values = view.after if isinstance(view.after, Mapping) else view.before
    if not isinstance(values, Mapping):
        return
    for key in ("bucket", "id", "name"):
        value = values.get(key)
        if isinstance(value, str) and value:
            yield value


def _companions(
    views: Sequence[_View], configuration: Mapping[str, Any]
) -> dict[str, list[tuple[str, Any]]]:
    """For each bucket address, the (kind, values) of the companions that configure it.

    A companion names its bucket by value (``bucket = "logs"``) or, when the bucket is created in
    the same plan and its name is unknown, only through the reference in the configuration
    (``bucket = aws_s3_bucket.logs.id``); both are followed.
    """
    buckets = [view for view in views if CATEGORIES.get(view.change.type) == "bucket"]
    if not buckets:
        return {}
    by_key: dict[str, list[str]] = defaultdict(list)
    for view in buckets:
        for key in _bucket_keys(view):
            by_key[key].append(view.address)
    references = _config_references(configuration)
    by_base: dict[str, list[str]] = defaultdict(list)
    for view in buckets:
        by_base[_TRAILING_INDEX.sub("", view.address)].append(view.address)
    linked: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for view in views:
        spec = COMPANIONS.get(view.change.type)
        if spec is None or summarize_actions(view.change.actions) == "delete":
            continue
        attributes, kind = spec
        values = view.after if isinstance(view.after, Mapping) else {}
        targets: set[str] = set()
        for attribute in attributes:
            value = values.get(attribute)
            if isinstance(value, str):
                targets.update(by_key.get(value, ()))
                # An Azure id ends with the account name.
                targets.update(by_key.get(value.rsplit("/", 1)[-1], ()))
            targets.update(_referenced(view, attribute, references, by_base))
        for target in targets:
            linked[target].append((kind, values))
    return linked


def _config_references(configuration: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """(module path without indices, resource address in it) → its ``expressions``."""
    found: dict[tuple[str, str], Any] = {}

    def walk(module: Any, path: str) -> None:
        if not isinstance(module, Mapping):
            return
        for resource in module.get("resources") or ():
            if isinstance(resource, Mapping) and isinstance(resource.get("address"), str):
                found[(path, resource["address"])] = resource.get("expressions") or {}
        for name, call in (module.get("module_calls") or {}).items():
            if isinstance(call, Mapping):
                child = f"{path}.module.{name}" if path else f"module.{name}"
                walk(call.get("module"), child)

    walk(configuration.get("root_module"), "")
    return found


def _referenced(
    view: _View,
    attribute: str,
    references: Mapping[tuple[str, str], Any],
    by_base: Mapping[str, list[str]],
) -> Iterator[str]:
    change = view.change
    module = change.module_address
    relative = f"{change.type}.{change.name}"
    if change.mode == "data":
        relative = f"data.{relative}"
    expressions = references.get((_INDEX.sub("", module), relative))
    if not isinstance(expressions, Mapping):
        return
    expression = expressions.get(attribute)
    if not isinstance(expression, Mapping):
        return
    for reference in expression.get("references") or ():
        match = _REFERENCE.match(str(reference))
        if not match or match.group(1) in _NOT_RESOURCES:
            continue
        target = f"{match.group(1)}.{match.group(2)}"
        if module:
            target = f"{module}.{target}"
        yield from by_base.get(target, ())
