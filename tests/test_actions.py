"""The thread's write functions: validation, idempotency, unread counters, read marks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging import actions
from messaging.models import Entry, ReadMark, Side, Thread
from messaging.queries import load_seen, seen_at, timeline_page
from tests.factories import ProjectFactory, StaffUserFactory


def test_repeating_an_append_with_its_key_returns_the_first_entry(thread, staff):
    first = actions.post_staff_message(thread=thread, author=staff, body="Hi", idempotency_key="k")
    again = actions.post_staff_message(thread=thread, author=staff, body="Hi", idempotency_key="k")
    assert again.pk == first.pk
    thread.refresh_from_db()
    assert thread.last_seq == 1
    assert thread.customer_inbound == 1


def test_the_same_key_in_another_thread_is_a_different_entry(thread, other_thread, staff):
    a = actions.post_staff_message(thread=thread, author=staff, body="Hi", idempotency_key="k")
    b = actions.post_staff_message(
        thread=other_thread, author=staff, body="Hi", idempotency_key="k"
    )
    assert a.pk != b.pk


def test_another_author_reusing_a_key_writes_their_own_message(thread, staff, customer):
    other = StaffUserFactory(username="anna")
    mine = actions.post_staff_message(thread=thread, author=staff, body="Mine", idempotency_key="k")
    theirs = actions.post_staff_message(
        thread=thread, author=other, body="Theirs", idempotency_key="k"
    )
    reply = actions.post_customer_reply(customer=customer, body="Also k", idempotency_key="k")
    assert len({mine.pk, theirs.pk, reply.pk}) == 3
    assert [e.body for e in thread.entries.order_by("seq")] == ["Mine", "Theirs", "Also k"]
    # Each author's replay is still one message.
    again = actions.post_staff_message(thread=thread, author=other, body="x", idempotency_key="k")
    assert again.pk == theirs.pk


def test_authorless_entries_share_one_key_space(thread):
    first = actions.post_automated_message(thread=thread, body="Reminder", idempotency_key="r")
    again = actions.post_automated_message(thread=thread, body="Reminder", idempotency_key="r")
    assert again.pk == first.pk


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "Write a message"),
        ("   \n ", "Write a message"),
        ("\u200b\u200b", "Write a message"),  # zero-width spaces
        ("\u200d\ufeff\u2060\u200e", "Write a message"),  # joiner, BOM, word joiner, LRM
        ("\u3164\u2800\u00a0", "Write a message"),  # Hangul filler, Braille blank, NBSP
        ("\u0301\u0301", "Write a message"),  # combining accents with nothing under them
        ("\x00\x07", "Write a message"),  # control characters
        ("x" * 5001, "at most 5,000"),
    ],
)
def test_empty_or_overlong_messages_are_refused_and_change_nothing(thread, staff, body, reason):
    with pytest.raises(ValidationError, match=reason):
        actions.post_staff_message(thread=thread, author=staff, body=body)
    thread.refresh_from_db()
    assert thread.last_seq == 0
    assert not Entry.objects.exists()


def test_a_message_of_exactly_5000_characters_is_accepted(thread, staff):
    entry = actions.post_staff_message(thread=thread, author=staff, body="x" * 5000)
    assert len(entry.body) == 5000


def test_an_entry_cannot_name_another_customers_project(thread, other_customer, staff):
    foreign = ProjectFactory(customer=other_customer)
    with pytest.raises(ValidationError):
        actions.post_staff_message(thread=thread, author=staff, body="Hi", project=foreign)
    assert not Entry.objects.exists()


def test_unread_counts_come_from_watermarks(thread, customer, staff):
    actions.post_staff_message(thread=thread, author=staff, body="1")
    actions.post_automated_message(thread=thread, body="2")
    actions.add_internal_note(thread=thread, author=staff, body="not for the customer")
    actions.post_customer_reply(customer=customer, body="3")
    thread.refresh_from_db()
    assert (thread.customer_unread, thread.staff_unread) == (2, 1)

    assert actions.mark_read(thread=thread, side=Side.CUSTOMER) == 2
    thread.refresh_from_db()
    assert (thread.customer_unread, thread.staff_unread) == (0, 1)
    assert thread.customer_read_seq == 4


def test_marking_read_sees_the_other_sides_entries_once(thread, customer, staff):
    mine = actions.post_customer_reply(customer=customer, body="mine")
    theirs = actions.post_staff_message(thread=thread, author=staff, body="theirs")
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    assert seen_at(mine) is None  # the customer's own reply waits for staff
    first_read = seen_at(theirs)
    assert first_read is not None

    assert actions.mark_read(thread=thread, side=Side.CUSTOMER) == 0
    assert seen_at(theirs) == first_read


def test_reading_a_long_thread_writes_one_mark_and_no_entry(
    thread, staff, django_assert_num_queries
):
    for i in range(30):
        actions.post_staff_message(thread=thread, author=staff, body=f"{i}")
    thread.refresh_from_db()
    # savepoint, lock thread, append the mark, move the watermark, the CRM's endpoints
    # (conversation.read), release: whatever the number of entries read (none is written).
    with django_assert_num_queries(6):
        assert actions.mark_read(thread=thread, side=Side.CUSTOMER) == 30
    assert list(ReadMark.objects.values_list("side", "up_to_seq")) == [(Side.CUSTOMER, 30)]


def test_each_entry_is_seen_at_the_first_read_that_reached_it(thread, customer, staff):
    earlier = timezone.now() - dt.timedelta(hours=2)
    first = actions.post_staff_message(thread=thread, author=staff, body="1")
    second = actions.post_staff_message(thread=thread, author=staff, body="2")
    reply = actions.post_customer_reply(customer=customer, body="3")
    third = actions.post_staff_message(thread=thread, author=staff, body="4")
    actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=second.seq, at=earlier)
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    later = ReadMark.objects.get(up_to_seq=third.seq).at

    assert [seen_at(e) for e in (first, second, reply, third)] == [earlier, earlier, None, later]
    # A page loads the same times, in one query, for the entries its viewer sent.
    thread.refresh_from_db()
    page = timeline_page(thread=thread, audience=Side.STAFF)
    assert [e.seen_at for e in page.entries] == [earlier, earlier, None, later]
    customer_page = timeline_page(thread=thread, audience=Side.CUSTOMER)
    assert [e.seen_at for e in customer_page.entries] == [None] * 4  # staff read nothing yet


def test_seen_from_a_watermark_read_with_the_entries_asks_the_marks_only_when_it_reaches(
    thread, staff, django_assert_num_queries
):
    # A socket's new entry (messaging.consumers) comes with the reader's watermark as it is
    # now: below the entry, nothing can show "Seen" and the read marks are not asked.
    first = actions.post_staff_message(thread=thread, author=staff, body="1")
    second = actions.post_staff_message(thread=thread, author=staff, body="2")
    actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=first.seq)
    stale = Thread.objects.get(pk=thread.pk)  # as a socket holds it: read nothing since
    actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=second.seq)
    entries = list(Entry.objects.filter(thread=thread).order_by("seq"))
    with django_assert_num_queries(0):
        load_seen(entries[1:], thread=stale, audience=Side.STAFF, current=False, read_seq=1)
    assert entries[1].seen_at is None
    with django_assert_num_queries(1):
        load_seen(entries, thread=stale, audience=Side.STAFF, current=False, read_seq=2)
    assert all(entry.seen_at is not None for entry in entries)


def test_reading_up_to_the_middle_counts_only_what_it_reached(thread, customer, staff):
    actions.post_staff_message(thread=thread, author=staff, body="1")
    middle = actions.post_staff_message(thread=thread, author=staff, body="2")
    actions.post_customer_reply(customer=customer, body="3")
    actions.post_automated_message(thread=thread, body="4")
    assert actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=middle.seq) == 2
    thread.refresh_from_db()
    assert (thread.customer_read, thread.customer_unread) == (2, 1)
    assert actions.mark_read(thread=thread, side=Side.CUSTOMER) == 1
    thread.refresh_from_db()
    assert (thread.customer_read, thread.customer_unread) == (3, 0)


def test_marking_read_up_to_a_sequence_number_leaves_later_ones_unread(thread, staff):
    first = actions.post_staff_message(thread=thread, author=staff, body="1")
    actions.post_staff_message(thread=thread, author=staff, body="2")
    actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=first.seq)
    thread.refresh_from_db()
    assert thread.customer_unread == 1
    # A watermark never moves back.
    assert actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=0) == 0
    assert actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=99) == 1
    thread.refresh_from_db()
    assert thread.customer_unread == 0
    assert thread.customer_read_seq == 2


def test_call_markers_keep_their_transcript_for_staff(thread, staff):
    from django.utils import timezone

    call = actions.log_call(
        thread=thread, started_at=timezone.now(), duration_seconds=360, transcript=" notes "
    )
    assert call.kind == Entry.Kind.CALL
    assert call.transcript == "notes"
    assert call.call_duration_seconds == 360


def test_event_cards_only_link_to_our_pages_or_the_web(thread):
    with pytest.raises(ValidationError):
        actions.post_event_card(
            thread=thread, card_kind="invoice", title="Invoice", link_url="javascript:alert(1)"
        )
    card = actions.post_event_card(
        thread=thread, card_kind="invoice", title="Invoice #1 sent", link_url="/invoices/#i1"
    )
    assert card.link_url == "/invoices/#i1"


@pytest.mark.parametrize("body", ["👍", "é", "\u200bok", "日本", "1"])
def test_short_visible_messages_are_accepted(thread, staff, body):
    assert actions.post_staff_message(thread=thread, author=staff, body=body).body == body


# -- what apps above messaging add (messaging.extensions) ---------------------------------------


def test_notifications_subscribe_to_appends_and_their_rows_are_written_inside_the_append(
    thread, staff, monkeypatch
):
    from django.db import connection

    from messaging import extensions
    from notifications.models import Delivery
    from notifications.outbound.planning import plan_deliveries

    assert plan_deliveries in extensions._append_subscribers
    seen = []

    def subscriber(*, entry, customer):
        # Inside the append's transaction: the entry is there, not yet committed.
        seen.append((entry.pk, customer.pk, connection.in_atomic_block))

    monkeypatch.setattr(extensions, "_append_subscribers", [plan_deliveries, subscriber])
    entry = actions.post_staff_message(thread=thread, author=staff, body="Deck's done")
    assert seen == [(entry.pk, thread.customer_id, True)]
    assert Delivery.objects.filter(entry=entry).exists()
    # notify=False records without telling anyone: no subscriber runs.
    actions.post_staff_message(thread=thread, author=staff, body="Old news", notify=False)
    assert len(seen) == 1


def test_a_subscriber_that_fails_rolls_the_append_back(thread, staff, monkeypatch):
    from messaging import extensions

    def subscriber(*, entry, customer):
        raise RuntimeError("subscriber failed")

    monkeypatch.setattr(extensions, "_append_subscribers", [subscriber])
    with pytest.raises(RuntimeError):
        actions.post_staff_message(thread=thread, author=staff, body="Lost with it")
    thread.refresh_from_db()
    assert (thread.last_seq, thread.entries.count()) == (0, 0)


def test_staff_timelines_show_the_delivery_badge_notifications_registered(thread, staff):
    from messaging import extensions, queries

    badges = {badge.template for badge in extensions.staff_badges()}
    assert badges == {"notifications/_delivery_status.html"}
    actions.post_staff_message(thread=thread, author=staff, body="Hi")
    staff_entry = queries.entries_for(thread=thread, audience=Side.STAFF).get()
    assert "deliveries" in staff_entry._prefetched_objects_cache
    customer_entry = queries.entries_for(thread=thread, audience=Side.CUSTOMER).get()
    assert not getattr(customer_entry, "_prefetched_objects_cache", {})
