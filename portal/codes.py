"""Sign-in codes: six digits sent to a phone (SMS) or an email address, to sign in or to
prove that a new phone or email is the customer's before it replaces the old one.

- Only an HMAC of the code is stored (keyed by SECRET_KEY, over the address and the code): a
  copy of the table does not give the codes, and guessing offline needs the key.
- A code lives SIGN_IN_CODE_MAX_AGE (10 minutes), is spent by the first right guess, and dies
  at the SIGN_IN_CODE_MAX_FAILURES-th (5th) wrong one. Throttles (portal/throttles.py) cap
  requests and guesses per address, per client and for the whole site.
- The request does the same work for every address (it queues a task): whether anyone has
  that address is decided by the task, which sends nothing for a stranger. Neither the page
  nor its timing tells who is a customer.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from notifications.outbound.transports import TransportError, sms_transport
from portal.celery import run_task
from portal.models import Business, Customer, SignInCode
from portal.phones import DEFAULT_REGION, normalize_phone
from portal.queries import customer_for_login, login_address

SEND_CODE_TASK = "portal.send_sign_in_code"
PHONE, EMAIL = "phone", "email"
Purpose = SignInCode.Purpose

logger = logging.getLogger(__name__)


def business_region() -> str:
    """The region a number without a country code is read in: the business's own."""
    phone = Business.objects.values_list("phone", flat=True).first()
    if phone:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        if region and region != "ZZ":
            return region
    return DEFAULT_REGION


def parse_address(raw: str) -> tuple[str, str]:
    """("email", the address as sign-in compares it) or ("phone", E.164), or ValidationError
    saying why."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError("Enter your email address or mobile number.", code="required")
    if "@" in raw:
        try:
            validate_email(raw)
        except ValidationError:
            raise ValidationError(
                "Enter a valid email address, like name@example.com.", code="invalid"
            ) from None
        return EMAIL, login_address(raw)
    return PHONE, normalize_phone(raw, region=business_region())


def kind_of(address: str) -> str:
    return EMAIL if "@" in address else PHONE


def _digest(address: str, code: str) -> str:
    return salted_hmac(
        "porchlight.sign-in-code", f"{address}\n{code}", algorithm="sha256"
    ).hexdigest()


def customer_for_address(address: str) -> Customer | None:
    """The active customer (never a staff account) who signs in with this address."""
    if kind_of(address) == EMAIL:
        # One normalisation for the lookup and the throttles' keys (login_address).
        customer = customer_for_login(email=address)
        return None if customer is None or customer.user.is_staff else customer
    return (
        Customer.objects.select_related("business", "user")
        .filter(phone=address, user__is_active=True, user__is_staff=False)
        .first()
    )


def request_code(*, address: str, purpose: str = Purpose.SIGN_IN, customer_id: int = 0) -> None:
    """Queue a code to `address` (known or not): the task decides whether to send one, so a
    provider that is down or slow is the task's problem, not the visitor's."""

    def queue() -> None:
        try:
            run_task(SEND_CODE_TASK, address, purpose, customer_id)
        except Exception:
            logger.exception("could not queue a sign-in code")

    transaction.on_commit(queue)


def issue_code(*, customer: Customer, address: str, purpose: str) -> str:
    """Store a new code for `address` (ending any earlier one) and return it in clear, for
    the caller to send and forget."""
    code = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    with transaction.atomic():
        SignInCode.objects.filter(
            address=address, purpose=purpose, used_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        SignInCode.objects.create(
            purpose=purpose,
            address=address,
            customer=customer,
            code_hash=_digest(address, code),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.SIGN_IN_CODE_MAX_AGE),
        )
    return code


def code_text(*, code: str, business: Business, purpose: str) -> str:
    """The message: what the code is for, and a last line `@host #code` from which phones
    offer the code to this site alone (WebOTP, iOS and Android one-time-code autofill)."""
    minutes = settings.SIGN_IN_CODE_MAX_AGE // 60
    what = "sign-in code" if purpose == Purpose.SIGN_IN else "code to confirm this address"
    host = urlsplit(settings.SITE_URL).hostname
    return (
        f"{code} is your {business.name} {what}. It expires in {minutes} minutes; "
        f"nobody from {business.name} will ask you for it.\n\n@{host} #{code}"
    )


def send_code(*, address: str, purpose: str, customer_id: int = 0) -> None:
    """The task's body: issue and send a code if `address` may have one. For sign-in, only a
    customer's own address; for a change, the customer who asked. Strangers get nothing."""
    if purpose == Purpose.SIGN_IN:
        customer = customer_for_address(address)
    else:
        customer = Customer.objects.select_related("business").filter(pk=customer_id).first()
    if customer is None:
        logger.info("sign-in code requested for an unknown address")
        return
    code = issue_code(customer=customer, address=address, purpose=purpose)
    text = code_text(code=code, business=customer.business, purpose=purpose)
    # Outside any transaction: the providers wait on the network.
    if kind_of(address) == PHONE:
        try:
            sms_transport().send(to=address, body=text)
        except TransportError as error:
            # Not retried: the person sees no text and asks again (within the throttles).
            logger.warning("sign-in code SMS failed: %s", error.message)
        return
    send_mail(
        subject=f"Your {customer.business.name} code: {code}",
        message=f"Hi {customer.first_name},\n\n{text}\n\nIf you did not ask for it, ignore "
        "this email.\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[address],
    )


def check_code(
    *, address: str, code: str, purpose: str = Purpose.SIGN_IN, customer: Customer | None = None
) -> Customer | None:
    """Spend the live code of `address` if `code` is it, and return its customer; else count
    a failure against the code and return None. Wrong, expired, spent, dead and never-sent
    codes are all the same None: the caller says the same thing for each."""
    code = (code or "").strip().replace(" ", "")
    now = timezone.now()
    with transaction.atomic():
        row = (
            SignInCode.objects.select_for_update()
            .select_related("customer__business", "customer__user")
            .filter(
                address=address,
                purpose=purpose,
                used_at__isnull=True,
                expires_at__gt=now,
                failures__lt=settings.SIGN_IN_CODE_MAX_FAILURES,
            )
            .order_by("-created_at")
            .first()
        )
        if row is None or (customer is not None and row.customer_id != customer.pk):
            return None
        if not (len(code) == 6 and code.isdigit()) or not constant_time_compare(
            row.code_hash, _digest(address, code)
        ):
            SignInCode.objects.filter(pk=row.pk).update(failures=F("failures") + 1)
            return None
        row.used_at = now
        row.save(update_fields=["used_at"])
    user = row.customer.user
    if purpose == Purpose.SIGN_IN and (not user.is_active or user.is_staff):
        return None
    return row.customer
