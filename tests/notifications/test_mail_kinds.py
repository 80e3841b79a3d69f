"""Which inbound emails a person wrote: the corpus of real messages in
tests/fixtures/email/kinds/ against its expected.json, then one rule per test, each proved on a
real message with a single header changed, then hostile input."""

from __future__ import annotations

import email
import email.policy
import json
import time
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from notifications.inbound.mail_kinds import (
    MAX_PARTS,
    MailKind,
    bounced_message_ids,
    classify,
    failed_recipients,
)

KINDS = Path(__file__).resolve().parent.parent / "fixtures" / "email" / "kinds"
EXPECTED = {
    name: answer
    for name, answer in json.loads((KINDS / "expected.json").read_text()).items()
    if not name.startswith("_")
}
# Anymail hands the webhook an EmailMessage (policy.default); other callers may parse with the
# legacy compat32 policy. The answers must not depend on which.
POLICIES = pytest.mark.parametrize(
    "policy", [email.policy.default, email.policy.compat32], ids=["default", "compat32"]
)


def load(name: str, policy: email.policy.Policy = email.policy.default) -> Message:
    return email.message_from_bytes((KINDS / name).read_bytes(), policy=policy)


def from_bytes(raw: bytes, policy: email.policy.Policy = email.policy.default) -> Message:
    return email.message_from_bytes(raw, policy=policy)


def with_header(name: str, header: str, value: str) -> Message:
    """A corpus message with one header set (replacing any it had), sent through bytes and
    parsed again, as a webhook would receive it."""
    message = load(name)
    del message[header]
    message[header] = value
    return from_bytes(message.as_bytes())


# -- The corpus --------------------------------------------------------------------------------


def test_every_corpus_file_has_an_answer_and_every_answer_a_file():
    assert sorted(path.name for path in KINDS.glob("*.eml")) == sorted(EXPECTED)


def test_the_corpus_has_at_least_25_messages_and_every_kind_twice():
    kinds = [answer["kind"] for answer in EXPECTED.values()]
    assert len(kinds) >= 25
    assert {kind: kinds.count(kind) >= 2 for kind in MailKind} == dict.fromkeys(MailKind, True)


@POLICIES
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_message_gets_its_expected_answer(name, policy):
    message = load(name, policy)
    expected = EXPECTED[name]
    assert classify(message) == expected["kind"]
    assert bounced_message_ids(message) == expected["bounced_message_ids"]
    assert failed_recipients(message) == expected["failed_recipients"]


# -- Headers that mean nothing on their own ----------------------------------------------------


@pytest.mark.parametrize("value", ["bulk", "list", "junk"])
def test_precedence_bulk_alone_is_still_a_person(value):
    assert classify(with_header("human-thunderbird-reply.eml", "Precedence", value)) == "human"


def test_a_real_mailing_list_post_with_precedence_bulk_is_a_person():
    message = load("human-mailing-list-post-precedence-bulk.eml")
    assert message["Precedence"] == "bulk"
    assert classify(message) == MailKind.HUMAN


def test_x_auto_response_suppress_alone_is_still_a_person():
    message = with_header("human-iphone-reply.eml", "X-Auto-Response-Suppress", "All")
    assert classify(message) == MailKind.HUMAN


def test_auto_submitted_no_is_a_person():
    message = with_header("human-yahoo-reply-with-in-reply-to.eml", "Auto-Submitted", "no")
    assert classify(message) == MailKind.HUMAN


def test_a_message_an_exchange_rule_forwarded_is_still_a_person():
    message = with_header(
        "human-thunderbird-reply.eml", "X-MS-Exchange-Inbox-Rules-Loop", "bob@example.com"
    )
    assert classify(message) == MailKind.HUMAN


def test_all_the_meaningless_headers_together_are_still_a_person():
    message = load("human-thunderbird-reply.eml")
    message["X-Auto-Response-Suppress"] = "All"
    message["Precedence"] = "bulk"
    message["Auto-Submitted"] = "no"
    message["X-MS-Exchange-Inbox-Rules-Loop"] = "bob@example.com"
    message["X-Autoreply"] = "no"
    assert classify(from_bytes(message.as_bytes())) == MailKind.HUMAN


# -- Auto-replies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "auto-replied",
        "auto-generated",
        "auto-notified",
        "Auto-Replied",
        "auto-replied (vacation)",
        "auto-replied; owner-email=bob@example.com",
    ],
)
def test_auto_submitted_anything_but_no_is_an_auto_reply(value):
    message = with_header("human-thunderbird-reply.eml", "Auto-Submitted", value)
    assert classify(message) == MailKind.AUTO_REPLY


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Out of office"),
        ("X-Autoresponder", "true"),
        ("X-Autoreply-From", "bob@example.com"),
        ("X-Mail-Autoreply", "yes"),
        ("Precedence", "auto_reply"),
    ],
)
def test_autoresponder_headers_make_an_auto_reply(header, value):
    message = with_header("human-iphone-reply.eml", header, value)
    assert classify(message) == MailKind.AUTO_REPLY


def test_an_autoresponder_header_saying_no_is_still_a_person():
    assert classify(with_header("human-iphone-reply.eml", "X-Autoreply", "no")) == "human"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Kitchen estimate",
        "Out of Office AutoReply: Kitchen estimate",
        "Automatic reply: Kitchen estimate",
        "Autoreply: Kitchen estimate",
        "Automatische Antwort: Kostenvoranschlag",
        "Abwesenheitsnotiz: Kostenvoranschlag",
        "Réponse automatique : Devis cuisine",
        "Respuesta automática: Presupuesto",
        "Risposta automatica: Preventivo",
        "Automatisch antwoord: Offerte",
        "Resposta automática: Orçamento",
        "Autosvar: Offert",
        "Automaattinen vastaus: Tarjous",
        "Automatyczna odpowiedź: Wycena",
        "Автоматический ответ: Смета",
        "自動応答: 見積もり",
        "自动回复: 报价",
        "自动回复：报价",
        "AUTO: Smith, John is out of the office. (returning 05/01/2010)",
        "Re: Rose Bouquet Special (Automatic Response)",
    ],
)
def test_out_of_office_subjects_in_many_languages_are_auto_replies(subject):
    # A person's real reply with only its Subject changed: the subject alone decides. Sent
    # through bytes, so non-ASCII subjects arrive as RFC 2047 encoded words.
    message = with_header("human-thunderbird-reply.eml", "Subject", subject)
    assert classify(message) == MailKind.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office next week?",
        "Re: automatic reply settings for the crew",
        "Auto: transmission quote",
        "Re: Out of Office",
        "Reply automatically turned off",
    ],
)
def test_a_person_mentioning_out_of_office_is_still_a_person(subject):
    message = with_header("human-thunderbird-reply.eml", "Subject", subject)
    assert classify(message) == MailKind.HUMAN


def test_a_spam_complaint_report_is_not_a_person():
    message = EmailMessage()
    message["From"] = "staff@hotmail.com"
    message["Subject"] = "complaint about message from 192.0.2.1"
    message.set_content("This is an email abuse report.")
    message.make_mixed()
    message.replace_header("Content-Type", "multipart/report; report-type=feedback-report")
    assert classify(from_bytes(message.as_bytes())) == MailKind.AUTO_REPLY


# -- Bounces -----------------------------------------------------------------------------------


def test_a_postfix_bounce_names_the_original_message_id():
    # The Postfix bounce as it would come back for one of our notifications.
    raw = (KINDS / "bounce-postfix-user-unknown.eml").read_bytes()
    ours = b"<delivery-12.abc@porchlight.localhost>"
    message = from_bytes(raw.replace(b"<20090708054735.GC7578@zedshaw>", ours))
    assert classify(message) == MailKind.BOUNCE
    assert bounced_message_ids(message) == ["<delivery-12.abc@porchlight.localhost>"]


def test_a_bounce_that_returns_only_headers_names_the_original_message_id():
    message = load("bounce-aol-postfix-mailbox-full.eml")  # text/rfc822-headers
    assert bounced_message_ids(message) == ["<4E326A95.3010907@example.com>"]


def test_a_bounce_without_the_original_falls_back_to_in_reply_to_and_references():
    # Office 365 NDRs answer the original: In-Reply-To and References name it.
    message = with_header("bounce-exchange-2007.eml", "In-Reply-To", "<delivery-7.f00@x.test>")
    message["References"] = "<thread-3.customer@x.test> <delivery-7.f00@x.test>"
    assert bounced_message_ids(message) == [
        "<delivery-7.f00@x.test>",
        "<thread-3.customer@x.test>",
    ]


def test_a_qmail_bounce_finds_the_original_id_in_its_inline_copy():
    message = load("bounce-qmail-failure-notice.eml")
    assert classify(message) == MailKind.BOUNCE
    assert bounced_message_ids(message) == ["<000000000.9999999999999.JavaMail.postmaster@mailhub>"]


def test_x_failed_recipients_alone_makes_a_bounce():
    message = with_header("human-thunderbird-reply.eml", "X-Failed-Recipients", "a@x.test")
    assert classify(message) == MailKind.BOUNCE
    assert failed_recipients(message) == ["a@x.test"]


def test_mail_from_mailer_daemon_or_postmaster_is_a_bounce():
    for sender in ("MAILER-DAEMON@mx.example.com", "Postmaster <postmaster@example.com>"):
        assert classify(with_header("human-iphone-reply.eml", "From", sender)) == "bounce"


def test_a_bounce_carrying_auto_submitted_is_still_a_bounce():
    message = load("bounce-postfix-user-unknown.eml")
    assert message["Auto-Submitted"] == "auto-replied"
    assert classify(message) == MailKind.BOUNCE


def test_every_failed_recipient_of_a_report_is_named():
    assert failed_recipients(load("bounce-postfix-five-recipients.eml")) == [
        "bbbbvhvbbvkjbhfbvbvjhb@gmail.com",
        "bscdbcjhasbcjhbdscbhbsdhcbj@gmail.com",
        "egyfefsdvsfvvhjsd@gmail.com",
        "kfhejkfbsjkjsbhds@gmail.com",
        "qfvhgsvhgsduiohncdhcvhsdfvsfygusd@gmail.com",
    ]


def test_a_delay_warning_is_a_bounce_with_no_failed_recipient():
    message = load("bounce-sendmail-delay-warning.eml")
    assert classify(message) == MailKind.BOUNCE
    assert failed_recipients(message) == []


def test_an_empty_delivery_status_falls_back_to_x_failed_recipients():
    message = load("bounce-gmail-2025-empty-delivery-status.eml")
    assert failed_recipients(message) == ["alex.jones@fictionalcorp.com"]


def test_a_report_with_a_mangled_report_type_is_read_by_its_parts():
    raw = (KINDS / "bounce-postfix-user-unknown.eml").read_bytes()
    message = from_bytes(raw.replace(b"report-type=delivery-status", b"report-type=x"))
    assert classify(message) == MailKind.BOUNCE
    raw = (KINDS / "read-receipt-rfc-mdn.eml").read_bytes()
    message = from_bytes(raw.replace(b"report-type=disposition-notification;", b""))
    assert classify(message) == MailKind.READ_RECEIPT


def test_a_person_forwarding_a_bounce_as_an_attachment_is_still_a_person():
    message = EmailMessage()
    message["From"] = "Sarah <sarah@example.com>"
    message["Subject"] = "Fwd: Undelivered Mail Returned to Sender"
    message.set_content("Mike, your email to me bounced, see below.")
    message.add_attachment(load("bounce-postfix-user-unknown.eml"))
    forwarded = from_bytes(message.as_bytes())
    assert classify(forwarded) == MailKind.HUMAN
    assert bounced_message_ids(forwarded) == []
    assert failed_recipients(forwarded) == []


def test_only_bounces_have_bounced_ids_and_failed_recipients():
    # A person's reply has In-Reply-To; an MDN names the original; neither is a bounce.
    for name in ("human-yahoo-reply-with-in-reply-to.eml", "read-receipt-rfc-mdn.eml"):
        assert bounced_message_ids(load(name)) == []
        assert failed_recipients(load(name)) == []


# -- Read receipts -----------------------------------------------------------------------------


def test_a_disposition_notification_is_a_read_receipt_not_a_person():
    message = load("read-receipt-mdn-with-original-message.eml")
    assert classify(message) == MailKind.READ_RECEIPT


# -- Hostile input -----------------------------------------------------------------------------

HOSTILE = {
    "empty": b"",
    "binary garbage": bytes(range(256)) * 40,
    "only a From line": b"From: \r\n",
    "report without a boundary": (
        b"From: x@example.com\r\nContent-Type: multipart/report; report-type=delivery-status\r\n"
        b"\r\n--nothing\r\ngarbage\r\n"
    ),
    "report with an unclosed boundary": (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: \r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
    ),
    "broken content type": b'Content-Type: ;;;=="\r\nSubject: =?\r\n\r\nbody\r\n',
    "unknown charsets everywhere": (
        b"From: =?x-bogus?b?AAAA?= <MAILER-DAEMON@x.test>\r\n"
        b"Subject: =?x-unknown?q?=FF=FE?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\n"
        b"\xff\xfe\x00Message-ID: <a@b>\r\n"
    ),
    "base64 that is not": (
        b"From: postmaster@x.test\r\nContent-Type: multipart/report; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n!!!!\r\n--b--\r\n"
    ),
    "delivery-status at the top": b"Content-Type: message/delivery-status\r\n\r\n\r\n\r\n",
    "embedded message that is empty": (
        b"From: MAILER-DAEMON@x.test\r\nContent-Type: multipart/report; "
        b"report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822"
        b"\r\n\r\n--b--\r\n"
    ),
    "address header of nonsense": (
        b'From: <<<@@@>>> ,,, "\r\nX-Failed-Recipients: ,,, <>, @\r\n\r\nhi\r\n'
    ),
}


@POLICIES
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_never_raises(name, policy):
    message = from_bytes(HOSTILE[name], policy)
    assert classify(message) in set(MailKind)
    assert all(isinstance(i, str) and i.startswith("<") for i in bounced_message_ids(message))
    assert all(isinstance(a, str) and "@" in a for a in failed_recipients(message))


def test_a_message_with_no_headers_at_all_is_a_person():
    assert classify(Message()) == MailKind.HUMAN
    assert bounced_message_ids(Message()) == []
    assert failed_recipients(Message()) == []


def test_a_message_that_cannot_be_read_is_a_person_not_an_error():
    class Unreadable(Message):
        def get_all(self, name, failobj=None):
            raise ValueError("a policy that chokes on this header")

        def get_content_type(self):
            raise ValueError("and on this one")

    message = Unreadable()
    message["From"] = "MAILER-DAEMON@x.test"
    assert classify(message) == MailKind.HUMAN
    assert bounced_message_ids(message) == []
    assert failed_recipients(message) == []


def test_ten_thousand_parts_stay_fast():
    # Built as objects, not parsed: the stdlib parser itself takes seconds on 10,000 parts,
    # which is the webhook's cost to bound; this proves ours stays small whatever it is given.
    report = Message()
    report["From"] = "MAILER-DAEMON@x.test"
    report["Content-Type"] = "multipart/report; report-type=delivery-status"
    for i in range(10_000):
        returned = Message()
        returned["Message-ID"] = f"<m{i}@x.test>"
        part = Message()
        part["Content-Type"] = "message/rfc822"
        part.attach(returned)
        report.attach(part)
    started = time.perf_counter()
    assert classify(report) == MailKind.BOUNCE
    ids = bounced_message_ids(report)
    failed_recipients(report)
    assert time.perf_counter() - started < 0.5
    assert ids[0] == "<m0@x.test>"
    assert len(ids) < MAX_PARTS


def test_deep_nesting_does_not_exhaust_the_stack():
    top = Message()
    top["Content-Type"] = "multipart/mixed"
    current = top
    for _ in range(5_000):
        child = Message()
        child["Content-Type"] = "multipart/mixed"
        current.attach(child)
        current = child
    assert classify(top) == MailKind.HUMAN
    assert bounced_message_ids(top) == []


def test_an_unknown_charset_in_the_subject_still_reads():
    raw = b"From: bob@x.test\r\nSubject: =?x-unknown?q?Out_of_Office?=: Estimate\r\n\r\nhi\r\n"
    for policy in (email.policy.default, email.policy.compat32):
        assert classify(from_bytes(raw, policy)) == MailKind.AUTO_REPLY
