"""How the thread reads (issue 18, item 21): cards say what happened, how much and what to do;
the header names a project only when one is shown; My Project's "Latest" has the customer's
own replies, tagged or not."""

from __future__ import annotations

import re

import pytest

from messaging import actions
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_projects(customer, project, thread):
    patio = ProjectFactory(customer=customer, code="PRJ-2000", title="Patio")
    return project, patio


def test_a_card_shows_its_amount_and_its_action(customer_client, thread, project):
    actions.post_event_card(
        thread=thread,
        card_kind="invoice",
        title="Invoice #2041 sent — $4,200",
        link_url="/invoices/2041/",
        project=project,
        notify=False,
    )
    page = customer_client.get("/messages/").content.decode()
    card = re.search(r'<a class="card" href="/invoices/2041/">(.*?)</a>', page, re.S).group(1)
    assert '<span class="card-title">Invoice #2041 sent</span>' in card
    assert '<span class="card-detail">$4,200</span>' in card
    assert '<span class="card-action">View invoice</span>' in card


def test_with_all_shown_the_header_names_no_single_project(customer_client, two_projects):
    page = customer_client.get("/messages/").content.decode()
    header = page.split('<header class="thread-header">')[1].split("</header>")[0]
    assert "All 2 projects" in header
    assert "Patio" not in header and "Deck" not in header
    one = customer_client.get("/messages/?p=PRJ-2000").content.decode()
    header = one.split('<header class="thread-header">')[1].split("</header>")[0]
    assert "Patio · " in header


def test_with_one_project_the_header_names_it(customer_client, project, thread):
    page = customer_client.get("/messages/").content.decode()
    header = page.split('<header class="thread-header">')[1].split("</header>")[0]
    assert f"{project.title} · " in header


def test_my_projects_latest_includes_her_untagged_replies(customer_client, customer, project):
    actions.post_customer_reply(customer=customer, body="Typed with All shown", notify=False)
    page = customer_client.get("/project/").content.decode()
    latest = page.split("<h3>Latest</h3>")[1].split("</ul>")[0]
    assert "You: Typed with All shown" in latest


def test_an_untagged_reply_counts_for_each_project(customer_client, customer, two_projects):
    actions.post_customer_reply(customer=customer, body="About both", notify=False)
    page = customer_client.get("/project/").content.decode()
    assert page.count("You: About both") == 2
