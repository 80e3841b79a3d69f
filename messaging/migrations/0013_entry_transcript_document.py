"""Staff search reaches call transcripts (PostgreSQL only).

Migration 0008's stored `search_document` holds the body alone, and is what a customer's search
reads: transcripts are staff only and must never be found there. Staff search reads it *and*
this second stored tsvector of the transcript, with its own GIN index (empty for every entry
but calls, so small). Two columns rather than one of body and transcript together: the
customer's search stays on a document that cannot hold a transcript whatever the query.

As in 0008, the append-only trigger leaves the generated column out of its comparison (in a
BEFORE UPDATE trigger it is not computed yet; it follows the transcript, which cannot change).
"""

from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION messaging_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'messaging_entry is append-only: DELETE of entry % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - 'read_at' - 'search_document' - '{ignored}') IS DISTINCT FROM
       (to_jsonb(OLD) - 'read_at' - 'search_document' - '{ignored}') THEN
        RAISE EXCEPTION 'messaging_entry is append-only: content of entry % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

FORWARD = [
    APPEND_ONLY.format(ignored="transcript_document"),
    "ALTER TABLE messaging_entry ADD COLUMN transcript_document tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, transcript)) STORED",
    "CREATE INDEX entry_transcript_document ON messaging_entry USING gin (transcript_document)",
]

BACKWARD = [
    "DROP INDEX IF EXISTS entry_transcript_document",
    "ALTER TABLE messaging_entry DROP COLUMN IF EXISTS transcript_document",
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


class Migration(migrations.Migration):
    dependencies = [("messaging", "0012_customer_card")]
    operations = [migrations.RunPython(forward, backward)]
