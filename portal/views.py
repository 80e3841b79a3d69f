from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlencode

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from sesame.utils import get_user

from crm_events import calendar as crm_calendar
from crm_events import queries as crm_queries
from portal import actions, codes, devices, entry_links, throttles
from portal.access import customer_required, staff_required
from portal.forms import AssigneeForm, CodeForm, EmailLoginForm, MagicLinkForm
from portal.mentions import staff_name
from portal.models import Business, Customer, Project
from portal.phones import format_phone
from portal.queries import (
    RowCursor,
    Show,
    StaffListQuery,
    assignable_staff,
    login_address,
    staff_project_page,
)
from portal.templatetags.assignee import assignee_control_context


def too_many(request: HttpRequest, *, what: str) -> HttpResponse:
    """429 with a page that says what to do; the same page for everyone over a limit."""
    return render(request, "portal/throttled.html", {"what": what}, status=429)


PENDING_CODE = "porchlight_code_for"  # session: {"address": ..., "next": ...}


def _safe_next(request: HttpRequest, url: str) -> str:
    """Where to go after signing in: a path of ours, or the thread."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return url
    return resolve_url("messages")


def _shown(address: str) -> str:
    """A filled-in address as people write it: (555) 555-0123 rather than +15555550123."""
    if address.startswith("+"):
        try:
            return format_phone(address)
        except phonenumbers.NumberParseException:
            return address
    return address


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    initial = {
        "address": _shown(request.GET.get("address", "")),
        "next": request.GET.get("next", ""),
    }
    form = EmailLoginForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "portal/login.html", {"form": form}, status=400)
        kind, address = form.cleaned_data["address"]
        if kind == codes.EMAIL and form.cleaned_data["method"] == "link":
            return _send_login_link(request, email=address)
        # Known and unknown addresses count alike, so the limits reveal nothing either.
        if throttles.code_request_refused(request, address=address):
            return too_many(request, what="codes")
        codes.request_code(address=address)
        request.session[PENDING_CODE] = {"address": address, "next": form.cleaned_data["next"]}
        return redirect("login_code")
    return render(request, "portal/login.html", {"form": form})


def _send_login_link(request: HttpRequest, *, email: str) -> HttpResponse:
    if throttles.LOGIN_LINKS_PER_CLIENT.exceeded(
        request
    ) or throttles.LOGIN_LINKS_PER_ADDRESS.exceeded(request, value=login_address(email)):
        # An address counts as the sign-in compares it (one spelling, one counter).
        return too_many(request, what="sign-in links")
    actions.request_login_link(email=email)
    # The same answer for known and unknown addresses.
    return render(
        request,
        "portal/login_sent.html",
        {"email": email, "minutes": settings.SESAME_MAX_AGE // 60},
    )


@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """The code sent by /login/ (to a phone by SMS, or by email). Every try counts against
    the throttles; every failure gets the same words, whatever the reason."""
    pending = request.session.get(PENDING_CODE)
    if not pending:
        return redirect("login")
    address = pending["address"]
    form = CodeForm(request.POST or None)
    context = {
        "form": form,
        "address": address,
        "shown": format_phone(address) if codes.kind_of(address) == codes.PHONE else address,
        "by_sms": codes.kind_of(address) == codes.PHONE,
        "minutes": settings.SIGN_IN_CODE_MAX_AGE // 60,
    }
    if request.method == "GET":
        return render(request, "portal/login_code.html", context)
    if throttles.code_guess_refused(request, address=address):
        return too_many(request, what="tries at a code")
    customer = None
    if form.is_valid():
        customer = codes.check_code(address=address, code=form.cleaned_data["code"])
    if customer is None:
        form.add_error(None, WRONG_CODE)
        return render(request, "portal/login_code.html", context, status=400)
    next_url = _safe_next(request, pending.get("next", ""))
    devices.sign_in(request, customer=customer, keep=form.cleaned_data["keep"])
    request.session.pop(PENDING_CODE, None)
    return redirect(next_url)


WRONG_CODE = (
    "That code doesn't work. It may be mistyped, expired (codes last 10 minutes), already "
    "used, or replaced by a newer one. Check the latest message, or ask for a new code."
)


@require_http_methods(["GET", "POST"])
def magic_link(request: HttpRequest) -> HttpResponse:
    """GET shows one "Sign in" button and changes nothing (mail scanners prefetch links);
    the POST from that button spends the one-time token and signs in."""
    if request.method == "GET":
        token = request.GET.get(settings.SESAME_TOKEN_NAME, "")
        # Check without spending it, so a dead link says so before anyone presses a button.
        if not token or get_user(token, update_last_login=False) is None:
            return render(request, "portal/magic_link_invalid.html", status=400)
        form = MagicLinkForm(initial={"sesame": token})
        return render(request, "portal/magic_link.html", {"form": form})

    if throttles.MAGIC_LINK_POSTS.exceeded(request):
        return too_many(request, what="sign-in attempts")
    form = MagicLinkForm(request.POST)
    user = get_user(form.data.get("sesame", "")) if form.is_valid() else None
    if user is None:
        return render(request, "portal/magic_link_invalid.html", status=400)
    customer = Customer.objects.filter(user=user).select_related("user").first()
    if customer is None or user.is_staff:
        login(request, user, backend="sesame.backends.ModelBackend")
    else:
        devices.sign_in(request, customer=customer, keep=form.cleaned_data["keep"])
    return redirect("staff_projects" if user.is_staff else "messages")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    devices.sign_out(request)
    return redirect("login")


@require_http_methods(["GET", "POST"])
def notification_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link from a customer's SMS, email or push (portal/entry_links.py). GET changes
    nothing (mail scanners open links) and shows one button; its POST spends the link and
    opens the entry. Already signed in as that customer (the installed app): straight there."""
    # Every link that fails counts against the client's sign-in attempts, as each POST does.
    try:
        link, fresh = entry_links.read(token)
    except entry_links.BadLink:
        if throttles.MAGIC_LINK_POSTS.exceeded(request):
            return too_many(request, what="sign-in attempts")
        return render(request, "portal/magic_link_invalid.html", status=400)
    user = request.user
    if user.is_authenticated and Customer.objects.filter(user=user, pk=link.customer_id).exists():
        return redirect(link.target)
    if not fresh or entry_links.spent(link):
        if throttles.MAGIC_LINK_POSTS.exceeded(request):
            return too_many(request, what="sign-in attempts")
        return _sign_in_for(link)
    if request.method == "GET":
        return render(request, "portal/notification_link.html", {"token": token})
    if throttles.MAGIC_LINK_POSTS.exceeded(request):
        return too_many(request, what="sign-in attempts")
    customer = entry_links.spend(link)
    if customer is None:
        return _sign_in_for(link)
    devices.sign_in(request, customer=customer, scope=devices.THREAD)
    return redirect(link.target)


def _sign_in_for(link: entry_links.Link) -> HttpResponse:
    """A link used before, or too late: the sign-in page, its address filled in, and the
    entry as where to go once signed in."""
    query = urlencode({"address": entry_links.prefill(link), "next": link.target, "expired": 1})
    return redirect(f"{resolve_url('login')}?{query}")


def _staff_follows_card(request: HttpRequest, param: str, view_name: str) -> HttpResponse | None:
    """Staff opening a card's link (/schedule/?appointment=7) get the record's staff page."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        record_id = request.GET.get(param, "")
        if record_id.isdigit():
            return redirect(view_name, int(record_id))
    return None


@require_GET
def project_page(request: HttpRequest) -> HttpResponse:
    return _staff_follows_card(request, "contract", "crm_staff_contract") or _project_page(request)


@customer_required
def _project_page(request: HttpRequest) -> HttpResponse:
    summaries = crm_queries.project_summaries(customer=request.customer)
    # The chip filter: one project's panel and entries; the thread itself stays one thread.
    code = request.GET.get("p", "")
    shown = [s for s in summaries if s.project.code == code] or summaries
    context = {
        "summaries": shown,
        "all_projects": [s.project for s in summaries],
        "filtered": code if len(shown) == 1 and len(summaries) > 1 else "",
        "money_locale": crm_queries.money_settings(request.customer.business).locale,
        "tab": "project",
    }
    return render(request, "portal/project.html", context)


@require_GET
@customer_required
def invoices_page(request: HttpRequest) -> HttpResponse:
    context = {
        "invoices": crm_queries.customer_invoices(customer=request.customer),
        "estimates": crm_queries.customer_estimates(customer=request.customer),
        "money_locale": crm_queries.money_settings(request.customer.business).locale,
        "tab": "invoices",
    }
    return render(request, "portal/invoices.html", context)


@require_GET
def schedule_page(request: HttpRequest) -> HttpResponse:
    return _staff_follows_card(request, "appointment", "crm_staff_appointment") or _schedule_page(
        request
    )


@customer_required
def _schedule_page(request: HttpRequest) -> HttpResponse:
    schedule = crm_queries.customer_schedule(customer=request.customer)
    context = {
        "schedule": schedule,
        "feed_url": crm_calendar.feed_url(request.customer),
        "feed_reset": request.GET.get("feed") == "reset",
        "highlight": request.GET.get("appointment") or request.GET.get("confirmed") or "",
        "just_confirmed": request.GET.get("confirmed", ""),
        "tab": "schedule",
    }
    return render(request, "portal/schedule.html", context)


# What a logo may be served as; any other upload is a download, never rendered by the browser.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


@require_GET
def business_logo(request: HttpRequest, business_id: int) -> FileResponse:
    """The business's logo, public (the sign-in page shows it), read through the storage API
    wherever the storage keeps it. Its URL changes with each upload (Business.logo_url)."""
    business = get_object_or_404(Business.objects.exclude(logo=""), pk=business_id)
    content_type = LOGO_TYPES.get(PurePosixPath(business.logo.name).suffix.lower())
    try:
        file = business.logo.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        file,
        content_type=content_type or "application/octet-stream",
        as_attachment=content_type is None,
    )
    response["Cache-Control"] = "public, max-age=86400"
    # An SVG is a document: nothing in an uploaded one may run or load anything.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("staff_projects")
    if request.user.is_authenticated:
        return redirect("messages")
    return redirect("login")


def staff_projects_context(
    *, viewer, query: StaffListQuery | None = None, after: RowCursor | None = None
) -> dict:
    query = query or StaffListQuery()
    rows, next_cursor = staff_project_page(after=after, query=query, viewer=viewer)
    context = {
        "rows": rows,
        "next_cursor": next_cursor,
        "query": query,
        "staff_members": assignable_staff(),
    }
    if next_cursor is not None:
        context["more_query"] = urlencode(query.params(after=next_cursor.encode()))
    if after is None:
        counts = query.counts(viewer=viewer)
        context["filters"] = [
            (show, label, counts[show], urlencode(query.params(show=show)))
            for show, label in Show.LABELS.items()
        ]
        context["statuses"] = [
            (status, label, counts[f"status:{status}"], urlencode(query.params(status=status)))
            for status, label in Project.Status.choices
        ]
        context["any_status"] = urlencode(query.params(status=""))
    return context


@require_GET
@staff_required
def staff_projects(request: HttpRequest) -> HttpResponse:
    query = StaffListQuery.from_params(request.GET)
    raw_cursor = request.GET.get("after")
    if raw_cursor is not None:
        try:
            cursor = RowCursor.decode(raw_cursor)
        except ValueError:
            return HttpResponseBadRequest("That page cursor is malformed.")
        # The next page of rows, for "Load more" (or without JavaScript, a page of its own).
        context = staff_projects_context(viewer=request.user, query=query, after=cursor)
        template = (
            "portal/staff_projects.html#page" if request.htmx else "portal/staff_projects.html"
        )
        return render(request, template, context)
    context = staff_projects_context(viewer=request.user, query=query)
    if request.htmx and request.htmx.target == "staff-results":
        # Typing in the search box: the filters with their counts and the rows, not the page.
        return render(request, "portal/staff_projects.html#results", context)
    return render(request, "portal/staff_projects.html", context)


@require_POST
@staff_required
def staff_assign(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The assignee control (a list row or the chat modal): one action, and the control
    again, saying what happened or why not (400: not a number, not active staff)."""
    customer = get_object_or_404(
        Customer.objects.select_related("assigned_to", "thread"), pk=customer_id
    )
    form = AssigneeForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose a staff member or Unassigned."
        # Answer in the control that asked, as far as what it sent says which.
        data = {key: form.cleaned_data.get(key) for key in ("where", "row")}
    else:
        data = form.cleaned_data
        assignee = None
        if data["assignee"] is not None:
            assignee = get_user_model().objects.filter(pk=data["assignee"]).first()
            if assignee is None:
                error = "That staff member does not exist."
        if not error:
            try:
                actions.assign_customer(customer=customer, assignee=assignee, by=request.user)
            except actions.AssignmentRefused as refused:
                error = str(refused)
    if not request.htmx and not error:
        back = data.get("next") or ""
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = resolve_url("staff_projects")
        return redirect(back)
    where = data.get("where") or "row"
    context = {
        **assignee_control_context(customer=customer, where=where, row_id=data.get("row")),
        "staff_members": assignable_staff(),
        "error": error,
        "said": "" if error else _assigned_said(customer),
    }
    template = "portal/_assignee.html" if request.htmx else "portal/staff_assign.html"
    return render(request, template, context, status=400 if error else 200)


def _assigned_said(customer: Customer) -> str:
    if customer.assigned_to_id is None:
        return f"{customer.name} is unassigned."
    return f"Assigned to {staff_name(customer.assigned_to)}."


class StaffLoginView(auth_views.LoginView):
    """Username and password for staff. Repeated failures for one username (or from one
    client) lock sign-in for a while, even with the right password: guessing gets nowhere."""

    template_name = "portal/staff_login.html"

    def post(self, request, *args, **kwargs):
        if throttles.staff_locked_out(request, username=request.POST.get("username", "")):
            return too_many(request, what="failed sign-ins")
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        username = self.request.POST.get("username", "")
        throttles.record_staff_failure(self.request, username=username)
        # A wrong password is a client error: answer 400 with the form and its message.
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def get_default_redirect_url(self):
        return resolve_url("staff_projects")
