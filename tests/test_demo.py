"""The demo data, as a new user meets it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from crm_events.announcements import audience
from crm_events.models import Appointment
from messaging.models import Entry, Thread
from notifications.models import InboundMessage
from portal.models import Business, Customer


def test_demo_is_idempotent(db):
    call_command("demo")
    counts = (Customer.objects.count(), Entry.objects.count(), Thread.objects.count())
    call_command("demo")
    assert (Customer.objects.count(), Entry.objects.count(), Thread.objects.count()) == counts
    assert counts[0] == 3
    # And one text from a stranger, waiting for staff.
    (waiting,) = InboundMessage.objects.filter(status=InboundMessage.Status.UNMATCHED)
    assert "fence" in waiting.body


def test_loading_the_demo_notifies_nobody(db):
    from notifications.models import Delivery

    call_command("demo")
    assert Entry.objects.filter(kind=Entry.Kind.EVENT_CARD).count() >= 4  # CRM cards, too
    assert not Delivery.objects.exists()


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
    # Sarah's "CONFIRM" in the thread went through the keyword hook to her appointment, which
    # has happened since.
    install = Appointment.objects.get(customer=sarah, external_id="APT-77")
    assert install.status == Appointment.Status.COMPLETED and install.confirmed_at is not None
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


def test_luis_is_phone_only_with_his_roof_and_a_short_thread(client, db):
    call_command("demo")
    luis = Customer.objects.get(name="Luis Ramirez")
    assert (luis.phone, luis.email) == ("+15555550188", "")
    assert [p.title for p in luis.projects.all()] == ["Roof Repair"]
    # Daniel keeps his own number: no two customers share one.
    assert Customer.objects.get(name="Daniel Ortiz").phone != luis.phone
    client.force_login(luis.user)
    page = client.get("/messages/").content.decode()
    assert "come look at the roof leak" in page
    assert "over the back bedroom" in page


def test_an_older_demo_database_moves_daniel_off_luiss_number(db):
    call_command("demo")
    Customer.objects.filter(name="Luis Ramirez").update(phone="")
    Customer.objects.filter(name="Daniel Ortiz").update(phone="+15555550188")
    call_command("demo")
    assert Customer.objects.get(name="Daniel Ortiz").phone == "+15555550145"


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2026, 5, 15, 15, 0, tzinfo=dt.UTC),  # Fri 11am in New York
        dt.datetime(2026, 5, 18, 13, 0, tzinfo=dt.UTC),  # Mon 9am: the thread ends yesterday
    ],
)
def test_the_demos_dates_agree_with_each_other(client, db, now):
    with time_machine.travel(now, tick=False):
        call_command("demo")
        sarah = Customer.objects.get(email="sarah@example.com")
        tz = zoneinfo.ZoneInfo(sarah.time_zone)
        visit = Appointment.objects.get(customer=sarah, external_id="APT-77")
        starts = visit.starts_at.astimezone(tz)
        entries = Entry.objects.filter(thread__customer=sarah)
        reminder = entries.get(body__startswith="Hi Sarah! Your deck project")
        crew = entries.get(body__contains="crew is on their way")
        follow_up = entries.get(body__contains="how did the deck come out")

        # The reminder names the visit's weekday and hour, the day before it.
        assert f"scheduled for {starts:%A} 8–9am" in reminder.body
        assert (starts.date() - reminder.created_at.astimezone(tz).date()).days == 1
        # The crew is on its way that morning, 20 minutes out from the 8am start.
        crew_at = crew.created_at.astimezone(tz)
        assert crew_at.date() == starts.date() and starts - crew_at == dt.timedelta(minutes=12)
        # The visit is over and says so; the follow-up comes after it.
        assert visit.status == Appointment.Status.COMPLETED
        assert follow_up.created_at > visit.ends_at
        assert all(e.created_at <= now for e in entries)

        client.force_login(sarah.user)
        schedule = client.get("/schedule/").content.decode()
        past = schedule.split('id="past-title"')[1]
        assert "Deck install" in past and "Completed" in past
        assert "Deck install" not in schedule.split('id="past-title"')[0]
        thread_page = client.get("/messages/").content.decode()
        assert (
            '<span class="card-title">Appointment completed</span>'
            '<span class="visually-hidden"> — </span><span class="card-detail">Deck install</span>'
        ) in thread_page


@pytest.mark.django_db
def test_the_demo_has_visits_today_for_an_announcement():
    call_command("demo")
    business = Business.objects.get()
    today = timezone.localdate(timezone.now(), zoneinfo.ZoneInfo(business.time_zone))
    chosen = audience.recipients(
        business=business, choice=audience.Choice(audience="visit_on", visit_date=today)
    )
    assert [r.customer.name for r in chosen] == ["Luis Ramirez", "Sarah Mitchell"]


def test_kim_is_a_second_staff_member_with_customers_of_her_own(client, db):
    from notifications.models import StaffNotificationPreferences

    call_command("demo")
    call_command("demo")
    kim = User.objects.get(username="kim")
    assert kim.is_staff and kim.is_active and kim.check_password("porchlight-demo")
    owners = dict(Customer.objects.values_list("name", "assigned_to__username"))
    assert owners == {"Sarah Mitchell": "mike", "Daniel Ortiz": "kim", "Luis Ramirez": "kim"}
    assert StaffNotificationPreferences.objects.get(user=kim).email_enabled
    # Each assignment is told to staff once, as a note: loading again writes no second one.
    notes = Entry.objects.filter(kind=Entry.Kind.INTERNAL_NOTE, body__contains=" assigned ")
    assert notes.count() == 3
    client.force_login(kim)
    page = client.get("/staff/projects/?show=mine").content.decode()
    assert "Daniel Ortiz" in page and "Luis Ramirez" in page and "Sarah Mitchell" not in page
