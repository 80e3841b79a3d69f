"""Writes for the CRM: every change of an appointment, invoice, estimate, contract or call,
and the card it posts in the customer's thread.

Called alike by the event API, the admin, the portal's buttons, the staff chat modal and the
automations. Each verb opens its own transaction and locks the record it changes; each card
goes through `messaging.actions` with an idempotency key made from the record and the change
(`crm:invoice:<id>:sent`), so the admin saving twice, the API replaying and an automation
re-running make one card. Bad input raises `ValidationError` before anything is written.

One module per kind of record, each owning that record's life:

- `common`: what every writer shares: the
  business's CRM settings, links and titles of cards, posting a card, what a transition
  returns (`Transition`) and the check of a transition table, and the checks on projects,
  lines, money and currencies.
- `invoices`: sent, paid (in payments, each a receipt card) or voided, each status carded once.
- `estimates`: sent and revised (versions), then approved (signed) or declined, by staff or by
  the customer in the portal.
- `contracts`: sent, signed or voided.
- `appointments`: booked, moved, confirmed, cancelled or completed; asking for another time.
- `calls_and_messages`: calls and their marker, "crew on the way", automated messages.
- `requests`: the customer's work requests, and a project made from one.
- `calendar_feeds`: "Reset link" of the customer's private calendar feed.

Each record kind with a status has one transition function, the only code that writes that
status (`transition_invoice`, `transition_estimate`, `transition_contract`,
`transition_appointment`; tests/crm_events/test_one_status_writer.py keeps it so). It checks
the kind's table of allowed moves, stamps the status's date, posts the card and returns a
`Transition`: the record, its status before and after, and the card. The named verbs
(`send_invoice`, `decide_estimate`, `confirm_appointment`, ...) create or find the record and
call it; the admin's buttons and list actions call it directly.

The lifecycle modules import only `common`, never each other. Every public verb is
re-exported here, so callers keep writing `from crm_events import actions` and
`actions.send_invoice(...)` whichever module holds it.
"""

from crm_events.actions.appointments import TRANSITIONS as APPOINTMENT_TRANSITIONS
from crm_events.actions.appointments import (
    ask_to_reschedule,
    check_times,
    confirm_appointment,
    find_appointment,
    reschedule_appointment,
    schedule_appointment,
    transition_appointment,
)
from crm_events.actions.calendar_feeds import reset_calendar_feed
from crm_events.actions.calls_and_messages import log_call, post_automated, send_crew_on_the_way
from crm_events.actions.common import (
    LineData,
    Transition,
    appointment_url,
    appointment_when,
    check_project,
    check_transition,
    contract_url,
    crm_settings,
    estimate_url,
    invoice_url,
    recompute_total,
)
from crm_events.actions.contracts import TRANSITIONS as CONTRACT_TRANSITIONS
from crm_events.actions.contracts import send_contract, transition_contract
from crm_events.actions.estimates import TRANSITIONS as ESTIMATE_TRANSITIONS
from crm_events.actions.estimates import (
    decide_estimate,
    estimate_content,
    find_estimate,
    latest_decision,
    send_estimate,
    signed_document,
    transition_estimate,
)
from crm_events.actions.invoices import TRANSITIONS as INVOICE_TRANSITIONS
from crm_events.actions.invoices import (
    find_invoice,
    pay_invoice,
    record_payment,
    send_invoice,
    transition_invoice,
)
from crm_events.actions.requests import create_project_from_request, request_work

__all__ = [
    # common
    "LineData",
    "Transition",
    "appointment_url",
    "appointment_when",
    "check_project",
    "check_transition",
    "contract_url",
    "crm_settings",
    "estimate_url",
    "invoice_url",
    "recompute_total",
    # invoices
    "INVOICE_TRANSITIONS",
    "find_invoice",
    "pay_invoice",
    "record_payment",
    "send_invoice",
    "transition_invoice",
    # estimates
    "ESTIMATE_TRANSITIONS",
    "decide_estimate",
    "estimate_content",
    "find_estimate",
    "latest_decision",
    "send_estimate",
    "signed_document",
    "transition_estimate",
    # contracts
    "CONTRACT_TRANSITIONS",
    "send_contract",
    "transition_contract",
    # appointments
    "APPOINTMENT_TRANSITIONS",
    "ask_to_reschedule",
    "check_times",
    "confirm_appointment",
    "find_appointment",
    "reschedule_appointment",
    "schedule_appointment",
    "transition_appointment",
    # work requests, calendar feeds
    "create_project_from_request",
    "request_work",
    "reset_calendar_feed",
    # calls and messages
    "log_call",
    "post_automated",
    "send_crew_on_the_way",
]
