"""The staff list's rows, each rendered once per state and shared.

A row (templates/portal/staff_projects.html#row) shows only what the row query reads (the
project, its customer, the thread's counters and last message), the assignee choices, and
the viewer's time zone and language; every one of them is in the row's cache key, so a row
is never served for another state: a new message, a read, an assignment or a renamed
customer makes a new key, and the old fragment ages out. The times it shows are absolute
("May 15, 10:22am"), so none goes stale with the date.

The list GET (50 rows) and the inbox socket's live rows share one fragment per state, in
the same per-process cache as entries (messaging/rendering.py). The two parts that are not
the row's own are filled in on the way out: the request's CSRF token (a fragment holds a
placeholder) and the socket's out-of-band swap attribute. Profiled under bench.mixed, the
list GET's 50 row renders were a fifth of the web process and the live rows a sixth.
"""

from __future__ import annotations

import hashlib

from django.core.cache import caches
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from messaging.rendering import CACHE_ALIAS, CACHE_SECONDS

ROW_TEMPLATE = "portal/staff_projects.html#row"
# What {% csrf_token %} renders in a cached row; a row's own text is escaped, so it can never
# contain this tag.
_CSRF_PLACEHOLDER = "csrf-token-of-the-request"
_CSRF_INPUT = '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
_OOB = ' hx-swap-oob="outerHTML"'


def _key(row, *, shared: str) -> str:
    customer = row.customer
    thread = getattr(customer, "thread", None)  # a customer may have no thread yet
    parts = (
        row.pk,
        row.code,
        row.title,
        row.plan_type,
        row.status,
        row.unread,
        row.last_message_at.isoformat() if row.last_message_at else "",
        row.last_message_body,
        row.last_message_project,
        customer.pk,
        customer.name,
        customer.assigned_to_id,
        thread.pk if thread else None,
        shared,
    )
    digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()
    return f"row:v1:{digest}"


def render_project_rows(rows, *, staff_members, csrf_token=None, oob: bool = False) -> SafeString:
    """HTML of the staff list's `rows` (from portal.queries.staff_project_rows), in order:
    the page's, with `csrf_token` in each assignee control, or the inbox socket's
    (`oob`: an out-of-band swap each, no token, as before)."""
    if not rows:
        return mark_safe("")
    # What every row of this call shares: the viewer's zone and language (dates, the status
    # label), the URLs' prefix and the assignee choices.
    shared = repr(
        (
            timezone.get_current_timezone_name(),
            translation.get_language(),
            get_script_prefix(),
            tuple(staff_members),
        )
    )
    keys = [_key(row, shared=shared) for row in rows]
    cache = caches[CACHE_ALIAS]
    found = cache.get_many(keys)
    missing = {}
    for key, row in zip(keys, rows, strict=True):
        if key not in found:
            found[key] = missing[key] = _render(row, staff_members=staff_members)
    if missing:
        cache.set_many(missing, CACHE_SECONDS)

    placeholder = _CSRF_INPUT.format(_CSRF_PLACEHOLDER)
    # As {% csrf_token %} does: nothing without a token (the sockets have no request).
    token = str(csrf_token) if csrf_token else "NOTPROVIDED"
    fill = "" if token == "NOTPROVIDED" else format_html(_CSRF_INPUT, token)
    html = []
    for key in keys:
        row = found[key].replace(placeholder, fill)
        if oob:
            # The <tr>'s attributes end at the first ">" (their values are escaped).
            head, _, rest = row.partition(">")
            row = f"{head}{_OOB}>{rest}"
        html.append(row)
    return mark_safe("".join(html))  # noqa: S308 - template output


def _render(row, *, staff_members) -> str:
    return get_template(ROW_TEMPLATE).render(
        {"row": row, "staff_members": staff_members, "csrf_token": _CSRF_PLACEHOLDER}
    )
