"""Presentation of CRM records: money in the business's format, visit times."""

from __future__ import annotations

import uuid

from django import template
from django.utils import timezone

from crm_events.formatting import DEFAULT_LOCALE, format_money, time_range

register = template.Library()


@register.simple_tag(takes_context=True)
def money(context, amount, currency: str = "USD") -> str:
    """{% money invoice.total invoice.currency %} -> "$4,200" (the view sets money_locale)."""
    if amount is None:
        return ""
    return format_money(amount, currency, context.get("money_locale") or DEFAULT_LOCALE)


@register.filter
def when(appointment) -> str:
    """Thu May 15, 8–9am, in the viewer's time zone."""
    return time_range(
        appointment.starts_at, appointment.ends_at, timezone.get_current_timezone_name()
    )


@register.filter
def quantity(value) -> str:
    """1, 2.5 — no trailing zeros."""
    return f"{value.normalize():f}" if value is not None else ""


@register.simple_tag
def new_key() -> str:
    """A fresh form key (see KeyedForm): one action per rendered form."""
    return uuid.uuid4().hex


@register.filter
def has_optional(lines) -> bool:
    """Whether an estimate's (prefetched) lines include an optional one."""
    return any(getattr(line, "optional", False) for line in lines)
