"""The customer's Messages page and the reply box, over plain HTTP and htmx."""

from __future__ import annotations

import re

import pytest
from django.test.signals import template_rendered
from django.utils import timezone

from messaging import actions
from messaging.models import Entry, Side
from messaging.queries import entries_for, seen_at
from messaging.rendering import render_entries
from portal.access import staff_time_zone


def test_the_page_shows_the_thread_and_marks_it_read(customer_client, thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="Hello from Mike")
    response = customer_client.get("/messages/")
    assert response.status_code == 200
    assert "Hello from Mike" in response.content.decode()
    thread.refresh_from_db()
    assert thread.customer_unread == 0
    assert seen_at(thread.entries.get()) is not None


def test_sending_by_htmx_returns_the_new_bubble(customer_client, thread):
    response = customer_client.post(
        "/messages/send/", {"body": "Sounds good!", "key": "k-1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sounds good!" in html and 'data-seq="1"' in html
    entry = thread.entries.get()
    assert (entry.kind, entry.channel) == (Entry.Kind.CUSTOMER_REPLY, Entry.Channel.PORTAL)


def test_a_send_answers_with_the_next_send_key_out_of_band(customer_client, thread):
    response = customer_client.post(
        "/messages/send/", {"body": "One", "key": "k-first"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    key = re.search(r'name="key" value="(\w+)" id="reply-key" hx-swap-oob="true"', html)
    assert key and key.group(1) != "k-first"


def test_sending_too_fast_is_refused_beside_the_box_and_writes_nothing(
    customer_client, thread, settings
):
    settings.RATE_SENDS_PER_USER = "3/m"
    codes = [
        customer_client.post(
            "/messages/send/", {"body": f"Hi {i}", "key": f"k{i}"}, HTTP_HX_REQUEST="true"
        )
        for i in range(5)
    ]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    assert codes[-1]["HX-Retarget"] == "#reply-error"
    assert "sending messages very quickly" in codes[-1].content.decode()
    assert thread.entries.count() == 3


def test_sending_without_javascript_redirects_back(customer_client, thread):
    response = customer_client.post("/messages/send/", {"body": "Plain form", "key": "k-2"})
    assert response.status_code == 302
    assert response.url == "/messages/"


def test_a_double_submit_with_the_same_key_makes_one_message(customer_client, thread):
    for _ in range(3):
        customer_client.post("/messages/send/", {"body": "Once", "key": "same-key"})
    assert thread.entries.count() == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"body": "", "key": "k"}, "Write a message"),
        ({"body": "x" * 5001, "key": "k"}, "at most 5,000"),
        ({"body": "hi"}, "required"),
        ({"body": "hi", "key": "<script>"}, "malformed"),
    ],
)
def test_bad_messages_get_a_400_with_a_reason_and_change_nothing(
    customer_client, thread, data, reason
):
    plain = customer_client.post("/messages/send/", data)
    assert plain.status_code == 400
    assert reason in plain.content.decode()
    htmx = customer_client.post("/messages/send/", data, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400
    assert htmx["HX-Retarget"] == "#reply-error"
    assert reason in htmx.content.decode()
    assert not Entry.objects.exists()


def test_get_on_send_is_not_allowed(customer_client):
    assert customer_client.get("/messages/send/").status_code == 405


def test_page_numbers_that_are_not_numbers_get_a_400(customer_client, thread):
    assert customer_client.get("/messages/?before=abc").status_code == 400
    assert customer_client.get("/messages/entries/?before=-1").status_code == 400


def test_sending_needs_a_csrf_token(client, customer, thread):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer.user)
    response = strict.post("/messages/send/", {"body": "hi", "key": "k"})
    assert response.status_code == 403
    assert not Entry.objects.exists()


def test_staff_reply_and_internal_note(staff_client, thread):
    url = f"/staff/chat/{thread.pk}/send/"
    staff_client.post(url, {"body": "Hi Sarah", "key": "s1"}, HTTP_HX_REQUEST="true")
    staff_client.post(
        url, {"body": "Gate code", "key": "s2", "internal_note": "on"}, HTTP_HX_REQUEST="true"
    )
    kinds = list(thread.entries.values_list("kind", flat=True))
    assert kinds == [Entry.Kind.STAFF_MESSAGE, Entry.Kind.INTERNAL_NOTE]
    thread.refresh_from_db()
    assert thread.customer_unread == 1


def test_opening_the_staff_chat_marks_the_customers_messages_read(staff_client, thread, customer):
    actions.post_customer_reply(customer=customer, body="Hello?")
    thread.refresh_from_db()
    assert thread.staff_unread == 1
    assert staff_client.get(f"/staff/chat/{thread.pk}/").status_code == 200
    thread.refresh_from_db()
    assert thread.staff_unread == 0
    assert thread.staff_read_at is not None


def test_seen_appears_under_the_customers_message_once_staff_read_it(
    customer_client, thread, customer
):
    actions.post_customer_reply(customer=customer, body="Hello?")
    assert "Seen" not in customer_client.get("/messages/").content.decode()
    actions.mark_read(thread=thread, side=Side.STAFF)
    assert "Seen" in customer_client.get("/messages/").content.decode()


def test_an_sms_is_never_shown_as_seen(customer_client, thread, customer):
    actions.post_customer_reply(customer=customer, body="by text", channel=Entry.Channel.SMS)
    actions.mark_read(thread=thread, side=Side.STAFF)
    assert "Seen" not in customer_client.get("/messages/").content.decode()


def test_cached_entries_follow_renames_read_times_and_the_date(
    customer_client, thread, customer, staff, business
):
    actions.post_staff_message(thread=thread, author=staff, body="Cached words")
    mine = actions.post_customer_reply(customer=customer, body="My words")
    first = customer_client.get("/messages/").content.decode()
    assert "Mike&#x27;s Contracting" in first and "Seen" not in first

    business.name = "Reyes Renovations"
    business.save()
    actions.mark_read(thread=thread, side=Side.STAFF)
    again = customer_client.get("/messages/").content.decode()
    assert "Reyes Renovations" in again and "Mike&#x27;s Contracting" not in again
    assert f'id="entry-{mine.seq}"' in again and "Seen" in again


def test_a_cached_page_is_identical_to_a_fresh_one(customer_client, thread, staff):
    from django.core.cache import caches

    for n in range(5):
        actions.post_staff_message(thread=thread, author=staff, body=f"entry {n}")
    customer_client.get("/messages/")  # marks read: the next two renders see the same rows
    warm = customer_client.get("/messages/").content.decode()
    caches["fragments"].clear()
    cold = customer_client.get("/messages/").content.decode()

    def strip_tokens(html):
        import re

        html = re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+', "", html)
        return re.sub(r'name="key" value="[^"]+"', "", html)

    assert strip_tokens(warm) == strip_tokens(cold)


def test_an_earlier_page_loaded_into_the_timeline_carries_no_load_later_marker(
    customer_client, thread, staff
):
    for i in range(120):
        actions.post_staff_message(thread=thread, author=staff, body=f"m{i}", notify=False)
    html = customer_client.get("/messages/entries/?before=71").content.decode()
    assert "load-earlier" in html and "load-later" not in html
    html = customer_client.get("/messages/entries/?after=10").content.decode()
    assert "load-later" in html and "load-earlier" not in html
    # Without JavaScript the page of earlier entries is a page of its own, with both.
    html = customer_client.get("/messages/?before=71").content.decode()
    assert "load-earlier" in html and "load-later" in html


@pytest.fixture
def two_projects(customer, project, thread, staff):
    from tests.factories import ProjectFactory

    patio = ProjectFactory(customer=customer, code="PRJ-2000", title="Patio")
    actions.post_customer_reply(customer=customer, body="Deck question", project=project)
    actions.post_staff_message(thread=thread, author=staff, body="Patio answer", project=patio)
    actions.post_staff_message(thread=thread, author=staff, body="About everything")
    return project, patio


def test_the_project_chips_show_one_projects_messages(customer_client, two_projects, thread):
    deck, patio = two_projects
    everything = customer_client.get("/messages/").content.decode()
    assert all(t in everything for t in ("Deck question", "Patio answer", "About everything"))
    assert 'href="/messages/?p=PRJ-2000"' in everything

    html = customer_client.get("/messages/?p=PRJ-2000").content.decode()
    assert "Patio answer" in html
    assert "Deck question" not in html and "About everything" not in html
    assert 'aria-current="page">Patio' in html
    # The live socket and the reply box keep to the project.
    assert 'ws-connect="/ws/thread/?p=PRJ-2000"' in html
    assert '<input type="hidden" name="p" value="PRJ-2000">' in html


def test_one_projects_view_does_not_mark_the_whole_thread_read(
    customer_client, two_projects, thread
):
    customer_client.get("/messages/?p=PRJ-1042")
    thread.refresh_from_db()
    assert thread.customer_unread == 2
    customer_client.get("/messages/")
    thread.refresh_from_db()
    assert thread.customer_unread == 0


def test_paging_a_projects_view_keeps_the_filter(customer_client, two_projects, thread, staff):
    deck, _ = two_projects
    for i in range(60):
        actions.post_staff_message(thread=thread, author=staff, body=f"Deck {i}", project=deck)
    html = customer_client.get("/messages/?p=PRJ-1042").content.decode()
    marker = re.search(r'hx-get="(/messages/entries/\?[^"]+)"', html).group(1)
    assert marker.startswith("/messages/entries/?p=PRJ-1042&amp;before=")
    earlier = customer_client.get(marker.replace("&amp;", "&"), HTTP_HX_REQUEST="true")
    text = earlier.content.decode()
    assert "Deck question" in text and "About everything" not in text


def test_a_reply_from_a_projects_view_is_about_that_project(customer_client, two_projects, thread):
    _, patio = two_projects
    response = customer_client.post(
        "/messages/send/", {"body": "Patio follow-up", "key": "k-p", "p": "PRJ-2000"}
    )
    assert response.status_code == 302 and response["Location"] == "/messages/?p=PRJ-2000"
    assert thread.entries.get(body="Patio follow-up").project == patio


@pytest.mark.parametrize("path", ["/messages/?p=PRJ-9999", "/messages/entries/?p=PRJ-9999"])
def test_another_customers_project_is_not_found(customer_client, two_projects, path):
    assert customer_client.get(path).status_code == 404


def test_a_reply_about_another_customers_project_writes_nothing(
    customer_client, two_projects, thread, other_customer
):
    from tests.factories import ProjectFactory

    ProjectFactory(customer=other_customer, code="PRJ-1043", title="Kitchen")
    before = thread.entries.count()
    response = customer_client.post(
        "/messages/send/", {"body": "Sneaky", "key": "k-s", "p": "PRJ-1043"}
    )
    assert response.status_code == 404
    assert thread.entries.count() == before


def test_the_chat_socket_finds_a_staff_send_already_rendered_by_its_response(staff_client, thread):
    # The response renders the new entry into the fragment cache with the Delivery rows the
    # append wrote (no query for them); the staff chat socket, loading the same entry from
    # the database (messaging.consumers), computes the same key and renders nothing.
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/", {"body": "Crew at 8", "key": "k1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "Crew at 8" in response.content.decode()
    entry = Entry.objects.get(body="Crew at 8")
    assert entry.deliveries.exists()  # so the key holds their states
    rendered = []

    def record(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(record)
    try:
        with timezone.override(staff_time_zone()):
            loaded = entries_for(thread=thread, audience=Side.STAFF).get(pk=entry.pk)
            html = render_entries(
                [loaded],
                audience=Side.STAFF.value,
                business=thread.customer.business,
                customer=thread.customer,
            )
    finally:
        template_rendered.disconnect(record)
    assert "Crew at 8" in html and "messaging/_entry.html" not in rendered
