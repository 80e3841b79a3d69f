"""/account/: the customer's own name, phone and email, and the devices signed in as them.

A session opened by a notification link does not reach these pages (portal/access.py): it
must prove an address first. New phones and emails take effect when the code sent to them
comes back (portal/account.py)."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal import account, codes, devices, throttles
from portal.access import customer_required
from portal.forms import CodeForm, ContactForm, DeviceForm, NameForm
from portal.phones import format_phone
from portal.views import WRONG_CODE, too_many

PENDING_CHANGE = "porchlight_change_to"  # session: the new address a code was sent to


def _staff_follows_card(view):
    """Staff opening an account card's link (/account/?customer=7) get that customer in the
    admin; everyone else, the account page."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        user = request.user
        customer_id = request.GET.get("customer", "")
        if user.is_authenticated and user.is_active and user.is_staff and customer_id.isdigit():
            return redirect("admin:portal_customer_change", int(customer_id))
        return view(request)

    return wrapper


def _page(request: HttpRequest, *, status: int = 200, **forms) -> HttpResponse:
    customer = request.customer
    context = {
        "tab": "account",
        "name_form": forms.get("name_form") or NameForm(initial={"name": customer.name}),
        "phone_form": forms.get("phone_form") or ContactForm(prefix="phone"),
        "email_form": forms.get("email_form") or ContactForm(prefix="email"),
        "devices": devices.devices_of(customer),
        "this_device": request.session.session_key,
    }
    return render(request, "portal/account.html", context, status=status)


@require_http_methods(["GET"])
@_staff_follows_card
@customer_required
def account_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@customer_required
def change_name(request: HttpRequest) -> HttpResponse:
    form = NameForm(request.POST)
    if form.is_valid():
        try:
            if account.change_name(customer=request.customer, name=form.cleaned_data["name"]):
                messages.success(request, "Your name is saved.")
            return redirect("account")
        except ValidationError as error:
            form.add_error("name", error)
    return _page(request, status=400, name_form=form)


@require_POST
@customer_required
def change_contact(request: HttpRequest) -> HttpResponse:
    """A new phone (prefix "phone") or email (prefix "email"): a code goes to it."""
    which = "phone" if "phone-value" in request.POST else "email"
    form = ContactForm(request.POST, prefix=which, kind=which)
    if not form.is_valid():
        return _page(request, status=400, **{f"{which}_form": form})
    address = form.cleaned_data["value"]
    if throttles.code_request_refused(request, address=address):
        return too_many(request, what="codes")
    account.request_contact_change(customer=request.customer, address=address)
    request.session[PENDING_CHANGE] = address
    return redirect("account_confirm")


@require_http_methods(["GET", "POST"])
@customer_required
def confirm_change(request: HttpRequest) -> HttpResponse:
    address = request.session.get(PENDING_CHANGE)
    if not address:
        return redirect("account")
    by_sms = codes.kind_of(address) == codes.PHONE
    form = CodeForm(request.POST or None)
    context = {
        "tab": "account",
        "form": form,
        "shown": format_phone(address) if by_sms else address,
        "by_sms": by_sms,
        "minutes": settings.SIGN_IN_CODE_MAX_AGE // 60,
    }
    if request.method == "GET":
        return render(request, "portal/account_confirm.html", context)
    if throttles.code_guess_refused(request, address=address):
        return too_many(request, what="tries at a code")
    try:
        done = form.is_valid() and account.confirm_contact_change(
            customer=request.customer, address=address, code=form.cleaned_data["code"]
        )
    except ValidationError as error:
        request.session.pop(PENDING_CHANGE, None)
        messages.error(request, error.messages[0])
        return redirect("account")
    if not done:
        form.add_error(None, WRONG_CODE)
        return render(request, "portal/account_confirm.html", context, status=400)
    request.session.pop(PENDING_CHANGE, None)
    what = "mobile number" if by_sms else "email address"
    messages.success(request, f"Your {what} is now {context['shown']}.")
    return redirect("account")


@require_POST
@customer_required
def sign_out_device(request: HttpRequest) -> HttpResponse:
    form = DeviceForm(request.POST)
    if not form.is_valid() or not devices.sign_out_device(
        customer=request.customer, device_id=form.cleaned_data["device"]
    ):
        messages.error(request, "That device is not signed in any more.")
        return redirect("account")
    if request.session.session_key is None or not request.user.is_authenticated:
        return redirect("login")
    messages.success(request, "That device is signed out.")
    return redirect("account")


@require_POST
@customer_required
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    devices.sign_out_everywhere(request, customer=request.customer)
    return redirect("login")
