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
    """Offer a discount to a long-standing customer who uses little of what they pay for.

    ```yaml
    rules:
      - name: discount
        condition: utilization < 0.80 and customer_age > 180
        action: offer_discount
    tests:
      - name: it fires
        fact: {utilization: 0.5, customer_age: 365}
        fired: [discount]
    ```
    """
    return {"customer": fact.get("customer_name"), "offer": "10% off the next renewal"}


@register_action(replace=True)
def flag_for_review(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Hold the customer's invoices for a credit review.

    ```yaml
    rules:
      - name: watch
        condition: customer_name in credit_watch_list
        action: flag_for_review
    tests:
      - name: it fires
        fact: {customer_name: Globex}
        fired: [watch]
    ```
    """
    return {"customer": fact.get("customer_name"), "queue": "credit-review"}


@register_action(replace=True)
def approve_invoice(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Approve an invoice that has every required field.

    ```yaml
    rules:
      - name: complete
        condition: invoice_number and issue_date and vendor_id
        action: approve_invoice
    tests:
      - name: it fires
        fact: {invoice_number: I-1, issue_date: 2026-01-02, vendor_id: V-1}
        fired: [complete]
    ```
    """
    return {"invoice": fact.get("invoice_number"), "approved": True}


@register_action(replace=True)
def archive_invoice(fact: Mapping[str, Any]) -> dict[str, Any]:
    """Archive an invoice that is already paid.

    ```yaml
    rules:
      - name: paid
        condition: status in ['paid']
        action: archive_invoice
    tests:
      - name: it fires
        fact: {status: paid}
        fired: [paid]
    ```
    """
    return {"invoice": fact.get("invoice_number"), "archived": True}
