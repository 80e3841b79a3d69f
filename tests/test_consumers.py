"""The WebSocket consumers, in process: who may subscribe, what each viewer receives, resume,
read frames, and refusal of bad frames. Browser tests (tests/e2e) cover the same end to end."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.test import override_settings

from messaging import actions, live
from messaging.consumers import coalesced_rows
from messaging.routing import websocket_urlpatterns
from portal.asgi import application as full_application

pytestmark = pytest.mark.django_db(transaction=True)

router = URLRouter(websocket_urlpatterns)


async def _connect(path: str, user) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(router, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=5)  # 2 shared cores can be slow
    return communicator, connected


async def _resume(communicator, last_seq=0):
    await communicator.send_to(text_data=json.dumps({"type": "resume", "last_seq": last_seq}))


async def test_customer_connects_to_their_own_thread_only(customer, other_thread, staff):
    own, connected = await _connect("/ws/thread/", customer.user)
    assert connected
    await own.disconnect()
    other, connected = await _connect(f"/ws/staff/threads/{other_thread.pk}/", customer.user)
    assert not connected
    inbox, connected = await _connect("/ws/staff/inbox/", customer.user)
    assert not connected


async def test_anonymous_sockets_are_refused(db):
    for path in ("/ws/thread/", "/ws/staff/inbox/", "/ws/staff/threads/1/"):
        _, connected = await _connect(path, AnonymousUser())
        assert not connected


async def test_staff_connect_to_any_thread_and_unknown_ids_are_refused(staff, thread):
    communicator, connected = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    assert connected
    await communicator.disconnect()
    _, connected = await _connect("/ws/staff/threads/999999/", staff)
    assert not connected


async def test_a_staff_message_reaches_the_customer_as_an_oob_append(customer, thread, staff):
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await _resume(communicator)
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "Crew arrives at 8")
    frame = await communicator.receive_from(timeout=3)
    assert 'hx-swap-oob="beforeend:#timeline-entries"' in frame
    assert "Crew arrives at 8" in frame and 'data-seq="1"' in frame
    await communicator.disconnect()


def _post_in_committed_transaction(thread, staff, body):
    # transaction=True tests commit, so on_commit broadcasts fire as in production.
    return actions.post_staff_message(thread=thread, author=staff, body=body)


def _post_from_another_thread(thread, staff, body):
    try:
        return _post_in_committed_transaction(thread, staff, body)
    finally:
        connections.close_all()  # the thread outlives the test; its connection must not


async def test_a_frame_reaches_its_tab_while_channels_database_thread_is_busy(
    customer, thread, staff
):
    # Channels' own dispatch sent every event of every socket through its one database thread
    # first (to close stale connections): 1,000 tabs queued behind each other there, and
    # behind whatever else held it. The sockets' own database work runs elsewhere.
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await _resume(communicator)
    assert await communicator.receive_nothing(timeout=0.3)  # nothing to resume; connected
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)())
    try:
        await sync_to_async(_post_from_another_thread, thread_sensitive=False)(
            thread, staff, "While the thread is busy"
        )
        frame = await communicator.receive_from(timeout=3)
        assert "While the thread is busy" in frame
    finally:
        release.set()
        await busy
    await communicator.disconnect()


async def test_internal_notes_reach_staff_sockets_only(customer, thread, staff):
    customer_socket, _ = await _connect("/ws/thread/", customer.user)
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    await sync_to_async(actions.add_internal_note)(
        thread=thread, author=staff, body="NOTE-SECRET gate code"
    )
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "Public words")

    staff_frames = [await staff_socket.receive_from(timeout=3) for _ in range(2)]
    assert "NOTE-SECRET" in staff_frames[0]
    customer_frame = await customer_socket.receive_from(timeout=3)
    assert "Public words" in customer_frame and "NOTE-SECRET" not in customer_frame
    assert await customer_socket.receive_nothing(timeout=0.3)
    await customer_socket.disconnect()
    await staff_socket.disconnect()


async def test_resume_sends_everything_after_the_pages_last_entry(customer, thread, staff):
    for n in range(1, 6):
        await sync_to_async(_post_in_committed_transaction)(thread, staff, f"missed {n}")
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await _resume(communicator, last_seq=2)
    frame = await communicator.receive_from(timeout=3)
    assert [f"missed {n}" in frame for n in range(1, 6)] == [False, False, True, True, True]
    # Already complete: nothing to send.
    await _resume(communicator, last_seq=5)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


# The gap-filling is the consumer's own logic, whatever the layer: the test drops the socket
# from its group by hand, which only the in-memory layer lets it do (the Redis layer's outage
# itself is rehearsed by `make deploy-test`).
@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_an_open_page_that_missed_frames_gets_them_with_the_next_one(customer, thread, staff):
    # As while Redis is down: the socket stays open, the broadcasts of two messages are lost
    # (the subscription with them); the first frame after brings all the page lacks, once.
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "before")
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await _resume(communicator)
    assert "before" in await communicator.receive_from(timeout=3)
    layer = get_channel_layer()
    group = live.thread_group(thread.pk, "customer")
    (channel,) = layer.groups[group]
    await layer.group_discard(group, channel)
    for n in (1, 2):
        await sync_to_async(_post_in_committed_transaction)(thread, staff, f"lost {n}")
    assert await communicator.receive_nothing(timeout=0.3)
    await layer.group_add(group, channel)
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "after the outage")
    frame = await communicator.receive_from(timeout=3)
    assert [frame.count(text) for text in ("lost 1", "lost 2", "after the outage")] == [1, 1, 1]
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_resume_hides_notes_and_transcripts_from_customers(customer, secrets_thread):
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await _resume(communicator, last_seq=0)
    frame = await communicator.receive_from(timeout=3)
    assert "visible to all" in frame and "Phone call" in frame
    assert "NOTE-SECRET" not in frame and "TRANSCRIPT-SECRET" not in frame
    await communicator.disconnect()


async def test_a_read_frame_marks_read_and_tells_the_sender_seen(customer, thread, staff):
    reply = await sync_to_async(actions.post_customer_reply)(customer=customer, body="Hello?")
    customer_socket, _ = await _connect("/ws/thread/", customer.user)
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    await staff_socket.send_to(text_data=json.dumps({"type": "read", "seq": reply.seq}))
    frame = await customer_socket.receive_from(timeout=3)
    assert 'hx-swap-oob="outerHTML"' in frame and "Seen" in frame
    await thread.arefresh_from_db()
    assert thread.staff_unread == 0
    await customer_socket.disconnect()
    await staff_socket.disconnect()


async def test_read_frames_sent_while_a_mark_is_written_become_one_mark(customer, thread, staff):
    # A page sends a read frame for each entry that arrives while its viewer looks: ten in a
    # row write the first and then ONE more, up to the highest, not ten marks in turn.
    from messaging.models import ReadMark

    @sync_to_async
    def replies() -> list[int]:
        return [
            actions.post_customer_reply(customer=customer, body=f"Reply {i}").seq for i in range(10)
        ]

    seqs = await replies()
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    for seq in seqs:
        await staff_socket.send_to(text_data=json.dumps({"type": "read", "seq": seq}))
    for _ in range(100):
        await thread.arefresh_from_db()
        if thread.staff_read_seq == seqs[-1]:
            break
        await asyncio.sleep(0.05)
    assert thread.staff_read_seq == seqs[-1] and thread.staff_unread == 0
    marks = await ReadMark.objects.filter(thread=thread, side="staff").acount()
    assert 1 <= marks <= 3, marks
    # A mark at or below one already written changes nothing and writes nothing.
    await staff_socket.send_to(text_data=json.dumps({"type": "read", "seq": seqs[0]}))
    assert await staff_socket.receive_nothing(timeout=0.2)
    assert await ReadMark.objects.filter(thread=thread, side="staff").acount() == marks
    await staff_socket.disconnect()


async def test_a_burst_into_one_thread_reaches_the_inbox_in_its_final_state(
    customer, thread, staff, project
):
    inbox, _ = await _connect("/ws/staff/inbox/", staff)

    @sync_to_async
    def burst() -> None:
        for i in range(1, 21):
            actions.post_customer_reply(customer=customer, body=f"Burst {i}")

    async def next_row() -> str | None:
        # Each render is the rows' frame, then the chat's assignee control in one of its own.
        while True:
            frame = await inbox.receive_from(timeout=5)
            if 'class="assignee-form"' not in frame.split(">", 1)[0]:
                return frame

    await burst()
    frames = []
    while 'data-unread="20"' not in (frames[-1] if frames else ""):
        frames.append(await next_row())
    assert "Burst 20" in frames[-1]
    # Each socket renders a thread's row one after another, each render after the last
    # change it was asked for: an older state never follows the newest (the newest may come
    # again, for changes that arrived while it rendered).
    while not await inbox.receive_nothing(timeout=0.3):
        frame = await inbox.receive_from(timeout=1)
        if 'class="assignee-form"' not in frame.split(">", 1)[0]:
            assert 'data-unread="20"' in frame
    await inbox.disconnect()


async def test_rows_asked_for_during_a_render_share_one_render_after_it():
    started, release = [], asyncio.Event()

    async def render() -> str:
        started.append(len(started) + 1)
        state = len(started)
        if state == 1:
            await release.wait()
        return f"state {state}"

    key = ("rows", "test", "UTC")
    first = asyncio.ensure_future(coalesced_rows(key, render))
    while not started:  # the first render is running
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(coalesced_rows(key, render)) for _ in range(5)]
    release.set()
    (first_number, first_html), *rest = await asyncio.gather(first, *later)
    assert started == [1, 2]
    assert first_html == "state 1"
    assert {html for _, html in rest} == {"state 2"}
    assert len({number for number, _ in rest} | {first_number}) == 2


async def test_the_staff_inbox_gets_the_changed_row(customer, thread, staff, project):
    inbox, connected = await _connect("/ws/staff/inbox/", staff)
    assert connected
    await sync_to_async(actions.post_customer_reply)(customer=customer, body="Any news?")
    frame = await inbox.receive_from(timeout=3)
    assert f'id="project-{project.pk}"' in frame and 'data-unread="1"' in frame
    assert "Any news?" in frame
    await inbox.disconnect()


async def test_an_assignment_updates_the_row_and_open_chats_live_for_other_staff(
    customer, thread, staff, project
):
    from portal.actions import assign_customer
    from tests.factories import StaffUserFactory

    kim = await sync_to_async(StaffUserFactory)(username="kim", first_name="Kim", password=None)
    inbox, _ = await _connect("/ws/staff/inbox/", staff)
    chat, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    await sync_to_async(assign_customer)(customer=customer, assignee=kim, by=staff)
    rows = await inbox.receive_from(timeout=3)
    control = await inbox.receive_from(timeout=3)
    # The row, and in a frame of its own (htmx parses a frame of rows as table content, where
    # a form comes out empty) the chat modal's control, both on Kim.
    assert f'id="project-{project.pk}"' in rows and f'id="assignee-row-{project.pk}"' in rows
    assert "<form" not in rows.split("<tr", 1)[0] and "assignee-chat" not in rows
    assert control.lstrip().startswith("<form") and f'id="assignee-chat-{customer.pk}"' in control
    assert 'hx-swap-oob="outerHTML"' in control
    for frame in (rows, control):
        assert f'<option value="{kim.pk}" selected>Kim</option>' in frame
    note = await chat.receive_from(timeout=3)
    assert "assigned Sarah Mitchell to Kim" in note and "Internal note" in note
    await inbox.disconnect()
    await chat.disconnect()


async def test_staff_frames_name_the_author_and_customer_frames_the_business(
    customer, thread, staff
):
    customer_socket, _ = await _connect("/ws/thread/", customer.user)
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    await _resume(customer_socket)
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "Signed by Mike")
    staff_frame = await staff_socket.receive_from(timeout=3)
    customer_frame = await customer_socket.receive_from(timeout=3)
    assert '<span class="author">Mike</span>' in staff_frame
    assert "Signed by Mike" in customer_frame
    assert 'class="author"' not in customer_frame
    assert "Mike&#x27;s Contracting" in customer_frame
    await customer_socket.disconnect()
    await staff_socket.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        json.dumps(["resume", 1]),
        json.dumps({"type": "shout", "last_seq": 1}),
        json.dumps({"type": "resume", "last_seq": "abc"}),
        json.dumps({"type": "resume", "last_seq": -1}),
        json.dumps({"type": "resume", "last_seq": True}),
        json.dumps({"type": "resume", "last_seq": 10_000}),  # in the future
        json.dumps({"type": "read", "seq": 10_000}),
        json.dumps({"type": "resume", "last_seq": 0, "pad": "x" * 5000}),  # oversized
    ],
)
async def test_bad_frames_close_the_socket_cleanly(customer, thread, frame, caplog):
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await communicator.send_to(text_data=frame)
    closed = await communicator.receive_output(timeout=3)
    assert closed["type"] == "websocket.close"
    assert closed["code"] in (4008, 4009)
    assert "refused" in caplog.text or "closing" in caplog.text
    # Others are still served.
    other, connected = await _connect("/ws/thread/", customer.user)
    assert connected
    await other.disconnect()


async def test_binary_frames_are_refused(customer, thread):
    communicator, _ = await _connect("/ws/thread/", customer.user)
    await communicator.send_to(bytes_data=b"\x00\x01")
    closed = await communicator.receive_output(timeout=3)
    assert closed["code"] == 4008


async def test_a_socket_from_another_origin_is_refused(customer):
    communicator = WebsocketCommunicator(
        full_application, "/ws/thread/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=5)  # 2 shared cores can be slow
    assert not connected


async def test_a_socket_from_our_origin_with_a_session_cookie_connects(customer, client):
    await sync_to_async(client.force_login)(customer.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        full_application,
        "/ws/thread/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", cookie),
        ],
    )
    connected, _ = await communicator.connect(timeout=5)  # 2 shared cores can be slow
    assert connected
    await communicator.disconnect()


async def test_a_delivery_status_change_updates_the_open_staff_chat_and_never_the_customer(
    customer, thread, staff
):
    from notifications.models import Delivery
    from notifications.outbound import provider_status

    entry = await sync_to_async(actions.post_staff_message)(
        thread=thread, author=staff, body="Hi", notify=False
    )
    await sync_to_async(Delivery.objects.create)(
        entry=entry,
        channel="sms",
        audience="customer",
        recipient=customer.phone,
        status="sent",
        provider_id="SM" + "1" * 32,
        send_after=entry.created_at,
        created_at=entry.created_at,
    )
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    customer_socket, _ = await _connect("/ws/thread/", customer.user)
    await sync_to_async(provider_status.record_sms_status)(
        message_sid="SM" + "1" * 32, status="delivered"
    )
    frame = await staff_socket.receive_from(timeout=3)
    assert 'id="entry-1"' in frame and 'hx-swap-oob="outerHTML"' in frame
    assert "Delivered" in frame
    assert await customer_socket.receive_nothing(timeout=0.5)
    await staff_socket.disconnect()
    await customer_socket.disconnect()


async def test_a_text_that_comes_in_appears_live_for_the_customer_staff_and_the_list(
    customer, project, thread, staff, fake_twilio
):
    from django.test import Client

    customer_socket, _ = await _connect("/ws/thread/", customer.user)
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    inbox, _ = await _connect("/ws/staff/inbox/", staff)
    form, signature = fake_twilio.inbound(
        "http://127.0.0.1:8000/webhooks/twilio/sms/", sender=customer.phone, body="Texted in"
    )
    response = await sync_to_async(Client().post)(
        "/webhooks/twilio/sms/", form, HTTP_X_TWILIO_SIGNATURE=signature
    )
    assert response.status_code == 200
    for socket in (customer_socket, staff_socket):
        frame = await socket.receive_from(timeout=3)
        assert "Texted in" in frame and "SMS" in frame
    row = await inbox.receive_from(timeout=3)
    assert 'id="project-' in row or "Texted in" in row
    for socket in (customer_socket, staff_socket, inbox):
        await socket.disconnect()


async def test_a_projects_view_receives_only_that_projects_entries(
    customer, thread, staff, project, other_customer
):
    from tests.factories import ProjectFactory

    await sync_to_async(ProjectFactory)(customer=other_customer, code="PRJ-1043")
    _, connected = await _connect("/ws/thread/?p=PRJ-1043", customer.user)
    assert not connected  # not one of theirs
    communicator, connected = await _connect("/ws/thread/?p=PRJ-1042", customer.user)
    assert connected
    await _resume(communicator)
    assert await communicator.receive_nothing(timeout=0.2)  # the resume is answered: nothing
    await sync_to_async(actions.post_staff_message)(
        thread=thread, author=staff, body="About everything"
    )
    await sync_to_async(actions.post_staff_message)(
        thread=thread, author=staff, body="About the deck", project=project
    )
    frame = await communicator.receive_from(timeout=3)
    assert "About the deck" in frame and "About everything" not in frame
    # Reading one project's view is not reading the thread.
    await communicator.send_to(text_data=json.dumps({"type": "read", "seq": 2}))
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()
    await sync_to_async(thread.refresh_from_db)()
    assert thread.customer_unread == 2


async def _frame_with(communicator, text: str) -> str:
    # Other frames may come between (the deliveries' status lines, as their tasks run).
    while text not in (frame := await communicator.receive_from(timeout=3)):
        pass
    return frame


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_a_new_entry_read_before_its_frame_is_rendered_shows_seen(customer, thread, staff):
    # The frame of a new entry reads the other side's watermark with the entry: unread (as
    # almost always), no look at the read marks; read already (here its broadcast is held
    # back until the customer has read it), "Seen" from them.
    staff_socket, _ = await _connect(f"/ws/staff/threads/{thread.pk}/", staff)
    await _resume(staff_socket)
    await sync_to_async(_post_in_committed_transaction)(thread, staff, "Unread words")
    assert "Seen" not in await _frame_with(staff_socket, "Unread words")
    layer = get_channel_layer()
    group = live.thread_group(thread.pk, "staff")
    (channel,) = layer.groups[group]
    await layer.group_discard(group, channel)
    read = await sync_to_async(_post_in_committed_transaction)(thread, staff, "Read words")
    await sync_to_async(actions.mark_read)(thread=thread, side="customer", up_to_seq=read.seq)
    await layer.group_add(group, channel)
    event = {"type": "entry.appended", "thread_id": thread.pk, "entry_id": read.pk}
    await layer.group_send(group, {**event, "seq": read.seq})
    frame = await _frame_with(staff_socket, "Read words")
    assert "Seen" in frame and "Unread words" not in frame
    await staff_socket.disconnect()
