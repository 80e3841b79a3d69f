"""Writes for the CRM: every change of an appointment, invoice, estimate, contract or call,
and the card it posts in the customer's thread.

Called alike by the event API, the admin, the portal's buttons, the staff chat modal and the
automations. Each verb opens its own transaction and locks the record it changes; each card
goes through `messaging.actions` with an idempotency key made from the record and the change
(`crm:invoice:<id>:sent`), so the admin saving twice, the API replaying and an automation
re-running make one card. Bad input raises `ValidationError` before anything is written.

One module per kind of record, each owning that record's life:

- `common`: what every writer shares: the business's CRM settings, links and titles of
  cards, posting a card, and the checks on projects, lines, money and currencies.
- `invoices`: sent, paid or voided, each status carded once.
- `estimates`: sent, then approved or declined, by staff or by the customer in the portal.
- `contracts`: sent.
- `appointments`: booked, moved, confirmed, cancelled or completed; asking for another time.
- `calls_and_messages`: calls and their marker, "crew on the way", automated messages.

The lifecycle modules import only `common`, never each other. Every public verb is
re-exported here, so callers keep writing `from crm_events import actions` and
`actions.send_invoice(...)` whichever module holds it.
"""

from crm_events.actions.appointments import (
    appointment_changed,
    ask_to_reschedule,
    confirm_appointment,
    find_appointment,
    reschedule_appointment,
    schedule_appointment,
    set_appointment_status,
)
from crm_events.actions.calls_and_messages import log_call, post_automated, send_crew_on_the_way
from crm_events.actions.common import (
    LineData,
    appointment_url,
    appointment_when,
    check_project,
    contract_url,
    crm_settings,
    estimate_url,
    invoice_url,
    recompute_total,
)
from crm_events.actions.contracts import contract_changed, send_contract
from crm_events.actions.estimates import (
    decide_estimate,
    estimate_changed,
    find_estimate,
    send_estimate,
)
from crm_events.actions.invoices import (
    find_invoice,
    invoice_changed,
    send_invoice,
    set_invoice_status,
)

__all__ = [
    # common
    "LineData",
    "appointment_url",
    "appointment_when",
    "check_project",
    "contract_url",
    "crm_settings",
    "estimate_url",
    "invoice_url",
    "recompute_total",
    # invoices
    "find_invoice",
    "invoice_changed",
    "send_invoice",
    "set_invoice_status",
    # estimates
    "decide_estimate",
    "estimate_changed",
    "find_estimate",
    "send_estimate",
    # contracts
    "contract_changed",
    "send_contract",
    # appointments
    "appointment_changed",
    "ask_to_reschedule",
    "confirm_appointment",
    "find_appointment",
    "reschedule_appointment",
    "schedule_appointment",
    "set_appointment_status",
    # calls and messages
    "log_call",
    "post_automated",
    "send_crew_on_the_way",
]
