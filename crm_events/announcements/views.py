from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm_events.announcements import actions, audience, queries
from crm_events.announcements.forms import AnnouncementForm
from crm_events.announcements.models import Announcement
from portal.access import staff_required
from portal.models import Business

# First recipients named in the preview.
PREVIEW_NAMES = 5


def _business() -> Business:
    return Business.objects.order_by("pk").first()


@require_GET
@staff_required
def announcement_list(request: HttpRequest) -> HttpResponse:
    announcements = queries.recent()
    figures = queries.figures(announcements)
    rows = [(a, figures[a.pk]) for a in announcements]
    return render(request, "crm_events/announcements.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@staff_required
def announcement_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "crm_events/announcement_new.html", {"form": AnnouncementForm()})
    form = AnnouncementForm(request.POST)
    context = {"form": form}
    if not form.is_valid():
        return render(request, "crm_events/announcement_new.html", context, status=400)
    business = _business()
    try:
        if request.POST.get("action") == "send":
            announcement, _ = actions.start_announcement(
                business=business,
                author=request.user,
                body=form.cleaned_data["body"],
                choice=form.choice(),
                form_token=form.cleaned_data["form_token"],
            )
            return redirect("announcement_detail", announcement.pk)
        preview = audience.preview(
            business=business, body=form.cleaned_data["body"], choice=form.choice()
        )
    except ValidationError as error:
        context["error"] = " ".join(error.messages)
        return render(request, "crm_events/announcement_new.html", context, status=400)
    context.update(
        preview=preview,
        names=[r.customer.name for r in preview.recipients[:PREVIEW_NAMES]],
        more=max(0, len(preview.recipients) - PREVIEW_NAMES),
    )
    return render(request, "crm_events/announcement_new.html", context)


def _detail_context(announcement_id: int) -> dict:
    announcement = get_object_or_404(
        Announcement.objects.select_related("created_by", "cancelled_by", "tag"),
        pk=announcement_id,
    )
    return {
        "announcement": announcement,
        "figures": queries.figures([announcement])[announcement.pk],
    }


@require_GET
@staff_required
def announcement_detail(request: HttpRequest, announcement_id: int) -> HttpResponse:
    context = _detail_context(announcement_id)
    if request.htmx:
        # The page polls this while it runs (docs/crm.md, "Announcements").
        return render(request, "crm_events/announcement_detail.html#progress", context)
    return render(request, "crm_events/announcement_detail.html", context)


@require_POST
@staff_required
def announcement_cancel(request: HttpRequest, announcement_id: int) -> HttpResponse:
    get_object_or_404(Announcement, pk=announcement_id)
    try:
        cancelled = actions.cancel_announcement(announcement_id=announcement_id, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"Cancelled. No one else will get it; {cancelled} held notification"
            f"{'s' if cancelled != 1 else ''} will not be sent.",
        )
    return redirect("announcement_detail", announcement_id)
