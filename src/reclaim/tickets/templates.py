"""Ticket text from templates: summary, description and labels, rendered in Jinja2's sandbox.

Templates come from users, so they run in an immutable sandbox with undefined names as errors
(``StrictUndefined``): a typo is found by ``reclaim jira check``, not at ticket 5,000. The
description is a light markup turned into a :class:`Document`, which the client renders as ADF
(Cloud) or wiki markup (Data Center)::

    ## Heading            a heading
    - item                a bullet
    ```                   a code block (until the next ```)
    **bold**, `code`, [text](https://…)   inline marks
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_TEMPLATES",
    "TEMPLATE_FIELDS",
    "TicketTemplates",
    "load_templates",
    "markup_to_document",
]

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reclaim.errors import ConfigError, ExecutionError, SourceLocation
from reclaim.tickets.document import Block, Document, Inline

# The names every template may use; a missing one is None, an unknown one is an error.
TEMPLATE_FIELDS = (
    "fingerprint",
    "rule_id",
    "resource_id",
    "resource_name",
    "account_id",
    "kind",
    "region",
    "owner",
    "title",
    "monthly_savings",
    "cost_30d",
    "currency",
    "tags",
    "explanation",
    "how_to_fix",
    "link",
    "params",
)

DEFAULT_TEMPLATES = {
    "summary": "{{ title or rule_id }}: {{ resource_name or resource_id }}"
    " (save {{ '%.2f' | format(monthly_savings) }} {{ currency or 'USD' }}/month)",
    "description": """## What
{{ title or rule_id }} on **{{ resource_name or resource_id }}**
{%- if account_id %} in account `{{ account_id }}`{% endif %}.

## Why
{{ explanation or 'Rule ' ~ rule_id ~ ' matched this resource.' }}

## Savings
- about **{{ '%.2f' | format(monthly_savings) }} {{ currency or 'USD' }} per month**
{%- if cost_30d %}
- it cost {{ '%.2f' | format(cost_30d) }} {{ currency or 'USD' }} over the last 30 days
{%- endif %}

## How to fix
{{ how_to_fix or 'Apply the change, or close this ticket as Won\\'t Do to snooze it.' }}
{% if link %}
[Open in reclaim]({{ link }})
{% endif %}""",
    "labels": ["reclaim", "{{ rule_id }}"],
}

_INLINE = re.compile(
    r"\*\*(?P<strong>.+?)\*\*|`(?P<code>[^`]+)`|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
)
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]+")


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


# Most lines of a rendered description repeat from ticket to ticket (the headings, a rule's
# explanation and fix), so their parse is shared; Inline tuples are immutable.
@lru_cache(maxsize=4096)
def _inlines(text: str) -> tuple[Inline, ...]:
    result: list[Inline] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            result.append(Inline(text[position : match.start()]))
        if match.group("strong") is not None:
            result.append(Inline(match.group("strong"), strong=True))
        elif match.group("code") is not None:
            result.append(Inline(match.group("code"), code=True))
        else:
            result.append(Inline(match.group("text"), href=match.group("href")))
        position = match.end()
    if position < len(text):
        result.append(Inline(text[position:]))
    return tuple(result)


# Whole blocks repeat too (the headings, a rule's fixed paragraphs): each is parsed once, and
# so renders its ADF once (Block.adf) instead of once per ticket.
@lru_cache(maxsize=1024)
def _paragraph(text: str) -> Block:
    return Block("paragraph", _inlines(text))


@lru_cache(maxsize=256)
def _heading(level: int, text: str) -> Block:
    return Block("heading", _inlines(text), level=level)


@lru_cache(maxsize=1024)
def _bullets(items: tuple[str, ...]) -> Block:
    return Block("bullets", items=tuple(_inlines(item) for item in items))


def markup_to_document(text: str) -> Document:
    blocks: list[Block] = []
    paragraph: list[str] = []
    bullets: list[str] = []
    lines = iter(text.splitlines())

    def flush() -> None:
        if paragraph:
            blocks.append(_paragraph(" ".join(paragraph)))
            paragraph.clear()
        if bullets:
            blocks.append(_bullets(tuple(bullets)))
            bullets.clear()

    for line in lines:
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("```"):
            flush()
            code: list[str] = []
            for inner in lines:
                if inner.strip().startswith("```"):
                    break
                code.append(inner)
            blocks.append(Block("code", text="\n".join(code)))
        elif stripped[0] == "#" and (heading := _HEADING.match(stripped)):
            flush()
            blocks.append(_heading(len(heading.group(1)), heading.group(2)))
        elif stripped.startswith(("- ", "* ")):
            if paragraph:
                flush()
            bullets.append(stripped[2:])
        else:
            if bullets:
                flush()
            paragraph.append(stripped)
    flush()
    return Document(tuple(blocks))


def sanitize_label(label: str) -> str:
    """Jira labels cannot hold spaces; other odd characters are folded to ``-`` as well."""
    return _LABEL_UNSAFE.sub("-", label.strip()).strip("-")[:255]


@dataclass(frozen=True)
class RenderedTicket:
    summary: str
    labels: tuple[str, ...]
    markup: str = ""

    @cached_property
    def description(self) -> Document:
        # Parsed on first use: distribution keeps only the markup (it is what the checkpoint
        # stores) and parses it where the ticket is sent.
        return markup_to_document(self.markup)


class TicketTemplates:
    def __init__(self, sources: Mapping[str, Any], *, origin: str = "<built-in templates>") -> None:
        self.origin = origin
        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        unknown = set(sources) - set(DEFAULT_TEMPLATES)
        if unknown:
            raise ConfigError(
                f"unknown template(s) {', '.join(sorted(unknown))}",
                location=SourceLocation(origin),
                fix="templates are: summary, description, labels",
            )
        merged = {**DEFAULT_TEMPLATES, **sources}
        try:
            self.summary = env.from_string(str(merged["summary"]))
            self.description = env.from_string(str(merged["description"]))
            labels = merged["labels"]
            if not isinstance(labels, list):
                raise ConfigError(
                    "'labels' must be a list of templates", location=SourceLocation(origin)
                )
            self.labels = [env.from_string(str(label)) for label in labels]
        except TemplateSyntaxError as exc:
            raise ConfigError(
                f"template syntax error: {exc.message}",
                location=SourceLocation(origin, exc.lineno),
                fix="see https://jinja.palletsprojects.com/templates/",
            ) from exc

    def render(self, facts: Mapping[str, Any]) -> RenderedTicket:
        facts = {**dict.fromkeys(TEMPLATE_FIELDS), "monthly_savings": 0.0, **facts}
        try:
            summary = " ".join(self.summary.render(facts).split())
            markup = self.description.render(facts)
            labels = tuple(
                label for label in (sanitize_label(t.render(facts)) for t in self.labels) if label
            )
        except TemplateError as exc:
            raise ExecutionError(
                f"ticket template failed in {self.origin}: {exc}",
                fix="use only the fields listed in docs/jira.md, "
                "or guard with `{% if x is defined %}`",
            ) from exc
        # Jira refuses a summary over 255 characters.
        return RenderedTicket(summary[:255] or "reclaim recommendation", labels, markup)


def load_templates(path: str | Path | None) -> TicketTemplates:
    """Templates from a YAML file with ``summary``, ``description`` and ``labels`` keys."""
    if path is None:
        return TicketTemplates({})
    try:
        raw = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read templates: {exc.strerror}", location=SourceLocation(str(path))
        ) from exc
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", location=SourceLocation(str(path))) from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            "a templates file is a mapping",
            location=SourceLocation(str(path)),
            fix="write summary:, description: and labels: keys",
        )
    return TicketTemplates(raw, origin=str(path))
