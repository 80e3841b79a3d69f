"""Unmatched messages (issue 20): staff can make a new customer (and project) of a stranger
who texted or emailed, and the message opens the new customer's thread."""

from __future__ import annotations

import pytest
from django.utils import timezone

from messaging.models import Entry
from notifications.models import InboundMessage
from portal.models import Customer, Project
from tests.notifications.test_inbound_sms import text

pytestmark = pytest.mark.django_db
JEN = "+15555550177"


def test_staff_make_a_new_customer_and_project_of_a_strangers_text(
    client, fake_twilio, customer, staff_client
):
    text(client, fake_twilio, sender=JEN, body="Could someone look at our fence?")
    inbound = InboundMessage.objects.get()
    page = staff_client.get("/staff/unmatched/").content.decode()
    assert "Or make a new customer of (555) 555-0177" in page

    response = staff_client.post(
        f"/staff/unmatched/{inbound.pk}/new-customer/",
        {"name": " Jen  Park ", "project": "Fence Repair"},
    )
    jen = Customer.objects.get(phone=JEN)
    entry = Entry.objects.get(thread__customer=jen)
    assert response.status_code == 302
    assert response.url == f"/staff/chat/{entry.thread_id}/?at={entry.seq}"
    assert (jen.name, jen.email, jen.business) == ("Jen Park", "", customer.business)
    assert not jen.user.has_usable_password() and not jen.user.is_staff
    assert entry.body == "Could someone look at our fence?" and entry.channel == "sms"
    (project,) = jen.projects.all()
    assert project.title == "Fence Repair" and project.code.startswith("PRJ-")
    inbound.refresh_from_db()
    assert inbound.status == "assigned" and inbound.customer == jen
    # Her next text finds her thread by itself.
    text(client, fake_twilio, sender=JEN, body="Thanks!")
    assert Entry.objects.filter(thread__customer=jen).count() == 2


def test_a_new_customer_from_an_email_gets_the_address_and_no_project_if_none_named(
    customer, staff_client
):
    inbound = InboundMessage.objects.create(
        channel=InboundMessage.Channel.EMAIL,
        provider_id="<x1@mail.example>",
        sender="Pat@Example.org",
        body="Do you do gutters?",
        status=InboundMessage.Status.UNMATCHED,
        received_at=timezone.now(),
    )
    staff_client.post(f"/staff/unmatched/{inbound.pk}/new-customer/", {"name": "Pat Lee"})
    pat = Customer.objects.get(name="Pat Lee")
    assert (pat.email, pat.phone) == ("pat@example.org", "")
    assert not pat.projects.exists()
    assert Entry.objects.get(thread__customer=pat).channel == "email"


def test_refusals_leave_no_customer_behind(client, fake_twilio, customer, staff_client):
    text(client, fake_twilio, sender=JEN, body="Hello?")
    inbound = InboundMessage.objects.get()
    before = (Customer.objects.count(), Project.objects.count(), Entry.objects.count())
    url = f"/staff/unmatched/{inbound.pk}/new-customer/"
    response = staff_client.post(url, {"name": "   "})
    assert response.status_code == 400 and "Enter the customer" in response.content.decode()
    # The number became someone's in the meantime: refused, nothing half made.
    Customer.objects.filter(pk=customer.pk).update(phone=JEN)
    response = staff_client.post(url, {"name": "Jen Park", "project": "Fence"})
    assert response.status_code == 400
    assert "already has that number" in response.content.decode()
    assert (Customer.objects.count(), Project.objects.count(), Entry.objects.count()) == before
    assert InboundMessage.objects.get().status == "unmatched"


def test_customers_cannot_make_customers(customer_client, client, fake_twilio):
    text(client, fake_twilio, sender=JEN, body="Hello?")
    inbound = InboundMessage.objects.get()
    response = customer_client.post(
        f"/staff/unmatched/{inbound.pk}/new-customer/", {"name": "Mallory"}
    )
    assert response.status_code == 404
    assert not Customer.objects.filter(name="Mallory").exists()
