"""Attendance of live sessions: a member's own history, proofs they hand out, leaders' counts.

forum.live records attendance (SessionParticipant: seconds present, an open span while a
socket is in the room). A session counts as attended when the member was present for at
least one minute (MIN_ATTENDED_MINUTES): opening the page for a few seconds is not
attendance. A member's history is theirs: it keeps sessions of groups they have left,
and the minutes of a session a leader removed them from (they were there that long).

A proof is a snapshot of only the columns the member chose (the date always; the group,
the session's title and the minutes if they say so; never the topic, never anyone else),
verifiable by whoever holds its link until the member revokes it. Leaders see counts,
never names.
"""

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from .live import attended_minutes
from .models import AttendanceProof, LiveSession, SessionParticipant, User

MIN_ATTENDED_MINUTES = 1
PROOF_MAX_YEARS = 5
# Enough for every court, employer and programme at once; revoking one frees a place.
PROOFS_MAX = 50
# No place on Earth is further ahead of UTC than this: a session's local date is never later.
_LATEST_UTC_OFFSET = timedelta(hours=14)


@dataclass(frozen=True)
class AttendedSession:
    """One session a member attended, dated in the zone it was scheduled in."""

    session_id: int
    date: date
    starts_at: datetime  # aware, in ``time_zone``
    time_zone: str
    group_name: str
    title: str
    format: str
    minutes: int


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def long_date(day: date) -> str:
    """ "3 March 2025": unambiguous to a reader in any country."""
    return f"{day.day} {day:%B %Y}"


def latest_today() -> date:
    """Today's date where the day is furthest along: the last day a proof may cover."""
    return (timezone.now() + _LATEST_UTC_OFFSET).date()


def attendance_of(
    user: User, *, date_from: date | None = None, date_to: date | None = None
) -> list[AttendedSession]:
    """The sessions ``user`` attended (present at least a minute), newest first.

    ``date_from`` and ``date_to`` (inclusive) compare with each session's date in its
    own zone; the database narrows by a day either side, Python decides exactly.
    """
    now = timezone.now()
    participations = (
        SessionParticipant.objects.filter(user=user)
        .filter(Q(seconds_attended__gte=MIN_ATTENDED_MINUTES * 60) | Q(present_since__isnull=False))
        .select_related("session__group")
        .only(
            "seconds_attended",
            "present_since",
            "session",
            "session__group",
            "session__title",
            "session__format",
            "session__starts_at",
            "session__time_zone",
            "session__group__name",
        )
        .order_by("-session__starts_at", "-session__pk")
    )
    if date_from is not None and date_from > date.min + timedelta(days=1):
        start = datetime.combine(date_from - timedelta(days=1), time.min, tzinfo=UTC)
        participations = participations.filter(session__starts_at__gte=start)
    if date_to is not None and date_to < date.max - timedelta(days=2):
        end = datetime.combine(date_to + timedelta(days=2), time.min, tzinfo=UTC)
        participations = participations.filter(session__starts_at__lt=end)
    rows = []
    for participant in participations:
        minutes = attended_minutes(participant, now=now)
        if minutes < MIN_ATTENDED_MINUTES:
            continue
        session = participant.session
        starts_at = session.starts_at.astimezone(_zone(session.time_zone))
        day = starts_at.date()
        if (date_from is not None and day < date_from) or (date_to is not None and day > date_to):
            continue
        rows.append(
            AttendedSession(
                session_id=session.pk,
                date=day,
                starts_at=starts_at,
                time_zone=session.time_zone,
                group_name=session.group.name,
                title=session.title,
                format=session.get_format_display(),
                minutes=minutes,
            )
        )
    return rows


def _years_before(day: date, years: int) -> date:
    if day.year - years < date.min.year:
        return date.min
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _check_range(date_from: date | None, date_to: date | None) -> None:
    errors: dict[str, str] = {}
    if date_from is None:
        errors["date_from"] = "Enter the first day the proof covers."
    if date_to is None:
        errors["date_to"] = "Enter the last day the proof covers."
    if errors:
        raise ValidationError(errors)
    if date_to < date_from:
        raise ValidationError({"date_to": "The last day is before the first day."})
    if date_to > latest_today():
        raise ValidationError({"date_to": "The last day cannot be in the future."})
    if date_from < _years_before(date_to, PROOF_MAX_YEARS):
        raise ValidationError(
            {"date_from": f"A proof covers at most {PROOF_MAX_YEARS} years: choose a later day."}
        )


def create_proof(
    *,
    user: User,
    date_from: date | None,
    date_to: date | None,
    shows_handle: bool,
    shows_group: bool,
    shows_title: bool,
    shows_duration: bool,
) -> AttendanceProof:
    """A proof of the sessions ``user`` attended between the two days (inclusive).

    Its entries hold the date and only the columns chosen, oldest first; later changes
    to a session (a new title, a deleted group) do not change a proof already given.
    """
    _check_range(date_from, date_to)
    if AttendanceProof.objects.filter(user=user).count() >= PROOFS_MAX:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"You have {PROOFS_MAX} proofs: revoke one you no longer need."}
        )
    attended = attendance_of(user, date_from=date_from, date_to=date_to)
    if not attended:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: f"You attended no sessions between {long_date(date_from)} "
                f"and {long_date(date_to)}. Your history lists the days you did."
            }
        )
    entries = []
    for row in reversed(attended):
        entry: dict[str, object] = {"date": row.date.isoformat()}
        if shows_group:
            entry["group"] = row.group_name
        if shows_title:
            entry["title"] = row.title
        if shows_duration:
            entry["minutes"] = row.minutes
        entries.append(entry)
    return AttendanceProof.objects.create(
        user=user,
        date_from=date_from,
        date_to=date_to,
        shows_handle=shows_handle,
        shows_group=shows_group,
        shows_title=shows_title,
        shows_duration=shows_duration,
        entries=entries,
    )


def revoke_proof(*, user: User, proof: AttendanceProof) -> None:
    """Withdraw a proof: its link answers "withdrawn" from now on. Only its owner may;
    to anyone else it does not exist."""
    if proof.user_id != user.pk:
        raise Http404("No such proof.")
    proof.delete()


def session_counts(session: LiveSession) -> dict[str, int | None]:
    """What a session's leaders see: how many attended (a minute or more), how many of
    them came to the group for the first time, and the median minutes. No names."""
    now = timezone.now()
    minutes = []
    first_time = 0
    for participant in SessionParticipant.objects.filter(session=session).only(
        "seconds_attended", "present_since", "first_session"
    ):
        attended = attended_minutes(participant, now=now)
        if attended < MIN_ATTENDED_MINUTES:
            continue
        minutes.append(attended)
        first_time += participant.first_session
    return {
        "attended": len(minutes),
        "first_time": first_time,
        "median_minutes": round(statistics.median(minutes)) if minutes else None,
    }
