"""Issue 21's Done-when, in headless Chromium against the real server: Sarah approves Estimate
#311 with her typed name, and the CRM's receiver, verifying signatures with the official
`standardwebhooks` library, gets exactly one `estimate.approved` with her name. The invoice
card offers "Pay" to the processor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from redis import Redis

from crm_events.models import EstimateDecision, OutboundEvent, WebhookDelivery
from crm_events.outbound import sending
from tests.crm_events.conftest import OUT_SECRET
from tests.e2e import conftest as e2e
from tests.e2e.test_accessibility import violations_on

browser = e2e.browser
open_as = e2e.open_as
demo = e2e.demo

pytestmark = [pytest.mark.browser]


def _forget_cached_endpoints(redis_url: str) -> None:
    """The servers share Redis, where each caches its table of endpoints for a minute: this
    test's server must not read an earlier one's (none), and the servers after it must not
    read this one's (a row of a database they flush)."""
    if not redis_url:
        return
    redis = Redis.from_url(redis_url)
    for key in redis.scan_iter("*crm-outbound-endpoints*"):
        redis.delete(key)
    redis.close()


@pytest.fixture
def server(transactional_db, crm_endpoint, settings):
    """The server, telling the CRM's receiver (crm_endpoint) of every event."""
    _forget_cached_endpoints(settings.REDIS_URL)
    srv = e2e.start_server(
        CRM_OUTBOUND_URL=settings.CRM_OUTBOUND_URL, CRM_OUTBOUND_SECRET=OUT_SECRET
    )
    yield srv
    srv.stop()
    _forget_cached_endpoints(settings.REDIS_URL)


def test_sarah_signs_estimate_311_and_the_crm_hears_exactly_once(
    open_as, demo, server, crm_endpoint
):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    page.goto(f"{server.url}/estimates/311/")
    expect(page.get_by_role("heading", name="Terms")).to_be_visible()
    approve = page.get_by_role("button", name=re.compile("Approve estimate"))
    # The optional line moves the total (estimate.js), and back.
    option = page.get_by_label(re.compile("Second coat of cedar stain"))
    option.check()
    expect(approve).to_have_text("Approve estimate — $10,250")
    option.uncheck()
    expect(approve).to_have_text("Approve estimate — $9,800")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_label("Type your full name to sign").fill("Sarah Mitchell")
    page.get_by_label(re.compile("I agree")).check()
    approve.click()
    expect(page.get_by_role("status")).to_contain_text("You approved this estimate")
    expect(page.get_by_role("heading", name="Approved and signed")).to_be_visible()
    assert violations_on(page) == []  # the signature block, at 390 px
    decision = EstimateDecision.objects.get()
    assert decision.signer_name == "Sarah Mitchell" and "Chrom" in decision.user_agent

    # The server wrote the event and its delivery with the approval; a worker sends it (the
    # server's own queue has no worker here, so this test does the worker's job).
    event = OutboundEvent.objects.get(type="estimate.approved")
    for delivery in WebhookDelivery.objects.filter(event=event, delivered_at__isnull=True):
        sending.send_delivery(delivery_id=delivery.pk)
    received = [e for e in crm_endpoint.events.values() if e["type"] == "estimate.approved"]
    assert len(received) == 1
    (approved,) = received
    assert approved["data"]["signer"]["name"] == "Sarah Mitchell"
    assert approved["data"]["document_sha256"] == decision.document_sha256
    assert approved["data"]["total"] == "9800.00" and approved["data"]["version"] == 1

    page.get_by_role("link", name="Messages").click()
    expect(page.get_by_text("Estimate #311 approved by Sarah Mitchell").last).to_be_visible()
    pay = page.get_by_role("link", name=re.compile(r"^Pay \$3,200 — checkout\.stripe\.com"))
    expect(pay.last).to_have_attribute("href", re.compile(r"^https://checkout\.stripe\.com/"))
    expect(pay.last).to_have_attribute("rel", "noopener noreferrer")
