"""GIN index for full-text search over entry bodies (PostgreSQL only).

The expression is `messaging.queries.BODY_SEARCH_VECTOR`, built the same way, so the planner
matches searches to it. SQLite has no equivalent; search there is a substring scan.
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
