"""Wall-clock times in a named zone, and weekly series of them: pure, no database.

A meeting is "Tuesdays at 19:00 in London", not "every 168 hours": a weekly series
keeps its local time across daylight-saving changes (19:00 BST in summer, 19:00 GMT in
winter), so each occurrence is converted from the zone on its own date. Results are
aware datetimes in UTC, ready to store.
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class UnknownTimeZone(ValueError):
    """The name is not an IANA time zone this server knows."""


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or UnknownTimeZone with a message to show."""
    # Only names in the database: ZoneInfo() would also open arbitrary relative paths.
    if not name or name not in _zone_names():
        raise UnknownTimeZone(f"“{name}” is not a time zone we know. Choose one from the list.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise UnknownTimeZone(f"“{name}” is not a time zone we know.") from error


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    return bool(name) and name in _zone_names()


def to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant when clocks in ``zone`` show ``day`` ``at``, in UTC.

    Deliberate choices for the two hours a year where that is not one instant:
    - ambiguous (clocks go back, the hour happens twice): the first of the two
      (fold=0), so a meeting is never an hour later than people who were there
      the week before expect;
    - nonexistent (clocks go forward, the hour is skipped): moved forward by the gap
      (01:30 on the spring-forward night in London is 02:30 BST), because an earlier
      time would start the meeting before the time people planned for.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None))
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # Skipped: ``wall`` never shows on the clocks. Move it forward by the gap (the
    # offset after the change minus the one before) and take that real instant.
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    return (wall + abs(after - before)).replace(tzinfo=zone).astimezone(UTC)


def weekly(first_day: date, at: time, zone_name: str, *, count: int) -> list[datetime]:
    """``count`` weekly occurrences of ``at`` local time in the zone, from ``first_day``,
    as aware UTC datetimes; each keeps the local time whatever the offset that week."""
    if count < 1:
        raise ValueError("A series has at least one occurrence.")
    zone = get_zone(zone_name)
    return [to_utc(first_day + timedelta(weeks=n), at, zone) for n in range(count)]


def span(day: date, start: time, end: time, zone_name: str) -> tuple[datetime, datetime]:
    """Start and end instants of a meeting on ``day`` from ``start`` to ``end`` local time;
    an end at or before the start is on the next day (23:00 to 00:30)."""
    zone = get_zone(zone_name)
    end_day = day if end > start else day + timedelta(days=1)
    return to_utc(day, start, zone), to_utc(end_day, end, zone)


def local(instant: datetime, zone_name: str) -> datetime:
    """``instant`` on the clocks of the zone (UTC when the name is unknown)."""
    zone = get_zone(zone_name) if is_zone(zone_name) else ZoneInfo("UTC")
    return instant.astimezone(zone)
