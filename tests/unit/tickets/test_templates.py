from __future__ import annotations

from pathlib import Path

import pytest

from reclaim.errors import ConfigError, ExecutionError
from reclaim.tickets.templates import TicketTemplates, load_templates, markup_to_document

FACTS = {
    "fingerprint": "abc",
    "rule_id": "idle-vm",
    "resource_id": "i-123",
    "resource_name": "web-1",
    "account_id": "111111111111",
    "title": "Stop idle VM",
    "monthly_savings": 123.456,
    "cost_30d": 180.0,
    "currency": "USD",
    "explanation": "CPU under 5% for 30 days.",
    "how_to_fix": "Stop it.",
    "link": "https://reclaim.example/r/1",
}


def test_default_templates_render_summary_description_and_labels() -> None:
    ticket = TicketTemplates({}).render(FACTS)
    assert ticket.summary == "Stop idle VM: web-1 (save 123.46 USD/month)"
    assert ticket.labels == ("reclaim", "idle-vm")
    adf = ticket.description.to_adf()
    kinds = [block["type"] for block in adf["content"]]
    assert kinds[0] == "heading"
    assert "bulletList" in kinds
    text = ticket.description.to_text()
    assert "CPU under 5% for 30 days." in text
    assert "Stop it." in text
    links = [
        mark["attrs"]["href"]
        for block in adf["content"]
        for node in block.get("content", [])
        for mark in node.get("marks", [])
        if mark["type"] == "link"
    ]
    assert links == ["https://reclaim.example/r/1"]


def test_the_sandbox_refuses_reaching_into_python() -> None:
    hostile = TicketTemplates({"summary": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(ExecutionError, match="template failed"):
        hostile.render(FACTS)


def test_an_unknown_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(ExecutionError, match="resource_nmae"):
        TicketTemplates({"summary": "{{ resource_nmae }}"}).render(FACTS)


def test_template_files_report_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text('summary: "{{ title }"\n')
    with pytest.raises(ConfigError, match=r"templates.yaml:1: template syntax error"):
        load_templates(path)
    path.write_text("summery: x\n")
    with pytest.raises(ConfigError, match="unknown template"):
        load_templates(path)


def test_labels_are_made_valid_for_jira() -> None:
    ticket = TicketTemplates({"labels": ["team {{ 'A B' }}", "", "{{ rule_id }}"]}).render(FACTS)
    assert ticket.labels == ("team-A-B", "idle-vm")


def test_markup() -> None:
    document = markup_to_document(
        "## Title\n\nSome **bold** and `code`.\n- one\n- [two](https://x)\n\n```\nraw *text*\n```"
    )
    assert [b.kind for b in document.blocks] == ["heading", "paragraph", "bullets", "code"]
    assert document.blocks[3].text == "raw *text*"
    assert document.to_wiki().startswith("h2. Title")


def test_repeated_blocks_are_parsed_and_rendered_to_adf_once() -> None:
    """Every ticket of a rule repeats most of its description (headings, fixed paragraphs):
    those blocks are shared between documents, and so is the ADF each one renders to."""
    first = markup_to_document("## What\nStop **vm-1** now.\n\n## How to fix\nStop it.\n")
    second = markup_to_document("## What\nStop **vm-2** now.\n\n## How to fix\nStop it.\n")

    assert first.blocks[0] is second.blocks[0]
    assert first.blocks[2:] == second.blocks[2:]
    assert first.blocks[3] is second.blocks[3]
    assert first.blocks[1] != second.blocks[1]
    assert first.to_adf()["content"][0] is second.to_adf()["content"][0]
    assert second.to_adf() == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "What"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Stop "},
                    {"type": "text", "text": "vm-2", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " now."},
                ],
            },
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "How to fix"}],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "Stop it."}]},
        ],
    }
