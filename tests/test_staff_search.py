"""The staff list, found and filtered: ?q= over name, phone in any format, email, address,
project code and title; filters as links (All, Unread, Needs reply, Mine, Unassigned, Opted out
of SMS, by project status) with counts, each keeping the search and the search keeping them;
a customer's rows always together and honest about the one thread they share."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from messaging import actions
from notifications.outbound.preferences import set_sms_opt_out
from portal.actions import AssignmentRefused, assign_customer
from portal.models import Customer, Project
from tests.factories import CustomerFactory, ProjectFactory, StaffUserFactory, UserFactory


def _customers(html: str) -> list[str]:
    """Customer names of the rows, in order, one per row."""
    return re.findall(r'<th scope="row">([^<]+)</th>', html)


def _codes(html: str) -> list[str]:
    return re.findall(r'data-code="([^"]+)"', html)


def _get(client, **params) -> str:
    response = client.get("/staff/projects/", params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def world(business, customer, staff):
    """Sarah (deck and fence, her fence question unanswered), Daniel Ortiz (kitchen, answered),
    Luis Ramirez (roof, phone only, opted out of SMS, no messages), kim's Ann Baker."""
    customer.address = "12 Cedar Lane, Springfield"
    customer.save(update_fields=["address"])
    deck = ProjectFactory(customer=customer, code="PRJ-1042", title="Deck Replacement Project")
    fence = ProjectFactory(customer=customer, code="PRJ-1077", title="Fence Repair")
    sarah_thread = actions.ensure_thread(customer=customer)
    actions.post_staff_message(thread=sarah_thread, author=staff, body="Deck done!", project=deck)
    actions.post_customer_reply(customer=customer, body="Can you look at the fence?", project=fence)
    actions.add_internal_note(thread=sarah_thread, author=staff, body="Gate code 4512")

    daniel = CustomerFactory(
        business=business, name="Daniel Ortiz", email="daniel@example.com", phone="+15555550188"
    )
    ProjectFactory(customer=daniel, code="PRJ-2001", title="Kitchen Remodel", status="planning")
    daniel_thread = actions.ensure_thread(customer=daniel)
    actions.post_customer_reply(customer=daniel, body="Samples on Monday?")
    actions.post_staff_message(thread=daniel_thread, author=staff, body="Yes, Monday.")
    actions.mark_read(thread=daniel_thread, side="staff")

    luis = CustomerFactory(business=business, name="Luis Ramirez", email="", phone="+15555550199")
    ProjectFactory(customer=luis, code="PRJ-3001", title="Roof Repair", status="on_hold")
    actions.ensure_thread(customer=luis)
    set_sms_opt_out(customer=luis, opted_out=True)

    kim = StaffUserFactory(username="kim", first_name="Kim")
    ann = CustomerFactory(business=business, name="Ann Baker", email="ann@example.org")
    ProjectFactory(customer=ann, code="PRJ-4001", title="Porch Paint")
    ann_thread = actions.ensure_thread(customer=ann)
    actions.post_customer_reply(customer=ann, body="When do you start?")
    actions.post_automated_message(thread=ann_thread, body="We start Tuesday.")
    assign_customer(customer=ann, assignee=kim)
    assign_customer(customer=daniel, assignee=staff)
    return {"sarah": customer, "daniel": daniel, "luis": luis, "ann": ann, "kim": kim}


# -- honest rows --------------------------------------------------------------------------------


def test_a_customers_two_rows_show_the_threads_newest_message_and_its_project(staff_client, world):
    html = _get(staff_client)
    rows = re.findall(r'<tr class="project-row[^"]*" id="project-\d+"[^>]*>.*?</tr>', html, re.S)
    sarah_rows = [r for r in rows if "Sarah Mitchell" in r]
    assert len(sarah_rows) == 2
    for row in sarah_rows:
        # Both: the fence question, said to be about the fence, the same unread state, the
        # same thread's chat.
        assert '<span class="about-project">Fence Repair:</span>' in row
        assert "Can you look at the fence?" in row
        assert 'data-unread="1"' in row
    chats = {re.search(r'href="(/staff/chat/\d+/)"', r).group(1) for r in sarah_rows}
    assert len(chats) == 1


def test_a_customers_rows_sit_together_even_when_threads_tie(staff_client, business):
    # Nobody has written yet: every thread ties on the sort keys, and codes interleave.
    a = CustomerFactory(business=business, name="Alpha")
    b = CustomerFactory(business=business, name="Bravo")
    for customer, code in ((a, "PRJ-1"), (b, "PRJ-2"), (a, "PRJ-3"), (b, "PRJ-4")):
        ProjectFactory(customer=customer, code=code)
        actions.ensure_thread(customer=customer)
    assert _customers(_get(staff_client)) == ["Alpha", "Alpha", "Bravo", "Bravo"]


# -- find ---------------------------------------------------------------------------------------


def test_ortiz_finds_only_daniels_row(staff_client, world):
    assert _customers(_get(staff_client, q="ortiz")) == ["Daniel Ortiz"]
    assert _customers(_get(staff_client, q="ORTIZ")) == ["Daniel Ortiz"]


@pytest.mark.parametrize(
    "typed", ["(555) 555-0123", "555.555.0123", "+1 555 555 0123", "15555550123", "5550123"]
)
def test_a_phone_in_another_format_finds_sarah(staff_client, world, typed):
    assert set(_customers(_get(staff_client, q=typed))) == {"Sarah Mitchell"}


@pytest.mark.parametrize(
    "typed, who",
    [
        ("daniel@example", "Daniel Ortiz"),
        ("cedar lane", "Sarah Mitchell"),
        ("PRJ-2001", "Daniel Ortiz"),
        ("prj-3001", "Luis Ramirez"),
        ("roof", "Luis Ramirez"),
        ("kitchen", "Daniel Ortiz"),
    ],
)
def test_email_address_code_and_title_each_find_their_customer(staff_client, world, typed, who):
    assert set(_customers(_get(staff_client, q=typed))) == {who}


def test_a_match_on_one_project_shows_all_that_customers_rows_together(staff_client, world):
    html = _get(staff_client, q="fence")
    assert _codes(html) == ["PRJ-1042", "PRJ-1077"]


def test_every_word_must_match_somewhere(staff_client, world):
    assert set(_customers(_get(staff_client, q="sarah deck"))) == {"Sarah Mitchell"}
    assert _customers(_get(staff_client, q="sarah kitchen")) == []


def test_a_search_that_finds_nobody_says_so_with_a_way_back(staff_client, world):
    html = _get(staff_client, q="zzzz-nobody")
    assert _customers(html) == []
    assert "No customers match." in html and 'href="/staff/projects/">Show all projects' in html


def test_the_search_box_answers_while_typing_with_the_results_alone(staff_client, world):
    page = _get(staff_client)
    box = re.search(r'<input type="search"[^>]*>', page, re.S).group(0)
    assert 'name="q"' in box and 'hx-trigger="input changed delay:300ms, search"' in box
    assert 'hx-target="#staff-results"' in box and 'hx-push-url="true"' in box
    response = staff_client.get(
        "/staff/projects/", {"q": "ortiz"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="staff-results"
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="staff-results"')
    assert "<html" not in html and 'type="search"' not in html
    assert _customers(html) == ["Daniel Ortiz"]


def test_the_plain_form_works_without_javascript(staff_client, world):
    page = _get(staff_client, q="ortiz", show="mine")
    form = re.search(r'<form class="staff-search".*?</form>', page, re.S).group(0)
    assert 'method="get"' in form and 'action="/staff/projects/"' in form
    assert 'value="ortiz"' in form and '<input type="hidden" name="show" value="mine">' in form


# -- filters ------------------------------------------------------------------------------------


def test_needs_reply_shows_exactly_the_customers_whose_last_message_is_theirs(staff_client, world):
    # Sarah's last message is hers (a note after it answers nothing); Daniel was answered by
    # staff, Ann by an automation; Luis never wrote.
    assert set(_customers(_get(staff_client, show="needs_reply"))) == {"Sarah Mitchell"}


def test_needs_reply_follows_each_message_and_ignores_notes_cards_and_calls(
    staff_client, world, staff
):
    sarah = world["sarah"]
    thread = sarah.thread
    actions.post_event_card(thread=thread, card_kind="invoice", title="Invoice #1", link_url="/")
    actions.log_call(
        thread=thread, author=staff, started_at=thread.last_entry_at, duration_seconds=60
    )
    assert "Sarah Mitchell" in _customers(_get(staff_client, show="needs_reply"))
    actions.post_staff_message(thread=thread, author=staff, body="On it.")
    assert _customers(_get(staff_client, show="needs_reply")) == []
    actions.post_customer_reply(customer=world["daniel"], body="One more thing")
    assert set(_customers(_get(staff_client, show="needs_reply"))) == {"Daniel Ortiz"}


def test_unread_mine_unassigned_and_opted_out_each_keep_their_customers(staff_client, world, staff):
    assert set(_customers(_get(staff_client, show="unread"))) == {"Sarah Mitchell", "Ann Baker"}
    assert set(_customers(_get(staff_client, show="mine"))) == {"Daniel Ortiz"}
    assert set(_customers(_get(staff_client, show="unassigned"))) == {
        "Sarah Mitchell",
        "Luis Ramirez",
    }
    assert set(_customers(_get(staff_client, show="opted_out"))) == {"Luis Ramirez"}


def test_a_status_keeps_customers_with_a_project_in_it_and_all_their_rows(staff_client, world):
    assert _customers(_get(staff_client, status="on_hold")) == ["Luis Ramirez"]
    assert set(_customers(_get(staff_client, status="active"))) == {"Sarah Mitchell", "Ann Baker"}


def _links(html: str, label: str) -> list[dict]:
    found = re.findall(rf'<a class="chip" href="([^"]*)"[^>]*>{label}\b', html)
    assert found, label
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(href.replace("&amp;", "&")).query).items()}
        for href in found
    ]


def test_filter_links_keep_the_search_and_the_search_keeps_the_filter(staff_client, world):
    html = _get(staff_client, q="ortiz", status="planning")
    assert _links(html, "Needs reply") == [
        {"q": "ortiz", "show": "needs_reply", "status": "planning"}
    ]
    assert _links(html, "All") == [{"q": "ortiz", "status": "planning"}]
    assert _links(html, "Any status") == [{"q": "ortiz"}]
    # The current filter is marked for assistive technology, and the search form carries it.
    html = _get(staff_client, q="ortiz", show="mine")
    assert re.search(r'href="[^"]*show=mine[^"]*" aria-current="true">Mine', html)
    assert '<input type="hidden" name="show" value="mine">' in html
    assert _customers(html) == ["Daniel Ortiz"]
    assert _customers(_get(staff_client, q="sarah", show="mine")) == []


def test_counts_beside_each_filter_count_customers_for_the_search(staff_client, world):
    def count(html, label):
        return int(re.search(rf'>{label} <span class="count">(\d+)</span>', html).group(1))

    html = _get(staff_client)
    assert [count(html, label) for label in ("All", "Unread", "Needs reply", "Mine")] == [
        4,
        2,
        1,
        1,
    ]
    assert [count(html, label) for label in ("Unassigned", "Opted out of SMS")] == [2, 1]
    assert [count(html, label) for label in ("Active", "Planning", "On hold", "Completed")] == [
        2,
        1,
        1,
        0,
    ]
    html = _get(staff_client, q="sarah", show="opted_out")  # counts follow the search only
    assert [
        count(html, label) for label in ("All", "Unread", "Needs reply", "Opted out of SMS")
    ] == [
        1,
        1,
        1,
        0,
    ]


def test_load_more_keeps_the_search_and_filter(staff_client, business, staff):
    for name in [f"Smith {i}" for i in range(55)] + ["Jones"]:
        project = ProjectFactory(customer=CustomerFactory(business=business, name=name))
        actions.ensure_thread(customer=project.customer)
    html = _get(staff_client, q="smith", show="unassigned")
    assert len(_codes(html)) == 50
    more = re.search(r'<a href="(/staff/projects/\?[^"]+)">Load more projects', html).group(1)
    params = {k: v[0] for k, v in parse_qs(urlsplit(more.replace("&amp;", "&")).query).items()}
    assert params["q"] == "smith" and params["show"] == "unassigned" and "after" in params
    rest = staff_client.get(more.replace("&amp;", "&"), HTTP_HX_REQUEST="true").content.decode()
    assert len(_codes(rest)) == 5 and "Jones" not in rest


def test_unknown_filter_values_list_everything(staff_client, world):
    html = _get(staff_client, show="bogus", status="nope")
    assert len(_codes(html)) == 5


# -- bad input ----------------------------------------------------------------------------------

HOSTILE = [
    '"',
    "'",
    "' OR 1=1 --",
    "%",
    "_",
    "%_%",
    "\\",
    "a\x00b",
    "\x00",
    "x" * 10_000,
    "🦄🏠",
    "ı",
    "   ",
    "<script>alert(1)</script>",
    "~!@#$^&*()[]{}|;:,./<>?",
    "0" * 5000,
    " ".join(["deck"] * 3000),
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_search_strings_answer_fast_with_results_or_none(staff_client, world, q):
    started = time.monotonic()
    response = staff_client.get("/staff/projects/", {"q": q, "show": "needs_reply"})
    assert response.status_code == 200
    html = response.content.decode()
    assert time.monotonic() - started < 2
    assert "<script>alert" not in html
    if q in ("%", "_", "%_%", "\\"):
        # Wildcards are literal characters: no customer's record holds them.
        assert _customers(html) == []


def test_a_percent_sign_finds_a_literal_percent(staff_client, world):
    daniel = world["daniel"]
    Customer.objects.filter(pk=daniel.pk).update(address="Unit 100% Main St")
    assert _customers(_get(staff_client, q="100%")) == ["Daniel Ortiz"]


# -- assignment: the field and its one writer ---------------------------------------------------


def test_assign_customer_sets_and_clears_the_assignee(world, staff):
    sarah = world["sarah"]
    assign_customer(customer=sarah, assignee=staff)
    assert Customer.objects.get(pk=sarah.pk).assigned_to == staff
    assign_customer(customer=sarah, assignee=None)
    assert Customer.objects.get(pk=sarah.pk).assigned_to is None


def test_assigning_to_a_non_staff_or_deactivated_user_is_refused(world, staff):
    sarah = world["sarah"]
    assign_customer(customer=sarah, assignee=staff)
    with pytest.raises(AssignmentRefused):
        assign_customer(customer=sarah, assignee=UserFactory())
    gone = StaffUserFactory(username="gone")
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)  # deactivated since loaded
    with pytest.raises(AssignmentRefused):
        assign_customer(customer=sarah, assignee=gone)
    assert Customer.objects.get(pk=sarah.pk).assigned_to == staff


def test_only_assign_customer_writes_the_assignee():
    """A static check, as tests/test_one_writer.py does for entries: no other module names the
    field in a write (the admin shows it read-only)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    writers = []
    for app in ("portal", "messaging", "notifications", "crm_events"):
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts or path == root / "portal" / "queries.py":
                continue
            text = path.read_text()
            if re.search(r"assigned_to(_id)?\s*=(?!=)(?! models\.)", text):
                writers.append(str(path.relative_to(root)))
    assert writers == ["portal/actions.py"]


# -- PostgreSQL: the indexes answer --------------------------------------------------------------


@pytest.mark.postgres
def test_search_reads_the_trigram_indexes_not_the_tables(world):
    from portal.queries import StaffListQuery

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a few rows: make the planner show its hand
        try:
            for q in ("ortiz", "555-0123", "prj-2001"):
                rows = StaffListQuery(q=q).rows(viewer=None)
                plan = rows.explain()
                for index in ("customer_name_trgm", "project_code_trgm"):
                    assert index in plan, plan
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert Project.objects.count() == 5


def test_the_migration_fills_last_message_kind_as_the_appends_set_it(world):
    import importlib

    from messaging.models import Thread

    backfill = importlib.import_module("messaging.migrations.0010_thread_last_message_kind")
    kept = dict(Thread.objects.values_list("pk", "last_message_kind"))
    assert set(kept.values()) == {"customer_reply", "staff_message", "automated", ""}
    Thread.objects.update(last_message_kind="")  # as a database before the migration
    with connection.cursor() as cursor:
        cursor.execute(backfill.BACKFILL)
    assert dict(Thread.objects.values_list("pk", "last_message_kind")) == kept
