"""Which deliveries an entry makes, written in its append transaction."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from messaging import actions
from messaging.models import Side
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import preferences
from portal.models import Business, Customer
from tests.factories import CustomerFactory

UTC = dt.UTC
# 10:00am in New York, where every test customer lives: outside the default quiet hours.
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=UTC)
# 11:00pm in New York: inside them.
NIGHT = dt.datetime(2025, 5, 16, 3, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db

S = Delivery.Status


@pytest.fixture
def daytime():
    with time_machine.travel(DAYTIME, tick=False):
        yield DAYTIME


def rows(entry) -> dict[str, Delivery]:
    return {d.channel: d for d in Delivery.objects.filter(entry=entry)}


def subscribe(customer, fake_push):
    info = fake_push.new_subscription()
    return preferences.subscribe_push(
        customer=customer,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )


def test_a_staff_message_makes_one_delivery_per_channel_the_customer_can_be_reached_on(
    daytime, thread, staff, customer, fake_push
):
    subscribe(customer, fake_push)
    entry = actions.post_staff_message(thread=thread, author=staff, body="Deck is done!")
    made = rows(entry)
    assert set(made) == {"sms", "email", "push"}
    assert made["sms"].recipient == "+15555550123"
    assert made["email"].recipient == "sarah@example.com"
    assert made["push"].recipient == "1 device"
    assert {d.audience for d in made.values()} == {"customer"}


def test_sms_and_push_go_now_and_email_waits_for_the_delay(
    daytime, thread, staff, customer, fake_push
):
    subscribe(customer, fake_push)
    made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))
    assert (made["sms"].status, made["sms"].send_after) == (S.QUEUED, daytime)
    assert (made["push"].status, made["push"].send_after) == (S.QUEUED, daytime)
    assert made["email"].status == S.QUEUED
    assert made["email"].send_after == daytime + dt.timedelta(minutes=2)
    assert made["email"].hold_reason == "email_delay"


def test_the_email_delay_is_a_setting(daytime, thread, staff, settings):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 600
    made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))
    assert made["email"].send_after == daytime + dt.timedelta(minutes=10)


def test_automated_messages_and_event_cards_notify_too(daytime, thread):
    automated = actions.post_automated_message(thread=thread, body="Crew is on the way")
    card = actions.post_event_card(
        thread=thread, card_kind="invoice", title="Invoice #2041 sent", link_url="/invoices/"
    )
    assert set(rows(automated)) == {"sms", "email"}
    assert set(rows(card)) == {"sms", "email"}


def test_internal_notes_calls_and_reads_make_no_delivery(daytime, thread, staff, customer):
    actions.add_internal_note(thread=thread, author=staff, body="Gate code 4512")
    actions.log_call(
        thread=thread, started_at=daytime, duration_seconds=60, transcript="stain", author=staff
    )
    actions.post_staff_message(thread=thread, author=staff, body="Hi")
    before = Delivery.objects.count()
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    assert Delivery.objects.count() == before == 2  # the staff message's SMS and email only
    assert not Delivery.objects.filter(entry__kind__in=["internal_note", "call"]).exists()


def test_notify_false_records_history_without_notifying_anyone(daytime, thread, staff, customer):
    actions.post_staff_message(thread=thread, author=staff, body="old", notify=False)
    actions.post_automated_message(thread=thread, body="old", notify=False)
    actions.post_customer_reply(customer=customer, body="old", notify=False)
    actions.post_event_card(
        thread=thread, card_kind="invoice", title="old", link_url="/invoices/", notify=False
    )
    assert not Delivery.objects.exists()


def test_loading_the_demo_notifies_nobody(daytime):
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Delivery.objects.exists()


def test_a_replayed_message_makes_no_second_delivery(daytime, thread, staff):
    first = actions.post_staff_message(thread=thread, author=staff, body="Hi", idempotency_key="k")
    again = actions.post_staff_message(thread=thread, author=staff, body="Hi", idempotency_key="k")
    assert again.pk == first.pk
    assert Delivery.objects.count() == 2


def test_a_rolled_back_message_makes_no_delivery_and_queues_nothing(
    daytime, thread, staff, customer, providers, django_capture_on_commit_callbacks
):
    twilio, postmark, push = providers
    subscribe(customer, push)

    class Boom(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        actions.post_staff_message(thread=thread, author=staff, body="never sent")
        assert Delivery.objects.count() == 3  # written inside the transaction...
        raise Boom

    assert not Delivery.objects.exists()  # ...and gone with it
    assert callbacks == []  # no broadcast, no task
    assert (twilio.requests, postmark.requests, push.requests) == ([], [], [])


def test_a_committed_message_queues_its_tasks_on_commit(
    daytime, thread, staff, customer, providers, django_capture_on_commit_callbacks
):
    twilio, postmark, push = providers
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        actions.post_staff_message(thread=thread, author=staff, body="Hi")
        # Nothing went out inside the transaction.
        assert twilio.requests == []
    assert len(callbacks) == 2  # the live broadcast and the delivery tasks
    for callback in callbacks:
        callback()
    assert [m.body for m in twilio.messages] == ["Hi"]


def test_channels_the_customer_turned_off_make_no_delivery(daytime, thread, staff, customer):
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, sms_enabled=False
    )
    assert set(rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))) == {
        "email"
    }


def test_push_needs_keys_on_the_server_and_a_subscribed_device(
    daytime, thread, staff, customer, fake_push, settings
):
    assert "push" not in rows(actions.post_staff_message(thread=thread, author=staff, body="1"))
    subscribe(customer, fake_push)
    assert "push" in rows(actions.post_staff_message(thread=thread, author=staff, body="2"))
    settings.VAPID_PRIVATE_KEY = ""
    assert "push" not in rows(actions.post_staff_message(thread=thread, author=staff, body="3"))


def test_a_customer_without_phone_or_email_gets_what_they_have(daytime, staff, business):
    emailless = CustomerFactory(business=business, email="", phone="+15555550177")
    thread = actions.ensure_thread(customer=emailless)
    assert set(rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))) == {"sms"}


def test_an_opted_out_number_gets_no_sms_and_its_notifications_go_by_email(
    daytime, thread, staff, customer
):
    # She chose texts only, then replied STOP.
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, email_enabled=False
    )
    preferences.set_sms_opt_out(customer=customer, opted_out=True)
    made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))
    assert set(made) == {"email"}
    preferences.set_sms_opt_out(customer=customer, opted_out=False)  # START
    made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi again"))
    assert set(made) == {"sms"}


def test_quiet_hours_hold_every_channel_until_morning(thread, staff, customer, fake_push):
    subscribe(customer, fake_push)
    with time_machine.travel(NIGHT, tick=False):
        made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))
    eight_am = dt.datetime(2025, 5, 16, 12, 0, tzinfo=UTC)
    for delivery in made.values():
        assert (delivery.status, delivery.send_after) == (S.HELD, eight_am)
        assert delivery.hold_reason == "quiet_hours"
        assert delivery.task_eta is None  # no task waits for hours in the broker


def test_urgent_messages_go_now_even_in_quiet_hours(thread, staff, customer):
    with time_machine.travel(NIGHT, tick=False):
        made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi", urgent=True))
    assert (made["sms"].status, made["sms"].send_after) == (S.QUEUED, NIGHT)
    # Email keeps its short delay: a chance to read it in the portal first.
    assert made["email"].send_after == NIGHT + dt.timedelta(minutes=2)


def test_quiet_hours_can_be_turned_off(thread, staff, customer):
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    with time_machine.travel(NIGHT, tick=False):
        made = rows(actions.post_staff_message(thread=thread, author=staff, body="Hi"))
    assert made["sms"].status == S.QUEUED


# -- a customer's reply, to the business -------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "email", "business_sms", "expected"),
    [
        ("+15555550123", "", "+15555550100", ("sms", "+15555550100")),  # phone on file
        ("", "sarah@example.com", "+15555550100", ("email", "office@mikes.example")),  # email only
        ("+15555550123", "sarah@example.com", "+15555550100", ("sms", "+15555550100")),  # both
        ("+15555550123", "sarah@example.com", "", ("email", "office@mikes.example")),  # no SMS
    ],
)
def test_a_customer_reply_reaches_the_business_by_the_routing_rule(
    daytime, phone, email, business_sms, expected
):
    business = Business.objects.create(
        name="Mike's Contracting",
        initials="MC",
        email="office@mikes.example",
        sms_number=business_sms,
    )
    customer = CustomerFactory(business=business, phone=phone, email=email)
    entry = actions.post_customer_reply(customer=customer, body="What time works?")
    (delivery,) = Delivery.objects.filter(entry=entry)
    assert (delivery.channel, delivery.recipient) == expected
    assert delivery.audience == "business"
    assert delivery.status == S.QUEUED
    assert delivery.send_after == daytime  # no delay, no quiet hours for the business


def test_quiet_hours_are_the_customers_not_the_business(customer):
    with time_machine.travel(NIGHT, tick=False):
        entry = actions.post_customer_reply(customer=customer, body="Late question")
    assert Delivery.objects.get(entry=entry).status == S.QUEUED


def test_planning_costs_a_fixed_number_of_queries(
    daytime, thread, staff, customer, fake_push, django_assert_num_queries
):
    subscribe(customer, fake_push)
    for i in range(3):  # many earlier entries and deliveries change nothing
        actions.post_staff_message(thread=thread, author=staff, body=f"{i}")
    # savepoint, lock thread taking the next number and bumping its counters (one UPDATE …
    # RETURNING), insert entry; preferences, count devices, insert deliveries; release
    # savepoint
    with django_assert_num_queries(7):
        actions.post_staff_message(thread=thread, author=staff, body="Hi")


def test_a_staff_reply_from_the_chat_notifies_the_customer(daytime, staff_client, thread):
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/", {"body": "On our way", "key": "abc123"}
    )
    assert response.status_code == 302
    assert set(Delivery.objects.values_list("channel", flat=True)) == {"sms", "email"}


def test_a_portal_reply_notifies_the_business(daytime, customer_client, customer):
    customer_client.post("/messages/send/", {"body": "Thanks!", "key": "abc123"})
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.audience) == ("sms", "business")
    assert Customer.objects.count() == 1
