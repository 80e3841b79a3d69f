"""Reads for the CRM: a customer's documents and visits, fetched by the customer and the
number in one step (anything else is 404), and the lists the portal's tabs show. Every
function runs a fixed number of queries, whatever the number of records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone

from crm_events import formatting, reply_templates
from crm_events.models import (
    Appointment,
    Contract,
    CrmSettings,
    Estimate,
    Invoice,
    SavedReply,
)
from messaging.models import Entry
from portal.models import Business, Customer, Project

OPEN = [Appointment.Status.SCHEDULED, Appointment.Status.RESCHEDULED, Appointment.Status.CONFIRMED]
AWAITING = [Appointment.Status.SCHEDULED, Appointment.Status.RESCHEDULED]


def money_settings(business: Business) -> CrmSettings:
    """The business's settings, or unsaved defaults (a read never writes)."""
    try:
        return business.crm_settings
    except CrmSettings.DoesNotExist:
        return CrmSettings(business=business)


# -- documents -------------------------------------------------------------------------------


def customer_invoice(*, customer: Customer, number: str) -> Invoice:
    """The customer's invoice `number` with its lines, or 404 (drafts are not shown)."""
    invoice = (
        Invoice.objects.filter(customer=customer, number=number)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("project", "customer__business")
        .prefetch_related("lines", "payments")
        .first()
    )
    if invoice is None:
        raise Http404
    return invoice


def customer_estimate(*, customer: Customer, number: str) -> Estimate:
    estimate = (
        Estimate.objects.filter(customer=customer, number=number)
        .exclude(status=Estimate.Status.DRAFT)
        .select_related("project", "customer__business")
        .prefetch_related("lines")
        .first()
    )
    if estimate is None:
        raise Http404
    return estimate


def customer_appointment(*, customer: Customer, appointment_id: int) -> Appointment:
    appointment = (
        Appointment.objects.filter(customer=customer, pk=appointment_id)
        .select_related("project", "customer")
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


def staff_invoice(*, number: str) -> Invoice:
    invoice = (
        Invoice.objects.filter(number=number)
        .select_related("project", "customer__business", "customer__thread")
        .prefetch_related("lines", "payments")
        .first()
    )
    if invoice is None:
        raise Http404
    return invoice


def staff_estimate(*, number: str) -> Estimate:
    estimate = (
        Estimate.objects.filter(number=number)
        .select_related("project", "customer__business", "customer__thread")
        .prefetch_related("lines")
        .first()
    )
    if estimate is None:
        raise Http404
    return estimate


# -- the portal's tabs -----------------------------------------------------------------------


def customer_invoices(*, customer: Customer) -> list[Invoice]:
    """All the customer's invoices, newest first, with their projects. One query."""
    return list(
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("project")
        .order_by("-issued_at", "-pk")
    )


def customer_estimates(*, customer: Customer) -> list[Estimate]:
    return list(
        Estimate.objects.filter(customer=customer)
        .exclude(status=Estimate.Status.DRAFT)
        .select_related("project")
        .order_by("-issued_at", "-pk")
    )


@dataclass(frozen=True)
class Schedule:
    upcoming: list[Appointment]
    past: list[Appointment]


def customer_schedule(*, customer: Customer, now: dt.datetime | None = None) -> Schedule:
    """Upcoming visits (soonest first, cancelled ones included so a change is visible) and
    past ones (latest first). One query."""
    now = now or timezone.now()
    rows = list(
        Appointment.objects.filter(customer=customer)
        .select_related("project")
        .order_by("starts_at", "pk")
    )
    upcoming = [a for a in rows if a.ends_at > now and a.status != Appointment.Status.COMPLETED]
    past = [a for a in reversed(rows) if a not in upcoming]
    return Schedule(upcoming=upcoming, past=past)


@dataclass
class ProjectSummary:
    project: Project
    next_appointment: Appointment | None
    open_invoices: list[Invoice]
    open_estimates: list[Estimate]
    contracts: list[Contract]
    latest: list[Entry]


LATEST_EVENTS = 5


def project_summaries(
    *, customer: Customer, now: dt.datetime | None = None
) -> list[ProjectSummary]:
    """My Project: each project with its next visit, open invoices and estimates, contracts
    and latest entries about it. Six queries, whatever the number of projects or records."""
    now = now or timezone.now()
    projects = list(customer.projects.all())
    by_project = {p.pk: ProjectSummary(p, None, [], [], [], []) for p in projects}

    def summary(project_id):
        return by_project.get(project_id)

    for appointment in Appointment.objects.filter(
        customer=customer, project__isnull=False, status__in=OPEN, ends_at__gt=now
    ).order_by("starts_at"):
        s = summary(appointment.project_id)
        if s is not None and s.next_appointment is None:
            s.next_appointment = appointment
    # Partly paid is still open: a balance is due.
    open_statuses = [Invoice.Status.SENT, Invoice.Status.PARTIALLY_PAID]
    for invoice in Invoice.objects.filter(customer=customer, status__in=open_statuses):
        if (s := summary(invoice.project_id)) is not None:
            s.open_invoices.append(invoice)
    for estimate in Estimate.objects.filter(customer=customer, status=Estimate.Status.SENT):
        if (s := summary(estimate.project_id)) is not None:
            s.open_estimates.append(estimate)
    for contract in Contract.objects.filter(customer=customer).exclude(
        status=Contract.Status.DRAFT
    ):
        if (s := summary(contract.project_id)) is not None:
            s.contracts.append(contract)
    latest = _latest_entries(customer=customer, project_ids=list(by_project))
    # An entry tagged with no project (a reply typed with "All" shown, a text) is part of the
    # conversation about each of them: it counts among every project's latest.
    for entry in latest:
        for s in [by_project[entry.project_id]] if entry.project_id else by_project.values():
            if len(s.latest) < LATEST_EVENTS:
                s.latest.append(entry)
    return list(by_project.values())


def _latest_entries(*, customer: Customer, project_ids: list[int]) -> list[Entry]:
    """The newest entries about each project the customer may see, and the newest about none
    in particular, newest first: one query with a window function (the untagged ones are a
    partition of their own), so the cost does not grow with the number of projects."""
    if not project_ids:
        return []
    ranked = (
        Entry.objects.filter(thread__customer=customer)
        .filter(Q(project_id__in=project_ids) | Q(project__isnull=True))
        .for_customer()
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("project_id")], order_by=F("seq").desc())
        )
        .filter(rank__lte=LATEST_EVENTS)
        .order_by("-seq")
    )
    return list(ranked)


# -- automations -----------------------------------------------------------------------------


def next_unconfirmed_appointment(*, customer: Customer, after: dt.datetime) -> Appointment | None:
    return (
        Appointment.objects.filter(customer=customer, status__in=AWAITING, ends_at__gt=after)
        .select_related("customer", "project")
        .order_by("starts_at")
        .first()
    )


def upcoming_open_appointment(*, customer: Customer, after: dt.datetime) -> Appointment | None:
    return (
        Appointment.objects.filter(customer=customer, status__in=OPEN, ends_at__gt=after)
        .select_related("customer")
        .order_by("starts_at")
        .first()
    )


# -- saved replies ---------------------------------------------------------------------------


def saved_reply_values(*, customer, zone: str, locale: str) -> dict[str, str | None]:
    """This customer's value of each variable (None where there is none). Three queries:
    projects, the next visit, the latest open invoice."""
    projects = list(customer.projects.order_by("-created_at", "-pk"))
    active = [p for p in projects if p.status == p.Status.ACTIVE]
    project = projects[0] if len(projects) == 1 else (active or projects or [None])[0]
    visit = (
        Appointment.objects.filter(
            customer=customer, status__in=OPEN, starts_at__gte=timezone.now()
        )
        .order_by("starts_at")
        .first()
    )
    invoice = (
        Invoice.objects.filter(customer=customer, status=Invoice.Status.SENT)
        .order_by("-issued_at", "-pk")
        .first()
    )
    return {
        "first_name": customer.first_name or None,
        "project": project.title if project else None,
        "next_visit": (
            formatting.time_range(visit.starts_at, visit.ends_at, zone) if visit else None
        ),
        "invoice_total": (
            formatting.format_money(invoice.total, invoice.currency, locale) if invoice else None
        ),
    }


def saved_replies_for(*, customer, zone: str) -> list[reply_templates.FilledReply]:
    """Every saved reply, by name, filled in with this customer's values. Five queries,
    whatever the number of replies: the replies, the business's settings (its money locale),
    and the three of saved_reply_values."""
    replies = list(SavedReply.objects.order_by("name"))
    if not replies:
        return []
    locale = money_settings(customer.business).locale
    values = saved_reply_values(customer=customer, zone=zone, locale=locale)
    filled = []
    for reply in replies:
        text, missing = reply_templates.fill(reply.body, values)
        filled.append(
            reply_templates.FilledReply(id=reply.pk, name=reply.name, text=text, missing=missing)
        )
    return filled
