"""The staff project list: unread first, newest next, in keyset pages of 50."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

from messaging import actions
from portal.queries import STAFF_PAGE_SIZE, RowCursor
from tests.factories import CustomerFactory, ProjectFactory


def _codes(html: str) -> list[str]:
    return re.findall(r'data-code="([^"]+)"', html)


def _make_projects(business, staff, n):
    start = timezone.now() - dt.timedelta(days=30)
    for i in range(n):
        project = ProjectFactory(customer=CustomerFactory(business=business), code=f"PRJ-{i:04d}")
        thread = actions.ensure_thread(customer=project.customer)
        if i % 3 == 0:
            actions.post_customer_reply(
                customer=project.customer, body="Hello", at=start + dt.timedelta(hours=i)
            )
        elif i % 3 == 1:
            actions.post_staff_message(
                thread=thread, author=staff, body="Hi", at=start + dt.timedelta(hours=i)
            )
        # i % 3 == 2: a thread with no entries yet


def test_pages_cover_every_project_once_in_order(staff_client, business, staff):
    _make_projects(business, staff, 130)
    first = staff_client.get("/staff/projects/").content.decode()
    codes = _codes(first)
    assert len(codes) == STAFF_PAGE_SIZE
    while "Load more projects" in first:
        cursor = re.search(r"\?after=([^\"&]+)\"", first).group(1)
        first = staff_client.get(f"/staff/projects/?after={cursor}", HTTP_HX_REQUEST="true")
        first = first.content.decode()
        codes += _codes(first)
    assert len(codes) == len(set(codes)) == 130
    unread = [f"PRJ-{i:04d}" for i in range(130) if i % 3 == 0]
    # Unread first, newest activity first; then read ones newest first; then never-used.
    assert codes[: len(unread)] == sorted(unread, reverse=True)
    read = [f"PRJ-{i:04d}" for i in range(130) if i % 3 == 1]
    assert codes[len(unread) : len(unread) + len(read)] == sorted(read, reverse=True)
    never = [f"PRJ-{i:04d}" for i in range(130) if i % 3 == 2]
    assert codes[len(unread) + len(read) :] == sorted(never)


def test_a_malformed_cursor_is_a_400(staff_client):
    for raw in (
        "nonsense", "2~1~PRJ", "1~abc~PRJ-1", "1~~", "1~inf~X", "1~1e30~X", "1~nan~X",
        "0~~a\x00", "0~~PRJ\n1", "1~\x00~PRJ", "0~~x~PRJ-1", "0~~-1~PRJ-1", "0~~١~PRJ-1",
    ):  # fmt: skip
        assert staff_client.get("/staff/projects/", {"after": raw}).status_code == 400


def test_cursors_round_trip():
    now = timezone.now()
    for cursor in (RowCursor(1, now, 7, "PRJ-1"), RowCursor(0, None, 12, "A~B")):
        decoded = RowCursor.decode(cursor.encode())
        assert decoded.has_unread == cursor.has_unread and decoded.code == cursor.code
        assert decoded.customer_id == cursor.customer_id
        if cursor.last_entry_at:
            assert abs(decoded.last_entry_at - cursor.last_entry_at) < dt.timedelta(microseconds=2)


def test_a_project_whose_customer_has_no_thread_yet_is_listed_without_a_500(staff_client, business):
    ProjectFactory(customer=CustomerFactory(business=business, name="Brand New"))
    response = staff_client.get("/staff/projects/")
    assert response.status_code == 200
    assert "Brand New" in response.content.decode()
