"""With Redis down, a signed-in person still sends (DESIGN, "Nothing lost": sending succeeds
and the notification is delivered later). Redis here is really unreachable: the cache points
at a closed port on 127.0.0.1, as the deployment's cache does while its Redis container is
stopped (deploy/test/run.sh rehearses that on the whole stack)."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from messaging.models import Entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "portal.cache.SharedPoolRedisCache",
            # Port 1: nothing listens; refused at once.
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
    }
    with pytest.raises(Exception, match="(?i)connect"):
        caches["default"].get("anything")


def test_a_customer_replies_while_redis_is_down(customer_client, thread, redis_down):
    response = customer_client.post(
        "/messages/send/",
        {"body": "Sent during the outage", "key": "k-down"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert Entry.objects.get(thread=thread).body == "Sent during the outage"


def test_staff_sends_a_message_while_redis_is_down(staff_client, thread, redis_down):
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/",
        {"body": "Crew is on the way", "key": "k-staff-down"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert Entry.objects.get(thread=thread).body == "Crew is on the way"


def test_signing_out_while_redis_is_down_ends_the_session(customer_client, redis_down):
    customer_client.post("/logout/")
    assert customer_client.get("/messages/").status_code == 302
