"""With the database unreachable (a restart, a failover), a request answers 503 with the
reason and writes nothing; the reply box shows the reason. The database is really out of
reach: the connection's settings point where no database is, as for a stopped server."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from messaging.models import Entry
from portal.outages import DATABASE_DOWN

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_unreachable(tmp_path):
    saved = dict(connection.settings_dict)
    _close(connection)
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-directory" / "db.sqlite3")
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        yield
    finally:
        _close(connection)
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def _close(conn) -> None:
    conn.close()
    if getattr(conn, "pool", None) is not None:  # psycopg's pool outlives a close
        conn.close_pool()


def test_a_send_while_the_database_is_down_answers_503_with_the_reason(
    staff_client, thread, tmp_path
):
    with database_unreachable(tmp_path):
        response = staff_client.post(
            f"/staff/chat/{thread.pk}/send/",
            {"body": "Crew is on the way", "key": "k-db-down"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.content.decode() == DATABASE_DOWN
    # Into the reply box's error line, where htmx swaps a 503 (templates/base.html).
    assert response["HX-Retarget"] == "find .field-error"
    assert not Entry.objects.filter(thread=thread).exists()


def test_a_page_while_the_database_is_down_answers_503(customer_client, tmp_path):
    with database_unreachable(tmp_path):
        response = customer_client.get("/messages/")
    assert response.status_code == 503
    assert DATABASE_DOWN in response.content.decode()
