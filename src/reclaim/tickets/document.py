"""A small rich-text model rendered to Atlassian Document Format (Cloud) or wiki markup (DC).

Jira Cloud's REST v3 takes descriptions and comments as ADF JSON; Data Center's REST v2 takes
wiki markup. Templates produce one :class:`Document`, and the client renders it for the server
it talks to, so nothing above the client knows which flavour of Jira is on the other end.
"""

from __future__ import annotations

__all__ = ["Block", "Document", "Inline", "adf_to_text", "escape_wiki"]

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import msgspec

BlockKind = Literal["paragraph", "heading", "bullets", "code", "rule"]


@dataclass(frozen=True)
class Inline:
    """A run of text with optional marks; ``href`` makes it a link."""

    text: str
    strong: bool = False
    code: bool = False
    href: str | None = None


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    inlines: tuple[Inline, ...] = ()
    level: int = 2
    items: tuple[tuple[Inline, ...], ...] = ()
    text: str = ""

    @cached_property
    def adf(self) -> dict[str, Any]:
        """This block as an ADF node, built on first use and kept: read-only, since every
        document holding the block shares it (templates reuse the blocks of repeated lines)."""
        return _block_adf(self)

    @cached_property
    def adf_json(self) -> bytes:
        """This block's ADF node as compact JSON text: the bytes ``msgspec`` writes for
        :attr:`adf`, built without the node's dicts and kept like them."""
        return _block_adf_json(self)


@dataclass(frozen=True)
class Document:
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    @classmethod
    def of_text(cls, text: str) -> Document:
        """One paragraph per blank-line-separated chunk of plain text."""
        chunks = [chunk.strip() for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]
        return cls(tuple(Block("paragraph", (Inline(chunk),)) for chunk in chunks))

    def to_adf(self) -> dict[str, Any]:
        """The document as ADF. Its block nodes are shared with other documents holding the
        same blocks (see :attr:`Block.adf`): encode it, do not change it in place."""
        return {"type": "doc", "version": 1, "content": [b.adf for b in self.blocks]}

    def adf_json(self) -> bytes:
        """:meth:`to_adf` as compact JSON text, for a request body (``msgspec.Raw``).

        A bulk create sends 50 descriptions whose blocks are mostly unique (a resource's name,
        its saving): building each one's ADF as dicts and then walking them to encode cost
        about three times writing the JSON text directly."""
        return (
            b'{"type":"doc","version":1,"content":['
            + b",".join(b.adf_json for b in self.blocks)
            + b"]}"
        )

    def to_wiki(self) -> str:
        return "\n\n".join(_block_wiki(b) for b in self.blocks)

    def to_text(self) -> str:
        lines: list[str] = []
        for block in self.blocks:
            if block.kind == "bullets":
                lines.extend("- " + _plain(item) for item in block.items)
            elif block.kind == "code":
                lines.append(block.text)
            elif block.kind == "rule":
                lines.append("----")
            else:
                lines.append(_plain(block.inlines))
        return "\n".join(lines)


def _plain(inlines: Iterable[Inline]) -> str:
    return "".join(i.text for i in inlines)


def _inline_adf(inline: Inline) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": inline.text}
    marks: list[dict[str, Any]] = []
    if inline.strong:
        marks.append({"type": "strong"})
    if inline.code:
        marks.append({"type": "code"})
    if inline.href:
        marks.append({"type": "link", "attrs": {"href": inline.href}})
    if marks:
        node["marks"] = marks
    return node


def _inlines_adf(inlines: Iterable[Inline]) -> list[dict[str, Any]]:
    # ADF rejects empty text nodes, so they are dropped rather than sent.
    return [_inline_adf(i) for i in inlines if i.text]


def _block_adf(block: Block) -> dict[str, Any]:
    if block.kind == "heading":
        return {
            "type": "heading",
            "attrs": {"level": block.level},
            "content": _inlines_adf(block.inlines),
        }
    if block.kind == "bullets":
        return {
            "type": "bulletList",
            "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": _inlines_adf(i)}]}
                for i in block.items
            ],
        }
    if block.kind == "code":
        return {"type": "codeBlock", "content": [{"type": "text", "text": block.text or " "}]}
    if block.kind == "rule":
        return {"type": "rule"}
    return {"type": "paragraph", "content": _inlines_adf(block.inlines)}


_json = msgspec.json.encode
_STRONG = b'{"type":"strong"}'
_CODE = b'{"type":"code"}'


def _inline_adf_json(inline: Inline) -> bytes:
    # The keys and marks in _inline_adf's order: the same bytes as encoding its node.
    text = b'{"type":"text","text":' + _json(inline.text)
    marks: list[bytes] = []
    if inline.strong:
        marks.append(_STRONG)
    if inline.code:
        marks.append(_CODE)
    if inline.href:
        marks.append(b'{"type":"link","attrs":{"href":' + _json(inline.href) + b"}}")
    if marks:
        return text + b',"marks":[' + b",".join(marks) + b"]}"
    return text + b"}"


def _inlines_adf_json(inlines: Iterable[Inline]) -> bytes:
    return b"[" + b",".join(_inline_adf_json(i) for i in inlines if i.text) + b"]"


def _block_adf_json(block: Block) -> bytes:
    if block.kind == "heading":
        return (
            b'{"type":"heading","attrs":{"level":'
            + _json(block.level)
            + b'},"content":'
            + _inlines_adf_json(block.inlines)
            + b"}"
        )
    if block.kind == "bullets":
        items = b",".join(
            b'{"type":"listItem","content":[{"type":"paragraph","content":'
            + _inlines_adf_json(item)
            + b"}]}"
            for item in block.items
        )
        return b'{"type":"bulletList","content":[' + items + b"]}"
    if block.kind == "code":
        return (
            b'{"type":"codeBlock","content":[{"type":"text","text":'
            + _json(block.text or " ")
            + b"}]}"
        )
    if block.kind == "rule":
        return b'{"type":"rule"}'
    return b'{"type":"paragraph","content":' + _inlines_adf_json(block.inlines) + b"}"


# Characters that start wiki-markup effects; escaping them keeps user text literal.
_WIKI_SPECIAL = re.compile(r"([\\{}\[\]*_^~+|#!-])")


def escape_wiki(text: str) -> str:
    return _WIKI_SPECIAL.sub(r"\\\1", text)


def _inline_wiki(inline: Inline) -> str:
    if inline.code:
        text = "{{" + inline.text.replace("}", "\\}") + "}}"
    else:
        text = escape_wiki(inline.text)
    if inline.strong:
        text = f"*{text}*"
    if inline.href:
        text = f"[{text}|{inline.href}]"
    return text


def _block_wiki(block: Block) -> str:
    if block.kind == "heading":
        return f"h{block.level}. " + "".join(_inline_wiki(i) for i in block.inlines)
    if block.kind == "bullets":
        return "\n".join("* " + "".join(_inline_wiki(i) for i in item) for item in block.items)
    if block.kind == "code":
        return "{noformat}\n" + block.text + "\n{noformat}"
    if block.kind == "rule":
        return "----"
    return "".join(_inline_wiki(i) for i in block.inlines)


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF node (or of a v2 wiki string, returned as is)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [adf_to_text(child) for child in node.get("content") or ()]
    separator = "\n" if node.get("type") in {"doc", "bulletList", "orderedList"} else ""
    return separator.join(parts)
