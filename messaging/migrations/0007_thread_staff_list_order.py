"""The staff list's order, stored and indexed: staff_has_unread (generated from the counters)
and, on PostgreSQL, an index in the list's order (unread first, then latest activity, threads
without any last). SQLite cannot index NULLS LAST; its databases are a laptop's few rows."""

from django.db import migrations, models

INDEX = "thread_staff_list_order"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {INDEX} ON messaging_thread "
            "(staff_has_unread DESC, last_entry_at DESC NULLS LAST)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0006_entry_attachment_count"),
    ]

    operations = [
        migrations.AddField(
            model_name="thread",
            name="staff_has_unread",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(staff_inbound__gt=models.F("staff_read"), then=models.Value(1)),
                    default=models.Value(0),
                ),
                output_field=models.SmallIntegerField(),
            ),
        ),
        migrations.RunPython(create_index, drop_index),
    ]
