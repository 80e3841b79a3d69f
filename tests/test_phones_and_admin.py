"""Phone numbers in E.164, and the admin: every model there, entries read-only."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from messaging import actions
from portal.models import Customer
from portal.phones import normalize_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 555-555-0123", "+15555550123"),
        ("(555) 555-0123", "+15555550123"),
        ("555.555.0123", "+15555550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12", "not a number", "+1 555", "555-555-01234567"])
def test_malformed_phone_numbers_are_refused_with_a_reason(raw):
    with pytest.raises(ValidationError, match="not a phone number"):
        normalize_phone(raw)


@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_admin_customer_form_normalises_and_rejects_phones(admin_client, business):
    from tests.factories import UserFactory

    user = UserFactory(username="newbie")
    data = {
        "business": business.pk,
        "user": user.pk,
        "name": "New Customer",
        "email": "new@example.com",
        "time_zone": "America/New_York",
        "projects-TOTAL_FORMS": "0",
        "projects-INITIAL_FORMS": "0",
    }
    bad = admin_client.post("/admin/portal/customer/add/", {**data, "phone": "12345"})
    assert bad.status_code == 200
    assert "is not a phone number" in bad.content.decode()
    assert not Customer.objects.filter(name="New Customer").exists()

    good = admin_client.post("/admin/portal/customer/add/", {**data, "phone": "(555) 555-0199"})
    assert good.status_code == 302
    assert Customer.objects.get(name="New Customer").phone == "+15555550199"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/portal/business/",
        "/admin/portal/customer/",
        "/admin/portal/project/",
        "/admin/messaging/thread/",
        "/admin/messaging/entry/",
        "/admin/messaging/entry/?q=hello&kind__exact=staff_message",
    ],
)
def test_every_admin_list_loads_with_search_and_filters(admin_client, thread, staff, path):
    actions.post_staff_message(thread=thread, author=staff, body="hello")
    assert admin_client.get(path).status_code == 200


def test_entries_are_read_only_in_the_admin(admin_client, thread, staff):
    entry = actions.post_staff_message(thread=thread, author=staff, body="hello")
    page = admin_client.get(f"/admin/messaging/entry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="body"' not in page.content.decode()
    assert (
        admin_client.post(f"/admin/messaging/entry/{entry.pk}/change/", {"body": "x"}).status_code
        == 403
    )
    assert (
        admin_client.post(f"/admin/messaging/entry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin_client.get("/admin/messaging/entry/add/").status_code == 403
    entry.refresh_from_db()
    assert entry.body == "hello"


def test_deleting_a_customer_with_a_thread_is_refused_cleanly(admin_client, thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="hello")
    response = admin_client.post(
        f"/admin/portal/customer/{thread.customer.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 200
    assert "Cannot delete" in response.content.decode()
    assert Customer.objects.filter(pk=thread.customer.pk).exists()
