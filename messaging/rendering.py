"""Rendering entries, with each entry's HTML cached per audience.

Entries are append-only, so an entry's HTML depends only on things that are part of the
cache key: the entry, when it was seen, whether it opens a day (and, if so, today's date, for
"Today" / "Yesterday"), the viewer's time zone and the business's name; for staff also the
customer's and the author's names and what became of each notification (the fields the
status line shows, which the staff timeline prefetches anyway). A page of 50 entries then
costs one cache lookup instead of 50 template renders, so a long thread's page costs about
what a short one's does (bench/pages.py).
"""

from __future__ import annotations

import hashlib

from django.core.cache import caches
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from messaging import extensions

ENTRY_TEMPLATE = "messaging/_entry.html"
CACHE_ALIAS = "fragments"
CACHE_SECONDS = 24 * 60 * 60


def _key(entry, *, audience: str, business, customer, zone: str, today: str, oob: str) -> str:
    # The entry's identity and content are in the key too, so a key can never name other
    # content, even where ids are reused (a database flushed and reloaded, test runs).
    parts: tuple = (
        audience,
        entry.pk,
        entry.thread_id,
        entry.seq,
        # str(): an entry just created holds its choices as enum members, whose repr is not
        # that of the strings a loaded one holds; the same entry must have the same key.
        str(entry.kind),
        str(entry.channel),
        entry.created_at.isoformat(),
        entry.body,
        entry.link_url,
        entry.urgent,
        entry.call_duration_seconds,
        entry.seen_at.isoformat() if entry.seen_at else "",
        getattr(entry, "starts_day", False) and today,
        zone,
        business.pk,
        business.name,
        oob,
    )
    if audience != "customer":
        author = entry.author
        parts += (
            customer.pk,
            customer.name,
            entry.transcript,
            (author.pk, author.first_name, author.get_username()) if author else None,
            tuple(badge.state(entry) for badge in extensions.staff_badges()),
        )
    digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()
    # v5: customer cards with their photos; staff see each author by first name
    return f"entry:v5:{digest}"


def render_entries(entries, *, audience: str, business, customer, oob: str = "") -> SafeString:
    """HTML for `entries` as `audience` sees them, in order."""
    template = get_template(ENTRY_TEMPLATE)

    def render(entry) -> str:
        return template.render(
            {
                "entry": entry,
                "audience": audience,
                "business": business,
                "customer": customer,
                "oob": oob,
            }
        )

    zone = timezone.get_current_timezone_name()
    today = timezone.localdate().isoformat()
    keys = [
        _key(
            e, audience=audience, business=business, customer=customer, zone=zone, today=today,
            oob=oob,
        )
        for e in entries
    ]  # fmt: skip
    cache = caches[CACHE_ALIAS]
    found = cache.get_many(keys)
    missing = {}
    html = []
    for key, entry in zip(keys, entries, strict=True):
        if key not in found:
            found[key] = missing[key] = render(entry)
        html.append(found[key])
    if missing:
        cache.set_many(missing, CACHE_SECONDS)
    return mark_safe("".join(html))  # noqa: S308 - template output
