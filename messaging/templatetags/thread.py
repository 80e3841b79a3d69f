"""Presentation of thread entries: times, day headers, linkified message text."""

from __future__ import annotations

import datetime as dt
import re

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from messaging import extensions
from portal import mentions
from portal.phones import format_phone

register = template.Library()


@register.filter
def clock(value: dt.datetime | None) -> str:
    """8:02am, in the active (viewer's) time zone."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local.strftime('%I').lstrip('0')}:{local:%M}{local.strftime('%p').lower()}"


@register.filter
def day_label(value: dt.datetime) -> str:
    """'Today — Thu May 15', 'Yesterday — Wed May 14', '3 days ago — Tue May 13'."""
    day = timezone.localtime(value).date()
    today = timezone.localdate()
    stamp = f"{day:%a %b} {day.day}"
    if day.year != today.year:
        stamp += f", {day.year}"
    days = (today - day).days
    if days == 0:
        return f"Today — {stamp}"
    if days == 1:
        return f"Yesterday — {stamp}"
    if 1 < days < 7:
        return f"{days} days ago — {stamp}"
    return stamp


@register.filter
def short_datetime(value: dt.datetime | None) -> str:
    """May 13, 4:12pm"""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local:%b} {local.day}, {clock(value)}"


@register.filter
def duration(seconds: int | None) -> str:
    if not seconds:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    return f"{minutes // 60} h {minutes % 60} min"


_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


@register.filter(needs_autoescape=False)
def linkify(text: str) -> SafeString:
    """Escape the text, then turn http(s) links into anchors. Only http(s) schemes are
    linked, so `javascript:` and friends stay plain text."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text or ""):
        out.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        out.append(f'<a href="{url}" rel="noopener nofollow" target="_blank">{url}</a>')
        last = match.end()
    out.append(escape((text or "")[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece above is escaped


@register.simple_tag(takes_context=True)
def render_entries(context, entries) -> SafeString:
    """The entries of a page, each through messaging/_entry.html (see messaging.rendering)."""
    from messaging.rendering import render_entries as render

    return render(
        entries,
        audience=context["audience"],
        business=context["business"],
        customer=context["customer"],
    )


@register.simple_tag
def staff_badge_templates() -> list[str]:
    """What other apps show under an entry in staff timelines (messaging.extensions)."""
    return [badge.template for badge in extensions.staff_badges()]


# What a card's link does, by what the card is about.
CARD_ACTIONS = {
    "invoice": "View invoice",
    "payment": "View receipt",
    "estimate": "View estimate",
    "contract": "View contract",
    "appointment": "See schedule",
}


@register.filter
def card_headline(body: str) -> str:
    """ "Invoice #2041 sent" of "Invoice #2041 sent — $4,200" (cards write "what — detail")."""
    return (body or "").partition(" — ")[0]


@register.filter
def card_detail(body: str) -> str:
    """ "$4,200" of "Invoice #2041 sent — $4,200"; "" when the card has no detail."""
    return (body or "").partition(" — ")[2]


_APPOINTMENT_LINK = re.compile(r"^/schedule/\?appointment=(\d+)(?:#|$)")


@register.filter
def calendar_link(link_url: str) -> str:
    """The "Add to calendar" (.ics) address of an appointment card's visit; "" otherwise."""
    match = _APPOINTMENT_LINK.match(link_url or "")
    return reverse("crm_appointment_ics", args=[int(match.group(1))]) if match else ""


@register.filter
def card_action(card_kind: str) -> str:
    return CARD_ACTIONS.get(card_kind, "Open")


@register.filter
def phone(value: str) -> str:
    """+15555550123 as people read it, (555) 555-0123; anything else as it is."""
    try:
        return format_phone(value) if value and value.startswith("+") else value
    except Exception:  # noqa: BLE001 - a display helper never breaks a page
        return value


@register.filter
def staff_name(user) -> str:
    """A staff member as colleagues see them: "Kim" (portal.mentions.staff_name)."""
    return mentions.staff_name(user)
