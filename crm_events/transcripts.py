"""What a transcript (messaging/transcripts.py) says of the document an event card names:
its number, total and status now, read for a chunk of entries in one query per kind."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.urls import Resolver404, resolve

from crm_events.models import Appointment, Contract, Estimate, Invoice
from messaging.models import Entry
from messaging.transcripts import iso

BY_URL_NAME = {"crm_invoice": ("invoice", Invoice), "crm_estimate": ("estimate", Estimate)}
BY_QUERY = {"contract": ("contract", Contract), "appointment": ("appointment", Appointment)}


def _target(link: str) -> tuple[str, str, str] | None:
    """(type, field, value) of the document a card's link opens, or None."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc:
        return None  # a link to the CRM's own site names nothing of ours
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    if match.url_name in BY_URL_NAME:
        return BY_URL_NAME[match.url_name][0], "number", match.kwargs["number"]
    for name, values in parse_qs(parts.query).items():
        if name in BY_QUERY and values[0].isdigit():
            return BY_QUERY[name][0], "pk", values[0]
    return None


def _describe(kind: str, record, zone: str) -> dict:
    described = {"type": kind, "status": record.status}
    if kind in ("invoice", "estimate", "contract"):
        described["number"] = record.number
        described["total"] = str(record.total) if kind != "contract" else None
        described["currency"] = record.currency if kind != "contract" else None
    if kind in ("contract", "appointment"):
        described["title"] = record.title
    if kind == "appointment":
        described["starts_at"] = iso(record.starts_at, zone)
    return described


def card_documents(entries: list[Entry], *, staff: bool, zone: str) -> dict[int, dict]:
    """{entry id: the document its card names} for the cards among `entries` (one thread's)."""
    wanted: dict[tuple[str, str, str], list[int]] = {}
    for entry in entries:
        if entry.kind == Entry.Kind.EVENT_CARD and entry.link_url:
            target = _target(entry.link_url)
            if target:
                wanted.setdefault(target, []).append(entry.pk)
    if not wanted:
        return {}
    thread_id = entries[0].thread_id
    models = {**dict(BY_URL_NAME.values()), **dict(BY_QUERY.values())}
    found: dict[int, dict] = {}
    for kind, model in models.items():
        keys = {(field, value) for (k, field, value) in wanted if k == kind}
        if not keys:
            continue
        numbers = [v for f, v in keys if f == "number"]
        pks = [int(v) for f, v in keys if f == "pk"]
        rows = model.objects.filter(customer__thread=thread_id)
        rows = rows.filter(number__in=numbers) if numbers else rows.filter(pk__in=pks)
        for row in rows:
            key = (kind, "number", row.number) if numbers else (kind, "pk", str(row.pk))
            for entry_id in wanted.get(key, ()):
                found[entry_id] = _describe(kind, row, zone)
    return found
