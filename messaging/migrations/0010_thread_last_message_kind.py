"""Thread.last_message_kind, kept by the append that writes a message; filled here for the
threads that already have messages (one statement, the same on PostgreSQL and SQLite)."""

from django.db import migrations, models

BACKFILL = """
UPDATE messaging_thread SET last_message_kind = COALESCE((
    SELECT e.kind FROM messaging_entry e
    WHERE e.thread_id = messaging_thread.id
      AND e.kind IN ('staff_message', 'automated', 'customer_reply')
    ORDER BY e.seq DESC LIMIT 1
), '')
"""


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0009_entry_card_kind_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="thread",
            name="last_message_kind",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
