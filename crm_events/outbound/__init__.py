"""Outbound events to the CRM: what customers do in the portal, told to the contractor's CRM
as Standard Webhooks (docs/crm-api.md, "Events to your CRM").

By the life of one event, one module each:

- `models`: the endpoints, the events (one row per event, its body kept byte for byte), one
  `WebhookDelivery` per event and endpoint (the outbox row) and its `WebhookAttempt` log.
- `endpoints`: every write of an endpoint (create, change, rotate its secret, enable, disable)
  and which endpoints hear each type.
- `events`: `record_event`, the one verb that writes an event and its deliveries, in the
  caller's transaction; and the subscribers to messaging's appends and reads.
- `outbox`: queueing delivery tasks on commit, and the periodic sweep.
- `sending`: one attempt: claim, sign, POST outside any transaction, record the result.

Nothing in this package is imported by `crm_events.models` but `models`, so this file
imports nothing.
"""
