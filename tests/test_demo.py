"""The demo data, as a new user meets it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from messaging.models import Entry, Thread
from notifications.models import InboundMessage
from portal.models import Customer


def test_demo_is_idempotent(db):
    call_command("demo")
    counts = (Customer.objects.count(), Entry.objects.count(), Thread.objects.count())
    call_command("demo")
    assert (Customer.objects.count(), Entry.objects.count(), Thread.objects.count()) == counts
    assert counts[0] == 2
    # And one text from a stranger, waiting for staff.
    (waiting,) = InboundMessage.objects.filter(status=InboundMessage.Status.UNMATCHED)
    assert "fence" in waiting.body


def test_staff_find_the_strangers_text_on_the_unmatched_page(client, db):
    call_command("demo")
    client.force_login(User.objects.get(username="mike"))
    page = client.get("/staff/unmatched/").content.decode()
    assert "555-0177" in page
    assert "Could someone look at our fence next week?" in page


def test_sarah_reads_the_example_thread_in_order(client, db):
    call_command("demo")
    sarah = Customer.objects.get(email="sarah@example.com")
    assert sarah.phone == "+15555550123"
    client.force_login(sarah.user)
    page = client.get("/messages/").content.decode()
    expected_in_order = [
        "Reply CONFIRM to confirm.",
        "CONFIRM",
        "Phone call",
        "6 min",
        "Our crew is on their way",
        "how did the deck come out?",
        "Invoice #2041 sent",
        "Sounds good! What time works for you?",
    ]
    positions = [page.index(text) for text in expected_in_order]
    assert positions == sorted(positions)
    assert "Automated" in page
    assert "Deck Replacement Project · Active" in page
    for secret in ("cedar stain", "Gate code", "4512"):
        assert secret not in page


def test_daniel_has_his_own_short_thread(client, db):
    call_command("demo")
    daniel = Customer.objects.get(email="daniel@example.com")
    client.force_login(daniel.user)
    page = client.get("/messages/").content.decode()
    assert "cabinet samples" in page
    assert "deck" not in page.lower().replace("deck replacement", "")


def test_the_demos_crm_records_are_real_and_confirmed_by_sarahs_confirm(client, db):
    from crm_events.models import Appointment, Estimate, Invoice

    call_command("demo")
    sarah = Customer.objects.get(email="sarah@example.com")
    daniel = Customer.objects.get(email="daniel@example.com")
    # Sarah's "CONFIRM" in the thread went through the keyword hook to her appointment.
    install = Appointment.objects.get(customer=sarah, external_id="APT-77")
    assert install.status == Appointment.Status.CONFIRMED and install.confirmed_at is not None
    assert Invoice.objects.get(customer=sarah, number="2041").lines.count() > 0
    assert Estimate.objects.get(customer=sarah, number="311").status == Estimate.Status.SENT
    # Daniel's kitchen visit is next week, on his Schedule and not on Sarah's.
    visit = Appointment.objects.get(customer=daniel, external_id="APT-81")
    days_ahead = (visit.starts_at.date() - timezone.localdate()).days
    assert 6 <= days_ahead <= 8
    client.force_login(daniel.user)
    schedule = client.get("/schedule/").content.decode()
    assert "Kitchen measure and cabinet samples" in schedule
    assert "Deck install" not in schedule
