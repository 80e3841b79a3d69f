"""The outbound webhooks in the admin: endpoints entered there must be public https hosts,
their secrets rotate, they are enabled and disabled only by the list's actions, each has a
delivery log, and a delivery can be resent."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crm_events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging import actions as thread_actions
from tests.crm_events.conftest import OUT_SECRET

ADD = "/admin/crm_events/webhookendpoint/add/"


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-xyz")
    client.force_login(user)
    return client


def test_an_endpoint_with_a_private_address_is_refused_with_a_clear_error(admin_client):
    response = admin_client.post(ADD, {"url": "https://10.1.2.3/hook", "description": "CRM"})
    assert response.status_code == 200
    assert "is not on the public internet" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_an_http_endpoint_is_refused(admin_client):
    response = admin_client.post(ADD, {"url": "http://crm.example.com/hook"})
    assert "must be an https address" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_a_malformed_secret_is_refused(admin_client):
    response = admin_client.post(ADD, {"url": "https://93.184.215.14/h", "secret": "hunter2"})
    assert "whsec_" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_a_public_https_endpoint_is_saved_with_its_types_and_a_secret(admin_client):
    response = admin_client.post(
        ADD, {"url": "https://93.184.215.14/hook", "event_types": ["estimate.approved"]}
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled and endpoint.event_types == ["estimate.approved"]
    assert endpoint.secret.startswith("whsec_")


def test_the_list_actions_rotate_disable_and_enable(admin_client):
    endpoint = WebhookEndpoint.objects.create(url="https://93.184.215.14/h", secret=OUT_SECRET)
    url = "/admin/crm_events/webhookendpoint/"
    for action in ("rotate_secrets", "disable"):
        admin_client.post(url, {"action": action, "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == OUT_SECRET and endpoint.secret != OUT_SECRET
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by boss."
    admin_client.post(url, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_the_delivery_log_and_resend(
    admin_client,
    customer,
    thread,
    crm_endpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        thread_actions.post_customer_reply(customer=customer, body="Hello there")
    delivery = WebhookDelivery.objects.get()
    log = admin_client.get(
        f"/admin/crm_events/webhookattempt/?endpoint__id__exact={delivery.endpoint_id}"
    )
    assert log.status_code == 200 and "204" in log.content.decode()
    page = admin_client.get(f"/admin/crm_events/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and delivery.event.event_id in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/crm_events/webhookdelivery/",
            {"action": "resend", "_selected_action": [delivery.pk]},
        )
    assert len(crm_endpoint.requests) == 2 and WebhookAttempt.objects.count() == 2
    assert {r.header("webhook-id") for r in crm_endpoint.requests} == {delivery.event.event_id}
