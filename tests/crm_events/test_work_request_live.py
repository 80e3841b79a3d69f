"""A work request with two photos reaches staff live (the staff thread socket and the staff
inbox), the customer's other tab, and the CRM once: committed transactions, real broadcasts
through the channel layer, the real consumers rendering for each viewer."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from crm_events.models import WorkRequest
from messaging.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

router = URLRouter(websocket_urlpatterns)


def _jpeg(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), color).save(out, "JPEG")
    return out.getvalue()


async def _connect(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(router, path)
    communicator.scope["user"] = user
    # A generous timeout: connecting runs the auth and subscribe queries on a busy machine.
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    # What the page sends on (re)connecting: the last seq it holds (none yet).
    await communicator.send_to(text_data=json.dumps({"type": "resume", "last_seq": 0}))
    return communicator


def _submit(customer) -> int:
    client = Client()
    client.force_login(customer.user)
    day = (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    response = client.post(
        "/requests/new/",
        {
            "key": uuid.uuid4().hex,
            "description": "Replace the back gate",
            "address": "12 Cedar Lane",
            "window1_date": day,
            "window1_part": "afternoon",
            "photos": [
                SimpleUploadedFile("a.jpg", _jpeg((200, 10, 10)), "image/jpeg"),
                SimpleUploadedFile("b.jpg", _jpeg((10, 10, 200)), "image/jpeg"),
            ],
        },
    )
    assert response.status_code == 302, response.content
    return WorkRequest.objects.get().entry.seq


async def test_a_request_with_two_photos_reaches_staff_live_and_the_crm_once(
    customer, thread, staff, crm_endpoint
):
    staff_socket = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    other_tab = await _connect("/ws/thread/", customer.user)

    seq = await sync_to_async(_submit)(customer)

    for socket, who in ((staff_socket, customer.name), (other_tab, "You")):
        frame = await socket.receive_from(timeout=10)
        assert f'data-seq="{seq}"' in frame
        assert "Work request: Replace the back gate" in frame and "2 photos" in frame
        assert frame.count("/thumbnail/") == 2 and who in frame
        await socket.disconnect()

    assert len(await sync_to_async(crm_endpoint.wait_for)(1)) == 1
    (sent,) = crm_endpoint.events.values()
    assert sent["type"] == "request.created" and len(sent["data"]["photos"]) == 2
