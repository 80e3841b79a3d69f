"""R3: every webhook the project mounts, called with a missing, forged or misdirected
signature, or with no secret configured on our side, is refused (401/403), and not one row
of any model changes. Each request carries a body that would write if it were accepted (a
reply, a carrier's opt-out, a bounce, an invoice), and the same body correctly signed is
accepted at the end, so the refusals are the signature's doing."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import time_machine
from django.apps import apps
from django.test import override_settings
from django.urls import URLResolver, get_resolver
from twilio.request_validator import RequestValidator

from messaging import actions
from notifications.models import Delivery, NotificationPreferences
from notifications.reply_addresses import reply_address
from notifications.unsubscribe import unsubscribe_path, unsubscribe_token
from tests.crm_events.conftest import SECRET as CRM_SECRET
from tests.crm_events.conftest import invoice_event, signed_headers
from tests.notifications.test_inbound_email import payload as inbound_email

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)  # 10am in New York: nothing held
SITE = "http://127.0.0.1:8000"  # SITE_URL: the public URL Twilio signs
SARAH = "+15555550123"

# The views that accept a POST without a CSRF token: the open doors. Each is a webhook
# checked below (or the one-click unsubscribe link, signed per customer, which mail
# providers POST without cookies: RFC 8058), except the CSP report endpoint, which browsers
# call without any credential by design (it writes no rows: violations go to the log).
WEBHOOK_ROUTES = {
    "webhooks/twilio/sms/",
    "webhooks/twilio/status/",
    "anymail/<slug:esp>/<str:kind>/",
    "api/crm/events/",
    "email/unsubscribe/<str:token>/",
}
NOT_SIGNED_BY_DESIGN = {"csp-report/"}


@dataclass
class Attempt:
    webhook: str
    case: str
    send: Callable[[], object]  # returns the response
    expected: int


def csrf_exempt_routes() -> set[str]:
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif getattr(pattern.callback, "csrf_exempt", False):
                yield prefix + str(pattern.pattern)

    return set(walk(get_resolver().url_patterns))


def every_row() -> dict[str, set[str]]:
    """Every row of every model, as text (the database holds this test's few rows)."""
    return {
        model._meta.label: set(map(repr, model._base_manager.order_by().values_list()))
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    }


def rows_changed(before: dict, after: dict) -> dict[str, int]:
    return {label: len(before[label] ^ after[label]) for label in before} | {
        label: len(after[label]) for label in after.keys() - before.keys()
    }


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


# -- each webhook's requests ----------------------------------------------------------------


def twilio_attempts(client, fake_twilio, name: str, path: str, form: dict) -> list[Attempt]:
    url = f"{SITE}{path}"

    def sign(data: dict, *, for_url: str = url, token: str = fake_twilio.auth_token) -> str:
        return RequestValidator(token).compute_signature(for_url, data)

    def post(data: dict, **headers):
        return lambda: client.post(path, data, **headers)

    other_path = "/webhooks/twilio/status/" if "sms" in path else "/webhooks/twilio/sms/"
    tampered = {**form, "Body" if "Body" in form else "ErrorCode": "changed after signing"}
    good = sign(form)
    attempts = [
        ("missing signature", post(form)),
        ("empty signature", post(form, HTTP_X_TWILIO_SIGNATURE="")),
        ("garbage signature", post(form, HTTP_X_TWILIO_SIGNATURE="forged")),
        ("another account's token", post(form, HTTP_X_TWILIO_SIGNATURE=sign(form, token="x"))),
        ("signed for another body", post(tampered, HTTP_X_TWILIO_SIGNATURE=good)),
        (
            "signed for another webhook's URL",
            post(form, HTTP_X_TWILIO_SIGNATURE=sign(form, for_url=f"{SITE}{other_path}")),
        ),
        (
            "signed for another host",
            post(form, HTTP_X_TWILIO_SIGNATURE=sign(form, for_url=f"https://evil.example{path}")),
        ),
    ]
    result = [Attempt(name, case, send, 403) for case, send in attempts]

    def without_token():
        with override_settings(TWILIO_AUTH_TOKEN=""):
            return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=good)

    result.append(Attempt(name, "no auth token configured", without_token, 403))
    return result


def anymail_attempts(client, name: str, path: str, body: dict, settings) -> list[Attempt]:
    data = json.dumps(body)

    def post(authorization: str | None):
        headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
        return lambda: client.post(path, data=data, content_type="application/json", **headers)

    attempts = [
        ("missing credentials", post(None)),
        ("empty credentials", post("")),
        ("wrong password", post(basic("postmark:not-the-secret"))),
        ("wrong user", post(basic("mallory:webhook-secret"))),
        ("password without user", post(basic("webhook-secret"))),
        ("not basic auth", post("Bearer postmark:webhook-secret")),
        ("malformed base64", post("Basic %%%not-base64")),
    ]
    result = [Attempt(name, case, send, 401) for case, send in attempts]
    anymail = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}

    def without_secret():
        with override_settings(ANYMAIL=anymail):
            return post(basic("postmark:webhook-secret"))()

    result.append(Attempt(name, "no webhook secret configured", without_secret, 403))
    return result


def crm_attempts(client) -> list[Attempt]:
    path = "/api/crm/events/"
    body = json.dumps(invoice_event()).encode()
    now = dt.datetime.now(dt.UTC)

    def post(data: bytes, headers: dict):
        return lambda: client.post(path, data=data, content_type="application/json", **headers)

    good = signed_headers(body, msg_id="msg_r3")
    other_key = "whsec_" + base64.b64encode(b"not-the-crm-key-at-all-32-bytes!").decode()
    attempts = [
        ("missing signature headers", post(body, {})),
        (
            "signature header only",
            post(body, {"HTTP_WEBHOOK_SIGNATURE": good["HTTP_WEBHOOK_SIGNATURE"]}),
        ),
        ("another key", post(body, signed_headers(body, msg_id="msg_r3", secret=other_key))),
        ("signed for another body", post(body.replace(b"4200.00", b"1.00"), good)),
        ("signed for another webhook id", post(body, {**good, "HTTP_WEBHOOK_ID": "msg_other"})),
        (
            "signed ten minutes ago",
            post(body, signed_headers(body, msg_id="msg_r3", at=now - dt.timedelta(minutes=10))),
        ),
        (
            "signed ten minutes ahead",
            post(body, signed_headers(body, msg_id="msg_r3", at=now + dt.timedelta(minutes=10))),
        ),
        ("malformed signature", post(body, {**good, "HTTP_WEBHOOK_SIGNATURE": "v1,%%%"})),
    ]
    result = [Attempt("CRM events", case, send, 401) for case, send in attempts]

    def without_secret():
        with override_settings(CRM_WEBHOOK_SECRET=""):
            return post(body, good)()

    result.append(Attempt("CRM events", "no secret configured", without_secret, 401))
    return result


def unsubscribe_attempts(client, customer, other_customer, thread) -> list[Attempt]:
    """The one-click unsubscribe link: its signature is the credential (RFC 8058)."""
    number, _, signature = unsubscribe_token(customer.pk).partition(".")
    # A signature of ours for something else: Sarah's reply address's.
    reply_signature = reply_address(thread.pk).partition(".")[2].partition("@")[0]
    tokens = [
        ("no signature", number),
        ("empty signature", f"{number}."),
        ("forged signature", f"{number}.{'0' * len(signature)}"),
        ("another customer's signature", f"{number}.{unsubscribe_token(other_customer.pk)[-24:]}"),
        ("her signature on another customer", f"{other_customer.pk}.{signature}"),
        ("a reply address's signature", f"{number}.{reply_signature}"),
        ("no such customer", f"999999.{signature}"),
    ]

    def post(token: str):
        return lambda: client.post(
            f"/email/unsubscribe/{token}/",
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )

    return [Attempt("email unsubscribe", case, post(token), 404) for case, token in tokens]


# -- the test --------------------------------------------------------------------------------


def test_bad_or_missing_signatures_on_every_webhook_are_refused_and_write_nothing(
    client,
    fake_twilio,
    fake_postmark,
    customer,
    other_customer,
    project,
    thread,
    staff,
    committed,
    settings,
    figures,
):
    # Every open door is a webhook below (a new one fails here until it is added).
    assert csrf_exempt_routes() == WEBHOOK_ROUTES | NOT_SIGNED_BY_DESIGN

    settings.CRM_WEBHOOK_SECRET = CRM_SECRET
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    with time_machine.travel(DAYTIME, tick=True):
        # A message really sent by SMS and by email, for the status webhooks to name.
        with committed():
            entry = actions.post_staff_message(thread=thread, author=staff, body="Deck's done")
        sms = Delivery.objects.get(entry=entry, channel="sms")
        email = Delivery.objects.get(entry=entry, channel="email")
        assert (sms.status, email.status) == ("sent", "sent")

        sms_path = "/webhooks/twilio/sms/"
        text, _ = fake_twilio.inbound(f"{SITE}{sms_path}", sender=SARAH, body="Let me in")
        status_path = f"/webhooks/twilio/status/?d={sms.pk}"
        # Accepted, this would fail the SMS, opt Sarah out and email her instead.
        opt_out = {"MessageSid": sms.provider_id, "MessageStatus": "failed", "ErrorCode": "21610"}
        bounce = {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "MessageID": email.provider_id,
            "Email": customer.email,
            "BouncedAt": "2025-05-15T10:21:00Z",
            "Description": "Mailbox does not exist",
            "ID": 42,
        }
        reply = inbound_email(to=reply_address(thread.pk), text="Forged reply")
        esp = settings.EMAIL_BACKEND.split(".")[2]
        tracking, inbound = f"/anymail/{esp}/tracking/", f"/anymail/{esp}/inbound/"
        attempts = [
            *twilio_attempts(client, fake_twilio, "Twilio inbound SMS", sms_path, text),
            *twilio_attempts(client, fake_twilio, "Twilio status", status_path, opt_out),
            *anymail_attempts(client, "email tracking", tracking, bounce, settings),
            *anymail_attempts(client, "email inbound", inbound, reply, settings),
            *crm_attempts(client),
            *unsubscribe_attempts(client, customer, other_customer, thread),
        ]

        before = every_row()
        answers = [(a, a.send().status_code) for a in attempts]
        after = every_row()

        # The same bodies, correctly signed, are accepted and do write (the control).
        accepted = [
            client.post(
                sms_path,
                text,
                HTTP_X_TWILIO_SIGNATURE=RequestValidator(fake_twilio.auth_token).compute_signature(
                    f"{SITE}{sms_path}", text
                ),
            ),
            client.post(
                status_path,
                opt_out,
                HTTP_X_TWILIO_SIGNATURE=RequestValidator(fake_twilio.auth_token).compute_signature(
                    f"{SITE}{status_path}", opt_out
                ),
            ),
            *(
                client.post(
                    path,
                    data=json.dumps(body),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=basic("postmark:webhook-secret"),
                )
                for path, body in ((tracking, bounce), (inbound, reply))
            ),
            client.post(
                "/api/crm/events/",
                data=json.dumps(invoice_event()).encode(),
                content_type="application/json",
                **signed_headers(json.dumps(invoice_event()).encode(), msg_id="msg_r3"),
            ),
            client.post(
                unsubscribe_path(customer.pk),
                "List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            ),
        ]
        controlled = every_row()

    wrong = [(a.webhook, a.case, code) for a, code in answers if code != a.expected]
    assert wrong == []
    changed = {label: n for label, n in rows_changed(before, after).items() if n}
    assert changed == {}
    assert [r.status_code for r in accepted] == [200] * 6
    written = {label: n for label, n in rows_changed(after, controlled).items() if n}
    for model in ("messaging.Entry", "notifications.InboundMessage", "crm_events.Invoice"):
        assert written.get(model), written
    sms.refresh_from_db()
    email.refresh_from_db()
    assert (sms.status, email.status) == ("failed", "failed")
    assert NotificationPreferences.objects.get(customer=customer).email_enabled is False

    refused = sum(code in (401, 403, 404) for _, code in answers)
    webhooks = {a.webhook for a in attempts}
    figures(
        f"{len(answers)} forged/unsigned requests to {len(webhooks)} webhooks -> "
        f"{100 * refused / len(answers):.0f}% refused (401/403/404), "
        f"{sum(changed.values())} writes across {len(before)} models"
    )
