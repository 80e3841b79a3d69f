"""GIN index for full-text search over entry bodies (PostgreSQL only).

Searches then used this expression, built the same way, so the planner matched them to it.
Migration 0008 replaced it with a stored column and its own index. SQLite has no equivalent; search there is a substring scan.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX = GinIndex(SearchVector("body", config="english"), name="entry_body_search")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("messaging", "Entry"), INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("messaging", "Entry"), INDEX)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0002_append_only_trigger")]
    operations = [migrations.RunPython(create, drop)]
