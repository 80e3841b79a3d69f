"""Invariant 5: a per-thread sequence number, taken inside the append transaction."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from messaging import actions
from messaging.models import Entry, Side, Thread


def test_each_append_takes_the_next_sequence_number(thread, staff, customer):
    first = actions.post_staff_message(thread=thread, author=staff, body="one")
    second = actions.post_customer_reply(customer=customer, body="two")
    third = actions.add_internal_note(thread=thread, author=staff, body="three")
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    thread.refresh_from_db()
    assert thread.last_seq == 3


def test_sequence_numbers_are_per_thread(thread, other_thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="a")
    other = actions.post_staff_message(thread=other_thread, author=staff, body="b")
    assert other.seq == 1


def test_a_rolled_back_append_gives_its_number_back(thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.post_staff_message(thread=thread, author=staff, body="rolled back")
        raise RuntimeError
    after = actions.post_staff_message(thread=thread, author=staff, body="next")
    assert after.seq == 2
    assert list(thread.entries.values_list("seq", flat=True)) == [1, 2]


def test_the_timeline_is_ordered_by_sequence_not_time(customer_client, thread, staff):
    from django.utils import timezone

    later = timezone.now()
    earlier = later - timezone.timedelta(hours=1)
    actions.post_staff_message(thread=thread, author=staff, body="FIRST-SENT", at=later)
    actions.post_staff_message(thread=thread, author=staff, body="SECOND-SENT", at=earlier)
    page = customer_client.get("/messages/").content.decode()
    assert page.index("FIRST-SENT") < page.index("SECOND-SENT")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_get_unique_increasing_numbers(customer, staff):
    thread = actions.ensure_thread(customer=customer)
    writers, per_writer = 8, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                actions.post_staff_message(thread=thread, author=staff, body=f"w{n} m{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert errors == []
    seqs = list(Entry.objects.filter(thread=thread).order_by("id").values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, writers * per_writer + 1))
    # Insert order (id) and sequence order agree: numbers were taken under the lock.
    assert seqs == sorted(seqs)
    assert Thread.objects.get(pk=thread.pk).last_seq == writers * per_writer
    # Each writer's own messages appear in the order it sent them.
    for n in range(writers):
        bodies = list(
            Entry.objects.filter(thread=thread, body__startswith=f"w{n} ")
            .order_by("seq")
            .values_list("body", flat=True)
        )
        assert bodies == [f"w{n} m{i}" for i in range(per_writer)]


@pytest.mark.django_db(transaction=True)
def test_the_embedded_sqlite_lets_writers_wait_for_each_other_instead_of_failing(thread, staff):
    """Under `make run` a send and a WebSocket read mark often write at the same moment."""
    if connection.vendor != "sqlite":
        pytest.skip("the embedded default only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    errors = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                actions.post_staff_message(thread=thread, author=staff, body=f"{n}-{i}")
                actions.mark_read(thread=thread, side=Side.CUSTOMER)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    thread.refresh_from_db()
    assert thread.last_seq == 60
