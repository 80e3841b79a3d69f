from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications import queries, unsubscribe
from notifications.forms import (
    PreferencesForm,
    PushEndpointForm,
    PushSubscriptionForm,
    StaffPreferencesForm,
    TwilioStatusForm,
)
from notifications.inbound.webhooks import twilio_signed
from notifications.models import StaffNotificationPreferences, StaffPushSubscription
from notifications.outbound import preferences, provider_status, transports
from portal.access import customer_required, staff_required

logger = logging.getLogger(__name__)


# -- the customer's settings page --------------------------------------------------------------


# The signed token is the credential, and RFC 8058's one-click POST comes from the mail
# provider with no cookie and no CSRF token: exempt, as a webhook is.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners open links); POST (the button,
    or the mail client's one-click "List-Unsubscribe=One-Click") turns email off."""
    customer = queries.customer_for_unsubscribe(unsubscribe.customer_id_from_token(token))
    if customer is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    done = request.method == "POST"
    if done:
        preferences.turn_off_email(customer=customer)
    context = {"customer": customer, "done": done, "token": token}
    return render(request, "notifications/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
@customer_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    customer = request.customer
    prefs = queries.preferences_for(customer)
    status = 200
    suggested = [customer.time_zone, customer.business.time_zone]
    if request.method == "POST":
        form = PreferencesForm(request.POST, suggested_zones=suggested)
        if form.is_valid():
            preferences.update_preferences(customer=customer, **form.cleaned_data)
            messages.success(request, "Your notification settings are saved.")
            return redirect("notification_settings")
        status = 400
    else:
        form = PreferencesForm(
            initial=queries.preferences_initial(prefs), suggested_zones=suggested
        )
    context = {
        "tab": "settings",
        "form": form,
        "prefs": prefs,
        "devices": queries.push_device_count(customer),
        "push_configured": transports.push_configured(),
        "vapid_public_key": settings.VAPID_PUBLIC_KEY,
    }
    return render(request, "notifications/settings.html", context, status=status)


def _json_body(request: HttpRequest) -> dict | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _subscription(request: HttpRequest) -> tuple[dict, JsonResponse | None]:
    """A browser's `PushSubscription.toJSON()` as the subscribe actions take it, or the 400
    that refuses it (customer and staff devices alike)."""
    body = _json_body(request)
    if body is None:
        return {}, JsonResponse({"error": "Send the subscription as a JSON object."}, status=400)
    keys = body.get("keys") if isinstance(body.get("keys"), dict) else {}
    form = PushSubscriptionForm(
        {"endpoint": body.get("endpoint"), "p256dh": keys.get("p256dh"), "auth": keys.get("auth")}
    )
    if not form.is_valid():
        errors = " ".join(e for field in form.errors.values() for e in field)
        return {}, JsonResponse({"error": errors}, status=400)
    return form.cleaned_data, None


@require_POST
@customer_required
def push_subscribe(request: HttpRequest) -> HttpResponse:
    """Takes `PushSubscription.toJSON()` from the settings page."""
    subscription, refusal = _subscription(request)
    if refusal is not None:
        return refusal
    preferences.subscribe_push(
        customer=request.customer,
        user_agent=request.headers.get("User-Agent", ""),
        **subscription,
    )
    return JsonResponse({"devices": queries.push_device_count(request.customer)}, status=201)


@require_POST
@customer_required
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    form = PushEndpointForm(_json_body(request) or {})
    if not form.is_valid():
        return JsonResponse({"error": "That is not a push subscription."}, status=400)
    preferences.unsubscribe_push(customer=request.customer, endpoint=form.cleaned_data["endpoint"])
    return JsonResponse({"devices": queries.push_device_count(request.customer)})


@require_POST
@customer_required
def push_test(request: HttpRequest) -> HttpResponse:
    if not transports.push_configured():
        messages.error(request, "Push notifications are not set up on this server.")
    elif not queries.push_device_count(request.customer):
        messages.error(request, "Turn on push notifications on this device first.")
    else:
        preferences.queue_test_push(customer=request.customer)
        messages.success(request, "A test notification is on its way to your devices.")
    return redirect("notification_settings")


# -- provider webhooks -------------------------------------------------------------------------


@require_POST
@twilio_signed
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's message status callback. Every well-formed request answers 200, known id or
    not, so Twilio stops retrying; a malformed one is a 400 that changes nothing."""
    form = TwilioStatusForm({**request.POST.dict(), "d": request.GET.get("d", "")})
    if not form.is_valid():
        return HttpResponseBadRequest(form.reason())
    data = form.cleaned_data
    provider_status.record_sms_status(
        message_sid=data["MessageSid"],
        status=data["MessageStatus"],
        error_code=data["ErrorCode"],
        delivery_id=data["d"],
    )
    return HttpResponse(status=200)


# -- the installable app -----------------------------------------------------------------------


def short_name(name: str, limit: int = 12) -> str:
    """The name under the app's icon: the business's, cut at a word to fit a home screen
    (about 12 characters show), never another name."""
    if len(name) <= limit:
        return name
    words, kept = name.split(), ""
    for word in words:
        if len(f"{kept} {word}".strip()) > limit:
            break
        kept = f"{kept} {word}".strip()
    return kept or name[:limit]


@require_GET
@cache_control(max_age=3600)
def manifest(request: HttpRequest) -> HttpResponse:
    name = queries.business_name() or "Porchlight"
    data = {
        "id": reverse("messages"),
        "name": name,
        "short_name": short_name(name),
        "description": f"Your project and messages with {name}.",
        "start_url": reverse("messages"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#f3f5f8",
        "theme_color": "#1f4e79",
        "icons": [
            {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": static("icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


@require_GET
@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    # Served from the site root so that its scope is the whole site; no-cache so a new
    # version reaches devices on their next visit.
    response = render(
        request,
        "notifications/sw.js",
        {"offline_url": reverse("offline")},
        content_type="application/javascript; charset=utf-8",
    )
    response["Service-Worker-Allowed"] = "/"
    return response


@require_GET
@cache_control(max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for whatever the page says: the app's icon."""
    return redirect(static("icons/icon-192.png"))


@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    """Shown by the service worker when a page cannot load. It needs nothing but itself."""
    return render(request, "notifications/offline.html")


# -- a staff member's own settings ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required
def staff_settings(request: HttpRequest) -> HttpResponse:
    """How this staff member hears of messages in threads assigned to them and of notes that
    mention them."""
    user = request.user
    status = 200
    if request.method == "POST":
        form = StaffPreferencesForm(request.POST)
        if form.is_valid():
            preferences.update_staff_preferences(user=user, **form.cleaned_data)
            messages.success(request, "Your notification settings are saved.")
            return redirect("staff_settings")
        status = 400
    else:
        prefs = StaffNotificationPreferences.for_user(user)
        form = StaffPreferencesForm(
            initial={"email_enabled": prefs.email_enabled, "push_enabled": prefs.push_enabled}
        )
    context = {
        "form": form,
        "devices": StaffPushSubscription.objects.filter(user=user).count(),
        "push_configured": transports.push_configured(),
        "vapid_public_key": settings.VAPID_PUBLIC_KEY,
    }
    return render(request, "notifications/staff_settings.html", context, status=status)


@require_POST
@staff_required
def staff_push_subscribe(request: HttpRequest) -> HttpResponse:
    """Takes `PushSubscription.toJSON()` from the staff settings page."""
    subscription, refusal = _subscription(request)
    if refusal is not None:
        return refusal
    preferences.subscribe_staff_push(
        user=request.user, user_agent=request.headers.get("User-Agent", ""), **subscription
    )
    devices = StaffPushSubscription.objects.filter(user=request.user).count()
    return JsonResponse({"devices": devices}, status=201)


@require_POST
@staff_required
def staff_push_unsubscribe(request: HttpRequest) -> HttpResponse:
    form = PushEndpointForm(_json_body(request) or {})
    if not form.is_valid():
        return JsonResponse({"error": "That is not a push subscription."}, status=400)
    preferences.unsubscribe_staff_push(user=request.user, endpoint=form.cleaned_data["endpoint"])
    devices = StaffPushSubscription.objects.filter(user=request.user).count()
    return JsonResponse({"devices": devices})
