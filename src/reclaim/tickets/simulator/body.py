"""Create request bodies read without building the rich-text documents they carry.

A bulk create of 50 issues is ~80 KB, almost all of it ADF descriptions: parsing them into
Python objects was most of the simulator's CPU per ticket, and keeping those object trees in
the issues made every full collection of the cyclic garbage collector walk them again. A
create reads its fields in one typed pass (msgspec) that checks the description is an
Atlassian document and keeps its content as JSON text (:class:`RawDocument`), decoded when an
answer first shows it.

Only the common shape takes this path: a body with anything else (a custom field, a
description that is not a plain ``doc``, bad JSON) is read by the general parser, so every
refusal is word for word what it was.
"""

from __future__ import annotations

__all__ = ["RawDocument", "decode_bulk", "decode_create", "is_document", "plain"]

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class RawDocument:
    """An Atlassian document whose content is kept as JSON text; :meth:`value` decodes it."""

    __slots__ = ("_decoded", "content", "version")

    def __init__(self, version: Any, content: bytes | None) -> None:
        self.version = version
        self.content = content
        self._decoded: dict[str, Any] | None = None

    def value(self) -> dict[str, Any]:
        if self._decoded is None:
            document: dict[str, Any] = {"type": "doc"}
            if self.version is not UNSET:
                document["version"] = self.version
            if self.content is not None:
                document["content"] = msgspec.json.decode(self.content)
            self._decoded = document
        return self._decoded

    def __repr__(self) -> str:
        return f"RawDocument({(self.content or b'')[:40]!r}…)"


def plain(value: Any) -> Any:
    """``value`` with a :class:`RawDocument` decoded: what a JSON parser would have given."""
    return value.value() if isinstance(value, RawDocument) else value


def is_document(value: Any) -> bool:
    """Whether ``value`` is an Atlassian document (an object whose ``type`` is ``doc``)."""
    if isinstance(value, RawDocument):
        return True
    return isinstance(value, dict) and value.get("type") == "doc"


class _Doc(msgspec.Struct, tag_field="type", tag="doc", forbid_unknown_fields=True):
    version: Any = UNSET
    content: msgspec.Raw | UnsetType = UNSET


class _Fields(msgspec.Struct, forbid_unknown_fields=True):
    # The fields a create may set (state.SETTABLE); any other name takes the general parser.
    project: Any = UNSET
    summary: Any = UNSET
    issuetype: Any = UNSET
    description: _Doc | str | UnsetType | None = UNSET
    labels: Any = UNSET
    components: Any = UNSET
    assignee: Any = UNSET
    priority: Any = UNSET
    resolution: Any = UNSET


_FIELD_NAMES = _Fields.__struct_fields__


class _Update(msgspec.Struct):
    """One element of ``issueUpdates`` (or a single create's body): only what a create reads."""

    fields: _Fields
    properties: Any = None


class _Bulk(msgspec.Struct):
    issueUpdates: list[_Update]


_bulk = msgspec.json.Decoder(_Bulk)
_single = msgspec.json.Decoder(_Update)


def _element(update: _Update) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        value = getattr(update.fields, name)
        if value is UNSET:
            continue
        if isinstance(value, _Doc):
            content = None if value.content is UNSET else bytes(value.content)
            value = RawDocument(value.version, content)
        fields[name] = value
    element: dict[str, Any] = {"fields": fields}
    if update.properties is not None:
        element["properties"] = update.properties
    return element


def decode_bulk(body: bytes) -> list[dict[str, Any]] | None:
    """The ``issueUpdates`` of a bulk create of the common shape, else None (parse it as usual)."""
    try:
        return [_element(update) for update in _bulk.decode(body).issueUpdates]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_create(body: bytes) -> dict[str, Any] | None:
    """A single create body of the common shape, else None (parse it the usual way)."""
    try:
        return _element(_single.decode(body))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
