"""Notification links (issue 20): the link in a customer's email, SMS or push signs that
customer in once, for a day, into a session limited to the thread, and opens the entry."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from messaging import actions
from portal import entry_links
from portal.models import SignedInDevice
from tests.factories import CustomerFactory, StaffUserFactory, ThreadFactory, UserFactory

DAYTIME = dt.datetime(2025, 5, 15, 14, 15, tzinfo=dt.UTC)  # 10:15am in New York
BODY = "Hi Sarah, how did the deck come out?"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


@pytest.fixture
def emailed(fake_postmark, thread, staff, committed, clock):
    """Staff write to Sarah; the email goes out after its delay. (entry, link path)."""
    from notifications.outbound import outbox

    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body=BODY)
    clock.shift(dt.timedelta(minutes=5))
    with committed():
        outbox.sweep_deliveries()
    (email,) = fake_postmark.emails
    path = re.search(r"View in Portal: http://127\.0\.0\.1:8000(/open/\S+/)", email.text)[1]
    return entry, path


def _user_of(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def _fallback(response) -> dict:
    assert response.status_code == 302
    parts = urlsplit(response.url)
    assert parts.path == "/login/"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_sarah_taps_the_email_link_after_her_session_is_gone_and_lands_on_the_message(
    client, customer, emailed
):
    entry, path = emailed
    page = client.get(path)
    # Opening it (as a mail scanner does) shows one button and signs no one in.
    assert page.status_code == 200
    assert page.content.decode().count('type="submit"') == 1
    assert _user_of(client) is None

    response = client.post(path)
    assert response.status_code == 302 and response.url == f"/messages/?at={entry.seq}"
    assert _user_of(client) == str(customer.user.pk)
    thread_page = client.get(response.url)
    assert thread_page.status_code == 200 and BODY in thread_page.content.decode()


def test_the_same_link_twice_signs_no_one_in_and_offers_sign_in_with_her_address(
    client, customer, emailed
):
    entry, path = emailed
    client.post(path)
    other = Client()
    for response in (other.get(path), other.post(path)):
        query = _fallback(response)
        assert query == {
            "address": "sarah@example.com",
            "next": f"/messages/?at={entry.seq}",
            "expired": "1",
        }
    assert _user_of(other) is None
    login = other.get("/login/", query).content.decode()
    assert 'value="sarah@example.com"' in login and "expired or was used already" in login
    assert 'name="next" value="/messages/?at=' in login


def test_a_link_past_its_day_falls_back_to_sign_in(client, customer, emailed, clock):
    _, path = emailed
    clock.shift(dt.timedelta(days=1, seconds=1))
    assert _fallback(client.post(path))["address"] == "sarah@example.com"
    assert _user_of(client) is None


@pytest.mark.parametrize("token", ["nope", "eyJjIjoxfQ:1uFZ7w:forged", "a" * 300])
def test_a_forged_or_cut_link_gets_a_clear_400(client, customer, token):
    for response in (client.get(f"/open/{token}/"), client.post(f"/open/{token}/")):
        assert response.status_code == 400
        assert "doesn't work" in response.content.decode()
    assert _user_of(client) is None


def test_a_link_session_reaches_the_thread_only_until_a_code(
    client, customer, emailed, fake_twilio, committed
):
    _, path = emailed
    client.post(path)
    assert client.get("/messages/").status_code == 200
    assert client.session.get_expiry_age() == 12 * 3600
    assert SignedInDevice.objects.get(customer=customer).scope == "thread"
    for page in ("/project/", "/settings/notifications/", "/invoices/"):
        query = _fallback(client.get(page))
        assert query == {"address": "+15555550123", "next": page, "verify": "1"}
    # A code to her phone on file lifts the limit.
    with committed():
        client.post("/login/", {"address": "+15555550123", "method": "code", "next": "/project/"})
    code = re.search(r"#(\d{6})$", fake_twilio.messages[-1].body)[1]
    assert client.post("/login/code/", {"code": code}).url == "/project/"
    assert client.get("/project/").status_code == 200
    assert SignedInDevice.objects.get(customer=customer).scope == "full"


def test_signed_in_already_as_that_customer_goes_straight_there_and_keeps_the_link(
    customer_client, customer, emailed
):
    entry, path = emailed
    response = customer_client.get(path)
    assert response.url == f"/messages/?at={entry.seq}"
    assert not entry_links.spent(entry_links.read(path.split("/")[2])[0])


def test_a_link_is_bound_to_its_customer_and_entry_and_never_signs_in_staff(
    client, customer, thread, other_customer, staff
):
    entry = actions.post_staff_message(thread=thread, author=staff, body=BODY)

    def link(customer_id):
        return entry_links.link_path(
            customer_id=customer_id, entry_id=entry.pk, seq=entry.seq, via="email"
        )

    # Daniel's id with Sarah's entry: refused.
    _fallback(client.post(link(other_customer.pk)))
    # A customer record on a staff account: refused.
    boss = CustomerFactory(user=StaffUserFactory(username="boss"), email="boss@example.com")
    ThreadFactory(customer=boss)
    _fallback(client.post(link(boss.pk)))
    assert _user_of(client) is None


def test_two_racing_taps_sign_in_once(customer, thread, staff):
    entry = actions.post_staff_message(thread=thread, author=staff, body=BODY)
    path = entry_links.link_path(
        customer_id=customer.pk, entry_id=entry.pk, seq=entry.seq, via="sms"
    )
    link, fresh = entry_links.read(path.split("/")[2])
    assert fresh
    assert [entry_links.spend(link), entry_links.spend(link)] == [customer, None]


def test_an_sms_links_fallback_offers_the_phone(client, business, staff):
    luis = CustomerFactory(business=business, email="", phone="+15555550177", user=UserFactory())
    thread = ThreadFactory(customer=luis)
    entry = actions.post_staff_message(thread=thread, author=staff, body="Roof tomorrow")
    path = entry_links.link_path(customer_id=luis.pk, entry_id=entry.pk, seq=entry.seq, via="sms")
    client.post(path)
    client.logout()
    assert _fallback(client.post(path))["address"] == "+15555550177"


def test_failed_links_count_against_the_clients_sign_in_attempts(
    client, customer, emailed, settings
):
    settings.RATE_LOGIN_LINKS_PER_CLIENT = "4/h"
    _, path = emailed
    client.post(path)  # the sign-in itself is the first of the four
    client.logout()
    answers = [client.get(path).status_code for _ in range(2)]  # spent
    answers += [client.get("/open/forged/").status_code for _ in range(3)]
    assert answers == [302, 302, 400, 429, 429]
    assert _user_of(client) is None
