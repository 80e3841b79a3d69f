"""Escaping everywhere, safe links, and CSRF on every POST."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging import actions
from messaging.templatetags.thread import linkify
from tests.factories import CustomerFactory, ProjectFactory, UserFactory

XSS_PAYLOADS = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    '<a href="javascript:alert(1)">click</a>',
    "'\"--></style></script><script>alert(1)</script>",
    "<iframe src=//evil.example>",
    "http://example.com/<script>alert(1)</script>",
    'https://example.com/" onmouseover="alert(1)',
    "{{ 7*7 }} {% csrf_token %}",
]


def _dangerous(html: str) -> list[str]:
    found = []
    for marker in (
        "<script>alert",
        "<img src=x",
        "<svg/onload",
        "<iframe",
        'href="javascript:',
        '" onmouseover="',
    ):
        if marker in html:
            found.append(marker)
    return found


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_payloads_in_bodies_names_and_titles_are_escaped_everywhere(client, staff, payload):
    customer = CustomerFactory(name=f"Eve {payload}", user=UserFactory(username="eve"))
    ProjectFactory(customer=customer, title=f"Deck {payload}", plan_type=payload)
    thread = actions.ensure_thread(customer=customer)
    actions.post_customer_reply(customer=customer, body=payload)
    actions.post_staff_message(thread=thread, author=staff, body=payload)
    actions.add_internal_note(thread=thread, author=staff, body=payload)

    client.force_login(customer.user)
    pages = [
        client.get("/messages/").content.decode(),
        client.get("/messages/search/", {"q": payload[:50]}).content.decode(),
        client.get("/messages/entries/?before=99", HTTP_HX_REQUEST="true").content.decode(),
        client.get("/project/").content.decode(),
    ]
    client.force_login(staff)
    pages += [
        client.get("/staff/projects/").content.decode(),
        client.get(f"/staff/chat/{thread.pk}/").content.decode(),
        client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode(),
    ]
    for html in pages:
        assert _dangerous(html) == []


def test_links_in_messages_become_safe_anchors():
    html = linkify("See https://example.com/invoice?id=1&x=2. Thanks")
    assert html == (
        'See <a href="https://example.com/invoice?id=1&amp;x=2" rel="noopener nofollow" '
        'target="_blank">https://example.com/invoice?id=1&amp;x=2</a>. Thanks'
    )


def test_only_http_links_are_linked():
    assert "<a" not in linkify("javascript:alert(1) and ftp://x.example and data:text/html,hi")


def test_a_linked_message_renders_with_rel_noopener(customer_client, thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="Photos: https://example.com/p")
    html = customer_client.get("/messages/").content.decode()
    assert 'href="https://example.com/p" rel="noopener nofollow"' in html


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("customer", "/messages/send/"),
        ("customer", "/logout/"),
        ("staff", "/staff/chat/{thread}/send/"),
    ],
)
def test_every_post_needs_a_csrf_token(customer, staff, thread, who, path):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer.user if who == "customer" else staff)
    response = strict.post(path.format(thread=thread.pk), {"body": "hi", "key": "k"})
    assert response.status_code == 403
    assert thread.entries.count() == 0


def test_htmx_pages_carry_the_csrf_token_for_htmx_posts(customer_client, thread):
    html = customer_client.get("/messages/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
