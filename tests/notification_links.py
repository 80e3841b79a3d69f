"""Reading a notification link back (portal/entry_links.py), for tests of the notifications
that carry one."""

from __future__ import annotations

from django.urls import resolve

from portal import entry_links


def lands_on(path: str) -> tuple[int, int, int, str]:
    """(customer id, entry id, seq, channel) of a /open/<token>/ path."""
    match = resolve(path)
    assert match.url_name == "notification_link"
    link, fresh = entry_links.read(match.kwargs["token"])
    assert fresh
    return link.customer_id, link.entry_id, link.seq, link.via
