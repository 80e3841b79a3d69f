from __future__ import annotations

import re
import uuid
import zoneinfo
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm_events import actions, calendar, queries
from crm_events.formatting import format_money
from crm_events.forms import (
    ApproveEstimateForm,
    CrewOnTheWayForm,
    DeclineEstimateForm,
    LogCallForm,
    RescheduleRequestForm,
    WorkRequestForm,
)
from crm_events.models import Appointment, Contract
from crm_events.outbound.files import photo_for_token
from crm_events.pdf import document_pdf
from messaging.models import Thread
from messaging.views import _file_response as file_response
from portal import throttles
from portal.access import current_customer, customer_required, scope_refusal, staff_required
from portal.models import Project


def new_key() -> str:
    return uuid.uuid4().hex


def customer_document(staff_view: str | None = None):
    """Customers only, like portal.access.customer_required; staff following a card's link
    are sent to the same document, staff-framed (`staff_view`), instead of a 404."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if user.is_active and user.is_staff and staff_view is not None:
                return redirect(staff_view, *args, **kwargs)
            request.customer = current_customer(request)
            refusal = scope_refusal(request)
            if refusal is not None:
                return refusal
            with timezone.override(zoneinfo.ZoneInfo(request.customer.time_zone)):
                return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _money_locale(customer) -> str:
    return queries.money_settings(customer.business).locale


def _pdf_response(document, *, locale: str) -> HttpResponse:
    kind = "invoice" if document._meta.model_name == "invoice" else "estimate"
    response = HttpResponse(document_pdf(document, locale=locale), content_type="application/pdf")
    # Numbers are letters, digits, "-", "_" and "." (DOCUMENT_NUMBER); a row stored before
    # that rule still must not break the header (a newline is refused by it).
    number = re.sub(r"[^A-Za-z0-9._-]", "_", document.number)
    response["Content-Disposition"] = content_disposition_header(False, f"{kind}-{number}.pdf")
    return response


# -- customer documents ----------------------------------------------------------------------


@require_GET
@customer_document("crm_staff_invoice")
def invoice_page(request: HttpRequest, number: str) -> HttpResponse:
    invoice = queries.customer_invoice(customer=request.customer, number=number)
    context = {
        "doc": invoice,
        "kind": "invoice",
        "tab": "invoices",
        "money_locale": _money_locale(request.customer),
    }
    return render(request, "crm_events/invoice.html", context)


@require_GET
@customer_document("crm_staff_invoice_pdf")
def invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    invoice = queries.customer_invoice(customer=request.customer, number=number)
    return _pdf_response(invoice, locale=_money_locale(request.customer))


def _estimate_context(request, estimate, **more) -> dict:
    locale = _money_locale(request.customer)

    def money_label(amount) -> str:
        return format_money(amount, estimate.currency, locale)

    approve = more.pop("approve_form", None) or ApproveEstimateForm(
        initial={"version": estimate.version}, estimate=estimate, money_label=money_label
    )
    decline = more.pop("decline_form", None) or DeclineEstimateForm(
        initial={"version": estimate.version}
    )
    return {
        "doc": estimate,
        "kind": "estimate",
        "tab": "invoices",
        "money_locale": locale,
        "js_locale": locale.replace("_", "-"),
        "decision": actions.latest_decision(estimate),
        "approve_form": approve,
        "decline_form": decline,
        **more,
    }


@require_GET
@customer_document("crm_staff_estimate")
def estimate_page(request: HttpRequest, number: str) -> HttpResponse:
    estimate = queries.customer_estimate(customer=request.customer, number=number)
    # Just decided (the redirect below): the page opens on the result, focused.
    context = _estimate_context(request, estimate, just_decided="decided" in request.GET)
    return render(request, "crm_events/estimate.html", context)


@require_GET
@customer_document("crm_staff_estimate_pdf")
def estimate_pdf(request: HttpRequest, number: str) -> HttpResponse:
    estimate = queries.customer_estimate(customer=request.customer, number=number)
    return _pdf_response(estimate, locale=_money_locale(request.customer))


# Refusals that are about the estimate's state (decided, changed, expired), not the input.
_ESTIMATE_CONFLICTS = {"bad_transition", "stale_version", "expired"}


@require_POST
@customer_document()
def estimate_decide(request: HttpRequest, number: str, decision: str) -> HttpResponse:
    if decision not in ("approve", "decline"):
        raise Http404
    estimate = queries.customer_estimate(customer=request.customer, number=number)
    approve = decision == "approve"
    locale = _money_locale(request.customer)
    if approve:
        form = ApproveEstimateForm(
            request.POST,
            estimate=estimate,
            money_label=lambda amount: format_money(amount, estimate.currency, locale),
        )
    else:
        form = DeclineEstimateForm(request.POST)
    if not form.is_valid():
        context = _estimate_context(
            request, estimate, **{f"{decision}_form": form, "error_for": decision}
        )
        return render(request, "crm_events/estimate.html", context, status=400)
    data = form.cleaned_data
    try:
        actions.decide_estimate(
            estimate=estimate,
            approve=approve,
            by_customer=True,
            version=data["version"],
            signer_name=data.get("name", ""),
            agreed=data.get("agree", False),
            chosen_options=data.get("options", ()),
            reason=data.get("reason", ""),
            # The client's address as Django sees it: behind the trusted proxy, the web server
            # has already put the forwarded address here (FORWARDED_ALLOW_IPS).
            ip_address=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except ValidationError as error:
        # Read afresh: a newer version is shown for what it is, with a form for it.
        estimate = queries.customer_estimate(customer=request.customer, number=number)
        code = getattr(error, "code", "")
        context = _estimate_context(request, estimate, error=" ".join(error.messages))
        status = 409 if code in _ESTIMATE_CONFLICTS else 400
        return render(request, "crm_events/estimate.html", context, status=status)
    return redirect(f"{reverse('crm_estimate', kwargs={'number': estimate.number})}?decided=1")


@require_POST
@customer_document()
def appointment_confirm(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = queries.customer_appointment(
        customer=request.customer, appointment_id=appointment_id
    )
    try:
        actions.confirm_appointment(appointment=appointment)
    except ValidationError as error:
        return HttpResponseBadRequest(" ".join(error.messages))
    # No #fragment: browsers skip autofocus on a page opened at one, and the page focuses
    # (so scrolls to) the confirmation itself.
    return redirect(f"{reverse('schedule')}?confirmed={appointment.pk}")


@require_POST
@customer_document()
def appointment_reschedule(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = queries.customer_appointment(
        customer=request.customer, appointment_id=appointment_id
    )
    form = RescheduleRequestForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(" ".join(m for ms in form.errors.values() for m in ms))
    try:
        entry = actions.ask_to_reschedule(
            appointment=appointment,
            note=form.cleaned_data["note"],
            idempotency_key=f"portal:{form.cleaned_data['key']}",
        )
    except ValidationError as error:
        return HttpResponseBadRequest(" ".join(error.messages))
    return redirect(f"{reverse('messages')}?at={entry.seq}")


# -- work requests and calendars ------------------------------------------------------------


def _request_form_page(request: HttpRequest, form: WorkRequestForm, status: int = 200):
    windows = [
        (1, form["window1_date"], form["window1_part"], "When would suit you?"),
        (2, form["window2_date"], form["window2_part"], "Another time that would suit (optional)"),
    ]
    context = {"form": form, "windows": windows, "tab": "request"}
    return render(request, "crm_events/request_new.html", context, status=status)


@require_http_methods(["GET", "POST"])
@customer_required
def request_new(request: HttpRequest) -> HttpResponse:
    customer = request.customer
    if request.method == "GET":
        form = WorkRequestForm(
            customer=customer, initial={"key": new_key(), "address": customer.address}
        )
        return _request_form_page(request, form)
    if throttles.SENDS_PER_USER.exceeded(request):
        form = WorkRequestForm(request.POST, customer=customer)
        form.add_error(None, "Too many requests at once; wait a minute and send it again.")
        return _request_form_page(request, form, status=429)
    form = WorkRequestForm(request.POST, request.FILES, customer=customer)
    if not form.is_valid():
        return _request_form_page(request, form, status=400)
    data = form.cleaned_data
    try:
        work_request, _ = actions.request_work(
            customer=customer,
            description=data["description"],
            address=data["address"],
            windows=data["windows"],
            photos=data["photos"],
            key=data["key"],
        )
    except ValidationError as error:  # past the customer's storage for files
        form.add_error(None, error)
        return _request_form_page(request, form, status=400)
    return redirect(f"{reverse('messages')}?at={work_request.entry.seq}")


def _ics_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@customer_document()
def appointment_ics(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = queries.customer_appointment(
        customer=request.customer, appointment_id=appointment_id
    )
    content = calendar.calendar_bytes([appointment], name=appointment.title)
    return _ics_response(content, f"appointment-{appointment.pk}.ics")


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """No session: calendars fetch it on their own. The token is the key (crm_events.calendar)."""
    customer = calendar.customer_for_feed(token)
    name = f"{customer.business.name} visits"
    content = calendar.calendar_bytes(calendar.feed_appointments(customer), name=name)
    response = _ics_response(content, "visits.ics")
    response["Content-Disposition"] = content_disposition_header(False, "visits.ics")
    return response


@require_POST
@customer_document()
def calendar_feed_reset(request: HttpRequest) -> HttpResponse:
    actions.reset_calendar_feed(customer=request.customer)
    return redirect(f"{reverse('schedule')}?feed=reset#calendar-feed")


@require_GET
def crm_photo(request: HttpRequest, token: str) -> HttpResponse:
    """A customer's photo by the signed link in `request.created` (the CRM has no session)."""
    return file_response(photo_for_token(token))


# -- staff documents -------------------------------------------------------------------------


def _staff_doc_context(doc, kind: str) -> dict:
    thread = Thread.objects.filter(customer=doc.customer).only("pk").first()
    return {
        "doc": doc,
        "kind": kind,
        "staff": True,
        "thread": thread,
        "money_locale": _money_locale(doc.customer),
        "decision": actions.latest_decision(doc) if kind == "estimate" else None,
    }


@require_GET
@staff_required
def staff_invoice(request: HttpRequest, number: str) -> HttpResponse:
    invoice = queries.staff_invoice(number=number)
    return render(request, "crm_events/staff_document.html", _staff_doc_context(invoice, "invoice"))


@require_GET
@staff_required
def staff_invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    invoice = queries.staff_invoice(number=number)
    return _pdf_response(invoice, locale=_money_locale(invoice.customer))


@require_GET
@staff_required
def staff_estimate(request: HttpRequest, number: str) -> HttpResponse:
    estimate = queries.staff_estimate(number=number)
    return render(
        request, "crm_events/staff_document.html", _staff_doc_context(estimate, "estimate")
    )


@require_GET
@staff_required
def staff_estimate_pdf(request: HttpRequest, number: str) -> HttpResponse:
    estimate = queries.staff_estimate(number=number)
    return _pdf_response(estimate, locale=_money_locale(estimate.customer))


@require_GET
@staff_required
def staff_appointment(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = get_object_or_404(Appointment, pk=appointment_id)
    return redirect("admin:crm_events_appointment_change", appointment.pk)


@require_GET
@staff_required
def staff_contract(request: HttpRequest, contract_id: int) -> HttpResponse:
    contract = get_object_or_404(Contract, pk=contract_id)
    return redirect("admin:crm_events_contract_change", contract.pk)


# -- the staff chat modal's tools ------------------------------------------------------------


def _staff_thread(thread_id: int) -> Thread:
    return get_object_or_404(
        Thread.objects.select_related("customer", "customer__business"), pk=thread_id
    )


def tools_context(thread: Thread, *, form=None, tool: str = "") -> dict:
    """What crm_events/_staff_tools.html needs (the chat modal gives the same names)."""
    context = {
        "thread": thread,
        "customer": thread.customer,
        "projects": list(Project.objects.filter(customer=thread.customer)),
    }
    if form is not None:
        errors = [m for messages in form.errors.values() for m in messages]
        context |= {"tool_open": tool, "tool_values": form.data, "tool_error": " ".join(errors)}
    return context


def _tool_response(request, thread: Thread, entry, *, tool: str, done: str) -> HttpResponse:
    """The new entry for the timeline, and fresh tools (new keys) out of band, with focus
    back on the tool's own toggle and `done` said in the chat's live region."""
    if not request.htmx:
        return redirect("staff_chat", thread_id=thread.pk)
    html = render_to_string(
        "messaging/_entry.html",
        {
            "entry": entry,
            "audience": "staff",
            "customer": thread.customer,
            "business": thread.customer.business,
        },
        request=request,
    )
    tools_html = render_to_string(
        "crm_events/_staff_tools.html",
        {**tools_context(thread), "oob": True, "focus_tool": tool, "done": done},
        request,
    )
    return HttpResponse(html + tools_html)


def _tool_error(request, thread: Thread, form, tool: str) -> HttpResponse:
    html = render_to_string(
        "crm_events/_staff_tools.html",
        {**tools_context(thread, form=form, tool=tool), "oob": True, "focus_tool": tool},
        request,
    )
    response = HttpResponse(html, status=400)
    response["HX-Reswap"] = "none"  # only the out-of-band tools (with the reason) change
    return response


@require_POST
@staff_required
def staff_log_call(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = _staff_thread(thread_id)
    form = LogCallForm(request.POST, customer=thread.customer)
    if not form.is_valid():
        return _tool_error(request, thread, form, "call")
    data = form.cleaned_data
    try:
        call = actions.log_call(
            customer=thread.customer,
            started_at=data["started_at"],
            duration_seconds=data["duration_minutes"] * 60,
            direction=data["direction"],
            transcript=data["transcript"],
            author=request.user,
            project=data["project"],
            idempotency_key=f"portal:{data['key']}",
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _tool_error(request, thread, form, "call")
    return _tool_response(request, thread, call.entry, tool="call", done="Call logged.")


@require_POST
@staff_required
def staff_crew_on_the_way(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = _staff_thread(thread_id)
    form = CrewOnTheWayForm(request.POST, customer=thread.customer)
    if not form.is_valid():
        return _tool_error(request, thread, form, "crew")
    data = form.cleaned_data
    try:
        entry = actions.send_crew_on_the_way(
            customer=thread.customer,
            eta_minutes=data["eta_minutes"],
            project=data["project"],
            idempotency_key=f"portal:{data['key']}",
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _tool_error(request, thread, form, "crew")
    return _tool_response(request, thread, entry, tool="crew", done="“Crew on the way” sent.")


@require_GET
@staff_required
def staff_saved_replies(request: HttpRequest, thread_id: int) -> JsonResponse:
    """The saved replies filled in for this thread's customer, for the reply box's "/" list:
    every one (they are few, and the list filters as staff type), or those whose name holds
    ?q=. Each says which variables had no value, so the box can point at their fallbacks."""
    thread = _staff_thread(thread_id)
    replies = queries.saved_replies_for(
        customer=thread.customer, zone=thread.customer.business.time_zone
    )
    wanted = request.GET.get("q", "")[:60].casefold().strip()
    if wanted:
        replies = [r for r in replies if wanted in r.name.casefold()]
        replies.sort(key=lambda r: not r.name.casefold().startswith(wanted))
    return JsonResponse({"replies": [reply.as_json() for reply in replies]})
