"""R13: forged bounces (issue 18 item 1). Forty customers have three notification emails
each, really sent through anymail's Postmark backend to the fake: 120 deliveries "sent".
An attacker who can send mail to the reply domain writes bounces, at the issue's size and
beyond, quoting Message-IDs they can guess or have seen. Not one delivery fails, no address
is marked bouncing, no SMS goes out; a real bounce for a real email to its real recipient
still fails exactly that email. Time and Python memory (tracemalloc's peak) per attack."""

from __future__ import annotations

import datetime as dt
import json
import time
import tracemalloc

import pytest
import time_machine

from messaging import actions
from notifications.models import Delivery, InboundMessage, NotificationPreferences
from notifications.reply_addresses import reply_address
from tests.factories import CustomerFactory, ThreadFactory
from tests.notifications.test_inbound_email import AUTH, raw_payload

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)
URL = "/anymail/postmark/inbound/"
CUSTOMERS, EMAILS_EACH = 40, 3


def bounce(*, failed: list[str], references: list[str], sender: str) -> bytes:
    return (
        f"From: {sender}\r\n"
        f"To: {reply_address(1)}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce-{time.monotonic_ns()}@evil.example>\r\n"
        f"X-Failed-Recipients: {', '.join(failed)}\r\n"
        f"References: {' '.join(references)}\r\n"
        "\r\nThis is the mail system at host evil.example. Your message could not be "
        "delivered.\r\n"
    ).encode()


def state() -> tuple:
    statuses = tuple(Delivery.objects.order_by("pk").values_list("status", flat=True))
    bounced = NotificationPreferences.objects.filter(email_bounced_at__isnull=False).count()
    return statuses, bounced


def measure(client, make) -> tuple[int, float, int]:
    """(status, seconds, peak bytes of Python memory) of one attack: the time from a run
    without tracemalloc (it slows allocation), the memory from a second copy of the attack
    (a new Message-ID, so the same work again) run under it."""

    def send():
        body = json.dumps(raw_payload(make(), to=reply_address(1)))
        return client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=AUTH)

    started = time.perf_counter()
    response = send()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    send()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return response.status_code, seconds, peak


def test_forged_bounces_fail_nothing_and_a_real_one_fails_only_its_email(
    client, fake_twilio, fake_postmark, business, staff, committed, settings, figures
):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    with time_machine.travel(DAYTIME, tick=True):
        customers = [
            CustomerFactory(business=business, email=f"customer{n}@example.com")
            for n in range(CUSTOMERS)
        ]
        for customer in customers:
            # Email only, so that a fallback SMS could only come from a believed bounce.
            NotificationPreferences.objects.create(
                customer=customer, time_zone=customer.time_zone, sms_enabled=False
            )
            thread = ThreadFactory(customer=customer)
            for n in range(EMAILS_EACH):
                with committed():
                    actions.post_staff_message(thread=thread, author=staff, body=f"Update {n}")
        emails = list(Delivery.objects.filter(channel="email").order_by("pk"))
        assert len(emails) == CUSTOMERS * EMAILS_EACH
        assert {d.status for d in emails} == {"sent"}
        sent_ids = [e.headers["Message-ID"] for e in fake_postmark.emails]
        everyone = [c.email for c in customers]
        pks = [d.pk for d in emails]
        texts_before, before = len(fake_twilio.messages), state()

        attacks = {  # each a function: every call writes a new forged bounce
            # The issue's: guessable ids with a made-up suffix, the first 119 deliveries.
            "119 guessed ids (issue 18)": lambda: bounce(
                sender="MAILER-DAEMON@evil.example",
                failed=everyone,
                references=[f"<delivery-{pk}.000000000000@x>" for pk in pks[:119]],
            ),
            "120 ids in our format, signature zeros": lambda: bounce(
                sender="MAILER-DAEMON@evil.example",
                failed=everyone,
                references=[f"<delivery-{pk}.{'0' * 24}@porchlight.localhost>" for pk in pks],
            ),
            "one real id, bounced for everyone else": lambda: bounce(
                sender="postmaster@evil.example",
                failed=[a for a in everyone if a != customers[0].email],
                references=[sent_ids[0]],
            ),
            "all 120 real ids at once": lambda: bounce(
                sender="MAILER-DAEMON@evil.example", failed=everyone, references=sent_ids
            ),
            "10,000 guessed ids": lambda: bounce(
                sender="MAILER-DAEMON@evil.example",
                failed=everyone,
                references=[f"<delivery-{n}.{'0' * 24}@x>" for n in range(1, 10_001)],
            ),
        }
        results = {}
        for name, make in attacks.items():
            with committed():
                results[name] = measure(client, make)
        after, texts_after = state(), len(fake_twilio.messages)

        # The control: a real bounce, for one real email, naming its recipient.
        def real():
            return bounce(
                sender="MAILER-DAEMON@mx.example.com",
                failed=[customers[0].email],
                references=[sent_ids[0]],
            )

        with committed():
            control = measure(client, real)

    assert {status for status, _, _ in results.values()} == {200}
    assert after == before
    assert texts_after == texts_before
    assert len(fake_twilio.messages) == texts_before + 1  # the control's fallback SMS
    recorded = InboundMessage.objects.filter(status="automatic").count()
    assert recorded == 2 * (len(attacks) + 1)
    failed = list(Delivery.objects.filter(channel="email", status="failed"))
    assert [d.recipient for d in failed] == [customers[0].email]
    assert control[0] == 200

    def one(name: str) -> str:
        _, seconds, peak = results[name]
        return f"{name}: {seconds * 1000:.0f} ms, {peak / 1e6:.1f} MB"

    figures(
        f"{len(emails)} emails sent to {CUSTOMERS} customers; {len(attacks)} forged bounces "
        f"({'; '.join(one(name) for name in attacks)}) -> 0 deliveries failed, "
        f"0 addresses marked bouncing, 0 SMS; a real bounce for one real email -> "
        f"{len(failed)} failed (theirs)"
    )
