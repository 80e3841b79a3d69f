"""Outbound events to the CRM (issue 21, first slice): what the portal tells the contractor's
CRM, signed with Standard Webhooks and delivered from a durable outbox.

The CRM is a real HTTP server on 127.0.0.1 (tests/fakes/crm_receiver.py) that verifies every
request with the official `standardwebhooks` library; everything on our side is the real code,
run by the Celery tasks inline (on commit) and by the sweep."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import threading
import uuid
from io import StringIO

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_events import actions
from crm_events.models import OutboundEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from crm_events.outbound import endpoints, events, outbox, sending
from messaging import actions as thread_actions
from messaging.models import Side
from tests.crm_events.conftest import NEW_SECRET, OUT_SECRET
from tests.fakes.base import Reply
from tests.fakes.crm_receiver import FakeCrmReceiver


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def _reply(on_commit, customer, body="Sounds good, see you Thursday", **kw):
    return on_commit(thread_actions.post_customer_reply, customer=customer, body=body, **kw)


def _delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.select_related("event", "endpoint").get()


def _sweep_at(moment: dt.datetime) -> dict:
    with time_machine.travel(moment, tick=False):
        return outbox.sweep()


# -- signed, shaped, delivered -----------------------------------------------------------------


def test_a_customer_text_reaches_the_crm_signed_so_the_official_library_verifies_it(
    customer, project, thread, crm_endpoint, on_commit
):
    entry = _reply(on_commit, customer, channel="sms", project=project, idempotency_key="SM1")

    (request,) = crm_endpoint.wait_for(1)
    headers = {k.lower(): v for k, v in request.headers.items()}
    # Verified here too, independently of the fake: the official library, our secret.
    event = Webhook(OUT_SECRET).verify(request.body, headers)
    assert request.path == "/porchlight/events"
    assert headers["content-type"] == "application/json"
    assert event["type"] == "message.received"
    assert event["id"] == headers["webhook-id"]
    assert event["sequence"] == 1
    assert event["customer"] == {"id": customer.pk, "crm_id": None}
    assert event["project"] == "PRJ-1042"
    assert event["data"] == {
        "entry_id": entry.pk,
        "seq": entry.seq,
        "channel": "sms",
        "body": "Sounds good, see you Thursday",
        "attachment_count": 0,
    }
    assert dt.datetime.fromisoformat(event["occurred_at"]) == entry.created_at.replace(
        microsecond=0
    )
    delivery = _delivery()
    assert delivery.status == "delivered" and delivery.attempts == 1
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code == 204 and attempt.endpoint == delivery.endpoint
    assert attempt.request_headers["webhook-id"] == event["id"]


def test_a_forged_signature_is_refused_by_the_receiver(customer, thread, crm_endpoint, on_commit):
    # Guards the fake: a request signed with another key is not taken as delivered.
    crm_endpoint.secrets = [NEW_SECRET]
    _reply(on_commit, customer)
    crm_endpoint.wait_for(1)
    delivery = _delivery()
    assert delivery.status == "pending" and delivery.last_status_code == 401
    assert crm_endpoint.events == {}


def test_staff_messages_and_cards_are_not_told_to_the_crm(
    customer, thread, staff, crm_endpoint, on_commit
):
    on_commit(thread_actions.post_staff_message, thread=thread, author=staff, body="Hi Sarah")
    assert OutboundEvent.objects.count() == 0 and crm_endpoint.requests == []


def test_with_no_endpoint_nothing_is_recorded(customer, thread, on_commit, settings):
    settings.CRM_OUTBOUND_URL = ""
    _reply(on_commit, customer)
    assert OutboundEvent.objects.count() == 0 and WebhookDelivery.objects.count() == 0


def test_a_url_without_a_secret_sends_nothing_unsigned(
    customer, thread, receiver, settings, on_commit
):
    settings.CRM_OUTBOUND_URL, settings.CRM_OUTBOUND_SECRET = receiver.url, []
    _reply(on_commit, customer)
    assert receiver.requests == [] and OutboundEvent.objects.count() == 0


def test_a_rolled_back_message_tells_the_crm_nothing(
    customer, thread, crm_endpoint, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        thread_actions.post_customer_reply(customer=customer, body="Sounds good")
        raise RuntimeError("the view failed after the append")
    assert OutboundEvent.objects.count() == 0 and crm_endpoint.requests == []


# -- the CRM down, slow, gone, redirecting, asking to wait --------------------------------------


def test_a_receiver_that_is_down_is_retried_with_backoff_and_gets_the_event_once_when_back(
    customer, thread, settings, on_commit
):
    receiver = FakeCrmReceiver(secrets=[OUT_SECRET]).start()
    port = receiver._server.server_address[1]
    receiver.stop()  # the CRM is down: its port refuses connections
    settings.CRM_OUTBOUND_URL = f"http://127.0.0.1:{port}/hook"
    settings.CRM_OUTBOUND_SECRET = [OUT_SECRET]

    _reply(on_commit, customer)
    first = _delivery()
    assert first.status == "pending" and first.attempts == 1
    assert first.last_error.startswith("Could not connect")
    wait = first.next_attempt_at - WebhookAttempt.objects.get().started_at
    assert dt.timedelta(seconds=15) <= wait <= dt.timedelta(seconds=30)  # base 30 s, jittered
    # Not due yet: the sweep leaves it alone.
    assert outbox.sweep()["queued"] == 0

    _sweep_at(first.next_attempt_at + dt.timedelta(seconds=1))
    second = _delivery()
    assert second.attempts == 2 and second.status == "pending"
    assert second.next_attempt_at - first.next_attempt_at >= dt.timedelta(seconds=30)

    with FakeCrmReceiver(secrets=[OUT_SECRET], port=port) as back:
        assert _sweep_at(second.next_attempt_at + dt.timedelta(seconds=1))["queued"] == 1
        assert _delivery().status == "delivered"
        # Later sweeps send nothing more: the CRM got it once.
        _sweep_at(second.next_attempt_at + dt.timedelta(hours=1))
        assert len(back.requests) == 1 and len(back.events) == 1
    assert WebhookAttempt.objects.count() == 3


def test_an_endpoint_answering_410_is_disabled_and_its_events_wait_for_it(
    customer, thread, crm_endpoint, on_commit
):
    crm_endpoint.script(Reply(410))
    _reply(on_commit, customer, body="first")
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    _reply(on_commit, customer, body="second")
    # Nothing is sent to a disabled endpoint, and nothing is lost.
    assert len(crm_endpoint.requests) == 1
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}
    assert outbox.sweep()["queued"] == 0

    endpoints.enable_endpoint(endpoint=endpoint)
    outbox.sweep()
    bodies = sorted(e["data"]["body"] for e in crm_endpoint.events.values())
    assert bodies == ["first", "second"]


@pytest.mark.parametrize("header", ["seconds", "http-date"])
def test_retry_after_is_honoured(customer, thread, crm_endpoint, on_commit, header):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    value = (
        "600"
        if header == "seconds"
        else email.utils.format_datetime(now + dt.timedelta(seconds=600), usegmt=True)
    )
    crm_endpoint.script(Reply(503, headers={"Retry-After": value}))
    with time_machine.travel(now, tick=False):
        _reply(on_commit, customer)
    delivery = _delivery()
    assert delivery.last_status_code == 503
    assert delivery.next_attempt_at == now + dt.timedelta(seconds=600)
    # Not before it: the sweep just before finds nothing due.
    assert _sweep_at(now + dt.timedelta(seconds=599))["queued"] == 0
    _sweep_at(now + dt.timedelta(seconds=601))
    assert _delivery().status == "delivered"


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it(
    customer, thread, crm_endpoint, on_commit
):
    crm_endpoint.script(Reply(429, headers={"Retry-After": "1"}))
    _reply(on_commit, customer)
    delivery = _delivery()
    assert delivery.next_attempt_at - WebhookAttempt.objects.get().started_at >= dt.timedelta(
        seconds=15
    )


def test_a_redirect_is_not_followed_and_is_retried(customer, thread, crm_endpoint, on_commit):
    with FakeCrmReceiver(secrets=[OUT_SECRET]) as elsewhere:
        crm_endpoint.script(Reply(307, headers={"Location": f"{elsewhere.url}/hook"}))
        _reply(on_commit, customer)
        assert elsewhere.requests == []
    delivery = _delivery()
    assert delivery.status == "pending" and delivery.last_status_code == 307
    assert "redirect, not followed" in delivery.last_error


def test_a_500_is_retried(customer, thread, crm_endpoint, on_commit):
    crm_endpoint.script(Reply(500, "boom"))
    _reply(on_commit, customer)
    delivery = _delivery()
    assert delivery.status == "pending" and delivery.last_status_code == 500
    assert WebhookAttempt.objects.get().response_body == "boom"


def test_a_crm_that_does_not_answer_in_time_is_retried(
    customer, thread, crm_endpoint, on_commit, settings
):
    settings.CRM_OUTBOUND_TIMEOUT = 0.3
    crm_endpoint.script(Reply(204, delay=1.5))
    _reply(on_commit, customer)
    delivery = _delivery()
    assert delivery.status == "pending" and delivery.last_error == "No answer within 0.3 seconds"


def test_an_endpoint_failing_for_a_day_is_disabled_with_a_note_to_staff(
    customer, thread, crm_endpoint, on_commit
):
    start = dt.datetime.now(dt.UTC)
    crm_endpoint.script(*[Reply(502)] * 3)
    with time_machine.travel(start, tick=False):
        _reply(on_commit, customer)
    _sweep_at(_delivery().next_attempt_at + dt.timedelta(seconds=1))
    assert WebhookEndpoint.objects.get().enabled
    with time_machine.travel(start + dt.timedelta(hours=25), tick=False):
        outbox.sweep()
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.enabled
    assert endpoint.disabled_reason.startswith("Every attempt failed for 24 hours")
    assert _delivery().status == "pending"  # waiting for the endpoint, not lost


def test_an_event_still_failing_after_three_days_fails_and_staff_can_resend_it(
    customer, thread, crm_endpoint, on_commit, settings
):
    settings.CRM_OUTBOUND_DISABLE_AFTER_HOURS = 24 * 30
    start = dt.datetime.now(dt.UTC)
    crm_endpoint.script(*[Reply(400)] * 2)
    with time_machine.travel(start, tick=False):
        _reply(on_commit, customer)
    _sweep_at(start + dt.timedelta(days=3, minutes=1))
    delivery = _delivery()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert delivery.last_error.startswith("Gave up after 2 attempts over 3 days")

    on_commit(sending_resend, delivery)
    assert _delivery().status == "delivered"
    ids = {r.header("webhook-id") for r in crm_endpoint.requests}
    assert ids == {delivery.event.event_id}  # the same event, the same id


def sending_resend(delivery):
    return outbox.resend(deliveries=WebhookDelivery.objects.filter(pk=delivery.pk))


# -- private addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.com/hook",
        "https://10.0.0.5/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://user:pw@crm.example.com/hook",
        "https://127.0.0.1\\@crm.example.com/hook",
        "ftp://crm.example.com/hook",
    ],
)
def test_an_admin_endpoint_must_be_a_public_https_host(db, url):
    with pytest.raises(ValidationError):
        endpoints.save_endpoint(endpoint=WebhookEndpoint(url=url))
    assert WebhookEndpoint.objects.count() == 0


def test_a_public_https_endpoint_is_saved_with_a_secret_made_for_it(db):
    endpoint = endpoints.save_endpoint(endpoint=WebhookEndpoint(url="https://93.184.215.14/hook"))
    assert endpoint.secret.startswith("whsec_")
    assert len(base64.b64decode(endpoint.secret.removeprefix("whsec_"))) == 32


def test_an_admin_endpoint_pointing_inside_our_network_is_sent_nothing(
    customer, thread, receiver, on_commit
):
    # Saved before the check, or its name rebound since: refused again at every attempt.
    WebhookEndpoint.objects.create(
        url=f"https://127.0.0.1:{receiver._server.server_address[1]}/", secret=OUT_SECRET
    )
    _reply(on_commit, customer)
    assert receiver.requests == []
    delivery = _delivery()
    assert delivery.status == "pending" and "not on the public internet" in delivery.last_error


# -- rotation ------------------------------------------------------------------------------------


def _verifies(request, secret) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        Webhook(secret).verify(request.body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_while_rotating_every_event_is_signed_with_both_secrets(
    customer, thread, crm_endpoint, on_commit, settings
):
    settings.CRM_OUTBOUND_SECRET = [OUT_SECRET, NEW_SECRET]
    _reply(on_commit, customer)
    (request,) = crm_endpoint.wait_for(1)
    assert len(request.header("webhook-signature").split(" ")) == 2
    # A CRM still on the old key and one already on the new both accept it.
    assert _verifies(request, OUT_SECRET) and _verifies(request, NEW_SECRET)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not _verifies(request, other)


def test_rotating_an_admin_endpoints_secret_signs_with_the_new_and_the_previous(db):
    endpoint = endpoints.save_endpoint(endpoint=WebhookEndpoint(url="https://93.184.215.14/h"))
    old = endpoint.secret
    new = endpoints.rotate_secret(endpoint=endpoint)
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (new, old)
    target = endpoints.target(endpoint)
    now = dt.datetime.now(dt.UTC)
    signature = sending.sign(secrets=target.secrets, msg_id="evt_1", timestamp=now, body="{}")
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    for secret in (old, new):
        Webhook(secret).verify("{}", headers)


SARAH_SIGNS = {
    "approve": True,
    "by_customer": True,
    "version": 1,
    "signer_name": "Sarah Mitchell",
    "agreed": True,
    "ip_address": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (test)",
}


# -- idempotency and order -----------------------------------------------------------------------


def test_the_same_change_is_one_event_and_a_resend_carries_the_same_webhook_id_and_body(
    customer, thread, estimate, crm_endpoint, on_commit
):
    on_commit(actions.decide_estimate, estimate=estimate, **SARAH_SIGNS)
    with pytest.raises(ValidationError, match="approved already"):
        on_commit(actions.decide_estimate, estimate=estimate, **SARAH_SIGNS)
    # The admin marking it approved again changes nothing.
    on_commit(actions.transition_estimate, estimate=estimate, to="approved")
    assert OutboundEvent.objects.filter(type="estimate.approved").count() == 1
    approved = OutboundEvent.objects.get(type="estimate.approved")
    delivery = WebhookDelivery.objects.get(event=approved)
    on_commit(sending_resend, delivery)
    sent = [r for r in crm_endpoint.requests if r.header("webhook-id") == approved.event_id]
    assert len(sent) == 2 and sent[0].body == sent[1].body
    # The receiver keeps it once, by webhook-id.
    assert sum(e["type"] == "estimate.approved" for e in crm_endpoint.events.values()) == 1


def test_a_worker_that_lost_the_race_sends_nothing(customer, thread, crm_endpoint, on_commit):
    _reply(on_commit, customer)
    delivery = _delivery()
    assert sending.send_delivery(delivery_id=delivery.pk) == "not claimed"
    assert len(crm_endpoint.requests) == 1


def test_each_customers_events_are_numbered_in_order(
    customer, other_customer, thread, other_thread, crm_endpoint, on_commit
):
    for body in ("one", "two", "three"):
        _reply(on_commit, customer, body=body)
    _reply(on_commit, other_customer, body="hello")
    sarah = OutboundEvent.objects.filter(customer=customer).order_by("sequence")
    assert [json.loads(e.body)["data"]["body"] for e in sarah] == ["one", "two", "three"]
    assert [e.sequence for e in sarah] == [1, 2, 3]
    assert OutboundEvent.objects.get(customer=other_customer).sequence == 1


# -- the events ----------------------------------------------------------------------------------


def _sent(receiver, type_):
    return [e for e in receiver.events.values() if e["type"] == type_]


def test_an_estimate_the_customer_approves_tells_the_crm_who_and_when(
    customer, thread, estimate, crm_endpoint, on_commit
):
    on_commit(actions.decide_estimate, estimate=estimate, **SARAH_SIGNS)
    estimate.refresh_from_db()
    decision = actions.latest_decision(estimate)
    (event,) = _sent(crm_endpoint, "estimate.approved")
    assert event["project"] == "PRJ-1042"
    assert event["data"] == {
        "number": "311",
        "crm_id": None,
        "version": 1,
        "total": "9800.00",
        "currency": "USD",
        "decided_by": "customer",
        "decided_at": estimate.decided_at.astimezone(dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "signer": {
            "name": "Sarah Mitchell",
            "ip_address": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (test)",
        },
        "document_sha256": decision.document_sha256,
        "chosen_options": [],
        "reason": "",
    }


def test_an_estimate_staff_decline_is_told_as_declined_by_staff(
    customer, thread, estimate, crm_endpoint, on_commit
):
    on_commit(actions.decide_estimate, estimate=estimate, approve=False)
    (event,) = _sent(crm_endpoint, "estimate.declined")
    assert event["data"]["decided_by"] == "staff"


def test_an_estimate_the_crm_approved_is_not_told_back(
    customer, thread, estimate, crm, crm_endpoint, on_commit
):
    event = {
        "type": "estimate.approved",
        "customer": {"id": customer.pk},
        "data": {"number": "311"},
    }
    response = on_commit(crm.post, event)
    assert response.status_code == 200
    assert not OutboundEvent.objects.filter(type__startswith="estimate.").exists()


def test_a_confirmed_appointment_is_told_once(
    customer, thread, appointment, crm_endpoint, on_commit
):
    for _ in range(2):
        on_commit(actions.confirm_appointment, appointment=appointment)
    (event,) = _sent(crm_endpoint, "appointment.confirmed")
    assert event["data"]["crm_id"] == "APT-77" and event["data"]["title"] == "Deck install"
    assert event["data"]["starts_at"] == "2031-05-15T12:00:00Z"


def test_asking_to_reschedule_tells_the_crm_with_the_note(
    customer, thread, appointment, crm_endpoint, on_commit
):
    entry = on_commit(
        actions.ask_to_reschedule,
        appointment=appointment,
        note="Friday afternoon works better.",
        idempotency_key="k1",
    )
    (event,) = _sent(crm_endpoint, "appointment.reschedule_requested")
    assert event["data"]["note"] == "Friday afternoon works better."
    assert event["data"]["entry_id"] == entry.pk and event["data"]["id"] == appointment.pk
    # The request is a message too, and told as one.
    assert len(_sent(crm_endpoint, "message.received")) == 1


def test_the_customer_reading_the_thread_tells_the_crm_up_to_which_seq(
    customer, thread, staff, crm_endpoint, on_commit
):
    for body in ("Crew is on the way", "About 20 minutes"):
        on_commit(thread_actions.post_staff_message, thread=thread, author=staff, body=body)
    on_commit(thread_actions.mark_read, thread=thread, side=Side.CUSTOMER, up_to_seq=2)
    on_commit(thread_actions.mark_read, thread=thread, side=Side.CUSTOMER, up_to_seq=2)
    (event,) = _sent(crm_endpoint, "conversation.read")
    assert event["data"]["up_to_seq"] == 2


def test_staff_reading_the_thread_is_not_told(customer, thread, crm_endpoint, on_commit):
    _reply(on_commit, customer)
    on_commit(thread_actions.mark_read, thread=thread, side=Side.STAFF)
    assert _sent(crm_endpoint, "conversation.read") == []


def test_a_colleague_can_record_customer_updated_and_request_created(
    customer, thread, crm_endpoint, on_commit
):
    data = {"name": "Sarah Mitchell", "phone": "+15555550199", "changed": ["phone"]}
    on_commit(events.record_event, type="customer.updated", customer=customer, key="c:1", data=data)
    (event,) = _sent(crm_endpoint, "customer.updated")
    assert event["data"] == data
    with pytest.raises(ValueError):
        events.record_event(type="customer.deleted", customer=customer, key="c:2", data={})


def test_an_endpoint_subscribed_to_some_types_hears_only_those(
    customer, thread, receiver, on_commit
):
    endpoint = WebhookEndpoint.objects.create(
        url="https://93.184.215.14/h", secret=OUT_SECRET, event_types=["estimate.approved"]
    )
    assert endpoints.endpoints_hearing("estimate.approved") == [endpoint.pk]
    assert endpoints.endpoints_hearing("message.received") == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_for_one_customer_get_gap_free_sequence_numbers_and_arrive_once(
    customer, staff, crm_endpoint
):
    from django.db import connection

    thread = thread_actions.ensure_thread(customer=customer)
    writers, per_writer = 6, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                thread_actions.post_customer_reply(customer=customer, body=f"w{n} m{i}")
                if n == 0:  # a read mark too: its lock path is the thread's as well
                    thread_actions.mark_read(thread=thread, side=Side.STAFF)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    total = writers * per_writer
    rows = list(OutboundEvent.objects.order_by("pk").values_list("sequence", flat=True))
    # Gap-free, and in commit order (ids were taken in the same order).
    assert rows == list(range(1, total + 1))
    crm_endpoint.wait_for(total)
    assert len(crm_endpoint.events) == total
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


# -- the sweep -----------------------------------------------------------------------------------


def test_a_delivery_whose_worker_died_is_sent_again_by_the_sweep(
    customer, thread, crm_endpoint, on_commit
):
    events.record_event(type="customer.updated", customer=customer, key="k", data={})
    delivery = _delivery()
    # A worker claimed it and died before recording anything.
    now = dt.datetime.now(dt.UTC)
    assert WebhookDelivery.objects.filter(pk=delivery.pk).claim(token=uuid.uuid4(), now=now)
    assert outbox.sweep()["redriven"] == 0  # within the lease: it may still be working
    result = _sweep_at(now + dt.timedelta(minutes=6))
    assert result == {"redriven": 1, "queued": 1, "log_pruned": 0}
    assert _delivery().status == "delivered" and _delivery().attempts == 2


def test_the_periodic_command_runs_the_webhook_sweep(customer, thread, crm_endpoint, settings):
    # `make worker` without Redis: every beat task, inline, in one process.
    assert settings.CELERY_BEAT_SCHEDULE["crm-webhooks"]["task"] == "crm_events.sweep_webhooks"
    events.record_event(type="customer.updated", customer=customer, key="k", data={})
    out = StringIO()
    call_command("periodic", "--once", stdout=out)
    assert "crm-webhooks: queued 1" in out.getvalue()
    assert _delivery().status == "delivered"


def test_a_crm_outbound_url_that_is_neither_https_nor_loopback_sends_nothing(
    customer, thread, crm_endpoint, settings, on_commit
):
    settings.CRM_OUTBOUND_URL = "http://crm.example.com/hook"
    _reply(on_commit, customer)
    delivery = _delivery()
    assert delivery.status == "pending"
    assert delivery.last_error == "Not sent: CRM_OUTBOUND_URL must be https (or http on loopback)."
    assert crm_endpoint.requests == []


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secrets", "ids"),
    [
        ("", [], []),
        ("https://crm.example.com/hook", [OUT_SECRET], []),
        ("http://127.0.0.1:9000/hook", [OUT_SECRET, NEW_SECRET], []),
        ("http://crm.example.com/hook", [OUT_SECRET], ["crm_events.E001"]),
        ("https://crm.example.com/hook", [], ["crm_events.W001"]),
        ("https://crm.example.com/hook", ["not-a-secret"], ["crm_events.E002"]),
        ("https://crm.example.com/hook", [OUT_SECRET] * 3, ["crm_events.E003"]),
    ],
)
def test_wrong_outbound_settings_fail_loudly_at_start(settings, url, secrets, ids):
    from crm_events.outbound.checks import check_outbound_settings

    settings.CRM_OUTBOUND_URL, settings.CRM_OUTBOUND_SECRET = url, secrets
    assert [m.id for m in check_outbound_settings()] == ids


def test_with_no_endpoint_an_event_costs_no_query(customer, settings, django_assert_num_queries):
    settings.CRM_OUTBOUND_URL = ""
    endpoints.endpoints_hearing("message.received")  # the endpoint table, cached
    with django_assert_num_queries(0):
        event = events.record_event(type="message.received", customer=customer, key="k", data={})
    assert event is None


def test_the_delivery_log_is_kept_thirty_days(customer, thread, crm_endpoint, on_commit):
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=False):
        _reply(on_commit, customer)
    assert _sweep_at(start + dt.timedelta(days=29))["log_pruned"] == 0
    assert _sweep_at(start + dt.timedelta(days=31))["log_pruned"] == 1
    assert WebhookAttempt.objects.count() == 0
    assert _delivery().status == "delivered"  # the outbox row itself stays


def test_a_change_on_her_account_page_reaches_the_crm_as_customer_updated(
    customer, thread, crm_endpoint, on_commit
):
    from portal import account

    assert on_commit(account.change_name, customer=customer, name="Sarah Mitchell-Ortiz")

    (request,) = crm_endpoint.wait_for(1)
    event = Webhook(OUT_SECRET).verify(request.body, dict(request.headers))
    assert event["type"] == "customer.updated"
    assert event["customer"] == {"id": customer.pk, "crm_id": None}
    assert event["data"] == {
        "changed": {"name": {"from": "Sarah Mitchell", "to": "Sarah Mitchell-Ortiz"}}
    }
