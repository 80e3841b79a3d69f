"""Automations on a clock (time-machine): the day-before reminder in the business's zone,
the follow-up after a completed project, quiet hours, the per-business switches, and
re-runs that send nothing twice."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from crm_events import actions, automations
from crm_events.models import CrmSettings
from messaging.models import Entry
from notifications.models import Delivery
from portal.models import Project
from tests.crm_events.conftest import local


def _automated(thread):
    return list(thread.entries.filter(kind=Entry.Kind.AUTOMATED).order_by("seq"))


def test_the_reminder_goes_the_day_before_once_the_reminder_time_has_come(appointment, thread):
    with time_machine.travel(local(2031, 5, 14, 8, 59), tick=False):
        assert automations.run_automations()["reminders"] == 0
    with time_machine.travel(local(2031, 5, 14, 9, 5), tick=False):
        assert automations.run_automations()["reminders"] == 1
        assert automations.run_automations()["reminders"] == 0  # a re-run sends nothing
    (reminder,) = _automated(thread)
    assert reminder.body == (
        "Hi Sarah! Reminder: Deck install is tomorrow, Thu May 15, 8–9am. Reply CONFIRM to confirm."
    )
    assert reminder.channel == "sms" and not reminder.urgent
    appointment.refresh_from_db()
    assert appointment.reminded_for == appointment.starts_at


def test_no_reminder_two_days_before_or_on_the_day(appointment, thread):
    for moment in (local(2031, 5, 13, 12), local(2031, 5, 15, 7)):
        with time_machine.travel(moment, tick=False):
            automations.run_automations()
    assert _automated(thread) == []


@pytest.mark.parametrize("zone, reminded", [("America/New_York", 1), ("America/Los_Angeles", 0)])
def test_tomorrow_is_tomorrow_in_the_business_zone(
    customer, project, thread, business, zone, reminded
):
    # 1am on the 15th in New York is still the 14th (10pm) in Los Angeles: at 1pm New York
    # time on the 14th, it is tomorrow for a New York business and today for one in LA.
    business.time_zone = zone
    business.save()
    actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Early pour",
        starts_at=local(2031, 5, 15, 1),
        ends_at=local(2031, 5, 15, 2),
    )
    with time_machine.travel(local(2031, 5, 14, 13), tick=False):
        assert automations.run_automations()["reminders"] == reminded


def test_a_rescheduled_appointment_gets_a_reminder_for_its_new_time(appointment, thread):
    with time_machine.travel(local(2031, 5, 14, 10), tick=False):
        automations.run_automations()
        actions.reschedule_appointment(
            appointment=appointment,
            starts_at=local(2031, 5, 15, 13),
            ends_at=local(2031, 5, 15, 14),
        )
        automations.run_automations()
    reminders = [e.body for e in _automated(thread)]
    assert len(reminders) == 2 and "1–2pm" in reminders[1]


def test_reminders_in_quiet_hours_are_held_not_dropped(appointment, thread, business):
    settings = actions.crm_settings(business)
    settings.reminder_time = dt.time(22, 0)
    settings.save()
    with time_machine.travel(local(2031, 5, 14, 22, 5), tick=False):
        automations.run_automations()
    (reminder,) = _automated(thread)
    assert {d.status for d in Delivery.objects.filter(entry=reminder)} == {"held"}


def test_reminders_can_be_switched_off_per_business(appointment, thread, business):
    CrmSettings.objects.create(business=business, reminders_enabled=False)
    with time_machine.travel(local(2031, 5, 14, 10), tick=False):
        automations.run_automations()
    assert _automated(thread) == []


def test_cancelled_appointments_get_no_reminder(appointment, thread):
    actions.transition_appointment(appointment=appointment, to="cancelled")
    with time_machine.travel(local(2031, 5, 14, 10), tick=False):
        automations.run_automations()
    assert _automated(thread) == []


def test_a_confirmed_appointment_s_reminder_does_not_ask_to_confirm(appointment, thread):
    actions.confirm_appointment(appointment=appointment)
    with time_machine.travel(local(2031, 5, 14, 10), tick=False):
        automations.run_automations()
    (reminder,) = _automated(thread)
    assert reminder.body.endswith("See you then!")


def test_the_follow_up_goes_days_after_the_project_is_completed(project, thread):
    with time_machine.travel(local(2031, 6, 1, 10), tick=False):
        automations.run_automations()
        project.status = Project.Status.COMPLETED
        project.save()
        automations.run_automations()  # first seen completed now
    with time_machine.travel(local(2031, 6, 3, 10), tick=False):
        assert automations.run_automations()["follow_ups"] == 0
    with time_machine.travel(local(2031, 6, 4, 10, 5), tick=False):
        assert automations.run_automations()["follow_ups"] == 1
        assert automations.run_automations()["follow_ups"] == 0
    (follow_up,) = _automated(thread)
    assert follow_up.body == "Hi Sarah, how did the deck replacement come out? Hope you love it!"
    assert follow_up.project_id == project.pk


def test_follow_ups_can_be_switched_off_and_their_days_set(project, thread, business):
    CrmSettings.objects.create(business=business, follow_ups_enabled=False, follow_up_days=1)
    project.status = Project.Status.COMPLETED
    project.save()
    with time_machine.travel(local(2031, 6, 1, 10), tick=False):
        automations.run_automations()
    with time_machine.travel(local(2031, 6, 9, 10), tick=False):
        automations.run_automations()
    assert _automated(thread) == []
    CrmSettings.objects.filter(business=business).update(follow_ups_enabled=True)
    with time_machine.travel(local(2031, 6, 9, 10), tick=False):
        automations.run_automations()
    assert len(_automated(thread)) == 1


def test_crew_on_the_way_is_urgent_and_goes_even_in_quiet_hours(customer, thread):
    with time_machine.travel(local(2031, 5, 14, 6, 30), tick=False):  # quiet hours till 8am
        entry = actions.send_crew_on_the_way(
            customer=customer, eta_minutes=20, idempotency_key="k1"
        )
    assert entry.urgent and entry.kind == Entry.Kind.AUTOMATED
    assert (
        entry.body == "Good morning Sarah! Our crew is on their way — arriving in about 20 minutes."
    )
    assert "held" not in {d.status for d in Delivery.objects.filter(entry=entry)}


def test_the_celery_task_runs_the_automations(appointment, thread):
    from crm_events.tasks import run_automations

    with time_machine.travel(local(2031, 5, 14, 10), tick=False):
        assert run_automations.delay().get() == {"reminders": 1, "follow_ups": 0}


def test_the_beat_schedule_names_the_task(settings):
    assert settings.CELERY_BEAT_SCHEDULE["crm-automations"]["task"] == "crm_events.run_automations"


@pytest.mark.parametrize(
    "start, end, text",
    [
        ((8, 0), (9, 0), "Thu May 15, 8–9am"),
        ((11, 0), (13, 0), "Thu May 15, 11am–1pm"),
        ((13, 30), (15, 0), "Thu May 15, 1:30–3pm"),
    ],
)
def test_appointment_times_read_as_people_say_them(start, end, text):
    from crm_events.formatting import time_range

    assert (
        time_range(local(2031, 5, 15, *start), local(2031, 5, 15, *end), "America/New_York") == text
    )


def test_the_periodic_command_runs_the_reminders_without_redis(appointment, thread):
    # `make worker` without Redis: every beat task, inline, in one process.
    out = StringIO()
    with time_machine.travel(local(2031, 5, 14, 9, 5), tick=False):
        call_command("periodic", "--once", stdout=out)
    assert "crm-automations: reminders 1" in out.getvalue()
    assert "notifications-sweep" in out.getvalue()  # named in the schedule it runs
    (reminder,) = _automated(thread)
    assert "Reply CONFIRM to confirm" in reminder.body
