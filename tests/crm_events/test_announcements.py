"""Announcements (issue 23): one message to many customers, each in their own thread, through
the ordinary delivery planning (channels, quiet hours, opt-outs), paced and idempotent."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import pytest
import time_machine
from django.test import Client

from crm_events import actions as crm_actions
from crm_events.announcements import actions, audience
from crm_events.announcements.models import Announcement, AnnouncementRecipient
from crm_events.models import Appointment
from messaging.models import Entry, Thread
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox
from portal.models import CustomerTag, Project
from tests.factories import CustomerFactory, ProjectFactory

pytestmark = pytest.mark.django_db
NY = zoneinfo.ZoneInfo("America/New_York")
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
# 10am in New York, 11pm in Tokyo: Luis (who lives by Tokyo's clock) is in his quiet hours.
NOW = dt.datetime(2031, 5, 15, 10, 0, tzinfo=NY)
TODAY = NOW.date()
RAIN = "Rain today — we'll call to rebook"
S = Delivery.Status


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def visit(customer, *, day=TODAY, hour=9, project=None) -> Appointment:
    start = dt.datetime.combine(day, dt.time(hour), tzinfo=NY)
    return crm_actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Gutter cleaning",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=1),
        notify=False,
    ).record


@pytest.fixture
def luis(business):
    luis = CustomerFactory(
        business=business,
        name="Luis Ramirez",
        email="",
        phone="+15555550177",
        time_zone="Asia/Tokyo",
    )
    NotificationPreferences.objects.create(customer=luis, time_zone="Asia/Tokyo")
    return luis


@pytest.fixture
def visits_today(customer, other_customer, luis, business):
    """Sarah, Daniel and Luis have a visit today; Ana's is tomorrow, Ben's was cancelled."""
    visit(customer, hour=8, project=ProjectFactory(customer=customer, title="Deck Replacement"))
    visit(other_customer, hour=13)
    visit(luis, hour=15)
    ana = CustomerFactory(business=business, name="Ana Lopez")
    visit(ana, day=TODAY + dt.timedelta(days=1))
    ben = CustomerFactory(business=business, name="Ben Cole")
    crm_actions.transition_appointment(
        appointment=visit(ben), to=Appointment.Status.CANCELLED, notify=False
    )
    return [customer, other_customer, luis], [ana, ben]


def automated(customer) -> list[Entry]:
    return list(
        Entry.objects.filter(thread__customer=customer, kind=Entry.Kind.AUTOMATED).order_by("seq")
    )


def form(**overrides) -> dict:
    data = {
        "body": RAIN,
        "audience": "visit_on",
        "visit_date": TODAY.isoformat(),
        "form_token": str(uuid.uuid4()),
        "action": "send",
    }
    data.update(overrides)
    return data


def nothing_written() -> bool:
    return not Announcement.objects.exists() and not AnnouncementRecipient.objects.exists()


# -- the Done-when ---------------------------------------------------------------------------


def test_rain_today_reaches_each_customer_with_a_visit_today_once_in_their_own_thread(
    staff_client, visits_today, fake_twilio, committed, clock
):
    with_visits, without = visits_today
    preview = staff_client.post("/staff/announcements/new/", form(action="preview"))
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "3 recipients" in html and "Daniel Ortiz, Luis Ramirez, Sarah Mitchell" in html
    assert "1 segment (UCS-2" in html  # the em dash is not GSM-7
    assert nothing_written()

    with committed():
        response = staff_client.post("/staff/announcements/new/", form())
    announcement = Announcement.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/announcements/{announcement.pk}/"
    assert announcement.status == Announcement.Status.DONE
    for customer in with_visits:
        (entry,) = automated(customer)
        assert entry.body == RAIN
        assert entry.thread == Thread.objects.get(customer=customer)  # their own thread
    for customer in without:
        assert automated(customer) == []
    # Sarah and Daniel are texted now; Luis is in his quiet hours (11pm in Tokyo).
    assert sorted(m.to for m in fake_twilio.messages) == ["+15555550123", "+15555550188"]
    held = Delivery.objects.get(entry__thread__customer=with_visits[2], channel="sms")
    assert held.status == S.HELD

    # 8am in Tokyo: the periodic sweep releases his text, once.
    clock.move_to(dt.datetime(2031, 5, 16, 8, 1, tzinfo=TOKYO))
    with committed():
        outbox.sweep_deliveries()
    assert [m.to for m in fake_twilio.messages].count("+15555550177") == 1
    assert fake_twilio.messages[-1].body == RAIN
    with committed():
        outbox.sweep_deliveries()
    assert len(fake_twilio.messages) == 3


def test_variables_are_filled_for_each_recipient(staff_client, visits_today, committed):
    sarah = visits_today[0][0]
    with committed():
        staff_client.post(
            "/staff/announcements/new/",
            form(body="Hi {first_name}, rain: your {project} visit at {visit_time} moves."),
        )
    (entry,) = automated(sarah)
    assert entry.body == "Hi Sarah, rain: your Deck Replacement visit at 8–9am moves."
    assert entry.project.title == "Deck Replacement"


def test_a_double_submit_sends_once(staff_client, visits_today, committed):
    data = form()
    with committed():
        first = staff_client.post("/staff/announcements/new/", data)
        second = staff_client.post("/staff/announcements/new/", data)
    assert first["Location"] == second["Location"]
    assert Announcement.objects.count() == 1
    for customer in visits_today[0]:
        assert len(automated(customer)) == 1


def _start(business, staff, **choice) -> Announcement:
    announcement, _ = actions.start_announcement(
        business=business,
        author=staff,
        body=RAIN,
        choice=audience.Choice(**({"audience": "visit_on", "visit_date": TODAY} | choice)),
        form_token=uuid.uuid4(),
    )
    return announcement


def test_a_batch_run_twice_or_redriven_after_a_lost_worker_sends_no_one_twice(
    business, staff, visits_today, settings, committed, clock
):
    settings.ANNOUNCEMENT_BATCH_SIZE = 2
    with committed():
        announcement = _start(business, staff)  # the first batch runs on commit
    assert AnnouncementRecipient.objects.filter(entry__isnull=False).count() == 2
    # The same task again at once: the batch is not due (the pacing), nothing happens.
    assert actions.send_batch(announcement_id=announcement.pk) == 0
    # A worker that died holding the next batch: after the lease the sweeper re-queues it,
    # and a second copy of the task runs too.
    clock.shift(actions.BATCH_LEASE + actions.BATCH_GRACE + dt.timedelta(seconds=1))
    with committed():
        assert actions.sweep_announcements() == 1
    assert actions.send_batch(announcement_id=announcement.pk) == 0
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.DONE
    for customer in visits_today[0]:
        assert len(automated(customer)) == 1


def test_an_append_already_made_under_the_key_is_not_made_again(
    business, staff, visits_today, settings, committed, clock
):
    # A worker that appended and died before its transaction ended leaves nothing (the
    # recipient's entry is set in the append's own transaction); one that finds the key
    # already used gets the same entry back.
    sarah = visits_today[0][0]
    with committed():
        announcement = _start(business, staff)
    recipient = AnnouncementRecipient.objects.get(announcement=announcement, customer=sarah)
    again = crm_actions.post_automated(
        customer=sarah, body=RAIN, idempotency_key=actions.key_for(announcement.pk, sarah.pk)
    )
    assert again.pk == recipient.entry_id
    assert len(automated(sarah)) == 1


def test_batches_are_paced_by_the_sms_rate(business, staff, visits_today, settings, committed):
    settings.ANNOUNCEMENT_BATCH_SIZE = 2
    settings.ANNOUNCEMENT_SEND_RATES = {"sms": 0.5, "email": 0, "push": 0}
    with committed():
        announcement = _start(business, staff)
    announcement.refresh_from_db()
    # Daniel and Luis: one SMS goes now (Luis's is held), at 0.5 per second: 2 seconds.
    assert announcement.next_batch_at == NOW + dt.timedelta(seconds=2)
    assert announcement.status == Announcement.Status.SENDING


def test_cancel_mid_run_stops_the_rest_and_cancels_held_notifications(
    business, staff, staff_client, visits_today, settings, fake_twilio, committed, clock
):
    sarah, daniel, luis = visits_today[0]
    settings.ANNOUNCEMENT_BATCH_SIZE = 1
    with committed():
        announcement = _start(business, staff)  # Daniel
    clock.shift(dt.timedelta(seconds=5))
    # Luis, held; the next batch (nothing to wait for) is queued on commit, not run yet.
    assert actions.send_batch(announcement_id=announcement.pk) == 1
    response = staff_client.post(f"/staff/announcements/{announcement.pk}/cancel/")
    assert response.status_code == 302
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.CANCELLED
    held = Delivery.objects.get(entry__thread__customer=luis, channel="sms")
    assert held.status == S.SUPPRESSED
    # Daniel's text had gone already; it stays sent.
    assert Delivery.objects.get(entry__thread__customer=daniel, channel="sms").status == S.SENT
    clock.shift(dt.timedelta(seconds=5))
    with committed():
        assert actions.send_batch(announcement_id=announcement.pk) == 0
    assert automated(sarah) == []
    clock.move_to(dt.datetime(2031, 5, 16, 8, 1, tzinfo=TOKYO))
    with committed():
        outbox.sweep_deliveries()
    assert [m.to for m in fake_twilio.messages] == ["+15555550188"]
    # A second cancel: a clear answer, nothing changes.
    again = staff_client.post(f"/staff/announcements/{announcement.pk}/cancel/", follow=True)
    assert "already finished" in again.content.decode()


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"visit_date": "2031-06-01"}, "No customer matches"),
        ({"body": "Hi {frist_name}"}, "Unknown variable {frist_name}"),
        ({"body": "At {visit_time}", "audience": "all"}, "needs the recipients chosen by a visit"),
        ({"body": "a" * 1531}, "11 SMS segments (GSM-7); at most 10"),
        ({"body": "é" + "ú" * 671}, "11 SMS segments (UCS-2)"),
        ({"body": "   "}, "This field is required"),
        ({"visit_date": ""}, "Choose the date of the visits"),
        ({"audience": "tag"}, "Choose a tag"),
        ({"audience": "nobody"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_writes_nothing(
    staff_client, visits_today, committed, overrides, says
):
    for action in ("preview", "send"):
        with committed():
            response = staff_client.post(
                "/staff/announcements/new/", form(action=action, **overrides)
            )
        assert response.status_code == 400
        assert says in response.content.decode()
    assert nothing_written()
    assert all(automated(c) == [] for c in visits_today[0])


def test_a_long_message_may_go_to_customers_without_a_phone(staff_client, business, committed):
    CustomerFactory(business=business, name="Mail Only", phone="")
    with committed():
        response = staff_client.post(
            "/staff/announcements/new/", form(audience="all", body="a" * 3000)
        )
    assert response.status_code == 302


# -- the other audiences ---------------------------------------------------------------------


def test_recipients_by_project_status_and_by_tag(business, customer, other_customer, luis):
    ProjectFactory(customer=customer, status=Project.Status.ON_HOLD, title="Porch")
    ProjectFactory(customer=other_customer, status=Project.Status.ACTIVE)
    tag = CustomerTag.objects.create(name="Lakeside")
    luis.tags.add(tag)
    by_status = audience.recipients(
        business=business,
        choice=audience.Choice(audience="project_status", project_status="on_hold"),
    )
    assert [(r.customer, r.project.title) for r in by_status] == [(customer, "Porch")]
    by_tag = audience.recipients(business=business, choice=audience.Choice(audience="tag", tag=tag))
    assert [r.customer for r in by_tag] == [luis]
    everyone = audience.recipients(business=business, choice=audience.Choice(audience="all"))
    assert [r.customer for r in everyone] == [other_customer, luis, customer]


def test_a_visit_counts_on_the_businesss_calendar_day(business, customer):
    # 11:30pm in New York is the 15th there, the 16th in UTC.
    late = dt.datetime.combine(TODAY, dt.time(23, 30), tzinfo=NY)
    crm_actions.schedule_appointment(
        customer=customer, title="Late", starts_at=late, ends_at=late + dt.timedelta(minutes=20)
    )
    chosen = audience.recipients(
        business=business, choice=audience.Choice(audience="visit_on", visit_date=TODAY)
    )
    assert [r.customer for r in chosen] == [customer]


# -- pages -----------------------------------------------------------------------------------


def test_the_pages_are_staff_only(customer_client, visits_today):
    for url in ("/staff/announcements/", "/staff/announcements/new/"):
        assert Client().get(url).status_code == 302  # to the staff login
        assert customer_client.get(url).status_code == 404


def test_the_progress_page_counts_the_deliveries(
    staff_client, visits_today, fake_twilio, committed
):
    with committed():
        staff_client.post("/staff/announcements/new/", form())
    announcement = Announcement.objects.get()
    page = staff_client.get(f"/staff/announcements/{announcement.pk}/").content.decode()
    assert 'id="announcement-status">Done' in page
    assert 'id="figure-appended">3<' in page
    # Sarah and Daniel: sent by SMS; Luis: held; the emails wait out their short delay.
    assert 'id="figure-sent">2<' in page and 'id="figure-held">1<' in page
    assert 'id="figure-pending">2<' in page
    assert 'hx-trigger="every 3s"' not in page  # done: no more polling
    assert staff_client.get("/staff/announcements/999999/").status_code == 404


def test_the_list_reads_its_figures_in_a_fixed_number_of_queries(
    staff_client, business, staff, visits_today, committed, django_assert_max_num_queries
):
    with committed():
        _start(business, staff)
    staff_client.get("/staff/announcements/")  # warm the per-process caches
    with django_assert_max_num_queries(12) as one:
        staff_client.get("/staff/announcements/")
    with committed():
        _start(business, staff, audience="all")
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = staff_client.get("/staff/announcements/").content.decode()
    assert page.count("3 of 3") == 1 and "5 of 5" in page


def test_while_it_runs_the_page_polls_its_figures_and_offers_cancel(
    staff_client, business, staff, visits_today, settings, committed
):
    settings.ANNOUNCEMENT_BATCH_SIZE = 1
    with committed():
        announcement = _start(business, staff)
    url = f"/staff/announcements/{announcement.pk}/"
    page = staff_client.get(url).content.decode()
    assert 'id="announcement-status">Sending' in page
    assert 'hx-trigger="every 3s"' in page and "Cancel the rest" in page
    panel = staff_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert panel.lstrip().startswith('<div id="announcement-progress"')
    assert 'id="figure-appended">1<' in panel and "Cancel the rest" not in panel


def test_a_recipient_the_append_refuses_is_recorded_and_the_run_goes_on(
    business, staff, staff_client, visits_today, committed
):
    sarah, daniel, luis = visits_today[0]
    announcement = _start(business, staff)  # not committed: the first batch has not run
    # Since Send, Sarah's deck project was moved to Daniel in the admin.
    Project.objects.filter(customer=sarah).update(customer=daniel)
    with committed():
        actions.send_batch(announcement_id=announcement.pk)
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.DONE
    assert automated(sarah) == []
    assert len(automated(daniel)) == len(automated(luis)) == 1
    skipped = AnnouncementRecipient.objects.get(customer=sarah)
    assert "another customer" in skipped.skipped and skipped.entry is None
    page = staff_client.get(f"/staff/announcements/{announcement.pk}/").content.decode()
    assert 'id="figure-skipped">1<' in page


def test_an_opted_out_customer_gets_no_text_but_an_email(
    staff_client, visits_today, fake_twilio, committed
):
    daniel = visits_today[0][1]
    NotificationPreferences.objects.create(
        customer=daniel, time_zone=daniel.time_zone, sms_opted_out_at=NOW
    )
    with committed():
        staff_client.post("/staff/announcements/new/", form())
    (entry,) = automated(daniel)
    assert [d.channel for d in entry.deliveries.all()] == ["email"]
    assert "+15555550188" not in [m.to for m in fake_twilio.messages]
