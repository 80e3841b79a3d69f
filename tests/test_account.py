"""/account/ (issue 20): the customer's own name, phone and email, a code to the new value
before it replaces the old one, a card staff see, routing that follows at once; and the
devices signed in as them, with "sign out everywhere"."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client

from messaging import actions
from messaging.models import Entry
from notifications.models import NotificationPreferences
from portal.models import SignedInDevice

NEW = "+15555550199"


def _code(fake_twilio, to: str) -> str:
    return re.search(r"#(\d{6})$", [m for m in fake_twilio.messages if m.to == to][-1].body)[1]


def _ask_for(client, committed, **post):
    with committed():
        return client.post("/account/contact/", post)


def test_the_account_page_shows_her_details_and_devices(customer_client, customer):
    html = customer_client.get("/account/").content.decode()
    assert "Sarah Mitchell" in html and "(555) 555-0123" in html and "sarah@example.com" in html
    assert "Sign out everywhere" in html


def test_sarah_changes_her_phone_and_the_next_staff_message_texts_the_new_number(
    customer_client, customer, thread, staff, fake_twilio, committed, caplog
):
    response = _ask_for(customer_client, committed, **{"phone-value": "(555) 555-0199"})
    assert response.url == "/account/confirm/"
    # The code goes to the new number, and nothing has changed yet.
    assert [m.to for m in fake_twilio.messages] == [NEW]
    customer.refresh_from_db()
    assert customer.phone == "+15555550123"

    with committed():
        response = customer_client.post("/account/confirm/", {"code": _code(fake_twilio, NEW)})
    assert response.url == "/account/"
    customer.refresh_from_db()
    assert customer.phone == NEW
    assert (
        "Your mobile number is now (555) 555-0199."
        in customer_client.get("/account/").content.decode()
    )
    assert f"customer {customer.pk} updated: phone" in caplog.text  # the CRM's call point

    card = Entry.objects.get(thread=thread, card_kind=Entry.CardKind.ACCOUNT)
    assert card.body == (
        "Sarah Mitchell changed their mobile number from (555) 555-0123 to (555) 555-0199"
    )
    staff_client = Client()
    staff_client.force_login(staff)
    assert card.body in staff_client.get(f"/staff/chat/{thread.pk}/").content.decode()

    # No quiet hours whatever the real clock says: the text goes now, to the new number.
    prefs, _ = NotificationPreferences.objects.get_or_create(
        customer=customer, defaults={"time_zone": customer.time_zone}
    )
    prefs.quiet_hours_enabled = False
    prefs.save()
    fake_twilio.messages.clear()
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="Crew at 8 tomorrow.")
    assert [m.to for m in fake_twilio.messages] == [NEW]


def test_a_wrong_code_changes_nothing_and_says_so(
    customer_client, customer, thread, fake_twilio, committed
):
    _ask_for(customer_client, committed, **{"phone-value": NEW})
    right = _code(fake_twilio, NEW)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    response = customer_client.post("/account/confirm/", {"code": wrong})
    assert response.status_code == 400
    assert "doesn&#x27;t work" in response.content.decode()
    customer.refresh_from_db()
    assert customer.phone == "+15555550123"
    assert not Entry.objects.filter(card_kind=Entry.CardKind.ACCOUNT).exists()


def test_a_sign_in_code_cannot_confirm_a_change(
    client, customer_client, customer, fake_twilio, committed
):
    # Someone signs in with the new number's own sign-in code (a stranger's): it is not a
    # confirmation code for Sarah's change.
    _ask_for(customer_client, committed, **{"phone-value": NEW})
    fake_twilio.messages.clear()
    with committed():
        client.post("/login/", {"address": NEW, "method": "code"})
    assert fake_twilio.messages == []  # nobody has that number yet: no sign-in code
    response = customer_client.post("/account/confirm/", {"code": "000000"})
    assert response.status_code == 400


def test_a_number_on_another_account_is_refused_after_the_code_and_nothing_changes(
    customer_client, customer, other_customer, fake_twilio, committed
):
    _ask_for(customer_client, committed, **{"phone-value": other_customer.phone})
    with committed():
        response = customer_client.post(
            "/account/confirm/", {"code": _code(fake_twilio, other_customer.phone)}
        )
    assert response.url == "/account/"
    page = customer_client.get("/account/").content.decode()
    assert "is on another account here" in page
    customer.refresh_from_db()
    assert customer.phone == "+15555550123"
    assert not Entry.objects.filter(card_kind=Entry.CardKind.ACCOUNT).exists()


@pytest.mark.parametrize(
    ("post", "error"),
    [
        ({"phone-value": "12"}, "is not a phone number"),
        ({"phone-value": "sarah@example.com"}, "Enter a mobile number here"),
        ({"email-value": "sarah@"}, "valid email address"),
        ({"email-value": "+15555550199"}, "Enter an email address here"),
    ],
)
def test_bad_new_details_get_a_clear_400_and_send_nothing(
    customer_client, customer, fake_twilio, committed, post, error
):
    response = _ask_for(customer_client, committed, **post)
    assert response.status_code == 400 and error in response.content.decode()
    assert fake_twilio.messages == [] and mail.outbox == []


def test_a_new_email_is_confirmed_by_a_code_sent_to_it(
    customer_client, customer, thread, committed
):
    _ask_for(customer_client, committed, **{"email-value": "Sarah.M@Example.net"})
    (email,) = mail.outbox
    assert email.to == ["sarah.m@example.net"]
    code = re.search(r"#(\d{6})", email.body)[1]
    customer_client.post("/account/confirm/", {"code": code})
    customer.refresh_from_db()
    assert customer.email == "sarah.m@example.net"


def test_her_name_changes_at_once_with_a_card(customer_client, customer, thread):
    assert customer_client.post("/account/name/", {"name": "  Sarah  Okafor "}).url == "/account/"
    customer.refresh_from_db()
    assert customer.name == "Sarah Okafor"
    card = Entry.objects.get(card_kind=Entry.CardKind.ACCOUNT)
    assert card.body == "Sarah Mitchell changed their name to Sarah Okafor"
    response = customer_client.post("/account/name/", {"name": "   "})
    assert response.status_code == 400


def test_staff_following_the_card_open_the_customer_in_the_admin(staff_client, customer):
    response = staff_client.get(f"/account/?customer={customer.pk}")
    assert response.url == f"/admin/portal/customer/{customer.pk}/change/"


# -- devices ----------------------------------------------------------------------------------


def _sign_in(committed, fake_twilio, *, keep: bool, agent: str = "") -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    with committed():
        client.post("/login/", {"address": "+15555550123", "method": "code"})
    data = {"code": _code(fake_twilio, "+15555550123")}
    if keep:
        data["keep"] = "on"
    assert client.post("/login/code/", data).status_code == 302
    return client


def test_each_sign_in_is_listed_and_one_can_be_signed_out(customer, fake_twilio, committed):
    phone = _sign_in(committed, fake_twilio, keep=True, agent="Mozilla/5.0 (iPhone) Safari/1")
    laptop = _sign_in(committed, fake_twilio, keep=False, agent="Mozilla/5.0 (Windows) Edg/1")
    page = laptop.get("/account/").content.decode()
    assert "Safari on iPhone" in page and "Edge on Windows" in page and "this device" in page
    device = SignedInDevice.objects.get(label="Safari on iPhone")
    assert laptop.post("/account/devices/sign-out/", {"device": device.pk}).url == "/account/"
    assert phone.get("/messages/").status_code == 302  # the phone is signed out
    assert laptop.get("/messages/").status_code == 200


def test_another_customers_device_cannot_be_signed_out(
    customer, other_customer, fake_twilio, committed
):
    _sign_in(committed, fake_twilio, keep=False)
    device = SignedInDevice.objects.get(customer=customer)
    daniel = Client()
    daniel.force_login(other_customer.user)
    daniel.post("/account/devices/sign-out/", {"device": device.pk})
    assert SignedInDevice.objects.filter(pk=device.pk).exists()


def test_sign_out_everywhere_ends_every_session_this_one_too(customer, fake_twilio, committed):
    phone = _sign_in(committed, fake_twilio, keep=True)
    laptop = _sign_in(committed, fake_twilio, keep=False)
    forced = Client()
    forced.force_login(customer.user)  # a session from before devices were listed
    assert laptop.post("/account/sign-out-everywhere/").url == "/login/"
    for client in (phone, laptop, forced):
        assert client.get("/messages/").status_code == 302
    assert SignedInDevice.objects.count() == 0


def test_a_kept_session_gets_a_new_key_each_day_of_use_and_the_old_cookie_dies(
    customer, fake_twilio, committed
):
    client = _sign_in(committed, fake_twilio, keep=True)
    old_key = client.session.session_key
    stolen = Client()
    stolen.cookies["sessionid"] = old_key
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=1)):
        assert client.get("/messages/").status_code == 200
        new_key = client.cookies["sessionid"].value
        assert new_key != old_key
        assert client.session.get_expiry_age() == pytest.approx(90 * 24 * 3600, abs=5)
        assert SignedInDevice.objects.get().session_key == new_key
        assert stolen.get("/messages/").status_code == 302
        assert client.get("/messages/").status_code == 200


def test_the_account_page_needs_a_full_session(client, customer, thread, staff):
    from portal import entry_links

    entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    path = entry_links.link_path(
        customer_id=customer.pk, entry_id=entry.pk, seq=entry.seq, via="email"
    )
    client.post(path)
    assert client.get("/messages/").status_code == 200
    assert client.get("/account/").url.startswith("/login/?address=%2B15555550123")
    assert client.post("/account/sign-out-everywhere/").url.startswith("/login/?")
    assert SignedInDevice.objects.filter(customer=customer).exists()


@pytest.mark.parametrize("devices", [1, 8])
def test_the_account_page_query_count_is_constant(
    customer, fake_twilio, committed, devices, django_assert_num_queries
):
    clients = [_sign_in(committed, fake_twilio, keep=n % 2 == 0) for n in range(devices)]
    # user, customer+business, devices
    with django_assert_num_queries(3):
        assert clients[0].get("/account/").status_code == 200


def test_the_hourly_task_forgets_what_guards_nothing_any_more(
    customer, thread, staff, fake_twilio, committed
):
    from portal import devices, entry_links
    from portal.models import SignInCode, SpentNotificationLink
    from portal.tasks import forget_spent_sign_ins

    _sign_in(committed, fake_twilio, keep=False)  # a used code and a device
    entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    path = entry_links.link_path(
        customer_id=customer.pk, entry_id=entry.pk, seq=entry.seq, via="sms"
    )
    entry_links.spend(entry_links.read(path.split("/")[2])[0])
    assert forget_spent_sign_ins.delay().get() == {"codes": 0, "links": 0, "devices": 0}
    # Past two weeks and a day: the session, the code and the link are all long dead.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=15, minutes=1)
    with time_machine.travel(later, tick=False):
        assert devices.forget_spent_sign_ins() == {"codes": 1, "links": 1, "devices": 1}
    assert not SignInCode.objects.exists() and not SpentNotificationLink.objects.exists()
