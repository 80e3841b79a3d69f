"""CONFIRM: by SMS (the inbound keyword hook), by a portal reply, or by the Schedule button,
it confirms the next unconfirmed appointment, with a card; with nothing to confirm, a polite
automated answer."""

from __future__ import annotations

import pytest

from crm_events import actions
from crm_events.models import Appointment, CrmSettings
from messaging import actions as thread_actions
from messaging import keywords
from messaging.models import Entry
from notifications.models import Delivery
from tests.crm_events.conftest import local


def _cards(thread, text):
    return list(thread.entries.filter(kind=Entry.Kind.EVENT_CARD, body__contains=text))


@pytest.mark.parametrize("body", ["CONFIRM", "confirm", "  Confirm! ", "'CONFIRM.'", "¡Confirm!"])
def test_keywords_are_matched_whatever_the_case_and_surrounding_punctuation(body):
    assert keywords.normalise(body) == "confirm"


def test_a_keyword_inside_a_sentence_is_just_text(customer, appointment):
    thread_actions.post_customer_reply(customer=customer, body="I will confirm tomorrow")
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.SCHEDULED


def test_registering_a_phrase_is_refused():
    with pytest.raises(ValueError):
        keywords.register("two words", lambda **kw: True)


def test_an_sms_confirm_confirms_the_next_appointment_with_a_card_texted_back(
    customer, appointment, thread
):
    reply = thread_actions.post_customer_reply(
        customer=customer, body="CONFIRM", channel="sms", idempotency_key="SM123"
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    (card,) = _cards(thread, "Appointment confirmed — Thu May 15, 8–9am")
    assert card.seq == reply.seq + 1
    assert card.link_url == f"/schedule/?appointment={appointment.pk}#appointment-{appointment.pk}"
    # Confirming by text gets its answer by text.
    assert Delivery.objects.filter(entry=card, channel="sms").exists()


def test_a_replayed_sms_confirm_acts_once(customer, appointment, thread):
    for _ in range(3):
        thread_actions.post_customer_reply(
            customer=customer, body="CONFIRM", channel="sms", idempotency_key="SM123"
        )
    assert len(_cards(thread, "Appointment confirmed")) == 1
    assert thread.entries.filter(kind=Entry.Kind.CUSTOMER_REPLY).count() == 1


def test_a_portal_reply_confirm_confirms_through_the_page(customer_client, appointment, thread):
    customer_client.post("/messages/send/", {"body": "Confirm", "key": "k1"})
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    assert len(_cards(thread, "Appointment confirmed")) == 1


def test_confirm_picks_the_soonest_unconfirmed_appointment(customer, project, appointment, thread):
    later = actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Stain the deck",
        starts_at=local(2031, 6, 2, 9),
        ends_at=local(2031, 6, 2, 12),
    ).record
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM", channel="sms")
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM", channel="sms")
    appointment.refresh_from_db()
    later.refresh_from_db()
    assert (appointment.status, later.status) == ("confirmed", "confirmed")


def test_confirm_with_nothing_to_confirm_gets_a_polite_automated_answer(customer, thread):
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM", channel="sms")
    answer = thread.entries.get(kind=Entry.Kind.AUTOMATED)
    assert "no appointment waiting for your confirmation" in answer.body
    assert answer.channel == "sms"


def test_confirm_when_all_is_confirmed_says_so(customer, appointment, thread):
    actions.confirm_appointment(appointment=appointment)
    thread_actions.post_customer_reply(customer=customer, body="confirm")
    answer = thread.entries.get(kind=Entry.Kind.AUTOMATED)
    assert "Thu May 15, 8–9am, is already confirmed" in answer.body
    assert answer.channel == "portal"


def test_cancelled_and_past_appointments_are_not_confirmed(customer, project, thread):
    past = actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Old visit",
        starts_at=local(2020, 1, 2, 8),
        ends_at=local(2020, 1, 2, 9),
    ).record
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM")
    past.refresh_from_db()
    assert past.status == Appointment.Status.SCHEDULED


def test_the_schedule_button_confirms_that_appointment(customer_client, appointment, thread):
    response = customer_client.post(f"/schedule/{appointment.pk}/confirm/")
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    page = customer_client.get(response.url).content.decode()
    assert "Thanks — this appointment is confirmed." in page
    # Pressing it again changes nothing.
    customer_client.post(f"/schedule/{appointment.pk}/confirm/")
    assert len(_cards(thread, "Appointment confirmed")) == 1


def test_confirming_from_the_portal_texts_nobody(customer_client, appointment, thread):
    customer_client.post(f"/schedule/{appointment.pk}/confirm/")
    (card,) = _cards(thread, "Appointment confirmed")
    assert not Delivery.objects.filter(entry=card).exists()


def test_confirm_by_reply_can_be_switched_off_per_business(customer, business, appointment, thread):
    CrmSettings.objects.create(business=business, confirm_by_reply_enabled=False)
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM", channel="sms")
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.SCHEDULED
    assert list(thread.entries.values_list("kind", flat=True)) == [
        "event_card",  # scheduled
        "customer_reply",
    ]


def test_a_keyword_handler_runs_in_the_reply_s_transaction(customer, thread, monkeypatch):
    def explode(*, entry, customer):
        raise RuntimeError("handler failed")

    monkeypatch.setitem(keywords._handlers, "boom", explode)
    with pytest.raises(RuntimeError):
        thread_actions.post_customer_reply(customer=customer, body="BOOM")
    assert not thread.entries.exists()  # the reply rolled back with the handler's work


def test_a_keyword_handler_runs_once_for_its_word_and_never_for_a_replay(
    customer, thread, monkeypatch
):
    calls = []
    monkeypatch.setitem(keywords._handlers, "boom", lambda *, entry, customer: calls.append(entry))
    thread_actions.post_customer_reply(customer=customer, body="hello")
    first = thread_actions.post_customer_reply(customer=customer, body="Boom!", idempotency_key="k")
    thread_actions.post_customer_reply(customer=customer, body="Boom!", idempotency_key="k")
    assert calls == [first]


def test_a_word_registered_for_texts_does_nothing_in_a_portal_reply(customer, thread, monkeypatch):
    calls = []
    monkeypatch.setattr(keywords, "_handlers", {})
    monkeypatch.setattr(keywords, "_channels", {})
    keywords.register("ping", lambda *, entry, customer: calls.append(entry), channels=["sms"])
    thread_actions.post_customer_reply(customer=customer, body="PING", channel="portal")
    texted = thread_actions.post_customer_reply(customer=customer, body="P I N G", channel="sms")
    assert calls == [texted]


def test_a_confirm_loaded_as_history_confirms_nothing_today(customer, appointment, thread):
    # notify=False records the past without telling anyone (imports, the demo): no keyword.
    thread_actions.post_customer_reply(customer=customer, body="CONFIRM", notify=False)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.SCHEDULED
