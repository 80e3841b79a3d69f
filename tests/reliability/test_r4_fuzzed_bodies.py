"""R4: 10,000 fuzzed bodies on every webhook and the main forms -> 0 x 5xx, 0 rows from
invalid input.

Each body is a deterministic mutation (seeded random) of a real payload: the provider
fixtures in tests/fixtures/, a CRM event from the API tests, a form as the page posts it.
Body i is made by its own generator, seeded by (SEED, i), so it is the same body whichever
other bodies are sent: the 10,000 are sent in PARTS parts of consecutive numbers, each a test
of its own on a fresh database, which `make test`'s two processes share out (one 100-second
test kept one process busy while the other finished the suite).
Webhook bodies are signed (or authenticated) correctly after mutation, so they pass the door
and reach parsing, validation and the actions. After every request one query counts the rows
of every table a request could write; a request answered 4xx must leave every count, and the
customer's notification settings, as they were."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
import traceback
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.http import QueryDict
from django.test import Client
from twilio.request_validator import RequestValidator

from crm_events.models import ApiEvent, Appointment, Call, Contract, Estimate, Invoice
from messaging.models import Attachment, Entry, Thread
from notifications.forms import TwilioInboundForm
from notifications.models import Delivery, InboundMessage, NotificationPreferences, PushSubscription
from portal.models import Customer, Project
from tests.crm_events.conftest import SECRET as CRM_SECRET
from tests.crm_events.conftest import invoice_event
from tests.servers import UNLIMITED_RATES

pytestmark = [pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SITE = "http://127.0.0.1:8000"
ESP_AUTH = "Basic " + base64.b64encode(b"postmark:webhook-secret").decode()
SEED = 20250515
BODIES = 10_000
PARTS = 4  # consecutive slices of body numbers, one test each

# How the 10,000 bodies are shared out.
SHARE = {
    "twilio_sms": 1900,
    "twilio_status": 1300,
    "esp_inbound": 1100,
    "esp_tracking": 1000,
    "crm_api": 1650,
    "customer_reply": 1200,
    "staff_send": 1000,
    # The settings page renders every time zone in its answer: 60 ms a post, so fewer.
    "notification_settings": 250,
    "login": 600,
}

# Every table a request from outside could write to.
COUNTED = [
    Entry,
    Attachment,
    Thread,
    InboundMessage,
    Delivery,
    NotificationPreferences,
    PushSubscription,
    ApiEvent,
    Invoice,
    Estimate,
    Appointment,
    Contract,
    Call,
    Customer,
    Project,
]
COUNT_SQL = "SELECT " + ", ".join(
    f'(SELECT COUNT(*) FROM "{model._meta.db_table}")' for model in COUNTED
)

NASTY = [
    "",
    " ",
    "\x00",
    "nul\x00byte",
    "0",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "true",
    "x" * 5000,
    "é" * 400,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀👍🏽",
    "\r\n\t",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00%ff",
    "../../../etc/passwd",
    "+15555550123",
    "+1555",
    "SM" + "a" * 32,
    "2031-02-30T25:61:00Z",
    "sarah@example.com",
    "not an email",
    "a@b",
    "{{ 7*7 }}",
]
JSON_NASTY = [*NASTY, None, True, False, 0, -1, 10**30, 1.5, 1e308, [], {}, [1, "a"], {"a": {}}]


# -- mutations --------------------------------------------------------------------------------


def mutate_form(rng: random.Random, form: dict) -> dict:
    """1-3 changes to a flat form: a value replaced, a key dropped or added, a key repeated."""
    form = dict(form)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        keys = list(form)
        if op < 0.45 and keys:
            form[rng.choice(keys)] = rng.choice(NASTY)
        elif op < 0.65 and keys:
            form.pop(rng.choice(keys))
        elif op < 0.8:
            form[rng.choice(["", "x", "Body\x00", "NumMedia", "MediaUrl0", "é"])] = rng.choice(
                NASTY
            )
        elif keys:
            key = rng.choice(keys)
            value = form[key]
            form[key] = [value if isinstance(value, str) else "", rng.choice(NASTY)]
    return form


def _mutate_json_value(rng: random.Random, value, depth: int = 0):
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(list(value))
        op = rng.random()
        value = dict(value)
        if op < 0.2:
            value.pop(key)
        elif op < 0.3:
            value[rng.choice(["", "extra", "\x00", "type"])] = rng.choice(JSON_NASTY)
        elif op < 0.6:
            value[key] = rng.choice(JSON_NASTY)
        else:
            value[key] = _mutate_json_value(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value and depth < 6:
        value = list(value)
        index = rng.randrange(len(value))
        op = rng.random()
        if op < 0.2:
            value.pop(index)
        elif op < 0.35:
            value.append(rng.choice(JSON_NASTY))
        else:
            value[index] = _mutate_json_value(rng, value[index], depth + 1)
        return value
    return rng.choice(JSON_NASTY)


def mutate_json(rng: random.Random, data) -> bytes:
    """A structural change (1-3 at random paths), sometimes the bytes mangled afterwards."""
    for _ in range(rng.randint(1, 3)):
        data = _mutate_json_value(rng, data)
    raw = json.dumps(data).encode()
    op = rng.random()
    if op < 0.1:
        raw = raw[: rng.randrange(len(raw) + 1)]
    elif op < 0.15:
        at = rng.randrange(len(raw) + 1)
        raw = (
            raw[:at]
            + rng.choice([b"\xff\xfe", b"\x00", b"}", b'"', b"\\u0000", b"\\ud800"])
            + raw[at:]
        )
    elif op < 0.18:
        raw = rng.choice([b"", b"[]", b"null", b"42", b'"text"', b"{" * 2000])
    return raw


def crm_signed_headers(body: bytes, *, msg_id: str) -> dict:
    """Standard Webhooks headers over the raw bytes (tests/crm_events/conftest.py signs text;
    a mangled body need not be UTF-8, and the CRM signs whatever bytes it sends)."""
    stamp = str(int(time.time()))
    key = base64.b64decode(CRM_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": stamp,
        "HTTP_WEBHOOK_SIGNATURE": "v1," + base64.b64encode(digest).decode(),
    }


# -- the surfaces -----------------------------------------------------------------------------


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class Surfaces:
    """Posts the i-th fuzzed body to each surface; each returns (status, valid_by_form)."""

    def __init__(self, *, auth_token, customer, thread, staff):
        self.validator = RequestValidator(auth_token)
        # A 500 comes back as a response, to be counted, not raised.
        self.anonymous = Client(raise_request_exception=False)
        self.customer_client = Client(raise_request_exception=False)
        self.customer_client.force_login(customer.user)
        self.staff_client = Client(raise_request_exception=False)
        self.staff_client.force_login(staff)
        self.thread = thread
        self.sms = {**load("twilio/inbound-sms.json"), "From": customer.phone, "Body": "Hello"}
        self.mms = {**load("twilio/inbound-mms-one-photo.json"), "From": customer.phone}
        self.statuses = [
            load("twilio/status-callback-delivered.json"),
            load("twilio/status-callback-undelivered.json"),
        ]
        inbound = load("postmark/inbound-parsed.json")
        inbound["FromFull"] = {"Email": customer.email, "Name": customer.name, "MailboxHash": ""}
        self.inbound = [inbound, load("postmark/inbound-with-raw-email.json")]
        self.tracking = [
            load(f"postmark/{name}.json")
            for name in ("delivery", "bounce-hard", "bounce-spam-complaint")
        ] + [load("postmark/subscription-change-hard-bounce.json")]
        who = {"customer": {"email": customer.email}, "project": "PRJ-1042"}
        self.events = [
            invoice_event(),
            {
                "type": "estimate.sent",
                **who,
                "data": {
                    "number": "311",
                    "currency": "USD",
                    "lines": [{"description": "Screen", "unit_price": "6200"}],
                },
            },
            {"type": "contract.sent", **who, "data": {"number": "C-12", "title": "Deck build"}},
            {
                "type": "appointment.scheduled",
                **who,
                "data": {
                    "id": "APT-77",
                    "title": "Deck install",
                    "starts_at": "2031-05-15T08:00:00-04:00",
                    "ends_at": "2031-05-15T09:00:00-04:00",
                },
            },
            {
                "type": "call.logged",
                **who,
                "data": {
                    "started_at": "2031-05-13T16:12:00-04:00",
                    "duration_seconds": 360,
                    "direction": "inbound",
                    "transcript": "cedar stain",
                    "id": "CALL-9",
                },
            },
            {"type": "message.automated", **who, "data": {"body": "Crew arriving", "urgent": True}},
        ]
        self.settings_form = {
            "sms_enabled": "on",
            "email_enabled": "on",
            "quiet_hours_enabled": "on",
            "quiet_start": "21:00",
            "quiet_end": "07:00",
            "time_zone": "America/New_York",
        }

    def _twilio(self, url: str, form: dict):
        body = urlencode(form, doseq=True)
        signature = self.validator.compute_signature(f"{SITE}{url}", QueryDict(body))
        return self.anonymous.post(
            url,
            body,
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=signature,
        )

    def twilio_sms(self, rng, i):
        base = dict(rng.choice([self.sms, self.sms, self.mms]), MessageSid=f"SM{i:032x}")
        form = mutate_form(rng, base) if rng.random() < 0.9 else base
        valid = TwilioInboundForm(QueryDict(urlencode(form, doseq=True))).is_valid()
        return self._twilio("/webhooks/twilio/sms/", form), valid

    def twilio_status(self, rng, i):
        form = mutate_form(rng, rng.choice(self.statuses))
        query = rng.choice(["", "", f"?d={i}", "?d=x", "?d=-1", "?d=" + "9" * 30])
        return self._twilio(f"/webhooks/twilio/status/{query}", form), None

    def _esp(self, kind: str, body: bytes):
        return self.anonymous.post(
            f"/anymail/postmark/{kind}/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=ESP_AUTH,
        )

    def esp_inbound(self, rng, i):
        data = json.loads(json.dumps(rng.choice(self.inbound)))
        data["MessageID"] = f"fuzz-{i}"
        return self._esp("inbound", mutate_json(rng, data)), None

    def esp_tracking(self, rng, i):
        return self._esp("tracking", mutate_json(rng, rng.choice(self.tracking))), None

    def crm_api(self, rng, i):
        body = mutate_json(rng, rng.choice(self.events))
        headers = crm_signed_headers(body, msg_id=f"msg_{i}_{uuid.UUID(int=i).hex}")
        response = self.anonymous.post(
            "/api/crm/events/", data=body, content_type="application/json", **headers
        )
        return response, None

    def customer_reply(self, rng, i):
        form = mutate_form(rng, {"body": "Is Thursday still on?", "key": f"r{i}"})
        extra = {"HTTP_HX_REQUEST": "true"} if rng.random() < 0.5 else {}
        return self.customer_client.post("/messages/send/", form, **extra), None

    def staff_send(self, rng, i):
        base = {"body": "Crew at 8", "key": f"s{i}", "internal_note": rng.choice(["", "on"])}
        form = mutate_form(rng, base)
        url = f"/staff/chat/{self.thread.pk}/send/"
        extra = {"HTTP_HX_REQUEST": "true"} if rng.random() < 0.5 else {}
        return self.staff_client.post(url, form, **extra), None

    def notification_settings(self, rng, i):
        form = mutate_form(rng, self.settings_form)
        return self.customer_client.post("/settings/notifications/", form), None

    def login(self, rng, i):
        address = rng.choice(["sarah@example.com", f"p{i}@example.com", "+15555550123"])
        form = mutate_form(rng, {"address": address, "method": rng.choice(["link", "code"])})
        return self.anonymous.post("/login/", form), None


def _where(response) -> str:
    """The exception behind a 500 and the last line of ours it passed through."""
    exc_info = getattr(response, "exc_info", None)
    if not exc_info:
        return ""
    ours = [
        f"{frame.filename.removeprefix(str(ROOT) + '/')}:{frame.lineno}"
        for frame in traceback.extract_tb(exc_info[2])
        if frame.filename.startswith(str(ROOT)) and "/.venv/" not in frame.filename
    ]
    return f"{exc_info[0].__name__}: {str(exc_info[1])[:80]} at {ours[-1] if ours else '?'}"


def counts() -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL)
        return cursor.fetchone()


def preferences(customer) -> list[dict]:
    return list(NotificationPreferences.objects.filter(customer=customer).values())


@pytest.fixture
def quiet_logs():
    """Each refusal is logged as a warning; formatting thousands of them costs seconds. (A
    500's exception is kept on its response and listed by the test.)"""
    logging.disable(logging.ERROR)
    yield
    logging.disable(logging.NOTSET)


def the_plan() -> list[str]:
    """Which surface body i goes to: SHARE's counts, shuffled by the seed."""
    plan = [name for name, n in SHARE.items() for _ in range(n)]
    random.Random(SEED).shuffle(plan)
    return plan


def test_the_parts_send_every_body_once():
    plan = the_plan()
    parts = [range(p * BODIES // PARTS, (p + 1) * BODIES // PARTS) for p in range(PARTS)]
    assert len(plan) == BODIES
    assert [i for part in parts for i in part] == list(range(BODIES))


@pytest.mark.parametrize("part", range(PARTS), ids=lambda p: f"part{p + 1}of{PARTS}")
def test_ten_thousand_fuzzed_bodies_never_5xx_and_invalid_ones_write_nothing(
    quiet_logs,
    settings,
    fake_twilio,
    fake_postmark,
    customer,
    thread,
    project,
    staff,
    figures,
    part,
):
    for name, rate in UNLIMITED_RATES.items():
        setattr(settings, name, rate)
    settings.CRM_WEBHOOK_SECRET = CRM_SECRET
    surfaces = Surfaces(
        auth_token=fake_twilio.auth_token, customer=customer, thread=thread, staff=staff
    )
    # The settings page makes the preferences row on first sight; see it once, so that every
    # later row counted is one a fuzzed body made.
    assert surfaces.customer_client.get("/settings/notifications/").status_code == 200
    plan = the_plan()
    numbers = range(part * BODIES // PARTS, (part + 1) * BODIES // PARTS)

    errors, wrote_on_refusal, form_disagrees = [], [], []
    by_status: dict[str, int] = {}
    accepted_rows = 0
    before, prefs = counts(), preferences(customer)
    for i in numbers:
        name, rng = plan[i], random.Random(f"{SEED}:{i}")
        # A savepoint per request: a database error behind a 500 would otherwise leave the
        # test's transaction unusable and hide every later answer.
        savepoint = transaction.savepoint()
        response, valid = getattr(surfaces, name)(rng, i)
        status = response.status_code
        if status >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        by_status[f"{status // 100}xx"] = by_status.get(f"{status // 100}xx", 0) + 1
        after = counts()
        if status >= 500:
            errors.append((name, i, status, _where(response)))
        elif 400 <= status < 500:
            if after != before:
                changed = [
                    m.__name__ for m, b, a in zip(COUNTED, before, after, strict=True) if a != b
                ]
                wrote_on_refusal.append((name, i, status, changed))
            if name == "notification_settings" and preferences(customer) != prefs:
                wrote_on_refusal.append((name, i, status, ["NotificationPreferences values"]))
        else:
            accepted_rows += sum(after) - sum(before)
            prefs = preferences(customer)
        if valid is False and status != 400:
            form_disagrees.append((name, i, status))
        before = after

    assert sum(by_status.values()) == len(numbers) == BODIES // PARTS
    assert errors == [], errors[:20]
    assert wrote_on_refusal == [], wrote_on_refusal[:20]
    assert form_disagrees == [], form_disagrees[:20]
    # The fuzz reached past the doors: some bodies were accepted and wrote, many refused (in
    # each part its share of the whole run's bars: more than 500 accepted, 2,000 refused).
    assert by_status.get("2xx", 0) > 500 // PARTS, by_status
    assert by_status.get("4xx", 0) > 2000 // PARTS, by_status
    assert accepted_rows > 0
    refused = by_status.get("4xx", 0)
    figures(
        f"part {part + 1} of {PARTS}, bodies {numbers[0]:,}-{numbers[-1]:,} of {BODIES:,} over "
        f"{len({plan[i] for i in numbers})} surfaces -> {len(errors)} x 5xx, "
        f"{len(wrote_on_refusal)} rows from {refused:,} refused (4xx) inputs; "
        f"{accepted_rows:,} rows from {len(numbers) - refused - len(errors):,} accepted; "
        f"answers: {', '.join(f'{k} {v:,}' for k, v in sorted(by_status.items()))}"
    )
