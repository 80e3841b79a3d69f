"""Writes for notifications, one module per stage of a Delivery's life:

- `planning`: who is told, on which channel, and when (routing, quiet hours, the email
  delay). Runs inside the entry's append transaction, called only by `messaging.actions`.
- `outbox`: queueing send tasks on commit, by task name, and the periodic sweeper that
  releases held rows and re-drives lost ones.
- `sending`: the task's body: claim a row, call the transport outside any transaction,
  record the result under the claim, back off on transient errors.
- `provider_status`: what Twilio and the email provider report later, moved forward only.
- `preferences`: the customer's choices, SMS opt-outs, and push devices.

Nothing here imports `notifications.tasks`: the outbox names tasks, so actions and tasks
never import each other.
"""
