"""Insights (/staff/insights/): the definitions on hand-built threads with known answers.

Times are written on the business's clock (New York) and the period ends at a fixed `NOW`,
so every figure below can be worked out by hand."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import actions
from messaging.models import Entry
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import provider_status
from portal import charts, insights
from portal.insights import Period, failure_reason
from tests.factories import CustomerFactory, StaffUserFactory

NY = zoneinfo.ZoneInfo("America/New_York")
# Thursday Nov 5, 2026, noon in New York. DST ended on Sunday Nov 1.
NOW = dt.datetime(2026, 11, 5, 12, 0, tzinfo=NY)

pytestmark = pytest.mark.django_db


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=NY)


def period(days: int = 30) -> Period:
    return Period.last(days=days, zone="America/New_York", now=NOW)


def asks(customer, when: dt.datetime, channel: str = Entry.Channel.PORTAL) -> Entry:
    return actions.post_customer_reply(
        customer=customer, body="A question", channel=channel, at=when, notify=False
    )


def answers(thread, author, when: dt.datetime, channel: str = Entry.Channel.PORTAL) -> Entry:
    return actions.post_staff_message(
        thread=thread, author=author, body="An answer", channel=channel, at=when, notify=False
    )


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 3)


# -- first response time -------------------------------------------------------------------------


def test_a_wait_starts_at_the_first_unanswered_message_and_only_a_staff_message_ends_it(
    business, customer, staff
):
    thread = actions.ensure_thread(customer=customer)
    asks(customer, at(11, 3, 10, 0))  # Tue: starts the wait
    asks(customer, at(11, 3, 10, 10))  # the same wait
    actions.post_automated_message(thread=thread, body="Auto", at=at(11, 3, 10, 20), notify=False)
    actions.add_internal_note(thread=thread, author=staff, body="Note", at=at(11, 3, 10, 30))
    answers(thread, staff, at(11, 3, 11, 0))  # 60 min after the first
    asks(customer, at(11, 3, 13, 0))
    answers(thread, staff, at(11, 3, 13, 30))  # 30 min
    asks(customer, at(11, 3, 14, 0))
    answers(thread, staff, at(11, 3, 14, 10))  # 10 min
    asks(customer, at(11, 4, 9, 0))  # not answered yet

    overall, per_staff = insights.response_times(period=period(), business=business)

    assert (overall.answered, overall.unanswered) == (3, 1)
    # Sorted 10, 30, 60: the median is 30; the 90th percentile is 30 + 0.8 × (60 − 30).
    assert minutes(overall.median) == 30
    assert minutes(overall.p90) == 54
    # All inside Tuesday's business hours: the same.
    assert minutes(overall.business_median) == 30
    assert minutes(overall.business_p90) == 54
    assert dict(overall.buckets) == {
        "Under 15 min": 1,
        "15 min – 1 h": 1,
        "1 – 4 h": 1,
        "4 – 24 h": 0,
        "1 – 3 days": 0,
        "Over 3 days": 0,
    }
    assert per_staff[staff.pk].answered == 3
    assert minutes(per_staff[staff.pk].median) == 30


def test_business_hours_skip_the_weekend_and_follow_the_clock_across_dst(business, customer, staff):
    thread = actions.ensure_thread(customer=customer)
    # Fri Oct 30, 4pm EDT, answered Mon Nov 2, 9am EST: Friday's last hour and Monday's first.
    asks(customer, at(10, 30, 16, 0))
    answers(thread, staff, at(11, 2, 9, 0))

    overall, _ = insights.response_times(period=period(), business=business)

    assert minutes(overall.business_median) == 120
    # The clocks went back an hour on Sunday: 66 hours passed, not 65.
    assert minutes(overall.median) == 66 * 60


def test_business_hours_are_cut_at_the_business_s_midnight_not_utc(business, customer, staff):
    thread = actions.ensure_thread(customer=customer)
    # Tue 11:30pm in New York is already Wednesday in UTC; answered Wed 8:15am: 15 minutes
    # of business hours (Wednesday's first), none on Tuesday.
    asks(customer, at(11, 3, 23, 30))
    answers(thread, staff, at(11, 4, 8, 15))
    # Tue 4:30pm, answered Wed 8:30am: 30 minutes on each day.
    other = CustomerFactory(business=business)
    other_thread = actions.ensure_thread(customer=other)
    asks(other, at(11, 3, 16, 30))
    answers(other_thread, staff, at(11, 4, 8, 30))

    overall, _ = insights.response_times(period=period(), business=business)

    assert overall.answered == 2
    assert minutes(overall.business_median) == (15 + 60) / 2
    assert minutes(overall.median) == (525 + 960) / 2


def test_business_hours_are_the_business_s_own(business, customer, staff):
    business.opens_at, business.closes_at, business.open_days = dt.time(9), dt.time(12), "6"
    business.save()
    thread = actions.ensure_thread(customer=customer)
    # Fri Oct 30 10am to Sat Oct 31 10am: only Saturday 9–10 is open.
    asks(customer, at(10, 30, 10))
    answers(thread, staff, at(10, 31, 10))

    overall, _ = insights.response_times(period=period(), business=business)

    assert minutes(overall.business_median) == 60


def test_a_wait_that_began_before_the_period_is_not_counted_in_it(business, customer, staff):
    thread = actions.ensure_thread(customer=customer)
    # The 7-day period starts Fri Oct 30 at midnight. Her first message is before it, so her
    # second (inside) is part of the same wait: no wait starts in the period.
    asks(customer, at(10, 29, 15))
    asks(customer, at(10, 30, 9))
    answers(thread, staff, at(10, 30, 10))
    # A wait that starts inside the period does count.
    asks(customer, at(11, 2, 10))
    answers(thread, staff, at(11, 2, 10, 20))

    overall, _ = insights.response_times(period=period(days=7), business=business)

    assert (overall.answered, overall.unanswered) == (1, 0)
    assert minutes(overall.median) == 20


def test_first_responses_count_for_who_gave_them(business, customer, other_customer, staff):
    kim = StaffUserFactory(username="kim", first_name="Kim")
    thread = actions.ensure_thread(customer=customer)
    other_thread = actions.ensure_thread(customer=other_customer)
    asks(customer, at(11, 2, 9))
    answers(thread, kim, at(11, 2, 9, 40))
    answers(thread, staff, at(11, 2, 9, 50))  # not a first response: nobody was waiting
    asks(other_customer, at(11, 2, 10))
    answers(other_thread, staff, at(11, 2, 12))

    overall, per_staff = insights.response_times(period=period(), business=business)

    assert (per_staff[kim.pk].answered, minutes(per_staff[kim.pk].median)) == (1, 40)
    assert (per_staff[staff.pk].answered, minutes(per_staff[staff.pk].median)) == (1, 120)
    rows = {
        row.name: row
        for row in insights.per_staff(period=period(), responses=per_staff, waiting=[])
    }
    assert (rows["Kim"].sent, rows["Kim"].answered) == (1, 1)
    assert (rows["Mike"].sent, rows["Mike"].answered) == (2, 1)


def test_nothing_to_measure_gives_no_figures_rather_than_zero(business):
    overall, per_staff = insights.response_times(period=period(), business=business)
    assert (overall.answered, overall.median, overall.business_p90) == (0, None, None)
    assert per_staff == {}
    assert all(n == 0 for _, n in overall.buckets)


# -- messages by channel and day --------------------------------------------------------------


def test_messages_are_counted_by_direction_channel_and_the_business_s_day(
    business, customer, staff
):
    thread = actions.ensure_thread(customer=customer)
    asks(customer, at(11, 3, 23, 30), channel=Entry.Channel.SMS)  # Tuesday, late
    asks(customer, at(11, 4, 8), channel=Entry.Channel.EMAIL)
    answers(thread, staff, at(11, 4, 8, 30), channel=Entry.Channel.SMS)
    actions.post_automated_message(thread=thread, body="Auto", at=at(11, 4, 9), notify=False)
    actions.add_internal_note(thread=thread, author=staff, body="Note", at=at(11, 4, 9))
    asks(customer, at(9, 1, 9))  # before the 30 days

    volume = insights.message_volume(period=period())

    tuesday, wednesday = dt.date(2026, 11, 3), dt.date(2026, 11, 4)
    assert volume.by_day[tuesday]["in"] == {"sms": 1}
    assert volume.by_day[wednesday]["in"] == {"email": 1}
    assert volume.by_day[wednesday]["staff"] == {"sms": 1}
    assert volume.by_day[wednesday]["automated"] == {"sms": 1}
    assert sum(volume.totals["in"].values()) == 2
    assert len(volume.by_day) == 30 and min(volume.by_day) == dt.date(2026, 10, 7)


# -- customers waiting now ----------------------------------------------------------------------


def test_customers_waiting_are_those_whose_message_has_no_staff_reply_oldest_first(
    business, customer, other_customer, staff
):
    thread = actions.ensure_thread(customer=customer)
    answers(thread, staff, timezone.now() - dt.timedelta(hours=9))
    first_wait = asks(customer, timezone.now() - dt.timedelta(hours=5))
    asks(customer, timezone.now() - dt.timedelta(hours=4))
    # An automated message after it answers nobody.
    actions.post_automated_message(thread=thread, body="Reminder", notify=False)
    # Daniel waited, but was answered.
    other_thread = actions.ensure_thread(customer=other_customer)
    asks(other_customer, timezone.now() - dt.timedelta(hours=6))
    answers(other_thread, staff, timezone.now() - dt.timedelta(hours=1))
    third = CustomerFactory(business=business, name="Luis Ramirez", assigned_to=staff)
    later = asks(third, timezone.now() - dt.timedelta(hours=2))

    waiting = insights.waiting_now()

    assert [(w.customer_name, w.since) for w in waiting] == [
        ("Sarah Mitchell", first_wait.created_at),
        ("Luis Ramirez", later.created_at),
    ]
    assert waiting[1].assigned_to_id == staff.pk


# -- delivery failures and opt-outs ----------------------------------------------------------------


def _sent(thread, staff, channel: str) -> Delivery:
    entry = answers(thread, staff, timezone.now())
    now = timezone.now()
    return Delivery.objects.create(
        entry=entry,
        channel=channel,
        # To the business: a failure then changes nothing else (no fallback to the customer).
        audience=Delivery.Audience.BUSINESS,
        recipient="+15555550100" if channel == "sms" else "office@example.com",
        status=Delivery.Status.SENT,
        provider_id=uuid.uuid4().hex,
        attempts=1,
        send_after=now,
        sent_at=now,
        created_at=now,
    )


def test_failures_are_grouped_by_channel_and_a_reason_without_per_message_detail(
    business, customer, staff
):
    thread = actions.ensure_thread(customer=customer)
    for _ in range(2):
        sms = _sent(thread, staff, "sms")
        provider_status.record_sms_status(
            message_sid=sms.provider_id, status="undelivered", error_code="30006"
        )
    sms = _sent(thread, staff, "sms")
    provider_status.record_sms_status(
        message_sid=sms.provider_id, status="failed", error_code="30003"
    )
    for address in ("a@example.com", "b@example.com"):
        email = _sent(thread, staff, "email")
        provider_status.record_email_event(
            message_id=email.provider_id, event_type="bounced", reason=f"550 no such user {address}"
        )
    _sent(thread, staff, "email")  # sent, not failed

    failures = insights.delivery_failures(period=Period.last(days=7, zone="America/New_York"))

    assert [(f.channel, f.reason, f.count) for f in failures] == [
        ("Email", "Email bounced", 2),
        ("SMS", "Twilio error 30006", 2),
        ("SMS", "Twilio error 30003", 1),
    ]


@pytest.mark.parametrize(
    ("last_error", "reason"),
    [
        ("Carrier reported undelivered (Twilio 30006)", "Twilio error 30006"),
        ("Twilio 21610: Attempt to send to unsubscribed recipient", "Twilio error 21610"),
        (
            "Twilio 21211: Invalid 'To' Phone Number (gave up after 5 attempts)",
            "Twilio error 21211",
        ),
        ("Email bounced: 550 5.1.1 user unknown", "Email bounced"),
        ("Email complained", "Email complained"),
        ("Email bounced", "Email bounced"),
        ("No worker finished sending it in 5 attempts", "Not sent by any worker"),
        ("Email server unreachable: [Errno 111] refused", "Email server unreachable"),
        ("", "No reason recorded"),
    ],
)
def test_a_failure_reason_keeps_the_code_or_event_and_drops_the_detail(last_error, reason):
    assert failure_reason(last_error) == reason


def test_opt_outs_count_stops_and_bounces_of_the_period(business, customer, other_customer):
    third = CustomerFactory(business=business)
    recent, old = NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=40)
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, sms_opted_out_at=recent
    )
    NotificationPreferences.objects.create(
        customer=other_customer,
        time_zone=other_customer.time_zone,
        sms_opted_out_at=old,
        email_bounced_at=recent,
        email_enabled=False,
    )
    NotificationPreferences.objects.create(customer=third, time_zone=third.time_zone)

    counts = insights.opt_outs(period=period())

    assert (counts.sms_stopped, counts.email_bounced, counts.email_turned_off) == (1, 1, 1)


# -- the page ----------------------------------------------------------------------------------


def test_staff_see_insights_with_charts_and_their_tables(
    staff_client, business, customer, staff, django_assert_max_num_queries
):
    thread = actions.ensure_thread(customer=customer)
    asks(customer, timezone.now() - dt.timedelta(hours=3))
    answers(thread, staff, timezone.now() - dt.timedelta(hours=2))
    actions.add_internal_note(thread=thread, author=staff, body="Gate code 4512")
    asks(customer, timezone.now() - dt.timedelta(minutes=30))

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get("/staff/insights/?days=7")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('role="img"') == 2
    assert '<title id="response-chart-title">First response times, last 7 days</title>' in page
    assert (
        "<caption>Answered customer messages by first response time (all hours)</caption>" in page
    )
    assert "<caption>Messages per day, last 7 days</caption>" in page
    assert f'href="/staff/chat/{thread.pk}/"' in page
    assert 'aria-current="true">Last 7 days' in page
    assert "Gate code" not in page
    # The same few queries however many entries, threads or staff: no N+1.
    assert len(queries) <= 14, [q["sql"][:120] for q in queries]


def test_the_staff_navigation_links_to_insights(staff_client, business):
    assert 'href="/staff/insights/"' in staff_client.get("/staff/projects/").content.decode()


def test_without_days_the_period_is_30_days(staff_client, business):
    page = staff_client.get("/staff/insights/").content.decode()
    assert 'aria-current="true">Last 30 days' in page


@pytest.mark.parametrize("days", ["12", "abc", "-7", "7.5", "9" * 30])
def test_a_period_other_than_7_30_or_90_days_is_refused_with_a_reason(staff_client, business, days):
    response = staff_client.get("/staff/insights/", {"days": days})
    assert response.status_code == 400
    assert b"days must be one of 7, 30, 90" in response.content


def test_customers_cannot_reach_insights(customer_client):
    assert customer_client.get("/staff/insights/").status_code == 404


def test_anonymous_visitors_are_sent_to_the_staff_login(client, db):
    response = client.get("/staff/insights/")
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/login/")


@pytest.mark.parametrize(
    ("opens", "closes", "days"),
    [
        (dt.time(17), dt.time(8), "12345"),
        (dt.time(8), dt.time(17), "18"),
        (dt.time(8), dt.time(17), ""),
    ],
)
def test_business_hours_that_make_no_sense_are_a_form_error(business, opens, closes, days):
    business.opens_at, business.closes_at, business.open_days = opens, closes, days
    with pytest.raises(ValidationError):
        business.full_clean()


def test_the_page_works_before_there_is_a_business(staff_client):
    assert staff_client.get("/staff/insights/").status_code == 200


# -- charts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("peak", "axis"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (250, 500)])
def test_the_axis_ends_at_1_2_or_5_times_a_power_of_ten(peak, axis):
    assert charts.nice_ceiling(peak) == axis


def test_stacked_columns_are_as_tall_as_their_share_of_the_axis():
    chart = charts.stacked_columns(
        title="T",
        description="D",
        columns=[("Mon", [2, 1, 0]), ("Tue", [0, 0, 0]), ("Wed", [5, 3, 2])],
        series=[("bar-in", "In"), ("bar-staff", "Staff"), ("bar-auto", "Auto")],
    )
    # The axis ends at 10; the plot is 212 units tall: each message is 21.2.
    assert [(r.css, r.height) for r in chart.rects] == [
        ("bar-in", 42.4),
        ("bar-staff", 21.2),
        ("bar-in", 106.0),
        ("bar-staff", 63.6),
        ("bar-auto", 42.4),
    ]
    assert [label.text for label in chart.labels][:3] == ["0", "5", "10"]
