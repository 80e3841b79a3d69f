"""Quiet hours as a pure function of (window, now): examples people would check by hand, then
properties that hold for any window, zone and instant, including around DST changes."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifications.outbound.quiet_hours import QuietHours, in_window, release_time

UTC = dt.UTC
NY = "America/New_York"


def at(zone: str, *args, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(zone), fold=fold)


def window(start: str, end: str, zone: str = NY) -> QuietHours:
    return QuietHours(dt.time.fromisoformat(start), dt.time.fromisoformat(end), zone)


NIGHT = window("21:00", "08:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 23:00 in her quiet hours: waits for 8:00 the next morning.
        (at(NY, 2025, 5, 14, 23, 0), at(NY, 2025, 5, 15, 8, 0)),
        # After midnight, same window: 8:00 the same day.
        (at(NY, 2025, 5, 15, 2, 30), at(NY, 2025, 5, 15, 8, 0)),
        (at(NY, 2025, 5, 15, 7, 59), at(NY, 2025, 5, 15, 8, 0)),
        (at(NY, 2025, 5, 15, 21, 0), at(NY, 2025, 5, 16, 8, 0)),
        # Outside the window: now. The end is not inside, the start is.
        (at(NY, 2025, 5, 15, 8, 0), at(NY, 2025, 5, 15, 8, 0)),
        (at(NY, 2025, 5, 15, 20, 59), at(NY, 2025, 5, 15, 20, 59)),
        (at(NY, 2025, 5, 15, 12, 0), at(NY, 2025, 5, 15, 12, 0)),
    ],
)
def test_a_window_crossing_midnight_holds_until_its_end(now, expected):
    assert release_time(NIGHT, now) == expected


def test_the_window_is_read_in_the_customers_time_zone():
    # 23:00 in New York is 04:00 in London: outside a London customer's night window? No —
    # their 21:00–08:00 is in London time, and 04:00 there is inside it.
    now = at(NY, 2025, 5, 14, 23, 0)
    assert release_time(window("21:00", "08:00", "Europe/London"), now) == at(
        "Europe/London", 2025, 5, 15, 8, 0
    )
    assert release_time(window("21:00", "08:00", "Asia/Tokyo"), now) == now  # 12:00 there


def test_a_daytime_window_holds_until_its_end():
    assert release_time(window("12:00", "14:00"), at(NY, 2025, 5, 15, 13, 0)) == at(
        NY, 2025, 5, 15, 14, 0
    )


def test_no_window_or_an_empty_one_never_holds():
    now = at(NY, 2025, 5, 14, 23, 0)
    assert release_time(None, now) == now
    assert release_time(window("08:00", "08:00"), now) == now


def test_the_night_the_clocks_spring_forward_is_an_hour_shorter():
    # 2024-03-10 in New York: 02:00 EST becomes 03:00 EDT. 22:00 to 08:00 is 9 real hours.
    now = at(NY, 2024, 3, 9, 22, 0)
    release = release_time(NIGHT, now)
    assert release == at(NY, 2024, 3, 10, 8, 0)
    assert release - now == dt.timedelta(hours=9)


def test_an_end_time_that_does_not_exist_ends_the_window_at_the_jump():
    # 02:30 never happens on 2024-03-10 in New York: the clock jumps from 02:00 to 03:00.
    quiet = window("01:00", "02:30")
    release = release_time(quiet, at(NY, 2024, 3, 10, 1, 30))
    assert release == dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert release.astimezone(zoneinfo.ZoneInfo(NY)).time() == dt.time(3, 0)


def test_an_end_time_that_happens_twice_ends_the_window_at_the_next_occurrence():
    # 2024-11-03 in New York: 01:00–02:00 happens twice (EDT, then EST).
    quiet = window("00:00", "01:30")
    first = at(NY, 2024, 11, 3, 1, 10, fold=0)  # 05:10 UTC
    second = at(NY, 2024, 11, 3, 1, 10, fold=1)  # 06:10 UTC
    assert release_time(quiet, first) == dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert release_time(quiet, second) == dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        release_time(NIGHT, dt.datetime(2025, 5, 15, 23, 0))


# -- properties --------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # DST of 30 minutes
    "America/Sao_Paulo",  # historical DST changes at midnight
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Asia/Kolkata",
    "Pacific/Chatham",
]

# Instants where these zones changed their clocks, to draw `now` near them.
TRANSITIONS = [
    ("America/New_York", dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),
    ("America/New_York", dt.datetime(2024, 11, 3, 6, 0, tzinfo=UTC)),
    ("Europe/London", dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
    ("Europe/London", dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", dt.datetime(2024, 4, 6, 15, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", dt.datetime(2024, 10, 5, 15, 30, tzinfo=UTC)),
    ("America/Sao_Paulo", dt.datetime(2018, 11, 4, 3, 0, tzinfo=UTC)),
    ("America/Sao_Paulo", dt.datetime(2019, 2, 17, 2, 0, tzinfo=UTC)),
    ("Pacific/Apia", dt.datetime(2011, 12, 30, 10, 0, tzinfo=UTC)),
]

clock_times = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
windows = st.builds(QuietHours, clock_times, clock_times, st.sampled_from(ZONES))
instants = st.datetimes(
    min_value=dt.datetime(2005, 1, 1), max_value=dt.datetime(2035, 12, 31), timezones=st.just(UTC)
)


@st.composite
def near_a_clock_change(draw):
    zone, instant = draw(st.sampled_from(TRANSITIONS))
    quiet = QuietHours(draw(clock_times), draw(clock_times), zone)
    offset = dt.timedelta(seconds=draw(st.integers(-26 * 3600, 26 * 3600)))
    return quiet, instant + offset


cases = st.one_of(st.tuples(windows, instants), near_a_clock_change())


def wall(instant: dt.datetime, quiet: QuietHours) -> dt.time:
    return instant.astimezone(quiet.zone).time()


@settings(max_examples=400, deadline=None)
@given(cases, st.floats(min_value=0, max_value=1, exclude_max=True))
@example(
    (window("01:00", "02:30", NY), dt.datetime(2024, 3, 10, 6, 30, tzinfo=UTC)), 0.5
)  # end falls in the gap
@example(
    (window("22:00", "08:00", "Pacific/Apia"), dt.datetime(2011, 12, 30, 9, 0, tzinfo=UTC)), 0.5
)  # the end's whole day is skipped, and the jump lands back inside the window
def test_release_is_the_first_instant_outside_the_window(case, fraction):
    quiet, now = case
    release = release_time(quiet, now)

    # Never earlier than now, and held exactly when now is inside the window.
    assert release >= now
    assert (release > now) == in_window(wall(now, quiet), quiet)
    # At release the customer's clock is outside the window...
    assert not in_window(wall(release, quiet), quiet)
    # ...and every instant before it, from now on, is inside: nothing waits longer than it
    # must, or goes out in quiet time.
    if release > now:
        # Floored to the microsecond: timedelta * float rounds, and could reach `release`.
        held_for = (release - now) // dt.timedelta(microseconds=1)
        inside = now + dt.timedelta(microseconds=int(held_for * fraction))
        assert in_window(wall(inside, quiet), quiet)
        just_before = release - dt.timedelta(seconds=1)
        if just_before >= now:
            assert in_window(wall(just_before, quiet), quiet)
    # A night lasts at most a day (two when a calendar day is skipped).
    assert release - now <= dt.timedelta(hours=49)
