"""The Python actions of ``invoices.yaml``: the host application's ``ACTION_MAP``.

Importing this module registers four actions and the ``credit_watch_list`` constant, the way an
application registers its own before loading its rules::

    reclaim rules test src/reclaim/rules/examples --import reclaim.rules.examples.invoice_actions
"""

from __future__ import annotations

__all__ = ["approve_invoice", "archive_invoice", "flag_for_review", "offer_discount"]

from collections.abc import Mapping
from typing import Any

from reclaim.rules.actions import register_action, register_constants

register_constants(credit_watch_list=["Acme Corp", "Globex", "Initech"])


@register_action(replace=True)
def offer_discount(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Offer a discount to a long-standing customer who uses little of what they pay for."""
    return {"customer": fact.get("customer_name"), "offer": "10% off the next renewal"}


@register_action(replace=True)
def flag_for_review(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Hold the customer's invoices for a credit review."""
    return {"customer": fact.get("customer_name"), "queue": "credit-review"}


@register_action(replace=True)
def approve_invoice(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Approve an invoice that has every required field."""
    return {"invoice": fact.get("invoice_number"), "approved": True}


@register_action(replace=True)
def archive_invoice(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Archive an invoice that is already paid."""
    return {"invoice": fact.get("invoice_number"), "archived": True}
