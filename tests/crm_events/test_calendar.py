""" "Add to calendar" (issue 21 part B): an appointment's .ics read back with `icalendar`, its
SEQUENCE bumped by each move and by cancelling, and the customer's private feed, which needs
no session, shows only their visits, and stops working when reset."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.test import Client
from icalendar import Calendar

from crm_events import actions
from crm_events.calendar import feed_url
from tests.crm_events.conftest import local
from tests.crm_events.test_one_status_writer import ROOT

SCHEDULE_ICS = "/schedule/{}/calendar.ics"


def events_of(response) -> list:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    return list(calendar.walk("VEVENT"))


def test_an_appointment_downloads_as_an_ics_calendars_read(
    customer_client, customer, appointment, settings
):
    customer.address = "12 Cedar Lane, Springfield"
    customer.save()
    response = customer_client.get(SCHEDULE_ICS.format(appointment.pk))
    assert 'attachment; filename="appointment-' in response["Content-Disposition"]
    (event,) = events_of(response)
    assert str(event["UID"]) == f"appointment-{appointment.pk}@127.0.0.1"
    assert event.decoded("DTSTART") == local(2031, 5, 15, 8)
    assert event.decoded("DTEND") == local(2031, 5, 15, 9)
    assert event.decoded("DTSTART").tzinfo is not None  # UTC, never floating
    assert str(event["SUMMARY"]) == "Deck install · Mike's Contracting"
    assert str(event["LOCATION"]) == "12 Cedar Lane, Springfield"
    assert "Deck Replacement Project" in str(event["DESCRIPTION"])
    assert event["SEQUENCE"] == 0 and str(event["STATUS"]) == "CONFIRMED"
    assert isinstance(event.decoded("DTSTAMP"), dt.datetime)


def test_each_move_bumps_sequence_and_a_cancellation_says_so(customer_client, appointment):
    actions.reschedule_appointment(
        appointment=appointment, starts_at=local(2031, 5, 16, 8), ends_at=local(2031, 5, 16, 10)
    )
    (event,) = events_of(customer_client.get(SCHEDULE_ICS.format(appointment.pk)))
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTART") == local(2031, 5, 16, 8)
    # The same times again move nothing, and bump nothing; confirming is no new revision.
    actions.reschedule_appointment(
        appointment=appointment, starts_at=local(2031, 5, 16, 8), ends_at=local(2031, 5, 16, 10)
    )
    actions.confirm_appointment(appointment=appointment)
    (event,) = events_of(customer_client.get(SCHEDULE_ICS.format(appointment.pk)))
    assert event["SEQUENCE"] == 1
    actions.transition_appointment(appointment=appointment, to="cancelled")
    (event,) = events_of(customer_client.get(SCHEDULE_ICS.format(appointment.pk)))
    assert event["SEQUENCE"] == 2 and str(event["STATUS"]) == "CANCELLED"


def test_another_customers_appointment_ics_is_a_404(client, other_customer, appointment):
    client.force_login(other_customer.user)
    assert client.get(SCHEDULE_ICS.format(appointment.pk)).status_code == 404
    assert client.get(SCHEDULE_ICS.format(999999)).status_code == 404


def test_signed_out_the_ics_asks_to_sign_in(client, appointment):
    response = client.get(SCHEDULE_ICS.format(appointment.pk))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_schedule_and_the_appointment_card_offer_add_to_calendar(customer_client, appointment):
    ics = SCHEDULE_ICS.format(appointment.pk)
    assert f'href="{ics}"' in customer_client.get("/schedule/").content.decode()
    assert f'href="{ics}"' in customer_client.get("/messages/").content.decode()


# -- the private feed ---------------------------------------------------------------------------


def _path(url: str) -> str:
    return url.split("127.0.0.1:8000", 1)[1]


def test_the_feed_lists_the_customers_visits_with_no_session(customer, other_customer, appointment):
    actions.schedule_appointment(
        customer=other_customer,
        title="Kitchen measure",
        starts_at=local(2031, 5, 20, 8),
        ends_at=local(2031, 5, 20, 9),
    )
    url = feed_url(customer)
    assert url.startswith("http://127.0.0.1:8000/calendar/") and url.endswith(".ics")
    events = events_of(Client().get(_path(url)))
    assert [str(e["SUMMARY"]) for e in events] == ["Deck install · Mike's Contracting"]


def test_the_schedule_shows_the_feed_link_and_reset_revokes_it(customer_client, customer):
    old = feed_url(customer)
    page = customer_client.get("/schedule/").content.decode()
    assert f'value="{old}"' in page and "Reset link" in page and "Copy link" in page
    response = customer_client.post("/schedule/calendar/reset/")
    assert response.status_code == 302
    new = feed_url(customer)
    assert new != old
    assert Client().get(_path(old)).status_code == 404
    assert Client().get(_path(new)).status_code == 200
    assert f'value="{new}"' in customer_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    "token",
    ["nonsense", "1-0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "../../etc/passwd", "1-0"],
)
def test_a_forged_feed_token_is_a_404(client, customer, token):
    assert client.get(f"/calendar/{token}.ics").status_code == 404


def test_a_feed_token_cannot_be_edited_to_name_another_customer(client, customer, other_customer):
    token = _path(feed_url(customer)).removeprefix("/calendar/").removesuffix(".ics")
    forged = token.replace(f"{customer.pk}-", f"{other_customer.pk}-", 1)
    assert client.get(f"/calendar/{forged}.ics").status_code == 404


def test_reset_needs_a_signed_in_customer_and_a_post(client, customer_client):
    assert customer_client.get("/schedule/calendar/reset/").status_code == 405
    assert Client().post("/schedule/calendar/reset/").status_code == 302  # to sign in


# -- one writer ---------------------------------------------------------------------------------


def test_only_transition_appointment_writes_the_calendar_sequence():
    writers = []
    for app in ("portal", "messaging", "notifications", "crm_events"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if "calendar_sequence" in path.read_text() and path.name != "models.py":
                writers.append(str(Path(path).relative_to(ROOT)))
    # Read (not written) by the .ics builder.
    assert writers == ["crm_events/actions/appointments.py", "crm_events/calendar.py"]
    calendar_source = (ROOT / "crm_events/calendar.py").read_text()
    assert "calendar_sequence +=" not in calendar_source
    assert "calendar_sequence=" not in calendar_source.replace(" ", "")
    # ... and in appointments.py, only the transition function.
    tree = ast.parse((ROOT / "crm_events/actions/appointments.py").read_text())
    functions = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and "calendar_sequence" in ast.unparse(node)
    ]
    assert functions == ["transition_appointment"]
