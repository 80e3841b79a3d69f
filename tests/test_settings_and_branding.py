"""Issue 18, item 24: the settings page says each thing once and lists each place once, the
staff chat dials the customer, and the admin wears the business's name."""

from __future__ import annotations

import re

import pytest

from portal.models import Customer

pytestmark = pytest.mark.django_db
SETTINGS = "/settings/notifications/"


def zone_options(page: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', page)


def test_push_being_unavailable_is_said_once_on_the_settings_page(customer_client):
    page = customer_client.get(SETTINGS).content.decode()
    assert page.count("not set up on this server") == 1
    assert "Not available on this server" not in page
    assert 'id="push-device"' not in page


def test_push_device_panel_is_there_when_the_server_can_push(customer_client, fake_push):
    page = customer_client.get(SETTINGS).content.decode()
    assert 'id="push-device"' in page
    assert "not set up on this server" not in page


def test_time_zone_list_offers_each_place_once_under_its_current_name(customer_client):
    options = zone_options(customer_client.get(SETTINGS).content.decode())
    listed = [z for z in options if z not in ("America/New_York",)]  # suggested, then listed
    for alias in ("Africa/Asmera", "America/Atka", "America/Godthab", "America/Buenos_Aires"):
        assert alias not in options
    assert listed.count("America/Argentina/Buenos_Aires") == 1
    assert {"Africa/Asmara", "America/Adak", "America/Nuuk", "Europe/Kyiv"} <= set(options)
    assert len(listed) == len(set(listed))


def test_a_customer_on_an_old_zone_alias_keeps_it_when_saving(customer_client, customer):
    Customer.objects.filter(pk=customer.pk).update(time_zone="America/Buenos_Aires")
    page = customer_client.get(SETTINGS).content.decode()
    assert '<option value="America/Buenos_Aires" selected>' in page
    response = customer_client.post(
        SETTINGS,
        {
            "sms_enabled": "on",
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "time_zone": "America/Buenos_Aires",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.time_zone == "America/Buenos_Aires"


def test_staff_chat_links_the_customers_phone_for_calling(staff_client, thread):
    page = staff_client.get(f"/staff/chat/{thread.pk}/").content.decode()
    assert '<a href="tel:+15555550123">(555) 555-0123</a>' in page


def test_customer_sees_the_contractors_number_as_plain_text(customer_client, thread):
    # Calls are made outside the portal: the customer's page shows the number, no link.
    page = customer_client.get("/messages/").content.decode()
    assert "(555) 555-0100" in page
    assert "tel:" not in page


def test_the_admin_is_branded_with_the_business(staff_client, business):
    page = staff_client.get("/admin/").content.decode()
    assert "Django administration" not in page
    assert "Django site admin" not in page
    assert "Mike&#x27;s Contracting · Porchlight admin" in page
    assert re.search(r"<title>[^<]*Mike&#x27;s Contracting admin</title>", page)
