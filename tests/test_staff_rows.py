"""The staff list's rows from the per-row fragment cache (portal/rendering.py): a cached row
is the row the template renders, a change of anything the row shows is never served stale,
and the list GET and the inbox socket share one render per state."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager

import pytest
from channels.routing import URLRouter
from django.template.loader import render_to_string
from django.test.signals import template_rendered
from django.utils import timezone

from messaging import actions
from messaging.models import Side
from portal.actions import assign_customer
from portal.models import Project
from portal.queries import assignable_staff, staff_project_rows
from portal.rendering import render_project_rows
from tests.factories import CustomerFactory, ProjectFactory, StaffUserFactory

ROW = "portal/staff_projects.html#row"
AT = dt.datetime(2026, 5, 15, 15, 22, tzinfo=dt.UTC)


@pytest.fixture
def varied_rows(business, customer, thread, project, staff):
    """Rows unlike each other: unread, read, assigned, without a plan, with no thread yet,
    and a customer with two projects (two rows of one thread)."""
    actions.post_customer_reply(customer=customer, body="Sounds <good>! & more " * 5, at=AT)
    ProjectFactory(customer=customer, code="PRJ-2000", title="Fence", plan_type="")
    daniel = CustomerFactory(business=business, name="Daniel O'Brien")
    ProjectFactory(customer=daniel, status=Project.Status.COMPLETED)
    daniels = actions.ensure_thread(customer=daniel)
    actions.post_staff_message(thread=daniels, author=staff, body="Done!", at=AT)
    assign_customer(customer=daniel, assignee=staff, by=staff)
    ProjectFactory(customer=CustomerFactory(business=business, name="No Thread Yet"))
    return list(staff_project_rows())


@contextmanager
def row_renders():
    """How many rows were rendered from the template: each renders one assignee control."""
    names = []

    def seen(sender, template, **kwargs):
        names.append(template.name)

    template_rendered.connect(seen)
    try:
        yield lambda: names.count("portal/_assignee.html")
    finally:
        template_rendered.disconnect(seen)


def test_a_cached_row_is_the_row_the_template_renders(varied_rows):
    staff_members = assignable_staff()
    assert len(varied_rows) == 4
    with timezone.override("America/Chicago"):
        page = [
            render_to_string(ROW, {"row": r, "staff_members": staff_members, "csrf_token": "T0K"})
            for r in varied_rows
        ]
        live = [
            render_to_string(ROW, {"row": r, "staff_members": staff_members, "oob": True})
            for r in varied_rows
        ]
        with row_renders() as renders:
            cold = render_project_rows(varied_rows, staff_members=staff_members, csrf_token="T0K")
            assert renders() == 4
            warm = render_project_rows(varied_rows, staff_members=staff_members, csrf_token="T0K")
            oob = render_project_rows(varied_rows, staff_members=staff_members, oob=True)
            assert renders() == 4  # both from the cache
    assert cold == warm == "".join(page)
    assert oob == "".join(live)
    assert 'value="T0K"' in cold and "csrfmiddlewaretoken" not in oob
    assert "May 15, 10:22am" in cold  # Chicago's time of AT


def test_the_page_is_the_same_from_the_cache_and_carries_the_requests_token(
    staff_client, varied_rows
):
    from django.core.cache import caches

    warm_up = staff_client.get("/staff/projects/").content.decode()
    warm = staff_client.get("/staff/projects/").content.decode()
    caches["fragments"].clear()
    cold = staff_client.get("/staff/projects/").content.decode()

    def tokens(html):
        return re.findall(r'(?:csrfmiddlewaretoken" value="|X-CSRFToken": ")([^"]+)', html)

    for html in (warm_up, warm, cold):
        rows = re.findall(r'<tr class="project-row.*?</tr>', html, re.S)
        assert len(rows) == 4
        # Every row's control carries this response's token, the one in the body's hx-headers.
        assert {tokens(row)[0] for row in rows} == set(tokens(html)) and len(set(tokens(html))) == 1
        assert "csrf-token-of-the-request" not in html
    assert tokens(warm) != tokens(cold)  # a token per response, never one from the cache

    def strip_tokens(html):
        return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+', "", html)

    assert strip_tokens(warm) == strip_tokens(cold)


def _row_of(html: str, project) -> str:
    return re.search(rf'<tr class="[^"]*" id="project-{project.pk}".*?</tr>', html, re.S)[0]


def test_no_change_to_a_row_is_served_stale(
    staff_client, business, customer, thread, project, staff
):
    actions.post_customer_reply(customer=customer, body="First words", at=AT)

    def row():
        html = _row_of(staff_client.get("/staff/projects/").content.decode(), project)
        return re.sub(r'csrfmiddlewaretoken" value="[^"]+', "", html)

    before = row()
    assert "First words" in before and 'data-unread="1"' in before
    assert row() == before  # from the cache

    actions.post_customer_reply(customer=customer, body="Second words", at=AT)
    now = row()
    assert "Second words" in now and 'data-unread="2"' in now and "First words" not in now

    actions.mark_read(thread=thread, side=Side.STAFF)
    now = row()
    assert 'data-unread="0"' in now and "unread-badge" not in now

    kim = StaffUserFactory(username="kim", first_name="Kim")
    now = row()
    assert f'<option value="{kim.pk}">Kim</option>' in now
    assign_customer(customer=customer, assignee=kim, by=staff)
    assert f'<option value="{kim.pk}" selected>Kim</option>' in row()

    customer.name = "Sarah Reyes"
    customer.save()
    project.title = "Porch"
    project.status = Project.Status.COMPLETED
    project.save()
    now = row()
    assert "Open chat with Sarah Reyes" in now and "Sarah Mitchell" not in now
    assert '<span class="project-title">Porch</span>' in now and "status-completed" in now

    before_zone = row()
    business.time_zone = "Asia/Tokyo"
    business.save()
    assert "May 16, 12:22am" in row() and "May 16" not in before_zone


@pytest.mark.django_db(transaction=True)
async def test_the_socket_and_the_list_share_one_render_per_state(staff, client, customer, project):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from messaging.routing import websocket_urlpatterns

    await sync_to_async(client.force_login)(staff)
    await sync_to_async(actions.post_customer_reply)(customer=customer, body="Hello", at=AT)
    page = (await sync_to_async(client.get)("/staff/projects/")).content.decode()
    inbox = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/staff/inbox/")
    inbox.scope["user"] = staff
    assert (await inbox.connect(timeout=5))[0]
    with row_renders() as renders:
        await sync_to_async(actions.post_customer_reply)(customer=customer, body="Again", at=AT)
        frame = await inbox.receive_from(timeout=5)
        assert "Again" in frame and "Hello" not in frame  # not the page's cached row
        assert renders() == 2  # the row, and the chat modal's assignee control
        again = (await sync_to_async(client.get)("/staff/projects/")).content.decode()
        assert renders() == 2  # the page's row came from the socket's render
    await inbox.disconnect()
    assert "Hello" in _row_of(page, project)
    row = _row_of(again, project)
    control = re.search(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">', row)[0]
    assert frame == row.replace(">", ' hx-swap-oob="outerHTML">', 1).replace(control, "")
