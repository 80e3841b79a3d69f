"""Who may see what, and in which time zone they read it.

Each helper fetches and authorises in one step; anything outside the caller's scope is a
404, never a 403, so ids of other people's records reveal nothing."""

from __future__ import annotations

import time
import zoneinfo
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.utils import timezone

from portal import devices
from portal.models import Business, Customer


def customer_required(view):
    """Signed-in customers only. Anonymous visitors go to the login page; signed-in staff
    without a customer record get a 404 (they have the staff pages)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.customer = current_customer(request)
        refusal = scope_refusal(request)
        if refusal is not None:
            return refusal
        with timezone.override(zoneinfo.ZoneInfo(request.customer.time_zone)):
            return view(request, *args, **kwargs)

    return wrapper


# What a session opened by a notification link reaches (portal/entry_links.py): the thread,
# its fragments, search and files, and replying. Any other customer page asks for a code.
THREAD_SCOPE_VIEWS = frozenset(
    {
        "messages",
        "customer_entries",
        "customer_send",
        "customer_search",
        "attachment",
        "attachment_thumbnail",
    }
)


def scope_refusal(request: HttpRequest) -> HttpResponse | None:
    """For a session limited to the thread, on any other page: the way to a code."""
    if devices.thread_scope(request) and _view_name(request) not in THREAD_SCOPE_VIEWS:
        return redirect(_verify_url(request))
    return None


def _view_name(request: HttpRequest) -> str:
    match = request.resolver_match
    return match.url_name if match else ""


def _verify_url(request: HttpRequest) -> str:
    customer = request.customer
    query = urlencode(
        {
            "address": customer.phone or customer.email,
            "next": request.get_full_path(),
            "verify": 1,
        }
    )
    return f"{resolve_url('login')}?{query}"


def staff_required(view):
    """Staff only. Anonymous visitors go to the staff login; customers get a 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), login_url="staff_login")
        if not (request.user.is_active and request.user.is_staff):
            raise Http404
        with timezone.override(zoneinfo.ZoneInfo(staff_time_zone())):
            return view(request, *args, **kwargs)

    return wrapper


def current_customer(request: HttpRequest) -> Customer:
    try:
        return Customer.objects.select_related("business", "user").get(user=request.user)
    except Customer.DoesNotExist:
        raise Http404 from None


# The business's time zone, remembered by this process for a short while: every staff page
# reads it, and it changes about never. A change made in the admin is seen at once by the
# process that saved it and within STAFF_ZONE_SECONDS by the others.
STAFF_ZONE_SECONDS = 30
_staff_zone: tuple[float, str] | None = None


def staff_time_zone() -> str:
    """Staff read times in their business's zone (one business per deployment today)."""
    global _staff_zone
    now = time.monotonic()
    if _staff_zone is None or _staff_zone[0] < now:
        zone = Business.objects.values_list("time_zone", flat=True).first() or "UTC"
        _staff_zone = (now + STAFF_ZONE_SECONDS, zone)
    return _staff_zone[1]


@receiver(post_save, sender=Business)
def forget_staff_time_zone(**kwargs) -> None:
    global _staff_zone
    _staff_zone = None
