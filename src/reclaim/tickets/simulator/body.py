"""Create request bodies read without building the rich-text documents they carry.

A bulk create of 50 issues is ~80 KB, almost all of it ADF descriptions: parsing them into
Python objects was most of the simulator's CPU per ticket, and keeping those object trees in
the issues made every full collection of the cyclic garbage collector walk them again. The
description is kept as its JSON text (:class:`RawJson`) and decoded when an answer first shows
it; a create only needs to know that it is an Atlassian document.
"""

from __future__ import annotations

__all__ = ["RawJson", "decode_bulk", "decode_create", "is_document", "plain"]

from typing import Any

import msgspec

# Fields kept as JSON text until an answer shows them.
_LAZY_FIELDS = frozenset({"description"})


class RawJson:
    """One JSON value kept as text; :meth:`value` decodes it (once)."""

    __slots__ = ("_decoded", "text")

    _MISSING: Any = object()

    def __init__(self, text: bytes) -> None:
        self.text = text
        self._decoded: Any = RawJson._MISSING

    def value(self) -> Any:
        if self._decoded is RawJson._MISSING:
            self._decoded = msgspec.json.decode(self.text)
        return self._decoded

    def __repr__(self) -> str:
        return f"RawJson({self.text[:40]!r}…)"


class _Head(msgspec.Struct):
    # Decoding into this reads only the "type" member; the rest of the object is skipped.
    type: Any = None


_head = msgspec.json.Decoder(_Head)


def plain(value: Any) -> Any:
    """``value`` with a :class:`RawJson` decoded: what a JSON parser would have given."""
    return value.value() if isinstance(value, RawJson) else value


def is_document(value: Any) -> bool:
    """Whether ``value`` is an Atlassian document (an object whose ``type`` is ``doc``)."""
    if isinstance(value, RawJson):
        if value._decoded is not RawJson._MISSING:
            return is_document(value._decoded)
        try:
            return _head.decode(value.text).type == "doc"
        except msgspec.ValidationError:
            return False
    return isinstance(value, dict) and value.get("type") == "doc"


class _Update(msgspec.Struct):
    """One element of ``issueUpdates`` (or a single create's body): only what a create reads."""

    fields: dict[str, msgspec.Raw]
    properties: Any = None


class _Bulk(msgspec.Struct):
    issueUpdates: list[_Update]


_bulk = msgspec.json.Decoder(_Bulk)
_single = msgspec.json.Decoder(_Update)


def _element(update: _Update) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, raw in update.fields.items():
        text = bytes(raw)
        if name in _LAZY_FIELDS and text != b"null":
            fields[name] = RawJson(text)
        else:
            fields[name] = msgspec.json.decode(text)
    element: dict[str, Any] = {"fields": fields}
    if update.properties is not None:
        element["properties"] = update.properties
    return element


def decode_bulk(body: bytes) -> list[dict[str, Any]] | None:
    """The ``issueUpdates`` of a well-formed bulk create, else None (parse it the usual way).

    Any body this does not take (bad JSON, an element without a ``fields`` object, a missing
    list) goes through the general parser, so its refusal is word for word what it was.
    """
    try:
        return [_element(update) for update in _bulk.decode(body).issueUpdates]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_create(body: bytes) -> dict[str, Any] | None:
    """A well-formed single create body, else None (parse it the usual way)."""
    try:
        return _element(_single.decode(body))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
