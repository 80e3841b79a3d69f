"""Texts people send to our Twilio number: signed, once per MessageSid, into the sender's
thread (or kept for staff), with photos, opt-out words and bad input handled."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import threading
from urllib.parse import urlencode

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from twilio.request_validator import RequestValidator

from messaging import actions
from messaging.models import Attachment, Entry
from notifications.models import Delivery, InboundMessage, NotificationPreferences

pytestmark = pytest.mark.django_db
URL = "/webhooks/twilio/sms/"
# Twilio signs the public URL it was configured with: SITE_URL plus the path.
SIGNED_URL = f"http://127.0.0.1:8000{URL}"
SARAH = "+15555550123"
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def daytime():
    with time_machine.travel(DAYTIME, tick=True):
        yield


def text(client, fake_twilio, *, sender=SARAH, body="", media=(), **extra):
    form, signature = fake_twilio.inbound(
        SIGNED_URL, sender=sender, body=body, media=media, **extra
    )
    response = client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
    return response, form


def photo(color=(200, 80, 40), size=(640, 480), fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def test_a_text_from_a_customer_lands_in_her_thread_and_answers_empty_twiml(
    client, fake_twilio, customer, thread, committed
):
    with committed():
        response, form = text(client, fake_twilio, body="Sounds good, see you Thursday")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    entry = Entry.objects.get()
    assert (entry.kind, entry.channel, entry.body) == (
        Entry.Kind.CUSTOMER_REPLY,
        Entry.Channel.SMS,
        "Sounds good, see you Thursday",
    )
    assert entry.idempotency_key == f"twilio:{form['MessageSid']}"
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.entry, inbound.customer) == ("appended", entry, customer)
    # The business hears of it through the outbox, like a portal reply.
    assert Delivery.objects.get(entry=entry).audience == "business"
    thread.refresh_from_db()
    assert thread.staff_unread == 1


def test_a_replayed_text_makes_one_entry_and_every_replay_answers_200(
    client, fake_twilio, customer, thread
):
    form, signature = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Once only")
    for _ in range(5):
        assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    assert Entry.objects.count() == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_replays_make_one_entry(fake_twilio, customer, settings):
    form, signature = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Concurrent")
    codes, gate = [], threading.Barrier(20)

    def post() -> None:
        gate.wait()
        try:
            response = Client().post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
            codes.append(response.status_code)
        finally:
            connection.close()

    workers = [threading.Thread(target=post) for _ in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert codes == [200] * 20
    assert Entry.objects.count() == 1
    assert InboundMessage.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize("signature", ["", "forged", "RSOYDt4T1cUTdK1PDd93/VVr8B8="])
def test_a_forged_or_unsigned_text_is_refused_and_writes_nothing(
    client, fake_twilio, customer, signature
):
    form, _ = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Let me in")
    response = client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    assert not Entry.objects.exists() and not InboundMessage.objects.exists()


def test_without_an_auth_token_every_text_is_refused(client, fake_twilio, customer, settings):
    form, signature = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Hi")
    settings.TWILIO_AUTH_TOKEN = ""
    assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403
    assert not InboundMessage.objects.exists()


def test_behind_a_proxy_the_public_url_is_the_one_checked(client, fake_twilio, customer, settings):
    settings.SITE_URL = "https://portal.mikescontracting.example"
    for url in (
        "https://portal.mikescontracting.example/webhooks/twilio/sms/",
        "https://portal.mikescontracting.example:443/webhooks/twilio/sms/",
    ):
        form, signature = fake_twilio.inbound(url, sender=SARAH, body=f"Via {url}")
        assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    # The URL as received (no proxy in front) is accepted too.
    form, signature = fake_twilio.inbound(f"http://testserver{URL}", sender=SARAH, body="Direct")
    assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    assert Entry.objects.count() == 3


def test_repeated_form_keys_are_checked_as_twilio_signs_them(
    client, fake_twilio, customer, settings
):
    # Twilio signs every value of a repeated key; checking only the last would let a forged
    # value ride along (or refuse a genuine request).
    form, _ = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Repeated")
    encoded = urlencode([*form.items(), ("Extra", "1"), ("Extra", "2")])
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        SIGNED_URL, QueryDict(encoded)
    )
    response = client.post(
        URL,
        encoded,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 200
    # The same signature with one repeated value changed is refused.
    tampered = encoded.replace("Extra=2", "Extra=3")
    response = client.post(
        URL,
        tampered,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 403


# -- strangers, and staff putting their texts where they belong --------------------------------


def test_a_text_from_an_unknown_number_waits_for_staff_and_can_be_assigned(
    client, fake_twilio, customer, thread, staff_client
):
    response, form = text(client, fake_twilio, sender="+15555559999", body="Is this Mike?")
    assert response.status_code == 200
    assert not Entry.objects.exists()
    inbound = InboundMessage.objects.get()
    assert inbound.status == "unmatched"
    page = staff_client.get("/staff/unmatched/").content.decode()
    assert "Is this Mike?" in page and "(555) 555-9999" in page
    assert "Unmatched <span" in staff_client.get("/staff/projects/").content.decode()

    response = staff_client.post(
        f"/staff/unmatched/{inbound.pk}/assign/", {"customer": "sarah@example.com"}
    )
    assert response.status_code == 302, response.content.decode()[-1500:]
    entry = Entry.objects.get()
    assert entry.thread == thread and entry.body == "Is this Mike?"
    assert entry.created_at == inbound.received_at
    assert entry.idempotency_key == f"twilio:{form['MessageSid']}"
    assert "Is this Mike?" not in staff_client.get("/staff/unmatched/").content.decode()
    # The same text replayed by Twilio later makes nothing new.
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(SIGNED_URL, form)
    assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    assert Entry.objects.count() == 1


def test_a_plus_and_digits_that_are_no_number_wait_for_staff_not_a_500(
    client, fake_twilio, customer, thread
):
    # Found by the fuzzing of tests/reliability (R4): "+1555" failed the phone lookup.
    response, _ = text(client, fake_twilio, sender="+1555", body="hello")
    assert response.status_code == 200
    assert InboundMessage.objects.get().status == "unmatched"
    assert not Entry.objects.exists()


def test_nul_in_a_media_field_is_a_refused_photo_not_a_500(client, fake_twilio, customer, thread):
    # Found by R4's fuzzing once its sequence moved: PostgreSQL refuses NUL in JSON text.
    response, _ = text(
        client,
        fake_twilio,
        body="see photo",
        media=[("https://api.twilio.com/2010-04-01/Media/ME1", "image/\x00jpeg")],
    )
    assert response.status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.media == []
    assert Entry.objects.filter(body="see photo", thread=thread).exists()


def test_customers_never_see_the_unmatched_list(customer_client, fake_twilio, client):
    text(client, fake_twilio, sender="+15555559999", body="Hello?")
    inbound = InboundMessage.objects.get()
    assert customer_client.get("/staff/unmatched/").status_code == 404
    response = customer_client.post(
        f"/staff/unmatched/{inbound.pk}/assign/", {"customer": "sarah@example.com"}
    )
    assert response.status_code == 404
    assert not Entry.objects.exists()


# -- opt-out words -----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", " stop ", "Unsubscribe", "OPT OUT", "optout", "Quit."])
def test_stop_words_opt_the_customer_out_with_a_card_and_no_reply(
    client, fake_twilio, customer, thread, word, committed
):
    with committed():
        text(client, fake_twilio, body=word)
    prefs = NotificationPreferences.objects.get(customer=customer)
    assert prefs.sms_opted_out
    texted, card = Entry.objects.order_by("seq")
    assert texted.body == word.strip() or texted.body == word
    assert card.kind == "event_card" and card.card_kind == "opt_out"
    assert "Texts stopped" in card.body
    # Twilio answers STOP itself: we text the customer nothing (the business hears of it).
    assert [m for m in fake_twilio.messages if m.to == SARAH] == []


def test_after_stop_the_next_staff_message_goes_by_email_and_start_brings_texts_back(
    client, fake_twilio, fake_postmark, customer, thread, staff, committed, settings
):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    with committed():
        text(client, fake_twilio, body="STOP")
    with committed():
        after_stop = actions.post_staff_message(thread=thread, author=staff, body="Deck's done!")
    channels = set(Delivery.objects.filter(entry=after_stop).values_list("channel", flat=True))
    assert channels == {"email"}
    assert [m for m in fake_twilio.messages if m.to == SARAH] == []
    assert len(fake_postmark.emails) == 1

    with committed():
        text(client, fake_twilio, body="START")
    assert "Texts resumed" in Entry.objects.filter(card_kind="opt_out").last().body
    with committed():
        after_start = actions.post_staff_message(thread=thread, author=staff, body="Welcome back")
    assert "sms" in set(
        Delivery.objects.filter(entry=after_start).values_list("channel", flat=True)
    )


def test_every_carrier_word_and_confirm_register_through_messaging_keywords():
    from messaging import keywords

    expected = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
    expected |= {"start", "unstop", "yes", "help", "info", "confirm"}
    assert expected <= set(keywords._handlers)
    # The carrier's words mean something in a text only; CONFIRM everywhere.
    assert all(keywords._channels[word] == {"sms"} for word in expected - {"confirm"})
    assert "confirm" not in keywords._channels


def test_stop_in_a_portal_reply_or_an_email_is_just_text(customer, thread):
    actions.post_customer_reply(customer=customer, body="STOP", channel="portal")
    actions.post_customer_reply(customer=customer, body="Stop", channel="email")
    assert not NotificationPreferences.objects.filter(sms_opted_out_at__isnull=False).exists()
    assert not Entry.objects.filter(card_kind="opt_out").exists()


def test_help_is_recorded_in_the_thread(client, fake_twilio, customer, thread):
    text(client, fake_twilio, body="HELP")
    assert Entry.objects.filter(card_kind="opt_out", body__contains="HELP").exists()


def test_the_staff_composer_says_when_a_customer_opted_out(
    client, fake_twilio, customer, thread, staff_client
):
    text(client, fake_twilio, body="STOP")
    page = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true")
    assert "replied STOP" in page.content.decode()


# -- photos (MMS) -----------------------------------------------------------------------------


def test_a_photo_texted_in_is_fetched_with_the_accounts_credentials_and_shown(
    client, fake_twilio, customer, thread, committed, staff_client
):
    url = fake_twilio.add_media(photo(), "image/jpeg")
    with committed():
        response, _ = text(client, fake_twilio, body="Look at this", media=[(url, "image/jpeg")])
    assert response.status_code == 200
    entry = Entry.objects.get()
    assert entry.body == "Look at this" and entry.attachment_count == 1
    attachment = entry.attachments.get()
    assert attachment.content_type == "image/jpeg" and attachment.thumbnail
    # Twilio's API wanted the credentials; the CDN it redirected to never got them.
    media_requests = [r for r in fake_twilio.requests if "/Media/" in r.path or "/cdn/" in r.path]
    assert [bool(r.header("Authorization")) for r in media_requests] == [True, False]
    # Sarah and staff see it; Daniel and strangers get a 404.
    sarah = Client()
    sarah.force_login(customer.user)
    assert sarah.get(f"/attachments/{attachment.pk}/").status_code == 200
    assert sarah.get(f"/attachments/{attachment.pk}/thumbnail/")["Content-Type"] == "image/jpeg"
    assert staff_client.get(f"/attachments/{attachment.pk}/").status_code == 200
    assert Client().get(f"/attachments/{attachment.pk}/").status_code == 404
    page = sarah.get("/messages/").content.decode()
    assert f'src="/attachments/{attachment.pk}/thumbnail/"' in page


def test_another_customer_cannot_open_a_photo(
    client, fake_twilio, customer, other_customer, committed
):
    url = fake_twilio.add_media(photo(), "image/jpeg")
    with committed():
        text(client, fake_twilio, body="", media=[(url, "image/jpeg")])
    attachment = Attachment.objects.get()
    daniel = Client()
    daniel.force_login(other_customer.user)
    assert daniel.get(f"/attachments/{attachment.pk}/").status_code == 404
    assert daniel.get(f"/attachments/{attachment.pk}/thumbnail/").status_code == 404


def test_a_photo_with_no_words_is_a_valid_entry(client, fake_twilio, customer, thread, committed):
    url = fake_twilio.add_media(photo(fmt="PNG"), "image/png")
    with committed():
        text(client, fake_twilio, media=[(url, "image/png")])
    assert InboundMessage.objects.get().reason == ""
    entry = Entry.objects.get()
    assert entry.body == "" and entry.attachments.get().content_type == "image/png"


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"GIF89a" + b"\0" * (6 * 1024 * 1024), "image/gif", "too large"),
        (b"<html><script>alert(1)</script>", "text/html", "not a photo"),
        (b"MZ\x90\x00 an executable", "image/jpeg", "not a photo"),
    ],
    ids=["six-megabytes", "html", "executable"],
)
def test_oversized_or_disallowed_media_is_left_out_with_a_note_for_staff(
    client, fake_twilio, customer, thread, data, content_type, reason, committed
):
    url = fake_twilio.add_media(data, content_type)
    with committed():
        text(client, fake_twilio, body="See attached", media=[(url, content_type)])
    texted = Entry.objects.get(kind="customer_reply")
    assert texted.body == "See attached" and texted.attachment_count == 0
    note = Entry.objects.get(kind="internal_note")
    assert reason in note.body


def test_media_on_a_host_that_is_not_twilios_is_never_fetched(
    client, fake_twilio, customer, thread, fake_postmark, committed
):
    evil = f"http://localhost:{fake_postmark.url.rsplit(':', 1)[1]}/steal?x=1"
    with committed():
        text(client, fake_twilio, body="Photo", media=[(evil, "image/jpeg")])
    assert fake_postmark.requests == []
    assert Entry.objects.get(kind="customer_reply").attachment_count == 0
    assert "not on a Twilio host" in Entry.objects.get(kind="internal_note").body


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"From": ""},
        {"MessageSid": ""},
        {"MessageSid": "SM" + "a" * 9998},
        {"Body": "nul\x00byte"},
        {"From": "+1555\x00"},
        {"NumMedia": "two"},
        {"NumMedia": "-1"},
    ],
)
def test_signed_but_malformed_texts_are_a_400_that_writes_nothing(
    client, fake_twilio, customer, change
):
    form, _ = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="x")
    form.update(change)
    form = {k: v for k, v in form.items() if v != ""}
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(SIGNED_URL, form)
    response = client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 400
    assert not Entry.objects.exists() and not InboundMessage.objects.exists()


def test_an_empty_text_is_recorded_for_staff_not_dropped(client, fake_twilio, customer, thread):
    response, _ = text(client, fake_twilio, body="   ")
    assert response.status_code == 200
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "rejected"


def test_confirm_by_text_confirms_the_next_appointment(client, fake_twilio, customer, thread):
    from crm_events import actions as crm
    from crm_events.models import Appointment

    starts = DAYTIME + dt.timedelta(days=1)
    appointment = crm.schedule_appointment(
        customer=customer,
        title="Deck install",
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=1),
    ).record
    text(client, fake_twilio, body="Confirm!")
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    assert Entry.objects.filter(kind="event_card", body__icontains="confirmed").exists()


# -- every order of status callbacks, and random signed bodies -------------------------------

TERMINAL = {"delivered": "delivered", "undelivered": "failed", "failed": "failed"}


def test_status_callbacks_in_every_order_end_in_the_first_final_word(
    client, fake_twilio, customer, thread, staff, committed
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Order test")
    delivery = Delivery.objects.get(entry=entry, channel="sms")
    sid = delivery.provider_id
    path = f"/webhooks/twilio/status/?d={delivery.pk}"
    for order in itertools.permutations(["queued", "sent", "delivered", "undelivered", "failed"]):
        Delivery.objects.filter(pk=delivery.pk).update(status="sending", provider_id="")
        for status in order:
            data = {"MessageSid": sid, "MessageStatus": status}
            if status in ("undelivered", "failed"):
                data["ErrorCode"] = "30003"
            signature = RequestValidator(fake_twilio.auth_token).compute_signature(
                f"http://127.0.0.1:8000{path}", data
            )
            assert client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
        first_final = next(status for status in order if status in TERMINAL)
        assert Delivery.objects.get(pk=delivery.pk).status == TERMINAL[first_final], order


TWILIO_KEYS = ["MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0"]
field_values = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["SM" + "a" * 32, SARAH, "+15555559999", "0", "1", "-3", "x" * 5000, "\x00"]),
)


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(form=st.dictionaries(st.sampled_from(TWILIO_KEYS) | st.text(max_size=12), field_values))
def test_random_signed_bodies_never_cause_a_500_and_invalid_ones_write_nothing(
    client, fake_twilio, customer, form
):
    from notifications.forms import TwilioInboundForm

    valid = TwilioInboundForm(form).is_valid()
    before = (InboundMessage.objects.count(), Entry.objects.count())
    # Form-encoded, as Twilio posts it.
    body = urlencode(form)
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        SIGNED_URL, QueryDict(body)
    )
    response = client.post(
        URL,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code < 500
    if not valid:
        assert response.status_code == 400
        assert (InboundMessage.objects.count(), Entry.objects.count()) == before


# -- photos the other way: from the portal, and out as MMS ----------------------------------


def test_a_photo_staff_attach_reaches_an_sms_customer_as_mms_through_a_signed_link(
    staff_client, fake_twilio, customer, thread, committed, settings
):
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, email_enabled=False
    )
    upload = SimpleUploadedFile("deck.jpg", photo(), content_type="image/jpeg")
    with committed():
        response = staff_client.post(
            f"/staff/chat/{thread.pk}/send/",
            {"body": "Here's the finished deck", "key": "k-photo", "photos": [upload]},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    (sms,) = [m for m in fake_twilio.messages if m.to == SARAH]
    assert sms.body == "Here's the finished deck"
    (media_url,) = sms.media_urls
    assert media_url.startswith(f"{settings.SITE_URL}/attachments/shared/")
    path = media_url.removeprefix(settings.SITE_URL)
    # Twilio fetches it without signing in; the link is useless tampered with or a day later.
    fetched = Client().get(path)
    assert fetched.status_code == 200 and fetched["Content-Type"] == "image/jpeg"
    assert Client().get(path[:-3] + "abc/").status_code == 404
    with time_machine.travel(DAYTIME + dt.timedelta(days=2)):
        assert Client().get(path).status_code == 404


def test_a_photo_sarah_attaches_in_the_portal_reaches_mike(
    customer_client, fake_twilio, customer, thread, committed
):
    upload = SimpleUploadedFile("leak.png", photo(fmt="PNG"), content_type="image/png")
    with committed():
        response = customer_client.post(
            "/messages/send/",
            {"body": "", "key": "k-sarah", "photos": [upload]},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    entry = Entry.objects.get()
    assert entry.body == "" and entry.attachments.get().content_type == "image/png"
    (to_mike,) = fake_twilio.messages
    assert to_mike.to == "+15555550100" and len(to_mike.media_urls) == 1
    assert "photo-" not in to_mike.body  # the photo is carried, not described


@pytest.mark.parametrize(
    ("name", "data", "content_type", "reason"),
    [
        ("notes.txt", b"just text", "text/plain", "not a photo"),
        ("fake.jpg", b"<svg onload=alert(1)>", "image/jpeg", "not a photo"),
        ("huge.jpg", b"\xff\xd8\xff" + b"0" * (6 * 1024 * 1024), "image/jpeg", "larger than 5 MB"),
    ],
    ids=["text", "svg-as-jpeg", "six-megabytes"],
)
def test_a_file_that_is_not_an_allowed_photo_is_refused_beside_the_box(
    customer_client, thread, name, data, content_type, reason
):
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    response = customer_client.post(
        "/messages/send/",
        {"body": "see this", "key": "k-bad", "photos": [upload]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Entry.objects.exists() and not Attachment.objects.exists()
