"""Customers' sessions: the one place a customer is signed in, the devices listed at
/account/, "Keep me signed in on this device", and signing out one device or all of them.

- An ordinary sign-in lasts SESSION_COOKIE_AGE (two weeks). "Keep me signed in" makes it
  KEEP_SIGNED_IN_MAX_AGE (90 days) from the last visit: once a day of use the session gets a
  new key (the cookie is replaced) and 90 more days, so a cookie copied off the device stops
  working within a day of the owner's next visit. The cookie is persistent, so an installed
  PWA, which shares it or keeps its own copy, stays signed in as long.
- A session opened by a notification link is "thread" scope (portal/entry_links.py): the
  thread only, for THREAD_SESSION_MAX_AGE, until the person proves an address with a code.
"""

from __future__ import annotations

import datetime as dt
import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import login, logout
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from portal.models import Customer, SignedInDevice, SignInCode, SpentNotificationLink

BACKEND = "django.contrib.auth.backends.ModelBackend"
SCOPE_KEY = "porchlight_scope"  # "thread" for notification-link sessions; absent: full
KEPT_KEY = "porchlight_kept"  # {"device": id, "rotated": unix time} on kept sessions
DEVICE_KEY = "porchlight_device"
FULL, THREAD = "full", "thread"


def _label(request: HttpRequest) -> str:
    """A name a person recognises their device by ("Chrome on Android")."""
    agent = request.headers.get("User-Agent", "")
    browser = next(
        (
            name
            for token, name in (
                ("Edg/", "Edge"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
            )
            if token in agent
        ),
        "A browser",
    )
    system = next(
        (
            name
            for token, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Windows", "Windows"),
                ("Mac OS X", "Mac"),
                ("Linux", "Linux"),
            )
            if token in agent
        ),
        "",
    )
    return f"{browser} on {system}" if system else browser


def sign_in(
    request: HttpRequest, *, customer: Customer, keep: bool = False, scope: str = FULL
) -> SignedInDevice:
    """Sign `customer` in on this request's browser (a new session key: login() cycles it)
    and list the device. Thread scope is never kept: it is what a forwarded link grants."""
    if request.user.is_authenticated:
        # A new session, not an upgraded one: nothing of a limited session carries over.
        sign_out(request)
    login(request, customer.user, backend=BACKEND)
    keep = keep and scope == FULL
    if scope == THREAD:
        request.session[SCOPE_KEY] = THREAD
        request.session.set_expiry(settings.THREAD_SESSION_MAX_AGE)
    elif keep:
        request.session.set_expiry(settings.KEEP_SIGNED_IN_MAX_AGE)
    request.session.save()
    now = timezone.now()
    device = SignedInDevice.objects.create(
        customer=customer,
        session_key=request.session.session_key,
        label=_label(request),
        kept=keep,
        scope=scope,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=request.session.get_expiry_age()),
    )
    request.session[DEVICE_KEY] = device.pk
    if keep:
        request.session[KEPT_KEY] = {"device": device.pk, "rotated": int(time.time())}
    return device


def verified(request: HttpRequest) -> None:
    """The person proved an address on file with a code: the session reaches everything."""
    request.session.pop(SCOPE_KEY, None)
    request.session.set_expiry(None)
    SignedInDevice.objects.filter(session_key=request.session.session_key).update(scope=FULL)


def thread_scope(request: HttpRequest) -> bool:
    return request.session.get(SCOPE_KEY) == THREAD


def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def devices_of(customer: Customer) -> list[SignedInDevice]:
    return list(SignedInDevice.objects.filter(customer=customer, expires_at__gt=timezone.now()))


def sign_out_device(*, customer: Customer, device_id: int) -> bool:
    """End the session of one of the customer's devices; False if it is not theirs."""
    device = SignedInDevice.objects.filter(customer=customer, pk=device_id).first()
    if device is None:
        return False
    _session_store(device.session_key).delete()
    device.delete()
    return True


def sign_out_everywhere(request: HttpRequest, *, customer: Customer) -> int:
    """End every session of the customer, this one included. Listed sessions are deleted;
    any other (one made before devices were listed) dies with the session hash: a new
    unusable password changes it, and Django checks it on every request."""
    with transaction.atomic():
        devices = list(SignedInDevice.objects.filter(customer=customer))
        SignedInDevice.objects.filter(customer=customer).delete()
        user = customer.user
        user.set_unusable_password()
        user.save(update_fields=["password"])
    for device in devices:
        _session_store(device.session_key).delete()
    logout(request)
    return len(devices)


def sign_out(request: HttpRequest) -> None:
    """Sign out this browser and take it off the list."""
    key = request.session.session_key
    if key:
        SignedInDevice.objects.filter(session_key=key).delete()
    logout(request)


class KeptSessionMiddleware:
    """Rotate a kept session's key once a day of use, and slide its 90 days. Only on a page
    load (a GET without htmx): a request racing the rotation with the old cookie would find
    its session gone, and a page's own fragments and socket come after the page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        kept = request.session.get(KEPT_KEY) if hasattr(request, "session") else None
        if (
            kept
            and request.method == "GET"
            and not request.headers.get("HX-Request")
            and time.time() - kept["rotated"] >= settings.KEEP_SIGNED_IN_ROTATE_SECONDS
            and request.user.is_authenticated
        ):
            self._rotate(request, kept)
        return self.get_response(request)

    @staticmethod
    def _rotate(request: HttpRequest, kept: dict) -> None:
        old_key = request.session.session_key
        request.session.cycle_key()
        request.session.set_expiry(settings.KEEP_SIGNED_IN_MAX_AGE)
        request.session[KEPT_KEY] = {"device": kept["device"], "rotated": int(time.time())}
        request.session.save()
        now = timezone.now()
        SignedInDevice.objects.filter(pk=kept["device"], session_key=old_key).update(
            session_key=request.session.session_key,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=settings.KEEP_SIGNED_IN_MAX_AGE),
        )


FORGET_TASK = "portal.forget_spent_sign_ins"


def forget_spent_sign_ins(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what no longer guards anything (run hourly by Celery beat): codes past their
    life, spent notification links whose signature has expired anyway, devices whose session
    has expired. A day's margin keeps recent rows for anyone looking into an incident."""
    now = now or timezone.now()
    margin = dt.timedelta(days=1)
    link_age = dt.timedelta(seconds=settings.NOTIFICATION_LINK_MAX_AGE)
    codes, _ = SignInCode.objects.filter(expires_at__lt=now - margin).delete()
    links, _ = SpentNotificationLink.objects.filter(spent_at__lt=now - link_age - margin).delete()
    devices, _ = SignedInDevice.objects.filter(expires_at__lt=now - margin).delete()
    return {"codes": codes, "links": links, "devices": devices}
