"""Intake's views: Twilio's Messaging webhook (a text to our number) and the staff's list of
what came in and matched no one (/staff/unmatched/)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from notifications import queries
from notifications.forms import AssignForm, NewCustomerForm, TwilioInboundForm
from notifications.inbound import actions as inbound
from notifications.inbound.models import InboundMessage
from notifications.inbound.webhooks import twilio_signed
from portal.access import staff_required

# -- Twilio: a text to our number ---------------------------------------------------------------


# An empty TwiML answer: we do not text back (Twilio itself answers STOP, START and HELP).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@require_POST
@twilio_signed
def twilio_sms(request: HttpRequest) -> HttpResponse:
    """Twilio's Messaging webhook: a text to our number. Recorded once per MessageSid and
    appended to the sender's thread (or kept for staff); photos are fetched by a task."""
    form = TwilioInboundForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.reason())
    inbound.receive_sms(sms=form.incoming(request.POST))
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


# -- staff: what came in and matched no one ----------------------------------------------------


def _unmatched_page(
    request: HttpRequest,
    *,
    form=None,
    new_form=None,
    failed_id=None,
    new_failed_id=None,
    status=200,
):
    context = {
        "inbound_messages": queries.unmatched_messages(),
        "form": form or AssignForm(),
        "new_form": new_form or NewCustomerForm(),
        "failed_id": failed_id,
        "new_failed_id": new_failed_id,
    }
    return render(request, "notifications/unmatched.html", context, status=status)


@require_GET
@staff_required
def unmatched(request: HttpRequest) -> HttpResponse:
    return _unmatched_page(request)


def _waiting(inbound_id: int) -> InboundMessage:
    waiting = [InboundMessage.Status.UNMATCHED, InboundMessage.Status.REJECTED]
    return get_object_or_404(InboundMessage, pk=inbound_id, status__in=waiting)


@require_POST
@staff_required
def unmatched_assign(request: HttpRequest, inbound_id: int) -> HttpResponse:
    found = _waiting(inbound_id)
    form = AssignForm(request.POST)
    if not form.is_valid():
        return _unmatched_page(request, form=form, failed_id=found.pk, status=400)
    try:
        entry = inbound.assign_inbound(
            inbound=found, customer=form.cleaned_data["customer"], by=request.user
        )
    except ValidationError as error:
        form.add_error("customer", error)
        return _unmatched_page(request, form=form, failed_id=found.pk, status=400)
    customer = form.cleaned_data["customer"]
    messages.success(request, f"Added to {customer.name}'s conversation.")
    return redirect(f"{reverse('staff_chat', args=[entry.thread_id])}?at={entry.seq}")


@require_POST
@staff_required
def unmatched_new_customer(request: HttpRequest, inbound_id: int) -> HttpResponse:
    found = _waiting(inbound_id)
    form = NewCustomerForm(request.POST)
    if form.is_valid():
        try:
            entry = inbound.new_customer_from_inbound(
                inbound=found,
                name=form.cleaned_data["name"],
                project_title=form.cleaned_data["project"],
                by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{form.cleaned_data['name']} is a new customer.")
            return redirect(f"{reverse('staff_chat', args=[entry.thread_id])}?at={entry.seq}")
    return _unmatched_page(request, new_form=form, new_failed_id=found.pk, status=400)


@require_POST
@staff_required
def unmatched_dismiss(request: HttpRequest, inbound_id: int) -> HttpResponse:
    found = _waiting(inbound_id)
    inbound.dismiss_inbound(inbound=found, by=request.user)
    messages.success(request, "Set aside.")
    return redirect("unmatched")


@require_GET
@staff_required
def unmatched_file(request: HttpRequest, inbound_id: int, number: int) -> HttpResponse:
    """A file that came with an unmatched message, for staff deciding whose it is."""
    found = get_object_or_404(InboundMessage, pk=inbound_id)
    if not 0 <= number < len(found.files):
        raise Http404
    stored = found.files[number]
    response = FileResponse(
        default_storage.open(stored["path"], "rb"), content_type=stored["content_type"]
    )
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
