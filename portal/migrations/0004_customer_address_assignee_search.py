"""Customer.address and Customer.assigned_to; on PostgreSQL, the staff search's trigram
indexes (pg_trgm GIN; docs/performance.md says why trigram rather than full-text).

Each index is on the very expression the search's lookups produce (portal.queries): Django's
`icontains` is `UPPER(col::text) LIKE UPPER(%s)`, and the phone's digits `col::text LIKE %s`,
so the planner answers `LIKE '%…%'` from the index instead of reading every row. SQLite has
no pg_trgm; its databases are a laptop's few rows, so there the migration only adds fields."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = {
    "customer_name_trgm": ("portal_customer", "(UPPER((name)::text)) gin_trgm_ops"),
    "customer_email_trgm": ("portal_customer", "(UPPER((email)::text)) gin_trgm_ops"),
    "customer_address_trgm": ("portal_customer", "(UPPER((address)::text)) gin_trgm_ops"),
    "customer_phone_trgm": ("portal_customer", "((phone)::text) gin_trgm_ops"),
    "project_code_trgm": ("portal_project", "(UPPER((code)::text)) gin_trgm_ops"),
    "project_title_trgm": ("portal_project", "(UPPER((title)::text)) gin_trgm_ops"),
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, expression) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    # The extension stays: other database objects may come to use it, and it costs nothing.


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_business_address"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="address",
            field=models.CharField(blank=True, help_text="Where the work is done.", max_length=300),
        ),
        migrations.AddField(
            model_name="customer",
            name="assigned_to",
            field=models.ForeignKey(
                blank=True,
                limit_choices_to={"is_active": True, "is_staff": True},
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="assigned_customers",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
