"""The draft a ticket is created from: the plan's draft, plus what makes it reconcilable."""

from __future__ import annotations

from dataclasses import fields

from reclaim.sync.outbound import TicketPlan, fingerprint_label
from reclaim.tickets import Document, IssueDraft


def test_the_keyed_draft_keeps_every_field_of_the_plan_and_adds_the_fingerprint() -> None:
    draft = IssueDraft(
        project="OPS",
        summary="Idle VM: web-1",
        issue_type="Bug",
        description=Document.of_text("Stop it."),
        labels=("reclaim", "idle-vm"),
        components=("compute",),
        assignee="557058:abc",
        priority="High",
        properties={"team": {"name": "web"}},
    )
    keyed = TicketPlan("f" * 64, 7, draft).keyed_draft()
    # Every field a draft may gain later is carried over as well: the keyed draft is built
    # field by field.
    for field in fields(IssueDraft):
        if field.name not in ("labels", "properties"):
            assert getattr(keyed, field.name) == getattr(draft, field.name), field.name
    assert keyed.labels == ("reclaim", "idle-vm", fingerprint_label("f" * 64))
    assert keyed.properties == {"team": {"name": "web"}, "reclaim": {"fingerprint": "f" * 64}}
