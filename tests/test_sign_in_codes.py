"""Sign-in by code (issue 20): a phone gets six digits by SMS (through the real twilio client
to the fake Twilio), an email a code or a link; ten minutes, once, five wrong tries; throttled
per address, per client and for the whole site; nothing tells who is a customer."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail

from portal.models import SignedInDevice, SignInCode
from tests.factories import CustomerFactory, UserFactory

LUIS = "+15555550177"


@pytest.fixture
def luis(business):
    """A phone-only customer."""
    return CustomerFactory(
        business=business, name="Luis Ramirez", user__username="luis", email="", phone=LUIS
    )


def _ask(client, committed, address: str, method: str = "code", **extra):
    with committed():
        return client.post("/login/", {"address": address, "method": method}, **extra)


def _code(fake_twilio, to: str = LUIS) -> str:
    body = [m for m in fake_twilio.messages if m.to == to][-1].body
    return re.search(r"#(\d{6})$", body).group(1)


def _signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def test_a_phone_gets_a_code_by_sms_and_the_code_signs_in(client, luis, fake_twilio, committed):
    response = _ask(client, committed, "(555) 555-0177")
    assert response.status_code == 302 and response.url == "/login/code/"
    [sms] = fake_twilio.messages
    assert sms.to == LUIS
    # The last line lets the phone offer the code to this site alone (WebOTP / autofill).
    assert re.search(r"\n@127\.0\.0\.1 #\d{6}$", sms.body)
    assert "expires in 10 minutes" in sms.body

    page = client.get("/login/code/").content.decode()
    assert 'autocomplete="one-time-code"' in page
    assert "(555) 555-0177" in page

    response = client.post("/login/code/", {"code": _code(fake_twilio)})
    assert response.status_code == 302 and response.url == "/messages/"
    assert _signed_in_as(client) == str(luis.user.pk)
    assert client.get("/messages/").status_code == 200


def test_known_and_unknown_numbers_get_the_same_answer_and_strangers_no_text(
    client, luis, fake_twilio, committed
):
    known = _ask(client, committed, LUIS)
    known_page = client.get(known.url).content.decode()
    stranger = _ask(client, committed, "+15555550999")
    stranger_page = client.get(stranger.url).content.decode()

    def same(html, shown):
        html = html.replace(shown, "NUMBER")
        html = re.sub(r'nonce="[^"]+"', "", html)
        html = re.sub(r"address=[^\"&]+", "", html)
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", html)

    assert known.status_code == stranger.status_code == 302
    assert same(known_page, "(555) 555-0177") == same(stranger_page, "(555) 555-0999")
    assert [m.to for m in fake_twilio.messages] == [LUIS]
    # A guess for the stranger's number is refused with the same words as a wrong code.
    response = client.post("/login/code/", {"code": "123456"})
    assert response.status_code == 400 and "doesn&#x27;t work" in response.content.decode()
    assert _signed_in_as(client) is None


def test_codes_are_stored_hashed(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    code = _code(fake_twilio)
    row = SignInCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert row.customer == luis and row.failures == 0 and row.used_at is None


def test_a_code_works_once(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    code = _code(fake_twilio)
    assert client.post("/login/code/", {"code": code}).status_code == 302
    client.logout()
    _ask(client, committed, "+15555550999")  # a session waiting on a code again
    client.session.save()
    session = client.session
    session["porchlight_code_for"] = {"address": LUIS, "next": ""}
    session.save()
    response = client.post("/login/code/", {"code": code})
    assert response.status_code == 400
    assert _signed_in_as(client) is None


def test_a_code_expires_after_ten_minutes(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    code = _code(fake_twilio)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10, seconds=1)
    with time_machine.travel(later, tick=False):
        response = client.post("/login/code/", {"code": code})
    assert response.status_code == 400
    assert "expired (codes last 10 minutes)" in response.content.decode()
    assert _signed_in_as(client) is None


def test_five_wrong_tries_kill_the_code_even_for_the_right_one_after(
    client, luis, fake_twilio, committed
):
    _ask(client, committed, LUIS)
    code = _code(fake_twilio)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [client.post("/login/code/", {"code": wrong}).status_code for _ in range(5)]
    assert answers == [400] * 5
    assert client.post("/login/code/", {"code": code}).status_code == 400
    assert SignInCode.objects.get().failures == 5
    assert _signed_in_as(client) is None


def test_a_new_code_replaces_the_earlier_one(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    first = _code(fake_twilio)
    _ask(client, committed, LUIS)
    second = _code(fake_twilio)
    if first != second:
        assert client.post("/login/code/", {"code": first}).status_code == 400
    assert client.post("/login/code/", {"code": second}).status_code == 302


@pytest.mark.parametrize("raw", ["555", "call me", "+1 555", "sarah@", "@example.com", ""])
def test_a_malformed_address_is_a_clear_400_and_sends_nothing(
    client, luis, fake_twilio, committed, raw
):
    response = _ask(client, committed, raw)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert fake_twilio.messages == [] and mail.outbox == []
    assert SignInCode.objects.count() == 0


def test_an_email_address_may_choose_a_code(client, customer, committed):
    response = _ask(client, committed, "Sarah@Example.com", method="code")
    assert response.url == "/login/code/"
    [email] = mail.outbox
    code = re.search(r"#(\d{6})", email.body).group(1)
    assert email.to == ["sarah@example.com"] and code in email.subject
    assert client.post("/login/code/", {"code": code}).url == "/messages/"
    assert _signed_in_as(client) == str(customer.user.pk)


def test_a_staff_account_never_gets_a_code(client, staff, fake_twilio, committed):
    staff.email = "mike@example.com"
    staff.save()
    _ask(client, committed, "mike@example.com")
    assert mail.outbox == [] and SignInCode.objects.count() == 0


def test_the_code_page_without_a_request_goes_back_to_sign_in(client, db):
    assert client.get("/login/code/").url == "/login/"
    assert client.post("/login/code/", {"code": "123456"}).url == "/login/"


def test_next_is_followed_only_within_the_site(client, luis, fake_twilio, committed):
    with committed():
        client.post("/login/", {"address": LUIS, "method": "code", "next": "https://evil.example/"})
    assert client.post("/login/code/", {"code": _code(fake_twilio)}).url == "/messages/"
    client.logout()
    with committed():
        client.post("/login/", {"address": LUIS, "method": "code", "next": "/schedule/"})
    assert client.post("/login/code/", {"code": _code(fake_twilio)}).url == "/schedule/"


# -- throttles --------------------------------------------------------------------------------


def test_code_requests_are_throttled_per_number_alike_for_known_and_unknown(
    client, luis, fake_twilio, committed, settings
):
    settings.RATE_SIGN_IN_CODES_PER_ADDRESS = "3/h"
    known = [_ask(client, committed, LUIS).status_code for _ in range(5)]
    stranger = [_ask(client, committed, "+15555550999").status_code for _ in range(5)]
    assert known == stranger == [302, 302, 302, 429, 429]
    assert len(fake_twilio.messages) == 3


def test_code_requests_are_throttled_per_client_and_for_the_whole_site(
    client, db, fake_twilio, committed, settings
):
    settings.RATE_SIGN_IN_CODES_PER_CLIENT = "4/h"
    settings.RATE_SIGN_IN_CODES_GLOBAL = "8/h"
    answers = [_ask(client, committed, f"+1555555{1000 + i}").status_code for i in range(6)]
    assert answers == [302] * 4 + [429] * 2
    assert _ask(client, committed, LUIS, REMOTE_ADDR="203.0.113.9").status_code == 302

    # 7 counted so far across two clients (refused requests count too): the site's 8th
    # passes, and no one else's after it, from any client.
    spread = [
        _ask(client, committed, f"+1555555{2000 + i}", REMOTE_ADDR=f"198.51.100.{i}").status_code
        for i in range(3)
    ]
    assert spread == [302, 429, 429]


def test_guesses_are_throttled_per_client_even_across_numbers(
    client, luis, fake_twilio, committed, settings
):
    settings.RATE_CODE_GUESSES_PER_CLIENT = "6/h"
    _ask(client, committed, LUIS)
    code = _code(fake_twilio)
    for i in range(6):
        session = client.session
        session["porchlight_code_for"] = {"address": f"+1555555{3000 + i}", "next": ""}
        session.save()
        assert client.post("/login/code/", {"code": "000000"}).status_code == 400
    session = client.session
    session["porchlight_code_for"] = {"address": LUIS, "next": ""}
    session.save()
    # Over the limit even the right code waits: guessing gets nowhere.
    response = client.post("/login/code/", {"code": code})
    assert response.status_code == 429
    assert _signed_in_as(client) is None


def test_keep_me_signed_in_lasts_90_days_and_lists_the_device(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    response = client.post(
        "/login/code/",
        {"code": _code(fake_twilio), "keep": "on"},
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36",
    )
    assert client.session.get_expiry_age() == 90 * 24 * 3600
    # A persistent cookie, not a browser-session one: the installed app keeps it too.
    assert response.cookies["sessionid"]["max-age"] == 90 * 24 * 3600
    device = SignedInDevice.objects.get(customer=luis)
    assert device.kept and device.label == "Chrome on Android"
    assert device.session_key == client.session.session_key


def test_without_keep_the_session_is_the_ordinary_two_weeks(client, luis, fake_twilio, committed):
    _ask(client, committed, LUIS)
    client.post("/login/code/", {"code": _code(fake_twilio)})
    assert client.session.get_expiry_age() == 14 * 24 * 3600
    assert not SignedInDevice.objects.get(customer=luis).kept


def test_an_inactive_customer_gets_no_code(client, business, fake_twilio, committed):
    CustomerFactory(business=business, phone=LUIS, user=UserFactory(is_active=False))
    _ask(client, committed, LUIS)
    assert fake_twilio.messages == []


def test_without_twilio_the_console_provider_prints_the_code_as_under_make_run(
    client, luis, committed, settings, caplog
):
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_FROM_NUMBER = ""
    with caplog.at_level("INFO"):
        _ask(client, committed, "555-555-0177")
    code = re.search(r"SMS \(console\) to \+15555550177 .*#(\d{6})", caplog.text, re.S)[1]
    assert client.post("/login/code/", {"code": code}).url == "/messages/"


def test_a_filled_in_phone_reads_as_people_write_it(client, db):
    page = client.get("/login/", {"address": "+15555550123"}).content.decode()
    assert 'value="(555) 555-0123"' in page
