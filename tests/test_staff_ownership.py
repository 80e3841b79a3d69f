"""Owning a conversation: the assignee control (list row and chat modal), the staff-only note
a reassignment leaves, the assignee hearing of a customer's messages by their own
preferences, @mentions in notes, and who wrote each staff entry (staff see it, customers do
not). Personas: mike (staff, assigns), kim (staff, assigned), sarah (customer), and a
customer account that is not staff."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from messaging import actions
from messaging.models import Entry
from notifications.models import Delivery
from notifications.outbound import preferences
from portal.actions import assign_customer
from tests.factories import StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)  # 10am in New York
SIGNED_URL = "http://127.0.0.1:8000/webhooks/twilio/sms/"


@pytest.fixture(autouse=True)
def daytime():
    with time_machine.travel(DAYTIME, tick=True):
        yield


@pytest.fixture
def staff(db):
    # No usable password: hashing one costs most of a second per test.
    return StaffUserFactory(username="mike", first_name="Mike", password=None)


@pytest.fixture
def kim(db):
    return StaffUserFactory(
        username="kim", first_name="Kim", email="kim@example.com", password=None
    )


def assign(client, customer, assignee_id, *, htmx=True, where="row", row=None):
    data = {"assignee": "" if assignee_id is None else assignee_id, "where": where}
    if row:
        data["row"] = row
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"/staff/customers/{customer.pk}/assignee/", data, **headers)


def text_in(client, fake_twilio, customer, body):
    form, signature = fake_twilio.inbound(SIGNED_URL, sender=customer.phone, body=body)
    response = client.post("/webhooks/twilio/sms/", form, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    return Entry.objects.get(idempotency_key=f"twilio:{form['MessageSid']}")


# -- the assignee control ----------------------------------------------------------------------


def test_staff_assign_a_customer_from_a_list_row_and_the_control_says_so(
    staff_client, customer, thread, project, kim
):
    response = assign(staff_client, customer, kim.pk, row=project.pk)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="assignee-row-{project.pk}"' in html
    assert "Assignee for Sarah Mitchell" in html
    assert f'<option value="{kim.pk}" selected>Kim</option>' in html
    assert "Assigned to Kim." in html
    customer.refresh_from_db()
    assert customer.assigned_to == kim


def test_the_list_and_the_chat_show_an_assignee_control_named_for_the_customer(
    staff_client, customer, thread, project, kim
):
    assign_customer(customer=customer, assignee=kim)
    page = staff_client.get("/staff/projects/").content.decode()
    assert '<label class="visually-hidden" for="assignee-row-' in page
    assert "Assignee for Sarah Mitchell" in page
    assert f'<option value="{kim.pk}" selected>Kim</option>' in page
    chat = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="assignee-chat-{customer.pk}"' in chat
    assert "Assignee for Sarah Mitchell" in chat


def test_without_javascript_the_form_posts_and_returns_to_the_page(
    staff_client, customer, thread, kim
):
    response = assign(staff_client, customer, kim.pk, htmx=False, where="chat")
    assert response.status_code == 302
    assert response["Location"] == "/staff/projects/"  # no `next`: the list
    customer.refresh_from_db()
    assert customer.assigned_to == kim


@pytest.mark.parametrize("who", ["customer account", "deactivated staff", "nobody", "not a number"])
def test_assigning_to_anyone_but_active_staff_is_refused_and_writes_nothing(
    staff_client, customer, thread, kim, who
):
    assign_customer(customer=customer, assignee=kim)
    entries = Entry.objects.count()
    target = {
        "customer account": lambda: UserFactory().pk,
        "deactivated staff": lambda: StaffUserFactory(is_active=False, password=None).pk,
        "nobody": lambda: 987654,
        "not a number": lambda: "kim",
    }[who]()
    for htmx in (True, False):
        response = assign(staff_client, customer, target, htmx=htmx)
        assert response.status_code == 400
        text = response.content.decode()
        assert 'role="alert"' in text
        assert any(
            reason in text
            for reason in (
                "Only an active staff member can be assigned a customer.",
                "That staff member does not exist.",
                "Choose a staff member or Unassigned.",
            )
        )
    customer.refresh_from_db()
    assert customer.assigned_to == kim
    assert Entry.objects.count() == entries


def test_an_unknown_customer_is_404_and_customers_cannot_assign(
    client, staff_client, customer, thread, kim
):
    response = staff_client.post("/staff/customers/999999/assignee/", {"assignee": kim.pk})
    assert response.status_code == 404
    assert staff_client.get(f"/staff/customers/{customer.pk}/assignee/").status_code == 405
    client.force_login(customer.user)  # the same client: now as Sarah
    assert assign(client, customer, kim.pk).status_code == 404
    customer.refresh_from_db()
    assert customer.assigned_to is None


# -- the note a reassignment leaves ------------------------------------------------------------


def test_a_reassignment_is_a_staff_only_note_in_the_thread(
    staff_client, client, customer, thread, staff, kim, committed
):
    with committed():
        assign(staff_client, customer, kim.pk)
        assign(staff_client, customer, staff.pk)
        assign(staff_client, customer, None)
        assign(staff_client, customer, None)  # no change: no note
    notes = list(Entry.objects.filter(thread=thread).values_list("kind", "author", "body"))
    assert notes == [
        ("internal_note", staff.pk, "Mike assigned Sarah Mitchell to Kim"),
        ("internal_note", staff.pk, "Mike assigned Sarah Mitchell to Mike (was Kim)"),
        ("internal_note", staff.pk, "Mike unassigned Sarah Mitchell (was Mike)"),
    ]
    chat = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Mike assigned Sarah Mitchell to Kim" in chat
    # Nobody is notified of it, and the customer never sees it.
    assert not Delivery.objects.exists()
    client.force_login(customer.user)  # the same client: now as Sarah
    assert "assigned" not in client.get("/messages/").content.decode()
    transcript = client.get("/messages/transcript.json")
    assert transcript.status_code == 200
    assert b"assigned" not in b"".join(transcript.streaming_content)


# -- the assignee hears of the customer's messages -----------------------------------------------


def test_the_assignee_is_emailed_a_customers_text_and_the_business_is_not(
    client, fake_twilio, fake_postmark, customer, thread, kim, committed
):
    assign_customer(customer=customer, assignee=kim)
    with committed():
        entry = text_in(client, fake_twilio, customer, "Can Kim come Thursday?")
    (delivery,) = Delivery.objects.filter(entry=entry)
    assert (delivery.audience, delivery.channel, delivery.staff_user, delivery.status) == (
        "staff",
        "email",
        kim,
        "sent",
    )
    (email,) = fake_postmark.emails
    assert email.to == "kim@example.com"
    assert "Can Kim come Thursday?" in email.text
    assert f"/staff/chat/{thread.pk}/?at={entry.seq}" in email.text
    assert fake_twilio.messages == []  # the business's phone stays quiet


def test_an_unassigned_thread_tells_the_business_as_before(
    client, fake_twilio, customer, thread, kim, committed
):
    with committed():
        entry = text_in(client, fake_twilio, customer, "Anyone there?")
    (delivery,) = Delivery.objects.filter(entry=entry)
    assert (delivery.audience, delivery.channel, delivery.staff_user) == ("business", "sms", None)


def test_an_assignee_who_turned_everything_off_leaves_it_to_the_business(
    client, fake_twilio, customer, thread, kim, committed
):
    preferences.update_staff_preferences(user=kim, email_enabled=False, push_enabled=False)
    assign_customer(customer=customer, assignee=kim)
    with committed():
        entry = text_in(client, fake_twilio, customer, "Hello?")
    assert [d.audience for d in Delivery.objects.filter(entry=entry)] == ["business"]


def test_email_turned_off_after_it_was_queued_is_not_sent(
    fake_postmark, customer, thread, kim, committed
):
    assign_customer(customer=customer, assignee=kim)
    entry = actions.post_customer_reply(customer=customer, body="Queued")
    preferences.update_staff_preferences(user=kim, email_enabled=False, push_enabled=True)
    from notifications.outbound.sending import send_delivery

    (delivery,) = Delivery.objects.filter(entry=entry)
    assert send_delivery(delivery_id=delivery.pk) == "suppressed"
    delivery.refresh_from_db()
    assert delivery.last_error == "Email turned off by Kim"
    assert fake_postmark.emails == []


def test_the_assignee_gets_a_push_on_their_subscribed_device(
    fake_push, customer, thread, kim, committed
):
    info = fake_push.new_subscription()
    preferences.subscribe_staff_push(
        user=kim,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )
    preferences.update_staff_preferences(user=kim, email_enabled=False, push_enabled=True)
    assign_customer(customer=customer, assignee=kim)
    with committed():
        entry = actions.post_customer_reply(customer=customer, body="Pushed to Kim")
    (delivery,) = Delivery.objects.filter(entry=entry)
    assert (delivery.audience, delivery.channel, delivery.status) == ("staff", "push", "sent")
    assert fake_push.rejections == []
    (push,) = fake_push.pushes
    assert push.payload == {
        "title": "Sarah Mitchell",
        "body": "Pushed to Kim",
        "url": f"/staff/chat/{thread.pk}/?at={entry.seq}",
        "tag": f"staff-thread-{thread.pk}",
    }


# -- @mentions in internal notes ------------------------------------------------------------------


def test_a_mention_emails_that_staff_member_once_with_a_link_to_the_note(
    fake_postmark, customer, thread, staff, kim, committed
):
    with committed():
        note = actions.add_internal_note(
            thread=thread,
            author=staff,
            body="@kim can you call her? @KIM, see above. (cc @nobody, kim@example.com, @mike)",
        )
    deliveries = list(Delivery.objects.filter(entry=note))
    assert [(d.audience, d.channel, d.staff_user) for d in deliveries] == [("staff", "email", kim)]
    (email,) = fake_postmark.emails
    assert email.to == "kim@example.com"
    assert email.subject == "Mike mentioned you: Sarah Mitchell"
    assert "Mike mentioned you in an internal note about Sarah Mitchell" in email.text
    assert f"/staff/chat/{thread.pk}/?at={note.seq}" in email.text
    # Answering it must not write to the customer: no reply address of the thread.
    assert "reply" not in (email.reply_to or "").lower()
    assert "@nobody" in note.body  # unknown names stay text


def test_a_mention_never_reaches_the_customer(
    client, fake_postmark, fake_twilio, customer, thread, staff, kim, committed
):
    with committed():
        actions.add_internal_note(thread=thread, author=staff, body="@kim MENTION-SECRET")
    assert not Delivery.objects.filter(audience="customer").exists()
    assert [e.to for e in fake_postmark.emails] == ["kim@example.com"]
    assert fake_twilio.messages == []
    client.force_login(customer.user)
    assert "MENTION-SECRET" not in client.get("/messages/").content.decode()


def test_mentioning_a_deactivated_or_non_staff_user_tells_no_one(customer, thread, staff):
    StaffUserFactory(username="gone", is_active=False, password=None)
    UserFactory(username="outsider")
    actions.add_internal_note(thread=thread, author=staff, body="@gone @outsider @sarah")
    assert not Delivery.objects.exists()


# -- who wrote it ---------------------------------------------------------------------------------


def test_staff_see_each_author_and_customers_see_the_business(
    client, staff_client, customer, thread, staff, kim
):
    actions.post_staff_message(thread=thread, author=kim, body="From Kim", channel="sms")
    actions.add_internal_note(thread=thread, author=staff, body="Mike's note")
    chat = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="author">Kim</span>' in chat
    assert '<span class="author">Mike</span> · Internal note' in chat
    client.force_login(customer.user)
    page = client.get("/messages/").content.decode()
    assert "From Kim" in page
    assert "Mike&#x27;s Contracting" in page or "Mike's Contracting" in page
    assert 'class="author"' not in page and ">Kim<" not in page


def test_the_customers_email_names_the_business_not_the_author(
    fake_postmark, customer, thread, kim, committed, settings
):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    with committed():
        actions.post_staff_message(thread=thread, author=kim, body="Hello from the office")
    (email,) = fake_postmark.emails
    assert "sarah@example.com" in email.to
    assert "Hello from the office" in email.text
    assert "Kim" not in email.text and "Kim" not in email.html
    assert "Mike's Contracting" in email.text


def test_only_the_preferences_module_writes_staff_preferences_and_devices():
    """A static check, as tests/test_one_writer.py does for entries: a staff member's choices
    and push devices have one writer, notifications/outbound/preferences.py (sending forgets
    a device its push service says is gone, through push_to_devices)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    write = re.compile(
        r"Staff(NotificationPreferences|PushSubscription)\.objects\.(create|get_or_create|"
        r"update_or_create|bulk_create|update|filter\([^)]*\)\.(update|delete))|"
        r"Staff(NotificationPreferences|PushSubscription)\([^)]*\)\.save"
    )
    writers = sorted(
        str(path.relative_to(root))
        for app in ("portal", "messaging", "notifications", "crm_events")
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts and write.search(path.read_text())
    )
    assert writers == ["notifications/outbound/preferences.py"]


# -- a staff member's own settings -----------------------------------------------------------------


def test_staff_set_their_own_notification_preferences(client, staff_client, staff, customer):
    page = staff_client.get("/staff/settings/")
    assert page.status_code == 200
    assert "Your notifications" in page.content.decode()
    response = staff_client.post("/staff/settings/", {"email_enabled": "on"})
    assert response.status_code == 302
    from notifications.models import StaffNotificationPreferences

    prefs = StaffNotificationPreferences.objects.get(user=staff)
    assert (prefs.email_enabled, prefs.push_enabled) == (True, False)
    client.force_login(customer.user)  # the same client: now as Sarah
    assert client.get("/staff/settings/").status_code == 404
    assert client.post("/staff/settings/push/subscribe/", {}).status_code == 404


def test_a_staff_device_subscribes_and_a_bad_subscription_is_refused(
    staff_client, staff, fake_push
):
    import json

    from notifications.models import StaffPushSubscription

    url = "/staff/settings/push/subscribe/"
    info = fake_push.new_subscription()
    response = staff_client.post(url, json.dumps(info), content_type="application/json")
    assert response.status_code == 201
    assert response.json() == {"devices": 1}
    assert StaffPushSubscription.objects.get().user == staff
    bad = {**info, "endpoint": "https://push.example.net/elsewhere"}
    for body in ("[1, 2]", json.dumps(bad)):
        response = staff_client.post(url, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]
    assert StaffPushSubscription.objects.count() == 1


def test_a_refusal_answers_in_the_control_that_asked(staff_client, customer, thread, project):
    from_chat = assign(staff_client, customer, "kim", where="chat")
    assert from_chat.status_code == 400
    assert f'id="assignee-chat-{customer.pk}"' in from_chat.content.decode()
    from_row = assign(staff_client, customer, "kim", row=project.pk)
    assert f'id="assignee-row-{project.pk}"' in from_row.content.decode()
