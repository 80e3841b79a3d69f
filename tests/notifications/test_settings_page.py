"""/settings/notifications/: the customer's channels, quiet hours and devices; and the files
that make the portal an installable app."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from notifications.models import NotificationPreferences
from notifications.outbound import preferences
from portal.models import Customer

pytestmark = pytest.mark.django_db
URL = "/settings/notifications/"

VALID = {
    "sms_enabled": "on",
    "email_enabled": "on",
    "push_enabled": "on",
    "quiet_hours_enabled": "on",
    "quiet_start": "22:00",
    "quiet_end": "07:00",
    "time_zone": "America/Chicago",
}


def test_the_page_shows_her_channels_and_quiet_hours(customer_client):
    page = customer_client.get(URL).content.decode()
    assert "<h1>Notification settings</h1>" in page
    assert "To (555) 555-0123" in page
    assert "To sarah@example.com" in page
    assert 'name="quiet_start" value="21:00"' in page
    assert 'name="quiet_end" value="08:00"' in page
    assert '<option value="America/New_York" selected>' in page
    assert 'name="sms_enabled" id="id_sms_enabled" checked' in page
    assert "Push notifications are not set up on this server." in page  # no VAPID keys


def test_without_push_on_the_server_its_switch_is_not_shown_on_and_the_choice_is_kept(
    customer_client, customer
):
    page = customer_client.get(URL).content.decode()
    assert 'name="push_enabled" id="id_push_enabled" checked' not in page
    assert '<input type="checkbox" disabled> Push notifications' in page
    # Saving other settings keeps the (invisible) push choice for when push is set up.
    customer_client.post(URL, VALID)
    assert NotificationPreferences.objects.get(customer=customer).push_enabled


def test_push_switch_shows_her_choice_when_push_is_set_up(customer_client, fake_push):
    page = customer_client.get(URL).content.decode()
    assert 'name="push_enabled" id="id_push_enabled" checked' in page


def test_time_zones_come_grouped_by_region_with_her_likely_ones_first(customer_client, customer):
    customer.business.time_zone = "America/Chicago"
    customer.business.save()
    page = customer_client.get(URL).content.decode()
    groups = re.findall(r'<optgroup label="([^"]+)">', page)
    assert groups[0] == "Suggested"
    assert {"America", "Europe", "Asia", "Australia"} <= set(groups)
    suggested = page.split('<optgroup label="Suggested">')[1].split("</optgroup>")[0]
    assert re.findall(r'<option value="([^"]+)"', suggested) == [
        "America/New_York",
        "America/Chicago",
    ]


def test_the_page_costs_a_fixed_number_of_queries(
    customer_client, customer, fake_push, django_assert_num_queries
):
    for _ in range(3):
        info = fake_push.new_subscription()
        preferences.subscribe_push(
            customer=customer,
            endpoint=info["endpoint"],
            p256dh=info["keys"]["p256dh"],
            auth=info["keys"]["auth"],
        )
    # user (the session is in the cache), customer+business, preferences, device count
    with django_assert_num_queries(4):
        page = customer_client.get(URL).content.decode()
    assert "On 3 devices." in page
    assert 'data-vapid-public-key="' in page


def test_saving_stores_her_choices_and_says_so(customer_client, customer):
    response = customer_client.post(URL, {**VALID, "sms_enabled": ""}, follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert "Your notification settings are saved." in response.content.decode()
    prefs = NotificationPreferences.objects.get(customer=customer)
    assert (prefs.sms_enabled, prefs.email_enabled, prefs.push_enabled) == (False, True, True)
    assert (prefs.quiet_start, prefs.quiet_end) == (dt.time(22, 0), dt.time(7, 0))
    assert prefs.time_zone == "America/Chicago"
    # The portal shows her times in the zone she chose, too.
    assert Customer.objects.get(pk=customer.pk).time_zone == "America/Chicago"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quiet_start": "08:00", "quiet_end": "06:00"}, "Did you swap the times?"),
        ({"quiet_start": "21:00", "quiet_end": "21:00"}, "need different start and end times"),
        ({"quiet_start": "25:99"}, "Enter the start as a time, such as 21:00."),
        ({"quiet_end": "tomorrow"}, "Enter the end as a time, such as 08:00."),
        ({"quiet_start": ""}, "This field is required."),
        ({"time_zone": "Mars/Olympus_Mons"}, "Choose your time zone from the list."),
    ],
)
def test_a_bad_window_gets_a_clear_message_and_saves_nothing(customer_client, change, message):
    response = customer_client.post(URL, {**VALID, **change})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Your settings were not saved" in page
    assert message in page
    assert not NotificationPreferences.objects.exists()


def test_a_window_of_sixteen_hours_is_fine(customer_client):
    response = customer_client.post(URL, {**VALID, "quiet_start": "18:00", "quiet_end": "10:00"})
    assert response.status_code == 302


def test_turning_everything_off_is_allowed(customer_client, customer):
    response = customer_client.post(
        URL, {"quiet_start": "21:00", "quiet_end": "08:00", "time_zone": "America/New_York"}
    )
    assert response.status_code == 302
    prefs = NotificationPreferences.objects.get(customer=customer)
    assert not (prefs.sms_enabled or prefs.email_enabled or prefs.push_enabled)
    assert not prefs.quiet_hours_enabled


def test_an_opted_out_customer_is_told_how_to_get_texts_back(customer_client, customer):
    preferences.set_sms_opt_out(customer=customer, opted_out=True)
    page = customer_client.get(URL).content.decode()
    assert "You replied STOP to our texts, so we email you instead." in page
    assert "Text START to (555) 555-0100" in page


def test_only_signed_in_customers_have_the_page(client, staff):
    assert client.get(URL).url.startswith("/login/")
    client.force_login(staff)
    assert client.get(URL).status_code == 404
    assert client.post(URL, VALID).status_code == 404


def test_preferences_are_not_changed_on_the_messages_page(customer_client):
    page = customer_client.get("/messages/").content.decode()
    assert 'name="sms_enabled"' not in page
    assert 'name="quiet_start"' not in page


def test_the_account_menu_links_to_the_page(customer_client):
    assert 'href="/settings/notifications/"' in customer_client.get("/project/").content.decode()


def test_the_page_offers_push_when_the_server_has_keys(customer_client, fake_push, vapid_keys):
    page = customer_client.get(URL).content.decode()
    assert f'data-vapid-public-key="{vapid_keys[0]}"' in page
    assert "Turn on push on this device" in page
    assert 'data-subscribe-url="/settings/notifications/push/subscribe/"' in page
    assert "Send a test notification" in page


# -- the installable app -----------------------------------------------------------------------


def test_the_manifest_describes_an_installable_app(client, business):
    response = client.get("/manifest.webmanifest")
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "Mike's Contracting"
    # The name under the icon is the business's, cut at a word to fit: never "Porchlight".
    assert manifest["short_name"] == "Mike's"
    assert manifest["start_url"] == "/messages/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#1f4e79"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    assert any(icon.get("purpose") == "maskable" for icon in manifest["icons"])


def test_the_service_worker_is_served_from_the_root_and_never_cached_stale(client):
    response = client.get("/sw.js")
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response["Cache-Control"]
    script = response.content.decode()
    assert 'const OFFLINE_URL = "/offline/";' in script
    for event in ("install", "fetch", "push", "notificationclick"):
        assert f'addEventListener("{event}"' in script


def test_the_offline_page_needs_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/offline/")
    assert "You're offline" in response.content.decode()


def test_customer_pages_link_the_manifest_and_register_the_service_worker(customer_client):
    page = customer_client.get("/messages/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert "js/pwa.js" in page


def test_favicon_ico_answers_with_the_apps_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("icons/icon-192.png")
    assert client.get(response["Location"]).status_code == 200
