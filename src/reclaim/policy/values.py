"""Attribute values of a planned change: unknown parts kept unknown, sensitive parts hidden.

Terraform marks both in shadow structures beside the values (``after_unknown``,
``after_sensitive``, ``sensitive_values``): ``true`` for a whole value, or a map/list of the same
shape marking parts of it. A value unknown until apply becomes null in a fact, which the rules
engine treats as unknown (a comparison with it is null and a null condition never matches), and
its path is listed so that rules can tell "unknown" from "absent". A sensitive value is replaced
by :data:`REDACTED` before the fact exists, so no output path (messages, explanations, JSON,
SARIF) can ever show it.
"""

from __future__ import annotations

__all__ = ["REDACTED", "marked_paths", "redact", "with_unknown"]

from typing import Any

#: What a sensitive value reads as in a fact and in every output.
REDACTED = "(sensitive)"


def redact(value: Any, sensitive: Any) -> Any:
    """``value`` with every part that ``sensitive`` marks replaced by :data:`REDACTED`."""
    if sensitive is True:
        return None if value is None else REDACTED
    if isinstance(sensitive, dict) and isinstance(value, dict):
        if not sensitive:
            return value
        return {key: redact(item, sensitive.get(key)) for key, item in value.items()}
    if isinstance(sensitive, list) and isinstance(value, list):
        if not any(sensitive):
            return value
        return [
            redact(item, sensitive[index] if index < len(sensitive) else None)
            for index, item in enumerate(value)
        ]
    return value


def with_unknown(value: Any, unknown: Any) -> Any:
    """``value`` with every part that ``unknown`` marks set to null.

    Terraform leaves unknown map keys out of ``after``; they are put back as null so that a key
    whose value is unknown still counts as present (a tag set from another resource's id is
    there, we just cannot read it yet).
    """
    if unknown is True:
        return None
    if isinstance(unknown, dict) and unknown:
        if value is None:
            value = {}
        if isinstance(value, dict):
            merged = dict(value)
            for key, mark in unknown.items():
                merged[key] = with_unknown(value.get(key), mark)
            return merged
        return value
    if isinstance(unknown, list) and any(unknown) and isinstance(value, list):
        return [
            with_unknown(item, unknown[index] if index < len(unknown) else None)
            for index, item in enumerate(value)
        ]
    return value


def marked_paths(marker: Any, prefix: str = "") -> list[str]:
    """The paths (``tags.owner``, ``ebs_block_device[0].kms_key_id``) that ``marker`` marks."""
    if marker is True:
        return [prefix] if prefix else ["*"]
    found: list[str] = []
    if isinstance(marker, dict):
        for key, item in marker.items():
            found.extend(marked_paths(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(marker, list):
        for index, item in enumerate(marker):
            found.extend(marked_paths(item, f"{prefix}[{index}]"))
    return found
