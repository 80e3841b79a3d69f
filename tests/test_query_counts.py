"""Lists and pages run a fixed number of queries whatever the thread's length or the number
of projects. Each test lists the expected queries; on a mismatch pytest-django prints the SQL.
The session is read from the cache (SESSION_ENGINE cached_db), so it costs no query here."""

from __future__ import annotations

import pytest

from messaging import actions
from tests.factories import CustomerFactory, ProjectFactory


def _fill(thread, staff, customer, n):
    for i in range(n):
        actions.post_staff_message(thread=thread, author=staff, body=f"deck update {i}")
        actions.post_customer_reply(customer=customer, body=f"deck reply {i}")
        if i % 5 == 0:
            actions.add_internal_note(thread=thread, author=staff, body=f"note {i}")
            actions.post_event_card(
                thread=thread, card_kind="invoice", title=f"Invoice #{i}", link_url="/invoices/"
            )


@pytest.mark.parametrize("pairs", [3, 60])
def test_messages_page_query_count_is_constant(
    customer_client, thread, staff, customer, project, pairs, django_assert_num_queries
):
    _fill(thread, staff, customer, pairs)
    # user, customer+business, thread (get_or_create), entries page (+1 row),
    # mark_read: savepoint, lock thread, append the read mark, move the watermark, release;
    # latest project
    with django_assert_num_queries(10):
        assert customer_client.get("/messages/").status_code == 200
    # Reopened with nothing new: mark_read takes no lock.
    # user, customer+business, thread, entries page, latest project
    with django_assert_num_queries(5):
        assert customer_client.get("/messages/").status_code == 200


@pytest.mark.parametrize("pairs", [3, 60])
def test_earlier_entries_page_query_count_is_constant(
    customer_client, thread, staff, customer, pairs, django_assert_num_queries
):
    _fill(thread, staff, customer, pairs)
    # user, customer+business, thread, entries page
    with django_assert_num_queries(4):
        response = customer_client.get("/messages/entries/?before=40", HTTP_HX_REQUEST="true")
    assert response.status_code == 200


@pytest.mark.parametrize("pairs", [3, 60])
def test_search_results_query_count_is_constant(
    customer_client, thread, staff, customer, pairs, django_assert_num_queries
):
    _fill(thread, staff, customer, pairs)
    # user, customer+business, thread, matching entries
    with django_assert_num_queries(4):
        response = customer_client.get("/messages/search/?q=deck")
    assert response.status_code == 200
    assert "deck" in response.content.decode()


@pytest.mark.parametrize("projects", [2, 70])
def test_staff_project_list_query_count_is_constant(
    staff_client, business, staff, projects, django_assert_num_queries
):
    for _ in range(projects):
        project = ProjectFactory(customer=CustomerFactory(business=business))
        thread = actions.ensure_thread(customer=project.customer)
        actions.post_customer_reply(customer=project.customer, body="Hello")
        actions.post_staff_message(thread=thread, author=staff, body="Hi")
    # user, business time zone, projects with customer, thread, unread and last
    # message (one query with subqueries), the filters' counts (one aggregate over customers),
    # the statuses' counts (one over projects), the navigation's count of unmatched messages,
    # the active staff (the choices of every row's assignee control, once)
    with django_assert_num_queries(7):
        response = staff_client.get("/staff/projects/")
    assert response.status_code == 200
    assert response.content.decode().count("Open chat with") == min(projects, 50)


@pytest.mark.parametrize("projects", [2, 70])
@pytest.mark.parametrize(
    "params",
    [
        {"q": "customer"},
        {"q": "555 555", "show": "needs_reply"},
        {"q": "deck replacement prj", "show": "mine", "status": "active"},
        {"show": "opted_out"},
    ],
)
def test_searched_and_filtered_staff_list_query_count_is_constant(
    staff_client, business, staff, projects, params, django_assert_num_queries
):
    for _ in range(projects):
        project = ProjectFactory(customer=CustomerFactory(business=business))
        actions.ensure_thread(customer=project.customer)
        actions.post_customer_reply(customer=project.customer, body="Hello")
    # The same seven as the plain list: the search terms and filters are subqueries of the
    # rows query and of the counts queries, never queries of their own.
    with django_assert_num_queries(7):
        response = staff_client.get("/staff/projects/", params)
    assert response.status_code == 200
    # The search box's htmx answer: user, rows, the two counts, the active staff (the business
    # time zone is cached by now, and the navigation with its unmatched count is not part of
    # the answer).
    with django_assert_num_queries(5):
        response = staff_client.get(
            "/staff/projects/", params, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="staff-results"
        )
    assert response.status_code == 200


@pytest.mark.parametrize("pairs", [3, 60])
def test_staff_chat_query_count_is_constant(
    staff_client, thread, staff, customer, project, pairs, django_assert_num_queries
):
    _fill(thread, staff, customer, pairs)
    # user, business time zone, thread+customer+business, entries page,
    # mark_read: savepoint, lock, read mark, watermark, release; the page's deliveries (one query
    # for all entries); the customer's projects; the active staff (the assignee control)
    with django_assert_num_queries(12):
        response = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
