"""Search reads a stored tsvector (PostgreSQL only).

The GIN index of migration 0003 was on an expression, so a search the planner served by
walking the thread in order (a rare or absent word, which it cannot know is rare) recomputed
`to_tsvector(body)` for every entry it passed: about 2 s on a 100,000-entry thread. Entries
are append-only, so the vector is computed once, at insert, into a generated column, and
both the index and the planner's statistics are on that column (bench/search.py,
docs/performance.md). The column is the database's alone: the model never reads or writes it,
queries reach it by name (messaging.queries.SEARCH_DOCUMENT), and SQLite, which has no
tsvector, searches by substring without it.

The append-only trigger compares whole rows; in a BEFORE UPDATE trigger a generated column
is not computed yet, so it is left out of the comparison (it follows the body, which cannot
change).
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

# Migration 0003's index, restored on the way back.
EXPRESSION_INDEX = GinIndex(SearchVector("body", config="english"), name="entry_body_search")

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION messaging_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'messaging_entry is append-only: DELETE of entry % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - 'read_at' - '{ignored}') IS DISTINCT FROM
       (to_jsonb(OLD) - 'read_at' - '{ignored}') THEN
        RAISE EXCEPTION 'messaging_entry is append-only: content of entry % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

FORWARD = [
    APPEND_ONLY.format(ignored="search_document"),
    "ALTER TABLE messaging_entry ADD COLUMN search_document tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, body)) STORED",
    "CREATE INDEX entry_search_document ON messaging_entry USING gin (search_document)",
    "DROP INDEX IF EXISTS entry_body_search",
]

BACKWARD = [
    "DROP INDEX IF EXISTS entry_search_document",
    "ALTER TABLE messaging_entry DROP COLUMN IF EXISTS search_document",
    APPEND_ONLY.format(ignored="read_at"),
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement, params=None)
        schema_editor.add_index(apps.get_model("messaging", "Entry"), EXPRESSION_INDEX)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0007_thread_staff_list_order")]
    operations = [migrations.RunPython(forward, backward)]
