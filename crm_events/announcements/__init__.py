"""Announcements (issue 23): one message from the business to many customers, each getting it
as an ordinary automated entry in their own thread.

- `audience`: who it goes to (a visit on a date, a project status, a tag, everyone), and the
  variables each recipient's copy fills in.
- `actions`: the writes — start (freeze the recipients), send a batch, cancel — and the one
  writer of an announcement's status.
- `queries`: the figures shown to staff, read from the Delivery rows of the entries.
"""
