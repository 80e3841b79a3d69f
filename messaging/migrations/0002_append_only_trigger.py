"""On PostgreSQL the database itself keeps entries append-only.

A row trigger refuses DELETE, and refuses an UPDATE that changes anything but the bookkeeping
columns. It compares whole rows as jsonb minus those columns, so a column added later is
protected by default. (TRUNCATE is left to administrators and to the test runner's flush.)
Other databases rely on the model layer (EntryQuerySet / Entry.save / Entry.delete).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION messaging_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'messaging_entry is append-only: DELETE of entry % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - 'read_at') IS DISTINCT FROM (to_jsonb(OLD) - 'read_at') THEN
        RAISE EXCEPTION 'messaging_entry is append-only: content of entry % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER messaging_entry_append_only
    BEFORE UPDATE OR DELETE ON messaging_entry
    FOR EACH ROW EXECUTE FUNCTION messaging_entry_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS messaging_entry_append_only ON messaging_entry;
DROP FUNCTION IF EXISTS messaging_entry_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
