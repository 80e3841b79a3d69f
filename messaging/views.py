from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from messaging import actions, queries, transcripts
from messaging.forms import EntriesPageForm, ReplyForm, SearchForm, StaffReplyForm, TranscriptForm
from messaging.models import Side, Thread
from messaging.rendering import render_entries
from portal import throttles
from portal.access import customer_required, staff_required
from portal.models import Project
from portal.queries import assignable_staff


def _extends(request: HttpRequest) -> str:
    """Which way a fragment extends an open timeline: "earlier", "later" or ""."""
    if "before" in request.GET:
        return "earlier"
    return "later" if "after" in request.GET else ""


def _page_from(request: HttpRequest, *, thread: Thread, audience: Side, project=None):
    form = EntriesPageForm(request.GET)
    if not form.is_valid():
        return None
    data = form.cleaned_data
    if data["at"]:
        return queries.page_around(
            thread=thread, audience=audience, seq=data["at"], project=project
        )
    return queries.timeline_page(
        thread=thread,
        audience=audience,
        before_seq=data["before"],
        after_seq=data["after"],
        project=project,
    )


def _render_context(*, customer, audience: Side, entries_url: str, project=None) -> dict:
    """What the entry partials need, whoever renders them (page, fragment, live frame)."""
    return {
        "audience": audience.value,
        "customer": customer,
        "business": customer.business,
        "entries_url": entries_url,
        # Paging links keep the chip filter.
        "filter_query": f"p={quote(project.code)}&" if project else "",
    }


def _customer_context(request: HttpRequest, project=None) -> dict:
    return _render_context(
        customer=request.customer,
        audience=Side.CUSTOMER,
        entries_url=reverse("customer_entries"),
        project=project,
    )


def _chosen_project(request: HttpRequest, source) -> Project | None:
    """The project the chip filter (`p`, a project code) shows: the customer's own, or 404."""
    code = source.get("p", "")
    if not code:
        return None
    return get_object_or_404(request.customer.projects, code=code)


def _staff_context(thread: Thread) -> dict:
    return _render_context(
        customer=thread.customer,
        audience=Side.STAFF,
        entries_url=reverse("staff_entries", args=[thread.pk]),
    )


def _form_error(
    request: HttpRequest, form: ReplyForm, *, message: str = "", status: int = 400
) -> HttpResponse:
    """The reasons (400, or 429 over the send limit); htmx puts them next to the form and
    keeps the typed text (and the send key: the same message, sent again, is still one)."""
    message = message or " ".join(e for errors in form.errors.values() for e in errors)
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    if request.htmx:
        response = render(
            request, "messaging/_form_error.html", {"message": message}, status=status
        )
        response = reswap(retarget(response, f"#{form.error_id}"), "innerHTML")
    return response


SLOW_DOWN = "You're sending messages very quickly. Wait a minute, then send this one again."


def _sent(request: HttpRequest, *, entry, form_class, context: dict) -> HttpResponse:
    # The entry from the fragment cache, as the pages and sockets render it: a staff entry's
    # status line from the Delivery rows the append wrote (already on it), not a query.
    if context["audience"] == Side.STAFF:
        queries.load_badges([entry])
    html = render_entries(
        [entry],
        audience=context["audience"],
        business=context["business"],
        customer=context["customer"],
    )
    return render(
        request,
        "messaging/_sent.html",
        {**context, "entry_html": html, "next_form": form_class.blank()},
    )


# -- customer ------------------------------------------------------------------------------


@require_GET
@customer_required
def messages_page(request: HttpRequest) -> HttpResponse:
    customer = request.customer
    thread = actions.ensure_thread(customer=customer)
    chosen = _chosen_project(request, request.GET)
    page = _page_from(request, thread=thread, audience=Side.CUSTOMER, project=chosen)
    if page is None:
        return HttpResponseBadRequest("Those page numbers are not numbers.")
    # Opening the thread is reading what it shows; one project's entries are not all of it.
    if chosen is None:
        actions.mark_read(thread=thread, side=Side.CUSTOMER, up_to_seq=page.last_seq)
    search = SearchForm(request.GET)
    projects = list(customer.projects.order_by("-created_at"))
    context = {
        **_customer_context(request, chosen),
        "tab": "messages",
        "thread": thread,
        "page": page,
        "form": ReplyForm.blank(),
        "search_form": search if search.is_valid() else SearchForm(),
        # The header names a project only when the thread shows one ("All" shows them all).
        "project": chosen or (projects[0] if len(projects) == 1 else None),
        "projects": projects,
        "chosen_project": chosen,
        "focus_seq": request.GET.get("at"),
    }
    return render(request, "messaging/messages.html", context)


@require_GET
@customer_required
def customer_entries(request: HttpRequest) -> HttpResponse:
    """A page of earlier (or later) entries, for scrolling."""
    thread = actions.ensure_thread(customer=request.customer)
    chosen = _chosen_project(request, request.GET)
    page = _page_from(request, thread=thread, audience=Side.CUSTOMER, project=chosen)
    if page is None:
        return HttpResponseBadRequest("Those page numbers are not numbers.")
    context = {
        **_customer_context(request, chosen),
        "page": page,
        "extends": _extends(request),
    }
    return render(request, "messaging/_timeline_page.html", context)


@require_POST
@customer_required
def customer_send(request: HttpRequest) -> HttpResponse:
    # Every attempt counts, before any file is read: checking photos is the costly part.
    if throttles.SENDS_PER_USER.exceeded(request):
        return _form_error(request, ReplyForm(), message=SLOW_DOWN, status=429)
    form = ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        return _form_error(request, form)
    # Sent from one project's view: the reply is about that project.
    chosen = _chosen_project(request, request.POST)
    try:
        entry = actions.post_customer_reply(
            customer=request.customer,
            body=form.cleaned_data["body"],
            attachments=form.cleaned_data["photos"],
            project=chosen,
            idempotency_key=f"portal:{form.cleaned_data['key']}",
        )
    except ValidationError as error:  # over the thread's storage for files
        return _form_error(request, form, message=" ".join(error.messages))
    if not request.htmx:
        return redirect(f"{reverse('messages')}?p={quote(chosen.code)}" if chosen else "messages")
    return _sent(
        request, entry=entry, form_class=ReplyForm, context=_customer_context(request, chosen)
    )


@require_GET
@customer_required
def customer_search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    thread = actions.ensure_thread(customer=request.customer)
    results = queries.search_entries(thread=thread, audience=Side.CUSTOMER, query=query)
    return render(
        request,
        "messaging/search_results.html",
        {"query": query, "results": results, "tab": "messages", "base_url": "messages"},
    )


# -- staff ---------------------------------------------------------------------------------


def _staff_thread(thread_id: int) -> Thread:
    # With the customer's notification preferences: the composer says if texts stopped.
    return get_object_or_404(
        Thread.objects.select_related(
            "customer", "customer__business", "customer__notification_preferences"
        ),
        pk=thread_id,
    )


@require_GET
@staff_required
def staff_chat(request: HttpRequest, thread_id: int) -> HttpResponse:
    """The chat modal: a fragment for htmx, or the project list with the modal open."""
    thread = _staff_thread(thread_id)
    page = _page_from(request, thread=thread, audience=Side.STAFF)
    if page is None:
        return HttpResponseBadRequest("Those page numbers are not numbers.")
    actions.mark_read(thread=thread, side=Side.STAFF, up_to_seq=page.last_seq)
    context = {
        **_staff_context(thread),
        "thread": thread,
        "projects": list(thread.customer.projects.all()),
        "page": page,
        "form": StaffReplyForm.blank(),
        "staff_members": assignable_staff(),
    }
    if request.htmx:
        return render(request, "messaging/_staff_chat.html", context)
    from portal.views import staff_projects_context

    context = staff_projects_context(viewer=request.user) | context
    return render(request, "portal/staff_projects.html", context)


@require_GET
@staff_required
def staff_entries(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = _staff_thread(thread_id)
    page = _page_from(request, thread=thread, audience=Side.STAFF)
    if page is None:
        return HttpResponseBadRequest("Those page numbers are not numbers.")
    context = {**_staff_context(thread), "page": page, "extends": _extends(request)}
    return render(request, "messaging/_timeline_page.html", context)


@require_POST
@staff_required
def staff_send(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = _staff_thread(thread_id)
    # Every attempt counts, before any file is read: checking photos is the costly part.
    if throttles.SENDS_PER_USER.exceeded(request):
        return _form_error(request, StaffReplyForm(), message=SLOW_DOWN, status=429)
    form = StaffReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        return _form_error(request, form)
    data = form.cleaned_data
    key = f"portal:{data['key']}"
    if data["internal_note"]:
        entry = actions.add_internal_note(
            thread=thread,
            author=request.user,
            body=data["body"],
            attachments=data["photos"],
            idempotency_key=key,
        )
    else:
        entry = actions.post_staff_message(
            thread=thread,
            author=request.user,
            body=data["body"],
            urgent=data["urgent"],
            attachments=data["photos"],
            idempotency_key=key,
        )
    if not request.htmx:
        return redirect("staff_chat", thread_id=thread.pk)
    return _sent(request, entry=entry, form_class=StaffReplyForm, context=_staff_context(thread))


SEARCH_LIMIT = 30


@require_GET
@staff_required
def staff_thread_search(request: HttpRequest, thread_id: int) -> HttpResponse:
    """The chat modal's search: the whole thread as staff see it. Text the form refuses (a NUL,
    over 200 characters) gets its reason and no results, never an error page."""
    thread = _staff_thread(thread_id)
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    error = "" if form.is_valid() else " ".join(form.errors.get("q", []))
    context = {
        "thread": thread,
        "query": query,
        "error": error,
        "limit": SEARCH_LIMIT,
        "hits": queries.staff_search(thread=thread, query=query, limit=SEARCH_LIMIT),
    }
    if request.htmx:
        return render(request, "messaging/_staff_search_results.html", context)
    return render(request, "messaging/staff_search.html", context)


# -- files on entries ------------------------------------------------------------------------


def _file_response(attachment, *, thumbnail: bool = False) -> FileResponse:
    field = attachment.thumbnail if thumbnail and attachment.thumbnail else attachment.file
    content_type = "image/jpeg" if field is attachment.thumbnail else attachment.content_type
    response = FileResponse(
        field.open("rb"),
        content_type=content_type,
        as_attachment=not (attachment.is_image or thumbnail),
        filename=attachment.name,
    )
    # Files never change (append-only), and are nobody else's business.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    # Opened on its own, a file runs nothing and loads nothing.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response


@require_GET
def attachment(request: HttpRequest, attachment_id: int) -> HttpResponse:
    found = queries.attachment_for(user=request.user, attachment_id=attachment_id)
    return _file_response(found)


@require_GET
def attachment_thumbnail(request: HttpRequest, attachment_id: int) -> HttpResponse:
    found = queries.attachment_for(user=request.user, attachment_id=attachment_id)
    return _file_response(found, thumbnail=True)


@require_GET
def attachment_shared(request: HttpRequest, token: str) -> HttpResponse:
    """A file by a signed, expiring link (Twilio fetching the photo of an MMS we send)."""
    return _file_response(queries.shared_attachment(token))


# -- transcripts -----------------------------------------------------------------------------


def _streamed(request: HttpRequest, pieces: Iterator[bytes]):
    """The pieces as a response body. Under ASGI an async iterator, each step one hop to the
    sync thread that fetches at most one chunk of entries: Django's ASGI handler would
    otherwise read a sync iterator whole into a list before sending a byte (and warn)."""
    if not isinstance(request, ASGIRequest):
        return (piece for piece in pieces if piece)

    def step() -> bytes | None:
        # An empty piece is a chunk boundary: hand back what there is, so one hop never
        # holds the sync thread for more than one chunk's queries.
        out = bytearray()
        for piece in pieces:
            out += piece
            if not piece or len(out) >= 64 * 1024:
                return bytes(out)
        return bytes(out) if out else None

    async def body():
        while (data := await sync_to_async(step, thread_sensitive=True)()) is not None:
            if data:
                yield data

    return body()


def _transcript_response(request: HttpRequest, *, thread: Thread, staff: bool, kind: str):
    form = TranscriptForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Those transcript options are not valid. {form.reason()}")
    transcript = transcripts.transcript_for(
        thread=thread,
        staff=staff,
        include_staff_only=form.cleaned_data["include_staff_only"],
        up_to=form.cleaned_data["up_to"],
    )
    if kind == "json":
        pieces = transcripts.json_chunks(transcript)
        content_type = "application/json"
    else:
        pieces = transcripts.pdf_with_hash(transcript, generated_at=timezone.now())
        content_type = "application/pdf"
    response = StreamingHttpResponse(_streamed(request, pieces), content_type=content_type)
    name = f"transcript-{thread.pk}-to-{transcript.up_to}"
    if staff and not transcript.include_staff_only:
        name += "-without-staff-notes"
    response["Content-Disposition"] = f'attachment; filename="{name}.{kind}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@customer_required
def customer_transcript(request: HttpRequest, kind: str) -> HttpResponse:
    thread = actions.ensure_thread(customer=request.customer)
    return _transcript_response(request, thread=thread, staff=False, kind=kind)


@require_GET
@staff_required
def staff_transcript(request: HttpRequest, thread_id: int, kind: str) -> HttpResponse:
    return _transcript_response(request, thread=_staff_thread(thread_id), staff=True, kind=kind)
