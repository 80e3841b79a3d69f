"""Quiet hours: when may a non-urgent notification go?

A pure function of (window, now). The window is a pair of wall-clock times in the customer's
time zone; it may cross midnight (21:00–08:00). Inside it, a notification waits until the
first instant at which the customer's wall clock is no longer inside the window.

Daylight-saving changes are the subtle part:

- the end time may not exist that day (clocks spring forward over it): the window then ends
  at the jump, the first instant the wall clock reads past the end (and if the jump lands
  back inside the window, it runs on to its next end);
- the end time may happen twice (clocks fall back): the window ends at the first of them that
  is still ahead of `now`.

tests/notifications/test_quiet_hours.py states these as properties and checks them with
hypothesis across zones with odd rules (30-minute DST, a skipped calendar day).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

UTC = dt.UTC


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time
    time_zone: str

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def is_empty(self) -> bool:
        # A window that starts when it ends is no window (the form refuses it; this guards
        # rows written any other way).
        return _seconds(self.start) == _seconds(self.end)


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def in_window(wall: dt.time, quiet: QuietHours) -> bool:
    """Whether a wall-clock time of day falls inside the window [start, end)."""
    if quiet.is_empty:
        return False
    t, start, end = _seconds(wall), _seconds(quiet.start), _seconds(quiet.end)
    if start < end:
        return start <= t < end
    return t >= start or t < end  # crosses midnight


def window_length(quiet: QuietHours) -> dt.timedelta:
    """Length of the window on an ordinary day (no DST change)."""
    start, end = _seconds(quiet.start), _seconds(quiet.end)
    return dt.timedelta(seconds=(end - start) % 86400)


def release_time(quiet: QuietHours | None, now: dt.datetime) -> dt.datetime:
    """When a non-urgent notification written at `now` may go: the first instant at or
    after `now` at which the customer's wall clock is outside the window. That is `now`
    itself outside the window, otherwise the instant the window ends. `now` must be aware;
    the result is in UTC."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    if quiet is None or quiet.is_empty:
        return now
    zone = quiet.zone
    at = now
    # Normally one step. More only when a clock change jumps from the window's end straight
    # back into it (a window of nearly a day, or Samoa skipping a whole calendar day).
    for _ in range(4):
        local = at.astimezone(zone)
        wall = local.time().replace(tzinfo=None)
        if not in_window(wall, quiet):
            return at
        # The end is today if the clock is before it, else tomorrow (a window crossing
        # midnight, entered in the evening).
        end_date = local.date()
        if _seconds(wall) >= _seconds(quiet.end):
            end_date += dt.timedelta(days=1)
        end_wall = dt.datetime.combine(end_date, quiet.end)
        following = _first_instant_at_or_after(end_wall, zone, not_before=at)
        if following <= at:
            return at
        at = following
    return at


def _first_instant_at_or_after(
    wall: dt.datetime, zone: zoneinfo.ZoneInfo, *, not_before: dt.datetime
) -> dt.datetime:
    """The earliest UTC instant, not before `not_before`, at which the wall clock in `zone`
    reads `wall` — or, if `wall` does not exist (a DST gap), jumps past it."""
    candidates = sorted({_to_utc(wall, zone, fold) for fold in (0, 1)})
    real = [c for c in candidates if _wall(c, zone) == wall]
    for instant in real:  # an ambiguous time has two; take the first still ahead
        if instant >= not_before:
            return instant
    if real:
        return not_before
    # A gap: the two folds land on either side of the jump. Find the jump itself, to the
    # second: the first instant whose wall time is at or past `wall`.
    low, high = candidates[0], candidates[-1]
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if _wall(high.replace(microsecond=0), zone) >= wall else high


def _to_utc(wall: dt.datetime, zone: zoneinfo.ZoneInfo, fold: int) -> dt.datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def _wall(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)
