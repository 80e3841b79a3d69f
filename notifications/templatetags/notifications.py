"""Template helpers for notifications/_delivery_status.html."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def deliveries_of(entry, deliveries=None) -> list:
    """The deliveries given, or those attach_deliveries() put on the entry; none otherwise.
    (A template cannot fall back to a missing attribute: `default:` raises for it.)"""
    if deliveries:
        return list(deliveries)
    return list(getattr(entry, "delivery_list", None) or [])
