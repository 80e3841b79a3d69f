"""The assignee control (templates/portal/_assignee.html), included by list rows and the chat."""

from __future__ import annotations

from django import template

register = template.Library()


def assignee_control_context(*, customer, where: str, row_id: int | None = None) -> dict:
    """What the control needs besides the choices, for the row of `row_id` (a project: a
    customer with two projects has two rows) or the chat modal."""
    control_id = f"assignee-row-{row_id}" if where == "row" else f"assignee-chat-{customer.pk}"
    return {
        "customer": customer,
        "where": where,
        "row_id": row_id if where == "row" else None,
        "control_id": control_id,
    }


@register.inclusion_tag("portal/_assignee.html", takes_context=True)
def assignee_control(context, customer, where: str, row_id=None, oob: bool = False) -> dict:
    """The control for a row of the staff list (`row_id`: its project) or the chat modal."""
    return {
        **assignee_control_context(customer=customer, where=where, row_id=row_id),
        "staff_members": context.get("staff_members", ()),
        "csrf_token": context.get("csrf_token"),
        "oob": oob,
    }
