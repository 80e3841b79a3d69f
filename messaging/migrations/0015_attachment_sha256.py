"""Attachment.sha256, taken when a file is stored (transcripts list it). Files stored before
get theirs here; the append-only trigger now lets exactly that one change through: an empty
hash filled, nothing else on the row touched. `manage.py backfill_attachment_hashes` does the
same later, for files restored after this ran."""

import hashlib

from django.db import migrations, models

ALLOW_HASH_FILL = """
CREATE OR REPLACE FUNCTION messaging_attachment_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.sha256 = '' AND NEW.sha256 ~ '^[0-9a-f]{64}$'
       AND to_jsonb(NEW) - 'sha256' = to_jsonb(OLD) - 'sha256' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'messaging_attachment is append-only: % of attachment % refused', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""

REFUSE_ALL = """
CREATE OR REPLACE FUNCTION messaging_attachment_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'messaging_attachment is append-only: % of attachment % refused', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""


def allow_hash_fill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW_HASH_FILL, params=None)


def refuse_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REFUSE_ALL, params=None)


def backfill(apps, schema_editor):
    Attachment = apps.get_model("messaging", "Attachment")
    for attachment in Attachment.objects.filter(sha256="").iterator(chunk_size=200):
        digest = hashlib.sha256()
        try:
            with attachment.file.open("rb") as file:
                for block in iter(lambda f=file: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            continue  # a file missing from storage keeps no hash; the command can retry
        Attachment.objects.filter(pk=attachment.pk, sha256="").update(sha256=digest.hexdigest())


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0014_read_marks"),
    ]

    operations = [
        migrations.AddField(
            model_name="attachment",
            name="sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(allow_hash_fill, refuse_all),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
