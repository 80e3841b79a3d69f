"""Invariant 1: nothing edits or deletes an entry's content; only bookkeeping changes."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

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


def test_no_column_of_an_entry_may_change_not_even_when_it_was_read(entry):
    # Reading is the thread's watermark and a ReadMark row (messaging.actions.mark_read).
    entry.body = "Rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save(update_fields=["body"])
    assert Entry.objects.get(pk=entry.pk).body == "Original words"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE messaging_entry SET body = 'Rewritten' WHERE id = %s",
        "UPDATE messaging_entry SET seq = seq + 100 WHERE id = %s",
        "UPDATE messaging_entry SET transcript = 'x', created_at = now() WHERE id = %s",
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
