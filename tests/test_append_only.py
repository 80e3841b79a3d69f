"""Invariant 1: nothing edits or deletes an entry's content; only bookkeeping changes."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from messaging import actions
from messaging.models import AppendOnlyError, Entry


@pytest.fixture
def entry(thread, staff):
    return actions.post_staff_message(thread=thread, author=staff, body="Original words")


def test_saving_a_changed_entry_is_refused(entry):
    entry.body = "Rewritten history"
    with pytest.raises(AppendOnlyError):
        entry.save()
    assert Entry.objects.get(pk=entry.pk).body == "Original words"


def test_queryset_update_of_content_is_refused(entry):
    with pytest.raises(AppendOnlyError):
        Entry.objects.filter(pk=entry.pk).update(body="Rewritten history")
    assert Entry.objects.get(pk=entry.pk).body == "Original words"


def test_deleting_an_entry_is_refused(entry):
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        Entry.objects.filter(pk=entry.pk).delete()
    assert Entry.objects.filter(pk=entry.pk).exists()


def test_bookkeeping_read_time_may_change(entry):
    now = timezone.now()
    Entry.objects.filter(pk=entry.pk).update(read_at=now)
    entry.read_at = now
    entry.save(update_fields=["read_at"])
    assert Entry.objects.get(pk=entry.pk).read_at == now


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE messaging_entry SET body = 'Rewritten' WHERE id = %s",
        "UPDATE messaging_entry SET seq = seq + 100 WHERE id = %s",
        "UPDATE messaging_entry SET transcript = 'x', read_at = now() WHERE id = %s",
        "DELETE FROM messaging_entry WHERE id = %s",
    ],
)
def test_the_database_refuses_raw_edits_and_deletes(entry, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])
    assert Entry.objects.get(pk=entry.pk).body == "Original words"


@pytest.mark.postgres
def test_the_database_allows_bookkeeping_updates(entry):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE messaging_entry SET read_at = now() WHERE id = %s", [entry.pk])
    assert Entry.objects.get(pk=entry.pk).read_at is not None
