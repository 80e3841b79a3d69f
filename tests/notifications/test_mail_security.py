"""Email intake and outgoing email under attack or misuse (issue 18, items 1, 2, 6, 7, 16, 17):
forged bounces, huge headers, spoofed senders, odd attachments on parked mail, the headers
our emails carry and the one-click unsubscribe they offer, and misconfiguration said plainly."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import time_machine
from django.test import Client

from messaging import actions
from notifications.content import reply_address
from notifications.models import InboundMessage, NotificationPreferences
from notifications.unsubscribe import unsubscribe_path, unsubscribe_token
from tests.factories import CustomerFactory
from tests.notifications.test_inbound_email import payload, post

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2025, 5, 15, 14, 15, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(DAYTIME, tick=True):
        yield


# -- item 7: nothing a customer sends is lost -------------------------------------------------


def test_a_parked_reply_keeps_a_file_of_unknown_type_and_staff_can_assign_it(
    client, fake_postmark, customer, thread, staff
):
    # From another address of hers: parked for staff, with a file the portal cannot
    # recognise (application/octet-stream), which once raised KeyError and answered 400.
    data = payload(to=reply_address(thread.pk), sender="sarah.work@example.org", text="Plans")
    data["Attachments"] = [
        {
            "Name": "plans.dwg",
            "Content": base64.b64encode(b"AC1027 a drawing").decode(),
            "ContentType": "application/octet-stream",
            "ContentLength": 16,
        }
    ]
    assert post(client, data).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.status == "unmatched"
    assert [(f["name"], f["content_type"]) for f in inbound.files] == [
        ("plans.dwg", "application/octet-stream")
    ]
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(f"/staff/unmatched/{inbound.pk}/files/0/").status_code == 200
    response = staff_client.post(
        f"/staff/unmatched/{inbound.pk}/assign/", {"customer": "sarah@example.com"}
    )
    assert response.status_code == 302
    (kept,) = thread.entries.get(kind="customer_reply").attachments.all()
    assert (kept.name, kept.staff_only) == ("plans.dwg", True)


# -- item 16: what our emails carry, and the one-click unsubscribe -----------------------------


def _one_email_to_sarah(settings, fake_postmark, thread, staff, committed):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    NotificationPreferences.objects.create(
        customer=thread.customer, time_zone="America/New_York", sms_enabled=False
    )
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="Invoice ready")
    (email,) = fake_postmark.emails
    return email


def test_customer_emails_offer_rfc_8058_one_click_unsubscribe_and_say_they_are_automatic(
    settings, fake_postmark, thread, staff, committed
):
    email = _one_email_to_sarah(settings, fake_postmark, thread, staff, committed)
    assert email.headers["Auto-Submitted"] == "auto-generated"
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = email.headers["List-Unsubscribe"]
    assert link.startswith("<http://127.0.0.1:8000/email/unsubscribe/") and link.endswith("/>")


def test_business_emails_say_they_are_automatic_and_offer_no_unsubscribe(
    fake_postmark, business, committed
):
    emailonly = CustomerFactory(business=business, name="Daniel Ortiz", phone="")
    with committed():
        actions.post_customer_reply(customer=emailonly, body="Any time after 3pm.")
    (email,) = fake_postmark.emails
    assert email.headers["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in email.headers


def test_the_one_click_post_turns_off_her_email_without_signing_in(
    settings, fake_postmark, thread, staff, committed
):
    email = _one_email_to_sarah(settings, fake_postmark, thread, staff, committed)
    path = email.headers["List-Unsubscribe"].strip("<>").removeprefix("http://127.0.0.1:8000")
    # What Gmail and Yahoo send (RFC 8058 section 3.1): no cookie, no CSRF token.
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    prefs = NotificationPreferences.objects.get(customer=thread.customer)
    assert prefs.email_enabled is False
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="Crew at 8")
    assert len(fake_postmark.emails) == 1


def test_opening_the_unsubscribe_link_shows_a_button_and_changes_nothing(client, customer, thread):
    path = unsubscribe_path(customer.pk)
    page = client.get(path)
    assert page.status_code == 200
    assert "Turn off email notifications" in page.content.decode()
    assert f'action="{path}"' in page.content.decode()
    assert not NotificationPreferences.objects.exists()
    done = client.post(path)
    assert "Email notifications are off" in done.content.decode()
    assert NotificationPreferences.objects.get(customer=customer).email_enabled is False


@pytest.mark.parametrize(
    "token",
    ["1.000000000000000000000000", "1", "x.y", "99999.000000000000000000000000"],
    ids=["forged-signature", "no-signature", "not-a-number", "unknown"],
)
def test_a_forged_or_unknown_unsubscribe_link_changes_nothing(client, customer, token):
    assert client.post(f"/email/unsubscribe/{token}/").status_code == 404
    assert client.get(f"/email/unsubscribe/{token}/").status_code == 404
    assert not NotificationPreferences.objects.exists()


def test_one_customers_link_cannot_be_turned_into_anothers(client, customer, other_customer):
    number, _, signature = unsubscribe_token(customer.pk).partition(".")
    assert client.post(f"/email/unsubscribe/{other_customer.pk}.{signature}/").status_code == 404
    assert not NotificationPreferences.objects.exists()
