"""/staff/insights/: the page's figures come from portal.insights; this parses the period,
asks for them and shapes the charts."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from messaging.models import Entry
from portal import charts
from portal.access import staff_required, staff_time_zone
from portal.insights import (
    DIRECTIONS,
    MESSAGE_CHANNELS,
    PERIODS,
    BadPeriod,
    Period,
    Volume,
    insights,
)
from portal.models import Business

# Stacked in this order, bottom first; the classes colour them (static/css/insights.css).
SERIES = [
    ("bar-in", "In (customers)"),
    ("bar-staff", "Out (staff)"),
    ("bar-auto", "Out (automated)"),
]


@require_GET
@staff_required
def staff_insights(request: HttpRequest) -> HttpResponse:
    business = Business.objects.order_by("pk").first()
    zone = business.time_zone if business else staff_time_zone()
    try:
        period = Period.from_param(request.GET.get("days"), zone=zone)
    except BadPeriod as error:
        return HttpResponseBadRequest(str(error))
    figures = insights(period=period, business=business)
    context = {
        "figures": figures,
        "period": period,
        "periods": [(days, urlencode({"days": days})) for days in PERIODS],
        "volume_chart": _volume_chart(figures.volume, period),
        "volume_rows": _volume_rows(figures.volume),
        "channel_rows": _channel_rows(figures.volume),
        "directions": [name for _, name, _ in DIRECTIONS],
        "response_chart": (
            charts.horizontal_bars(
                title=f"First response times, last {period.days} days",
                description=_response_description(figures.responses),
                rows=figures.responses.buckets,
            )
            if figures.responses
            else None
        ),
        "open_days_label": _open_days_label(business),
        "waiting_shown": figures.waiting[:20],
        "longest_wait": figures.waiting[0].since if figures.waiting else None,
    }
    return render(request, "portal/staff_insights.html", context)


DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _open_days_label(business: Business | None) -> str:
    if business is None:
        return ""
    days = business.open_weekdays
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{DAY_NAMES[days[0] - 1]}–{DAY_NAMES[days[-1] - 1]}"
    return ", ".join(DAY_NAMES[day - 1] for day in days)


def _response_description(responses) -> str:
    parts = [f"{label}: {n}" for label, n in responses.buckets]
    return (
        f"How many of {responses.answered} answered customer messages got their first staff "
        f"response within each time range. " + "; ".join(parts) + "."
    )


def _volume_chart(volume: Volume, period: Period) -> charts.Chart:
    columns = []
    for day in period.dates:
        label = day.strftime("%a %-d") if period.days <= 7 else day.strftime("%b %-d")
        columns.append(
            (label, [volume.day_total(day, direction) for direction, _, _ in DIRECTIONS])
        )
    totals = [
        f"{name}: {sum(volume.totals[direction].values())}" for direction, name, _ in DIRECTIONS
    ]
    return charts.stacked_columns(
        title=f"Messages per day, last {period.days} days",
        description="Messages each day, stacked: in from customers, out from staff, out "
        "automated. Totals — " + "; ".join(totals) + ". The table below has each channel.",
        columns=columns,
        series=SERIES,
        label_every={7: 1, 30: 5, 90: 15}[period.days],
    )


def _volume_rows(volume: Volume) -> list[tuple]:
    """The chart's table: each day's messages in each direction."""
    return [
        (day, [volume.day_total(day, direction) for direction, _, _ in DIRECTIONS])
        for day in volume.by_day
    ]


def _channel_rows(volume: Volume) -> list[tuple[str, list[int]]]:
    """The period's messages by channel and direction (a channel with none is left out,
    except the three customers use)."""
    rows = []
    for channel, label in Entry.Channel.choices:
        counts = [volume.totals[direction][channel] for direction, _, _ in DIRECTIONS]
        if channel in MESSAGE_CHANNELS or any(counts):
            rows.append((label, counts))
    return rows
