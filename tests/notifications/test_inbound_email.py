"""Email that comes in through the ESP's inbound webhook (Postmark, through anymail): replies
land in their thread as only the new words, once per Message-ID; strangers, forgeries and
plain mail to the business wait for staff; bounces, auto-replies and receipts are never
messages; staff answer by email too."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine
from anymail.inbound import AnymailInboundMessage
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging import actions
from messaging.models import Entry
from notifications.inbound import inbound_mail
from notifications.models import Delivery, InboundMessage, NotificationPreferences
from notifications.reply_addresses import STAFF_SIDE, reply_address

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
URL = "/anymail/postmark/inbound/"
AUTH = "Basic " + base64.b64encode(b"postmark:webhook-secret").decode()
DAYTIME = dt.datetime(2025, 5, 15, 14, 15, tzinfo=dt.UTC)
# A real Gmail reply (crisp-oss/email-reply-parser, MIT): new words over a wrapped "On … wrote:"
# header and the quoted history.
GMAIL = FIXTURES / "email" / "replies" / "crisp__email_gmail_split_line_from"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(DAYTIME, tick=True):
        yield


def payload(*, to: str, sender: str = "sarah@example.com", text: str = "", **extra) -> dict:
    """Postmark's inbound JSON (tests/fixtures/postmark/inbound-parsed.json, from
    django-anymail's tests, BSD), addressed and filled in for this test."""
    data = json.loads((FIXTURES / "postmark" / "inbound-parsed.json").read_text())
    data = copy.deepcopy(data)
    data["FromFull"] = {"Email": sender, "Name": "Sarah Mitchell", "MailboxHash": ""}
    # Postmark's first header is the envelope sender: a real reply's is its From, which the
    # fixture's SPF_PASS then vouches for (inbound_mail.authentication).
    data["Headers"][0] = {"Name": "Return-Path", "Value": f"<{sender}>"}
    data["ToFull"] = [{"Email": to, "Name": "", "MailboxHash": ""}]
    data["CcFull"], data["BccFull"] = [], []
    data["OriginalRecipient"] = to
    data["TextBody"], data["HtmlBody"] = text, ""
    data["Attachments"] = []
    data["Headers"] = [h for h in data["Headers"] if h["Name"].lower() != "message-id"]
    data["Headers"].append(
        {"Name": "Message-ID", "Value": extra.pop("message_id", "<r1@mail.example>")}
    )
    data.update(extra)
    return data


def post(client, data, *, auth=AUTH):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return client.post(URL, data=json.dumps(data), content_type="application/json", **headers)


def raw_payload(raw: bytes, *, to: str) -> dict:
    """Postmark's inbound JSON carrying the whole message as RawEmail."""
    data = payload(to=to)
    data["RawEmail"] = raw.decode("utf-8", errors="replace")
    return data


def test_a_gmail_reply_shows_only_her_new_words_in_her_thread(
    client, fake_postmark, customer, thread, committed
):
    with committed():
        response = post(
            client, payload(to=reply_address(thread.pk), text=Path(f"{GMAIL}.txt").read_text())
        )
    assert response.status_code == 200
    entry = Entry.objects.get()
    assert (entry.kind, entry.channel) == (Entry.Kind.CUSTOMER_REPLY, Entry.Channel.EMAIL)
    assert entry.body == Path(f"{GMAIL}.expected.txt").read_text().strip()
    assert entry.idempotency_key == "email:<r1@mail.example>"
    assert "wrote:" not in entry.body and "Respond" not in entry.body


def test_the_same_email_posted_twice_shows_once(client, fake_postmark, customer, thread):
    data = payload(to=reply_address(thread.pk), text="Thursday works.")
    assert post(client, data).status_code == 200
    assert post(client, data).status_code == 200
    assert Entry.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_an_html_only_reply_is_read_as_text(client, fake_postmark, customer, thread):
    html = (
        "<div dir=ltr>Yes, <b>8am</b> is fine.<br>Thanks!</div><div class=gmail_quote>"
        "<div class=gmail_attr>On Thu, May 15, 2025 at 10:15 AM Mike wrote:</div>"
        "<blockquote class=gmail_quote>Does 8am work?</blockquote></div>"
    )
    post(client, payload(to=reply_address(thread.pk), text="", HtmlBody=html))
    assert Entry.objects.get().body == "Yes, 8am is fine.\nThanks!"


def test_a_raw_email_in_another_charset_is_decoded(client, fake_postmark, customer, thread):
    message = EmailMessage()
    message["From"] = "Sarah Mitchell <sarah@example.com>"
    message["To"] = reply_address(thread.pk)
    message["Subject"] = "=?iso-8859-1?q?R=E9ponse?="
    message["Message-ID"] = "<latin1@mail.example>"
    message.set_content(
        "Très bien, à jeudi.\n\nLe jeu. 15 mai 2025 à 10:15, Mike a écrit :\n> Jeudi ?\n",
        charset="iso-8859-1",
        cte="quoted-printable",
    )
    post(client, raw_payload(message.as_bytes(), to=reply_address(thread.pk)))
    entry = Entry.objects.get()
    assert entry.body == "Très bien, à jeudi."
    assert InboundMessage.objects.get().subject == "Réponse"


def test_a_raw_windows_1252_subject_decodes_to_its_characters():
    # Outlook and older clients send 8-bit Windows-1252 headers without RFC 2047 words; the
    # email package keeps the bytes as surrogates and prints replacement characters.
    raw = (
        b"From: Sarah Mitchell <sarah@example.com>\r\nTo: reply@example.com\r\n"
        b"Subject: Caf\xe9 \x93deck\x94 \x96 price\r\nMessage-ID: <cp1252@mail.example>\r\n"
        b"\r\nHello\r\n"
    )
    message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
    assert inbound_mail.header(message, "Subject") == "Caf\u00e9 \u201cdeck\u201d \u2013 price"


def test_a_raw_utf8_subject_from_the_corpus_still_decodes():
    # mailgun/flanker's broken-headers.eml (Apache-2.0, kinds/SOURCES.md): raw UTF-8 bytes.
    raw = (FIXTURES / "email" / "kinds" / "human-spam-8bit-subject.eml").read_bytes()
    message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
    assert inbound_mail.header(message, "Subject") == "Forget Asking For A Link Exchange\u2026"


def test_an_encoded_word_subject_still_decodes():
    raw = b"Subject: =?windows-1252?q?Caf=E9_=93deck=94?=\r\n\r\nHello\r\n"
    message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
    assert inbound_mail.header(message, "Subject") == "Caf\u00e9 \u201cdeck\u201d"


def test_mail_to_her_address_from_someone_else_waits_for_staff(
    client, fake_postmark, customer, thread
):
    post(client, payload(to=reply_address(thread.pk), sender="mallory@example.net", text="Hi"))
    assert not Entry.objects.exists()
    inbound = InboundMessage.objects.get()
    assert inbound.status == "unmatched" and "not from sarah@example.com" in inbound.reason


@pytest.mark.parametrize(
    "to",
    [
        "reply+999.0123456789abcdef@porchlight.localhost",
        "reply+1.forged@porchlight.localhost",
        "office@mikescontracting.example",
    ],
    ids=["unknown-token", "forged-token", "business-address"],
)
def test_forged_unknown_or_plain_addresses_never_reach_a_thread(
    client, fake_postmark, customer, thread, to
):
    post(client, payload(to=to, text="Hello"))
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "unmatched"


def test_addresses_are_compared_normalised(client, fake_postmark, customer, thread):
    post(
        client,
        payload(to=reply_address(thread.pk).upper(), sender="Sarah@Example.COM", text="Case"),
    )
    assert Entry.objects.get().body == "Case"


def test_a_staff_reply_by_email_reaches_the_customer_like_a_chat_message(
    client, fake_twilio, fake_postmark, customer, thread, staff, committed
):
    staff.email = "mike@mikescontracting.example"
    staff.save()
    address = reply_address(thread.pk, STAFF_SIDE)
    with committed():
        post(
            client,
            payload(to=address, sender="MIKE@mikescontracting.example", text="See you at 8."),
        )
    entry = Entry.objects.get()
    assert (entry.kind, entry.channel, entry.author) == (Entry.Kind.STAFF_MESSAGE, "email", staff)
    assert [m.body for m in fake_twilio.messages] == ["See you at 8."]


def test_a_customer_cannot_write_as_staff_through_the_staff_address(
    client, fake_postmark, customer, thread
):
    post(client, payload(to=reply_address(thread.pk, STAFF_SIDE), text="I am Mike now"))
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "unmatched"


def test_photos_attached_to_a_reply_become_photos_and_other_files_are_kept_for_staff(
    client, fake_postmark, customer, thread, staff
):
    from io import BytesIO

    from django.test import Client
    from PIL import Image

    staff_client, customer_client = Client(), Client()
    staff_client.force_login(staff)
    customer_client.force_login(customer.user)

    out = BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 90)).save(out, "JPEG")
    data = payload(to=reply_address(thread.pk), text="Photos attached")
    data["Attachments"] = [
        {
            "Name": "deck.jpg",
            "Content": base64.b64encode(out.getvalue()).decode(),
            "ContentType": "image/jpeg",
            "ContentLength": len(out.getvalue()),
        },
        {
            "Name": "quote.xlsx",
            "Content": base64.b64encode(b"PK\x03\x04 a spreadsheet").decode(),
            "ContentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "ContentLength": 20,
        },
    ]
    post(client, data)
    entry = Entry.objects.get()
    photo, sheet = entry.attachments.order_by("pk")
    assert (photo.content_type, photo.staff_only) == ("image/jpeg", False)
    assert (sheet.name, sheet.staff_only) == ("quote.xlsx", True)
    assert customer_client.get(f"/attachments/{sheet.pk}/").status_code == 404
    assert staff_client.get(f"/attachments/{sheet.pk}/")["Content-Disposition"].startswith(
        "attachment"
    )
    assert (
        "quote.xlsx"
        in staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode()
    )
    assert "quote.xlsx" not in customer_client.get("/messages/").content.decode()


def test_an_oversized_attachment_is_left_out_with_a_note_and_the_words_kept(
    client, fake_postmark, customer, thread
):
    data = payload(to=reply_address(thread.pk), text="Big file attached")
    big = b"%PDF-1.4 " + b"0" * (6 * 1024 * 1024)
    data["Attachments"] = [
        {
            "Name": "plans.pdf",
            "Content": base64.b64encode(big).decode(),
            "ContentType": "application/pdf",
            "ContentLength": len(big),
        }
    ]
    assert post(client, data).status_code == 200
    assert Entry.objects.get(kind="customer_reply").body == "Big file attached"
    assert "larger than 5 MB" in Entry.objects.get(kind="internal_note").body


def test_a_20_mb_attachment_is_left_out_with_a_note_under_the_default_limit(
    client, fake_postmark, customer, thread
):
    # 20 MB is about 27 MB as base64 in the JSON: under INBOUND_EMAIL_MAX_BYTES (30 MB)
    data = payload(to=reply_address(thread.pk), text="The survey, as promised")
    big = b"%PDF-1.4 " + b"0" * (20 * 1024 * 1024)
    data["Attachments"] = [
        {
            "Name": "survey.pdf",
            "Content": base64.b64encode(big).decode(),
            "ContentType": "application/pdf",
            "ContentLength": len(big),
        }
    ]
    assert post(client, data).status_code == 200
    assert Entry.objects.get(kind="customer_reply").body == "The survey, as promised"
    assert "survey.pdf" in Entry.objects.get(kind="internal_note").body


def test_an_unknown_charset_in_the_body_still_lands_as_text(
    client, fake_postmark, customer, thread
):
    raw = (
        b"From: Sarah Mitchell <sarah@example.com>\r\n"
        + f"To: {reply_address(thread.pk)}\r\n".encode()
        + b"Subject: Re: Thursday\r\nMessage-ID: <charset@mail.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="x-no-such-charset-42"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"Thursday at 8 works for us.\r\n"
    )
    assert post(client, raw_payload(raw, to=reply_address(thread.pk))).status_code == 200
    assert Entry.objects.get().body == "Thursday at 8 works for us."


# -- not a person writing ----------------------------------------------------------------------


def test_a_read_receipt_adds_no_customer_message(client, fake_postmark, customer, thread):
    raw = (FIXTURES / "email" / "kinds" / "read-receipt-rfc-mdn.eml").read_bytes()
    raw = re.sub(rb"(?im)^From: .*$", b"From: Sarah Mitchell <sarah@example.com>", raw, count=1)
    assert post(client, raw_payload(raw, to=reply_address(thread.pk))).status_code == 200
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "automatic"


def test_an_out_of_office_adds_no_customer_message(client, fake_postmark, customer, thread):
    raw = (
        FIXTURES / "email" / "kinds" / "auto-reply-exchange-out-of-office-subject-only.eml"
    ).read_bytes()
    raw = re.sub(rb"(?im)^From: .*$", b"From: Sarah Mitchell <sarah@example.com>", raw, count=1)
    assert post(client, raw_payload(raw, to=reply_address(thread.pk))).status_code == 200
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "automatic"


def test_a_bounce_fails_the_email_it_answers_and_the_next_notification_goes_by_sms(
    client, fake_twilio, fake_postmark, customer, thread, staff, committed, settings
):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        sms_enabled=False,
        quiet_hours_enabled=False,
    )
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Invoice ready")
    (sent,) = fake_postmark.emails
    # A real Postfix bounce (mailgun/flanker's fixtures, Apache-2.0: see the corpus's
    # SOURCES.md), now quoting the Message-ID of the email we sent and naming her address
    # (a bounce counts only for the address we sent that email to).
    raw = (FIXTURES / "email" / "kinds" / "bounce-postfix-user-unknown.eml").read_bytes()
    raw = raw.replace(b"<20090708054735.GC7578@zedshaw>", sent.headers["Message-ID"].encode())
    raw = raw.replace(
        b"asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com", b"sarah@example.com"
    )
    with committed():
        assert post(client, raw_payload(raw, to="bounces@porchlight.localhost")).status_code == 200
    assert not Entry.objects.filter(kind="customer_reply").exists()
    assert Delivery.objects.get(entry=entry, channel="email").status == "failed"
    assert [m.body for m in fake_twilio.messages] == ["Invoice ready"]
    note = Entry.objects.get(kind="internal_note")
    assert (
        note.body.startswith("Email to sarah@example.com bounced")
        and "sent by SMS instead" in note.body
    )
    with committed():
        later = actions.post_staff_message(thread=thread, author=staff, body="Crew at 8")
    assert set(Delivery.objects.filter(entry=later).values_list("channel", flat=True)) == {"sms"}


# -- who may call it, and what it takes --------------------------------------------------------


@pytest.mark.parametrize(
    "auth", ["", "Basic " + base64.b64encode(b"postmark:wrong").decode(), "Bearer x"]
)
def test_wrong_or_missing_basic_auth_is_refused_and_writes_nothing(
    client, fake_postmark, customer, thread, auth
):
    response = post(client, payload(to=reply_address(thread.pk), text="Hi"), auth=auth)
    assert response.status_code in (401, 403)
    assert not InboundMessage.objects.exists() and not Entry.objects.exists()


def test_without_a_webhook_secret_inbound_mail_is_refused(
    client, fake_postmark, customer, thread, settings
):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
    assert post(client, payload(to=reply_address(thread.pk), text="Hi")).status_code == 403
    assert not InboundMessage.objects.exists()


def test_a_payload_over_the_limit_is_refused_without_reading_it(
    client, fake_postmark, customer, thread, settings
):
    settings.INBOUND_EMAIL_MAX_BYTES = 1000
    data = payload(to=reply_address(thread.pk), text="x" * 2000)
    assert post(client, data).status_code == 413
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"RawEmail": 12}',
        b'{"FromFull": "nope", "ToFull": 3}',
        b'{"RawEmail": "\\u0000\\u0001 garbage"}',
    ],
    ids=["not-json", "a-list", "raw-not-text", "wrong-shapes", "garbage-raw"],
)
def test_mangled_payloads_are_a_4xx_or_a_recorded_message_never_a_500(
    client, fake_postmark, customer, thread, body
):
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    assert response.status_code < 500
    assert not Entry.objects.exists()


def test_nul_characters_in_ids_and_addresses_are_dropped_not_a_500(
    client, fake_postmark, customer, thread
):
    # Found by the fuzzing of tests/reliability (R4): PostgreSQL refuses NUL in text.
    data = payload(to=reply_address(thread.pk), text="Thursday works", message_id="<a\x00b@x>")
    data["OriginalRecipient"] = reply_address(thread.pk) + "\x00"
    assert post(client, data).status_code == 200
    assert InboundMessage.objects.get().provider_id == "<ab@x>"


def test_an_empty_reply_with_only_a_quote_is_recorded_for_staff(
    client, fake_postmark, customer, thread
):
    text = "\n\nOn Thu, May 15, 2025 at 10:15 AM Mike <mike@example.com> wrote:\n> Does 8 work?\n"
    assert post(client, payload(to=reply_address(thread.pk), text=text)).status_code == 200
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "rejected"


def test_an_html_bomb_is_recorded_for_staff_in_bounded_time(
    client, fake_postmark, customer, thread
):
    # 200,000 nested elements: the HTML reader gives up past its depth limit rather than
    # follow it, so nothing readable is left: a rejection staff can look at, not a 500.
    html = "<div>" * 200_000 + "Deep words" + "</div>" * 10
    started = time.perf_counter()
    assert (
        post(client, payload(to=reply_address(thread.pk), text="", HtmlBody=html)).status_code
        == 200
    )
    assert time.perf_counter() - started < 10
    assert not Entry.objects.exists()
    assert InboundMessage.objects.get().status == "rejected"


def test_the_reply_address_command_prints_a_customers_address(customer, thread, capsys):
    call_command("reply_address", "sarah@example.com")
    assert capsys.readouterr().out.strip() == reply_address(thread.pk)


mangled = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda s: json.dumps(s).encode(),
        st.dictionaries(
            st.sampled_from(
                [
                    "RawEmail",
                    "TextBody",
                    "HtmlBody",
                    "FromFull",
                    "ToFull",
                    "Headers",
                    "Attachments",
                    "MessageID",
                    "Subject",
                ]
            ),
            st.one_of(
                st.text(max_size=200),
                st.integers(),
                st.lists(st.text(max_size=20), max_size=3),
                st.none(),
            ),
        ),
    ),
    st.builds(
        lambda s: json.dumps(
            {"RawEmail": s, "FromFull": {"Email": "sarah@example.com"}, "ToFull": []}
        ).encode(),
        st.text(max_size=600),
    ),
)


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=mangled)
def test_two_thousand_mangled_inbound_payloads_never_cause_a_500(
    client, fake_postmark, customer, thread, body
):
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    assert response.status_code < 500


def test_a_raw_mime_message_from_the_corpus_parses(customer, thread):
    # Guard: the corpus messages are what the webhook's raw path reads.
    raw = (FIXTURES / "email" / "kinds" / "human-iphone-reply.eml").read_bytes()
    assert message_from_bytes(raw, policy=policy.default)["From"]
