"""Invariant 4: a customer reaches only their own thread and records; anything else is 404."""

from __future__ import annotations

import pytest

from messaging import actions


@pytest.mark.parametrize(
    "url",
    [
        "/staff/projects/",
        "/staff/chat/{other}/",
        "/staff/chat/{own}/",
        "/staff/chat/{other}/entries/",
        "/staff/chat/999999/",
    ],
)
def test_customer_gets_404_for_staff_urls_and_other_threads(
    customer_client, thread, other_thread, url
):
    response = customer_client.get(url.format(own=thread.pk, other=other_thread.pk))
    assert response.status_code == 404


def test_customer_cannot_post_into_another_customers_thread(customer_client, thread, other_thread):
    response = customer_client.post(
        f"/staff/chat/{other_thread.pk}/send/", {"body": "hello", "key": "k1"}
    )
    assert response.status_code == 404
    assert other_thread.entries.count() == 0


def test_customer_sees_only_their_own_thread(customer_client, thread, other_thread, staff):
    actions.post_staff_message(thread=other_thread, author=staff, body="For Daniel only")
    actions.post_staff_message(thread=thread, author=staff, body="For Sarah")
    page = customer_client.get("/messages/").content.decode()
    assert "For Sarah" in page
    assert "For Daniel only" not in page
    assert (
        "For Daniel only" not in customer_client.get("/messages/search/?q=Daniel").content.decode()
    )


def test_a_customers_post_lands_in_their_own_thread(customer_client, thread, other_thread):
    customer_client.post("/messages/send/", {"body": "Mine", "key": "abc123"})
    assert [e.body for e in thread.entries.all()] == ["Mine"]
    assert other_thread.entries.count() == 0


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    assert client.get("/messages/").url.startswith("/login/")
    assert client.get("/staff/projects/").url.startswith("/staff/login/")


def test_staff_without_a_customer_record_get_404_on_customer_pages(staff_client):
    assert staff_client.get("/messages/").status_code == 404
