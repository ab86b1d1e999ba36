"""Reading what ``terraform show -json`` (or ``tofu show -json``) writes: a plan or a state.

Only the documented JSON format is read (format version 1.x, the one Terraform has written
since 0.12 and OpenTofu writes too). Anything else is refused before a rule runs, with one line
that names the file, what is wrong and what to run instead: a plan of another format version,
truncated JSON, a state given where a plan is expected, a raw ``terraform.tfstate``, a binary
plan file.
"""

from __future__ import annotations

__all__ = ["Plan", "PlanError", "ResourceChange", "load_plan", "parse_plan"]

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reclaim.errors import ConfigError, SourceLocation

_SUPPORTED_MAJOR = "1"
# A plan is ~1 KB per resource change; this bounds memory on a pathological input.
MAX_PLAN_BYTES = 512 * 1024 * 1024

Kind = Literal["plan", "state"]


class PlanError(ConfigError):
    """The plan or state file cannot be read; nothing was checked."""


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One entry of ``resource_changes`` (or one resource of a state, as a ``no-op``).

    ``before``/``after`` are the values as Terraform wrote them: unknown values are absent or
    null and marked in ``after_unknown``; sensitive ones are marked in ``*_sensitive`` and must
    be redacted before they reach any output (see :mod:`reclaim.policy.values`).
    """

    address: str
    module_address: str
    mode: str
    type: str
    name: str
    index: Any
    provider_name: str
    actions: tuple[str, ...]
    before: Any = None
    after: Any = None
    after_unknown: Any = None
    before_sensitive: Any = None
    after_sensitive: Any = None
    action_reason: str | None = None


@dataclass(frozen=True)
class Plan:
    """A plan or a state, reduced to what policies read.

    ``prior`` maps each address of the prior state (for a state: the state itself) to its
    values and sensitive markers; ``configuration`` is the ``configuration`` object as written
    (empty for a state).
    """

    path: str
    kind: Kind
    format_version: str
    terraform_version: str | None
    changes: tuple[ResourceChange, ...]
    prior: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    configuration: Mapping[str, Any] = field(default_factory=dict)


def load_plan(path: str | os.PathLike[str], *, expect: Kind = "plan") -> Plan:
    """Read a plan (``expect="plan"``) or a state (``expect="state"``) JSON file.

    Raises :class:`PlanError` naming the file and the fix for anything that is not that.
    """
    file_path = Path(path)
    where = SourceLocation(str(path))
    try:
        size = file_path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanError(
                f"the file is {size:,} bytes, more than the {MAX_PLAN_BYTES:,} reclaim reads",
                location=where,
                fix="split the configuration into smaller root modules",
            )
        data = file_path.read_bytes()
    except OSError as exc:
        raise PlanError(
            f"cannot read the file: {exc.strerror or exc}", location=where, fix="check the path"
        ) from exc
    return parse_plan(data, str(path), expect=expect)


def parse_plan(data: bytes | str, path: str = "<plan>", *, expect: Kind = "plan") -> Plan:
    """Parse the text of a plan or state; see :func:`load_plan`."""
    where = SourceLocation(path)
    if isinstance(data, bytes):
        if data.startswith(b"PK"):
            raise PlanError(
                "this is a binary plan file, not JSON",
                location=where,
                fix="run 'terraform show -json PLANFILE > plan.json' and check plan.json",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(
                f"the file is not UTF-8 text (byte {exc.start})",
                location=where,
                fix="give the output of 'terraform show -json'",
            ) from exc
    else:
        text = data
    if not text.strip():
        raise PlanError(
            "the file is empty",
            location=where,
            fix="run 'terraform show -json PLANFILE > plan.json'; did the command fail?",
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # A string that never closes runs to the end of the text, wherever it started.
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        reason = "the JSON ends early (truncated?)" if truncated else f"invalid JSON: {exc.msg}"
        raise PlanError(
            reason,
            location=SourceLocation(path, exc.lineno, exc.colno),
            fix="write the file again with 'terraform show -json PLANFILE > plan.json'",
        ) from exc
    if not isinstance(document, dict):
        raise PlanError(
            f"expected a JSON object, found {type(document).__name__}",
            location=where,
            fix="give the output of 'terraform show -json'",
        )
    kind = _kind_of(document, where)
    if kind != expect:
        if expect == "plan":
            raise PlanError(
                "this is a state, not a plan (it has 'values' but no 'resource_changes')",
                location=where,
                fix="to check what is deployed, use 'reclaim policy check --state FILE'; "
                "to check changes, give 'terraform show -json PLANFILE'",
            )
        raise PlanError(
            "this is a plan, not a state",
            location=where,
            fix="give it without --state: 'reclaim policy check PLAN.json'",
        )
    version = document.get("format_version")
    if not isinstance(version, str) or version.split(".")[0] != _SUPPORTED_MAJOR:
        raise PlanError(
            f"format_version {version!r} is not supported; reclaim reads format 1.x",
            location=where,
            fix="use Terraform >= 0.12 or OpenTofu, whose 'show -json' writes format 1.x",
        )
    terraform_version = document.get("terraform_version")
    if not isinstance(terraform_version, str):
        terraform_version = None
    if kind == "state":
        prior = dict(_state_resources(_object(document.get("values"), "values", where), where))
        changes = tuple(
            _state_change(address, values, sensitive, resource, module_address)
            for address, (values, sensitive, resource, module_address) in _state_entries(
                document, where
            )
        )
        return Plan(path, "state", version, terraform_version, changes, prior, {})
    prior_state = _object(document.get("prior_state"), "prior_state", where)
    prior = dict(
        _state_resources(_object(prior_state.get("values"), "prior_state.values", where), where)
    )
    raw_changes = document.get("resource_changes")
    if raw_changes is None:
        raw_changes = []
    if not isinstance(raw_changes, list):
        raise PlanError(
            "'resource_changes' must be a list",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    changes = tuple(_change(item, index, where) for index, item in enumerate(raw_changes))
    configuration = _object(document.get("configuration"), "configuration", where)
    return Plan(path, "plan", version, terraform_version, changes, prior, configuration)


def _kind_of(document: Mapping[str, Any], where: SourceLocation) -> Kind:
    if "lineage" in document and "serial" in document and "resources" in document:
        raise PlanError(
            "this is a raw state file (terraform.tfstate), not 'terraform show -json' output",
            location=where,
            fix="run 'terraform show -json > state.json' and check state.json",
        )
    if "format_version" not in document:
        raise PlanError(
            "no 'format_version': this is not the output of 'terraform show -json'",
            location=where,
            fix="run 'terraform show -json PLANFILE > plan.json' and check plan.json",
        )
    plan_keys = ("resource_changes", "planned_values", "prior_state", "configuration")
    if any(key in document for key in plan_keys):
        return "plan"
    return "state"


def _object(value: Any, name: str, where: SourceLocation) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(
            f"'{name}' must be an object, found {type(value).__name__}",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    return value


def _text(item: Mapping[str, Any], key: str, at: str, where: SourceLocation) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise PlanError(
            f"{at}: '{key}' is missing or not text",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    return value


def _change(item: Any, index: int, where: SourceLocation) -> ResourceChange:
    at = f"resource_changes[{index}]"
    if not isinstance(item, dict):
        raise PlanError(
            f"{at} is not an object",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    address = _text(item, "address", at, where)
    at = f"{at} ({address})"
    change = item.get("change")
    if not isinstance(change, dict):
        raise PlanError(
            f"{at}: 'change' is missing",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    actions = change.get("actions")
    if (
        not isinstance(actions, list)
        or not actions
        or not all(isinstance(action, str) for action in actions)
    ):
        raise PlanError(
            f"{at}: 'change.actions' must be a non-empty list of text",
            location=where,
            fix="give the unmodified output of 'terraform show -json'",
        )
    reason = item.get("action_reason")
    return ResourceChange(
        address=address,
        module_address=str(item.get("module_address") or ""),
        mode=str(item.get("mode") or "managed"),
        type=_text(item, "type", at, where),
        name=str(item.get("name") or address.rsplit(".", 1)[-1]),
        index=item.get("index"),
        provider_name=str(item.get("provider_name") or ""),
        actions=tuple(actions),
        before=change.get("before"),
        after=change.get("after"),
        after_unknown=change.get("after_unknown"),
        before_sensitive=change.get("before_sensitive"),
        after_sensitive=change.get("after_sensitive"),
        action_reason=reason if isinstance(reason, str) else None,
    )


def _walk_modules(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield module
    for child in module.get("child_modules") or ():
        if isinstance(child, dict):
            yield from _walk_modules(child)


def _state_entries(
    document: Mapping[str, Any], where: SourceLocation
) -> Iterator[tuple[str, tuple[Any, Any, Mapping[str, Any], str]]]:
    values = _object(document.get("values"), "values", where)
    root = _object(values.get("root_module"), "values.root_module", where)
    for module in _walk_modules(root):
        module_address = str(module.get("address") or "")
        for resource in module.get("resources") or ():
            if isinstance(resource, dict) and isinstance(resource.get("address"), str):
                yield (
                    resource["address"],
                    (
                        resource.get("values"),
                        resource.get("sensitive_values"),
                        resource,
                        module_address,
                    ),
                )


def _state_resources(
    values: Mapping[str, Any], where: SourceLocation
) -> Iterator[tuple[str, tuple[Any, Any]]]:
    for address, (resource_values, sensitive, _, _) in _state_entries({"values": values}, where):
        yield address, (resource_values, sensitive)


def _state_change(
    address: str, values: Any, sensitive: Any, resource: Mapping[str, Any], module_address: str
) -> ResourceChange:
    return ResourceChange(
        address=address,
        module_address=module_address,
        mode=str(resource.get("mode") or "managed"),
        type=str(resource.get("type") or ""),
        name=str(resource.get("name") or ""),
        index=resource.get("index"),
        provider_name=str(resource.get("provider_name") or ""),
        actions=("no-op",),
        before=values,
        after=values,
        after_unknown=None,
        before_sensitive=sensitive,
        after_sensitive=sensitive,
    )
