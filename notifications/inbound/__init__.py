"""Intake: texts and emails that come in (webhooks, matching, reply text, the unmatched list)."""
