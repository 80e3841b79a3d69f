"""Web Push through pywebpush to the fake push service, which checks the VAPID signature and
decrypts the payload with the subscription's own keys; and the endpoints the page uses."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import time_machine
from django.core.management import call_command

from messaging import actions
from notifications.models import Delivery, NotificationPreferences, PushSubscription
from notifications.outbound import outbox, preferences
from tests.fakes.base import Reply
from tests.fakes.push import FakePushService
from tests.notification_links import lands_on

UTC = dt.UTC
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture(autouse=True)
def daytime():
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


def subscribe(customer, fake_push) -> PushSubscription:
    info = fake_push.new_subscription()
    return preferences.subscribe_push(
        customer=customer,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )


def push_of(entry) -> Delivery:
    return Delivery.objects.get(entry=entry, channel="push")


def test_the_push_decrypts_to_a_short_preview_that_opens_the_thread(
    fake_push, customer, thread, staff, committed
):
    subscribe(customer, fake_push)
    with committed():
        entry = actions.post_staff_message(
            thread=thread, author=staff, body="Hi Sarah, how did the deck come out?"
        )
    assert fake_push.rejections == []
    (push,) = fake_push.pushes
    assert push.payload == {
        "title": "Mike's Contracting",
        "body": "Hi Sarah, how did the deck come out?",
        "url": push.payload["url"],
        "tag": f"thread-{thread.pk}",
    }
    # A path of the site that signs her in once and opens the entry.
    assert lands_on(push.payload["url"]) == (customer.pk, entry.pk, entry.seq, "push")
    assert push.ttl == "86400"
    assert push.urgency == "normal"
    assert push.vapid_subject == "mailto:portal@porchlight.localhost"
    delivery = push_of(entry)
    assert delivery.status == S.SENT
    assert delivery.provider_id.startswith(f"{fake_push.url}/message/")


def test_an_urgent_message_is_pushed_with_high_urgency(
    fake_push, customer, thread, staff, committed
):
    subscribe(customer, fake_push)
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="Crew is here", urgent=True)
    assert fake_push.pushes[0].urgency == "high"


def test_a_long_message_is_pushed_as_a_preview(fake_push, customer, thread, staff, committed):
    subscribe(customer, fake_push)
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="The stain " * 400)
    body = fake_push.pushes[0].payload["body"]
    assert len(body) <= 140 and body.endswith("…")


def test_every_subscribed_device_gets_it(fake_push, customer, thread, staff, committed):
    subscribe(customer, fake_push)
    subscribe(customer, fake_push)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert len(fake_push.pushes) == 2
    assert push_of(entry).recipient == "2 devices"


@pytest.mark.parametrize("gone", [404, 410])
def test_an_expired_subscription_is_deleted_and_recorded_as_a_permanent_failure(
    fake_push, customer, thread, staff, committed, gone
):
    subscription = subscribe(customer, fake_push)
    fake_push.expire(subscription.endpoint, status=gone)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = push_of(entry)
    assert delivery.status == S.FAILED
    assert delivery.last_error == f"Subscription expired ({gone}); device removed"
    assert not PushSubscription.objects.exists()
    # The next message makes no push delivery at all.
    with committed():
        later = actions.post_staff_message(thread=thread, author=staff, body="Again")
    assert not Delivery.objects.filter(entry=later, channel="push").exists()


def test_one_expired_device_does_not_stop_the_others(fake_push, customer, thread, staff, committed):
    gone = subscribe(customer, fake_push)
    subscribe(customer, fake_push)
    fake_push.expire(gone.endpoint)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = push_of(entry)
    assert delivery.status == S.SENT
    assert "device removed" in delivery.last_error
    assert PushSubscription.objects.count() == 1


def test_a_payload_the_push_service_refuses_as_too_large_is_permanent(
    fake_push, customer, thread, staff, committed
):
    subscribe(customer, fake_push)
    fake_push.script(Reply(413, "payload too large"))
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert push_of(entry).status == S.FAILED
    assert "413" in push_of(entry).last_error
    assert PushSubscription.objects.count() == 1  # the device is fine


@pytest.mark.parametrize("status", [429, 503])
def test_push_service_trouble_is_retried(fake_push, customer, thread, staff, committed, status):
    subscribe(customer, fake_push)
    fake_push.fail_next(status)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert push_of(entry).status == S.QUEUED
    assert f"answered {status}" in push_of(entry).last_error


def test_push_turned_off_after_the_message_was_written_is_not_sent(
    fake_push, customer, thread, staff, committed, daytime
):
    subscribe(customer, fake_push)
    with time_machine.travel(DAYTIME.replace(hour=3), tick=False):  # 11pm: held
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, push_enabled=False
    )
    with committed():
        outbox.sweep_deliveries()
    assert push_of(entry).status == S.SUPPRESSED
    assert fake_push.requests == []


def test_the_vapid_keys_command_prints_a_pair_that_signs_verifiable_pushes(
    settings, customer, thread, staff, committed
):
    out = io.StringIO()
    call_command("vapid_keys", stdout=out, stderr=io.StringIO())
    keys = dict(line.split("=", 1) for line in out.getvalue().split())
    with FakePushService(vapid_public_key=keys["VAPID_PUBLIC_KEY"]) as fake:
        settings.VAPID_PUBLIC_KEY = keys["VAPID_PUBLIC_KEY"]
        settings.VAPID_PRIVATE_KEY = keys["VAPID_PRIVATE_KEY"]
        settings.WEB_PUSH_ENDPOINT_HOSTS = ["127.0.0.1"]
        subscribe(customer, fake)
        with committed():
            actions.post_staff_message(thread=thread, author=staff, body="Signed")
        assert fake.rejections == []
        assert fake.pushes[0].payload["body"] == "Signed"


def test_a_push_signed_with_another_key_is_refused_by_the_push_service(
    settings, fake_push, customer, thread, staff, committed
):
    out = io.StringIO()
    call_command("vapid_keys", stdout=out, stderr=io.StringIO())
    keys = dict(line.split("=", 1) for line in out.getvalue().split())
    settings.VAPID_PRIVATE_KEY = keys["VAPID_PRIVATE_KEY"]  # not the subscription's server key
    subscribe(customer, fake_push)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert fake_push.pushes == []
    assert "not the application server key" in fake_push.rejections[0]
    assert push_of(entry).status == S.FAILED  # a 403: resending would fail the same way


# -- the page's endpoints ----------------------------------------------------------------------


def post_json(client, url, data):
    return client.post(url, data=json.dumps(data), content_type="application/json")


def test_the_page_subscribes_this_device(customer_client, customer, fake_push):
    info = fake_push.new_subscription()
    response = post_json(customer_client, "/settings/notifications/push/subscribe/", info)
    assert response.status_code == 201
    assert response.json() == {"devices": 1}
    subscription = PushSubscription.objects.get()
    assert subscription.customer == customer
    assert subscription.endpoint == info["endpoint"]
    # Posting it again (the page re-syncs on every visit) changes nothing.
    post_json(customer_client, "/settings/notifications/push/subscribe/", info)
    assert PushSubscription.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keys": {"p256dh": "bm90IGEga2V5", "auth": "x"}}, "encryption key is malformed"),
        ({"endpoint": "https://evil.example/collect"}, "not one this site sends to"),
        ({"endpoint": "http://fcm.googleapis.com/fcm/send/abc"}, "not one this site sends to"),
        # urlsplit sees fcm.googleapis.com; requests would connect to 127.0.0.1.
        ({"endpoint": "https://127.0.0.1\\@fcm.googleapis.com/x"}, "not one this site sends to"),
        ({"endpoint": "https://user:pw@fcm.googleapis.com/x"}, "not one this site sends to"),
        ({"endpoint": "https://fcm.googleapis.com.evil.example/x"}, "not one this site sends to"),
        ({"endpoint": "javascript:alert(1)"}, "Enter a valid URL"),
        ({"keys": None}, "This field is required"),
    ],
)
def test_a_malformed_subscription_is_refused_with_a_clear_message(
    customer_client, fake_push, change, message
):
    info = {**fake_push.new_subscription(), **change}
    response = post_json(customer_client, "/settings/notifications/push/subscribe/", info)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_a_real_push_services_https_endpoint_is_accepted(customer_client, fake_push, settings):
    settings.WEB_PUSH_ENDPOINT_HOSTS = ["fcm.googleapis.com", "push.apple.com"]
    info = fake_push.new_subscription()
    info["endpoint"] = "https://fcm.googleapis.com/fcm/send/abc123"
    response = post_json(customer_client, "/settings/notifications/push/subscribe/", info)
    assert response.status_code == 201


def test_the_subscribe_endpoint_wants_json(customer_client):
    response = customer_client.post(
        "/settings/notifications/push/subscribe/", data="nope", content_type="application/json"
    )
    assert response.status_code == 400


def test_a_device_belongs_to_whoever_subscribed_it_last(
    client, customer, other_customer, fake_push
):
    info = fake_push.new_subscription()
    client.force_login(customer.user)
    post_json(client, "/settings/notifications/push/subscribe/", info)
    client.force_login(other_customer.user)
    post_json(client, "/settings/notifications/push/subscribe/", info)
    assert PushSubscription.objects.get().customer == other_customer


def test_unsubscribing_forgets_only_the_customers_own_device(
    client, customer, other_customer, fake_push
):
    mine = subscribe(customer, fake_push)
    theirs = subscribe(other_customer, fake_push)
    client.force_login(customer.user)
    url = "/settings/notifications/push/unsubscribe/"
    assert post_json(client, url, {"endpoint": theirs.endpoint}).json() == {"devices": 1}
    assert post_json(client, url, {"endpoint": mine.endpoint}).json() == {"devices": 0}
    assert list(PushSubscription.objects.all()) == [theirs]


def test_staff_and_strangers_cannot_subscribe(client, staff, fake_push):
    info = fake_push.new_subscription()
    url = "/settings/notifications/push/subscribe/"
    assert post_json(client, url, info).status_code == 302  # to the login page
    client.force_login(staff)
    assert post_json(client, url, info).status_code == 404
    assert not PushSubscription.objects.exists()


def test_the_test_button_pushes_to_the_customers_devices(
    customer_client, customer, fake_push, committed
):
    subscribe(customer, fake_push)
    with committed():
        response = customer_client.post("/settings/notifications/push/test/", follow=True)
    assert "A test notification is on its way" in response.content.decode()
    (push,) = fake_push.pushes
    assert push.payload["body"] == "Test notification: push works on this device."
    assert push.urgency == "high"


def test_the_test_button_says_what_is_missing(customer_client, customer, settings, fake_push):
    response = customer_client.post("/settings/notifications/push/test/", follow=True)
    assert "Turn on push notifications on this device first." in response.content.decode()
    settings.VAPID_PRIVATE_KEY = ""
    response = customer_client.post("/settings/notifications/push/test/", follow=True)
    assert "not set up on this server" in response.content.decode()
    assert fake_push.requests == []


def test_a_stored_subscription_with_unusable_keys_is_removed_not_retried(
    fake_push, customer, thread, staff, committed
):
    # Written past the form (an old row, an admin edit): the keys cannot encrypt anything.
    PushSubscription.objects.create(
        customer=customer, endpoint=f"{fake_push.url}/push/broken", p256dh="garbage", auth="x"
    )
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = push_of(entry)
    assert delivery.status == S.FAILED
    assert delivery.last_error == "The device's push keys are unusable; device removed"
    assert delivery.attempts == 1
    assert not PushSubscription.objects.exists()
    assert fake_push.requests == []


def test_a_listed_name_that_resolves_to_a_private_address_gets_no_request(
    fake_push, customer, thread, staff, committed, settings
):
    # "localhost" is a listed name here, not a listed loopback address: at send time it
    # resolves to 127.0.0.1, so the connection is refused before a byte is sent.
    settings.WEB_PUSH_ENDPOINT_HOSTS = ["localhost"]
    info = fake_push.new_subscription()
    port = fake_push.url.rsplit(":", 1)[1]
    preferences.subscribe_push(
        customer=customer,
        endpoint=f"https://localhost:{port}/push/{info['endpoint'].rsplit('/', 1)[1]}",
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert fake_push.requests == []
    delivery = push_of(entry)
    assert delivery.status == S.FAILED
    assert "not on the public internet" in delivery.last_error
    assert not PushSubscription.objects.exists()
