"""Writes for the portal app: sign-in links, the customer's own settings, new customers.
(Sign-in codes: portal/codes.py; sessions and devices: portal/devices.py; the customer's own
details: portal/account.py.)"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from sesame.utils import get_token

from messaging import actions as messaging_actions
from portal.celery import run_task
from portal.mentions import staff_name
from portal.models import Business, Customer, Project
from portal.queries import customer_for_login

SEND_LOGIN_LINK_TASK = "portal.send_login_link"

logger = logging.getLogger(__name__)


def login_url_for(*, user: AbstractBaseUser) -> str:
    """An absolute one-time sign-in URL, valid for SESAME_MAX_AGE seconds. Opening it shows
    a confirmation page; only the POST from that page signs in (mail scanners open links)."""
    query = urlencode({settings.SESAME_TOKEN_NAME: get_token(user)})
    return f"{settings.SITE_URL}{reverse('magic_link')}?{query}"


def request_login_link(*, email: str) -> None:
    """Queue the email of a sign-in link to `email`, known or not: the request does the same
    work either way (so its timing tells nothing), and a mail provider that is down or slow
    is the task's problem, not the visitor's."""

    def queue() -> None:
        try:
            run_task(SEND_LOGIN_LINK_TASK, email)
        except Exception:
            logger.exception("could not send a sign-in link")

    transaction.on_commit(queue)


def send_login_link(*, email: str) -> None:
    """Email a sign-in link if `email` belongs to an active customer (the task's body). Says
    nothing either way, so the login page cannot be used to learn who is a customer."""
    customer = customer_for_login(email=email)
    if customer is None:
        logger.info("login link requested for an unknown address")
        return
    url = login_url_for(user=customer.user)
    minutes = settings.SESAME_MAX_AGE // 60
    send_mail(
        subject=f"Your sign-in link for {customer.business.name}",
        message=(
            f"Hi {customer.first_name},\n\n"
            f"Open this link to sign in to your project portal:\n{url}\n\n"
            f"It works once and expires in {minutes} minutes. If you did not ask for it, "
            "ignore this email.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[customer.email],
    )


def set_time_zone(*, customer: Customer, time_zone: str) -> None:
    """The customer's time zone: the portal shows times in it and quiet hours are read on it."""
    if customer.time_zone != time_zone:
        Customer.objects.filter(pk=customer.pk).update(time_zone=time_zone)
        customer.time_zone = time_zone


# -- new customers (staff, from a stranger's text or email) ------------------------------------


def _next_project_code() -> str:
    """PRJ-<one more than the highest PRJ- number>; callers hold the transaction."""
    numbers = [
        int(code[4:])
        for code in Project.objects.filter(code__startswith="PRJ-").values_list("code", flat=True)
        if code[4:].isdigit()
    ]
    return f"PRJ-{max(numbers, default=1000) + 1}"


def create_customer(
    *, name: str, phone: str = "", email: str = "", project_title: str = ""
) -> Customer:
    """A customer of the business (one per deployment) with their own sign-in account (no
    password: they sign in with a code or a link), and a project if one is named. Refuses a
    phone or email another customer has: matching and sign-in need each to be one person's."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Enter the customer's name.", code="required")
    if not (phone or email):
        raise ValidationError("A customer needs a phone number or an email address.")
    if phone and Customer.objects.filter(phone=phone).exists():
        raise ValidationError("A customer already has that number.", code="taken")
    if email and Customer.objects.filter(email__iexact=email).exists():
        raise ValidationError("A customer already has that email address.", code="taken")
    business = Business.objects.order_by("pk").first()
    if business is None:
        raise ValidationError("Set up the business in the admin first.")
    with transaction.atomic():
        user = get_user_model()(username=f"customer-{uuid.uuid4().hex[:12]}", email=email)
        user.first_name = name.split()[0][:150]
        user.set_unusable_password()
        user.save()
        customer = Customer.objects.create(
            business=business,
            user=user,
            name=name,
            phone=phone,
            email=email,
            time_zone=business.time_zone,
        )
        title = " ".join(project_title.split())
        if title:
            Project.objects.create(customer=customer, code=_next_project_code(), title=title)
    return customer


# -- who owns a customer's conversation ----------------------------------------------------------


class AssignmentRefused(ValueError):
    """The user cannot own a customer's conversation (not staff, or deactivated)."""


def assign_customer(
    *,
    customer: Customer,
    assignee: AbstractBaseUser | None,
    by: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> Customer:
    """Make `assignee` the staff member who owns `customer`'s conversation (None: nobody).
    The only writer of Customer.assigned_to. Refuses a user who is not active staff, checked
    on the row as it is now (a deactivation a moment ago counts), under a lock on both.

    A change is told to staff in the thread itself, as an internal note by `by` ("Mike
    assigned Sarah Mitchell to Kim"), in the same transaction: staff only, like every note,
    and the note's append is what updates open lists and chats (messaging.live). `at` dates
    the note (history loaded later, as the demo does); by default, now."""
    with transaction.atomic():
        if assignee is not None:
            User = type(assignee)
            current = User.objects.select_for_update().filter(pk=assignee.pk).first()
            if current is None or not current.is_active or not current.is_staff:
                raise AssignmentRefused("Only an active staff member can be assigned a customer.")
            assignee = current
        locked = (
            Customer.objects.select_for_update(of=("self",))
            .select_related("assigned_to")
            .get(pk=customer.pk)
        )
        new_id = assignee.pk if assignee is not None else None
        if locked.assigned_to_id != new_id:
            previous = locked.assigned_to
            locked.assigned_to_id = new_id
            locked.save(update_fields=["assigned_to"])
            messaging_actions.add_internal_note(
                thread=messaging_actions.ensure_thread(customer=locked),
                author=by,
                body=_assignment_note(customer=locked, assignee=assignee, previous=previous, by=by),
                at=at,
            )
    customer.assigned_to_id = new_id
    if assignee is not None:
        customer.assigned_to = assignee
    return customer


# -- the customer's id in the contractor's CRM -------------------------------------------------


def link_crm_id(*, customer: Customer, crm_id: str) -> Customer:
    """Record `crm_id` as the customer's id in the CRM, the first time the CRM names them
    with it. Refuses an id another customer has, or another id for one who has one already:
    the CRM's events are matched by it, so it must name one person, and only one."""
    crm_id = crm_id.strip()
    if not crm_id or customer.crm_id == crm_id:
        return customer
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.crm_id and locked.crm_id != crm_id:
            raise ValidationError(
                "%(name)s has CRM id %(have)s, not %(new)s.",
                code="conflict",
                params={"name": locked.name, "have": locked.crm_id, "new": crm_id},
            )
        if Customer.objects.filter(crm_id=crm_id).exclude(pk=locked.pk).exists():
            raise ValidationError(
                "Another customer has CRM id %(new)s.", code="conflict", params={"new": crm_id}
            )
        if locked.crm_id != crm_id:
            locked.crm_id = crm_id
            locked.save(update_fields=["crm_id"])
    customer.crm_id = crm_id
    return customer


def _assignment_note(*, customer: Customer, assignee, previous, by) -> str:
    who = staff_name(by) if by is not None else "Porchlight"
    if assignee is None:
        return f"{who} unassigned {customer.name} (was {staff_name(previous)})"
    if previous is None:
        return f"{who} assigned {customer.name} to {staff_name(assignee)}"
    return f"{who} assigned {customer.name} to {staff_name(assignee)} (was {staff_name(previous)})"
