"""Weekly series keep their wall-clock time across daylight-saving changes (forum.recurrence)."""

from datetime import UTC, date, datetime, time

import pytest

from forum import recurrence
from forum.recurrence import UnknownTimeZone


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_london_series_keeps_19_00_when_the_clocks_go_back():
    # British Summer Time ends on Sunday 26 October 2025.
    times = recurrence.weekly(date(2025, 10, 21), time(19), "Europe/London", count=3)
    assert times == [utc(2025, 10, 21, 18), utc(2025, 10, 28, 19), utc(2025, 11, 4, 19)]
    assert all(moment.tzinfo is UTC for moment in times)
    assert {recurrence.local(m, "Europe/London").strftime("%H:%M") for m in times} == {"19:00"}


def test_a_london_series_keeps_19_00_when_the_clocks_go_forward():
    # British Summer Time starts on Sunday 30 March 2025.
    times = recurrence.weekly(date(2025, 3, 25), time(19), "Europe/London", count=2)
    assert times == [utc(2025, 3, 25, 19), utc(2025, 4, 1, 18)]


def test_a_new_york_series_across_both_changes():
    # Daylight time starts on 9 March 2025 and ends on 2 November 2025.
    spring = recurrence.weekly(date(2025, 3, 4), time(20, 30), "America/New_York", count=2)
    assert spring == [utc(2025, 3, 5, 1, 30), utc(2025, 3, 12, 0, 30)]
    autumn = recurrence.weekly(date(2025, 10, 28), time(20, 30), "America/New_York", count=2)
    assert autumn == [utc(2025, 10, 29, 0, 30), utc(2025, 11, 5, 1, 30)]


def test_the_us_and_uk_changing_on_different_weeks_moves_the_gap_between_them():
    london = recurrence.weekly(date(2025, 3, 3), time(19), "Europe/London", count=5)
    new_york = recurrence.weekly(date(2025, 3, 3), time(14), "America/New_York", count=5)
    gaps = [(ny - ldn).total_seconds() / 3600 for ldn, ny in zip(london, new_york, strict=True)]
    # Both local times hold; the same instant except in the weeks New York is on daylight
    # time (from 9 March) and London not yet (from 30 March).
    assert gaps == [0, -1, -1, -1, 0]


def test_a_skipped_time_moves_forward_by_the_gap():
    zone = recurrence.get_zone("Europe/London")
    # 01:30 does not exist on 30 March 2025 in London: 02:30 BST, which is 01:30 UTC.
    moved = recurrence.to_utc(date(2025, 3, 30), time(1, 30), zone)
    assert moved == utc(2025, 3, 30, 1, 30)
    assert recurrence.local(moved, "Europe/London").strftime("%H:%M") == "02:30"
    new_york = recurrence.get_zone("America/New_York")
    moved = recurrence.to_utc(date(2025, 3, 9), time(2, 15), new_york)
    assert recurrence.local(moved, "America/New_York").strftime("%H:%M") == "03:15"


def test_a_repeated_time_is_its_first_occurrence():
    zone = recurrence.get_zone("Europe/London")
    # 01:30 happens twice on 26 October 2025: first in BST (00:30 UTC), then in GMT.
    assert recurrence.to_utc(date(2025, 10, 26), time(1, 30), zone) == utc(2025, 10, 26, 0, 30)
    new_york = recurrence.get_zone("America/New_York")
    assert recurrence.to_utc(date(2025, 11, 2), time(1, 30), new_york) == utc(2025, 11, 2, 5, 30)


def test_a_span_past_midnight_ends_the_next_day():
    start, end = recurrence.span(date(2025, 6, 3), time(23), time(0, 30), "Europe/London")
    assert (start, end) == (utc(2025, 6, 3, 22), utc(2025, 6, 3, 23, 30))
    start, end = recurrence.span(date(2025, 6, 3), time(19), time(20), "UTC")
    assert (end - start).total_seconds() == 3600


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "europe/london", "../../etc/passwd"])
def test_an_unknown_zone_is_a_clear_error(name):
    with pytest.raises(UnknownTimeZone, match="is not a time zone we know"):
        recurrence.weekly(date(2025, 1, 7), time(19), name, count=2)
    assert not recurrence.is_zone(name)


def test_local_shows_utc_for_a_zone_it_does_not_know():
    assert recurrence.local(utc(2025, 1, 1, 12), "Nowhere/Land").strftime("%H:%M") == "12:00"


def test_a_series_has_at_least_one_occurrence():
    with pytest.raises(ValueError, match="at least one"):
        recurrence.weekly(date(2025, 1, 7), time(19), "UTC", count=0)
