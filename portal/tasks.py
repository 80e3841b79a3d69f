"""Celery tasks of the portal: each takes plain values and calls one action."""

from __future__ import annotations

from celery import shared_task

from portal import actions, codes, devices


@shared_task(name=actions.SEND_LOGIN_LINK_TASK, soft_time_limit=60, time_limit=90)
def send_login_link(email: str) -> None:
    actions.send_login_link(email=email)


@shared_task(name=codes.SEND_CODE_TASK, soft_time_limit=60, time_limit=90)
def send_sign_in_code(address: str, purpose: str, customer_id: int = 0) -> None:
    codes.send_code(address=address, purpose=purpose, customer_id=customer_id)


@shared_task(name=devices.FORGET_TASK, soft_time_limit=120, time_limit=180)
def forget_spent_sign_ins() -> dict[str, int]:
    return devices.forget_spent_sign_ins()
