"""What a helper needs to run the queued items of one map step of another process's run.

A map step's elements are one checkpointed list (the output of the step it maps over), which
can be large: 20,000 tickets in chunks of 50 are 400 elements and 11 MB of JSON. Decoding it
whole cost every helper ~0.3 s of CPU, holding the GIL, while the items it had claimed
waited; with N workers, N - 1 helpers paid it. So a helper splits the list into its
elements' raw JSON (a scan, no objects) and decodes only the element of each item it runs,
found by the position its owner queued it with (``ItemClaim.element_index``). The position is
only a hint: the element decoded there must give the item's key, or the helper falls back to
the whole list, decoded and checked as the run's owner does.
"""

from __future__ import annotations

__all__ = ["MapView"]

from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import ValidationError

from reclaim.durable.workflow import StepSpec


class _Missing:
    """No element found through the position hint."""


MISSING = _Missing()


@dataclass(frozen=True)
class MapView:
    """One map step of one run, as a helper sees it.

    ``elements`` (key → element) when the whole list was decoded; otherwise ``raw``, the
    list's elements as undecoded JSON, decoded one at a time by ``over``'s adapter.
    """

    workflow: str
    spec: StepSpec
    input: Any
    kwargs: dict[str, Any]
    elements: dict[str, Any] | None = None
    raw: list[msgspec.Raw] | None = None
    over: StepSpec | None = None

    @staticmethod
    def split(output: str | None) -> list[msgspec.Raw] | None:
        """The elements of a stored list as raw JSON; None if it is not a JSON list."""
        if output is None:
            return None
        try:
            return msgspec.json.decode(output, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    def element(self, item_key: str, element_index: int | None) -> Any:
        """The element of item ``item_key``; ``MISSING`` if only the whole list can tell."""
        if self.elements is not None:
            return self.elements[item_key]
        if self.raw is None or self.over is None or element_index is None:
            return MISSING
        if not 0 <= element_index < len(self.raw):
            return MISSING
        # Decoded as a list of one by the adapter of the whole list, so the element is read
        # exactly as it is when the list is decoded whole (JSON mode, the same validators).
        try:
            decoded = self.over.adapter.validate_json(b"[" + bytes(self.raw[element_index]) + b"]")
        except ValidationError:
            return MISSING
        if not isinstance(decoded, list | tuple) or len(decoded) != 1:
            return MISSING
        assert self.spec.key is not None
        try:
            key = str(self.spec.key(decoded[0]))
        except Exception:
            return MISSING
        # Another element there (the list or the key function changed): the whole list is
        # decoded and every key checked, which refuses the run if its keys no longer match.
        return decoded[0] if key == item_key else MISSING
