"""Accountability: goals, daily check-ins, streaks and milestones.

The arithmetic (``streak``, ``weekly_streak``, ``milestones``...) is pure: dates in, dates
and counts out. The services take the member keyword-only and raise
``ValidationError({field: message})``; a goal's title goes through the write path
(``publishing.screen_goal_title``), a check-in's note through its cleaner only: the note is
private, so no policy reads it and no moderator is alerted by it (its author is offered
crisis resources, nothing more).

Who sees what (the rules are in ``moderation.permissions``; the readers here are the only way
anyone else sees any of it):

- a goal: its owner; the owner's active mentors when the goal says "my mentor"; the members
  of the goal's group, while both are members, when it says "a group";
- mood and cravings: the owner, and their active mentors if ``share_check_ins`` is on;
- a check-in's note: the owner, only, ever;
- the day count and milestones: whoever ``permissions.can_see_recovery_date`` allows, plus
  the owner's active mentors if ``mentor_sees_days`` is on; a milestone badge on the profile
  only when the member turned ``celebrate`` on.

"Today" is the member's own day: in their time zone (``User.quiet_timezone``, the only zone
a member sets) or else UTC. A new, later recovery date (a reset) notifies no one and keeps
no record of the old date.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.utils import timezone

from moderation import crisis, permissions, ratelimit

from . import publishing, quiet_hours
from .models import CheckIn, Goal, Membership, RecoveryProfile, SupportGroup, User

GOALS_MAX = 12
NOTE_MAX = 500
# How far back a member may still fill in a missed day, and how much history they see.
BACKFILL_DAYS = 30
HISTORY_DAYS = 30
# What a mentor sees of shared check-ins.
MENTOR_CHECK_IN_DAYS = 14
RATE_ACTION = "edit"  # the write bucket (settings.KINSHIP_RATE_LIMITS), keyed per member

RESET_MESSAGE = "Every day counts. Your new start is {start}."


# --- days in the member's own time zone -------------------------------------------------------


def member_zone(user: User) -> ZoneInfo:
    name = getattr(user, "quiet_timezone", "")
    return ZoneInfo(name) if quiet_hours.valid_timezone(name) else ZoneInfo("UTC")


def member_today(user: User, *, now: datetime | None = None) -> date:
    """The member's calendar day at ``now`` (aware), in their own zone."""
    return (now or timezone.now()).astimezone(member_zone(user)).date()


# --- streaks (pure) ---------------------------------------------------------------------------


def streak(dates: Iterable[date], today: date) -> int:
    """Consecutive days up to today on which the goal was met. A day not yet met today does
    not break it: the streak stays alive until the day is over, counted up to yesterday."""
    met = set(dates)
    day = today if today in met else today - timedelta(days=1)
    count = 0
    while day in met:
        count += 1
        day -= timedelta(days=1)
    return count


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def weekly_streak(dates: Iterable[date], today: date, target: int) -> int:
    """Consecutive weeks (Monday to Sunday) up to this one in which the goal was met on at
    least ``target`` days. This week counts once it reaches the target; until it ends, not
    reaching it yet does not break the streak."""
    per_week: dict[date, int] = {}
    for day in set(dates):
        if day <= today:
            per_week[week_start(day)] = per_week.get(week_start(day), 0) + 1
    week = week_start(today)
    if per_week.get(week, 0) < target:
        week -= timedelta(weeks=1)
    count = 0
    while per_week.get(week, 0) >= target:
        count += 1
        week -= timedelta(weeks=1)
    return count


def days_this_week(dates: Iterable[date], today: date) -> int:
    start = week_start(today)
    return sum(1 for day in set(dates) if start <= day <= today)


# --- milestones (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    label: str  # "90 days", "6 months", "1 year"
    day: date  # the day it is reached
    days: int  # days from the recovery date to ``day``


def add_months(start: date, months: int) -> date:
    """The same day of the month ``months`` later; past the end of a shorter month, its last
    day (29 February plus a year is 28 February, except in a leap year)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


_DAY_MILESTONES = ((1, "1 day"), (7, "1 week"), (30, "30 days"), (60, "60 days"), (90, "90 days"))


def milestones(start: date, until: date) -> list[Milestone]:
    """Every milestone from ``start`` up to and including ``until``, in order: 1 day, 1 week,
    30, 60 and 90 days, 6 months, 1 year, then every year."""
    found = [
        Milestone(label, start + timedelta(days=days), days)
        for days, label in _DAY_MILESTONES
        if start + timedelta(days=days) <= until
    ]
    half = add_months(start, 6)
    if half <= until:
        found.append(Milestone("6 months", half, (half - start).days))
    years = 1
    while (day := add_months(start, 12 * years)) <= until:
        found.append(Milestone(f"{years} year{'s' if years > 1 else ''}", day, (day - start).days))
        years += 1
    return found


def next_milestone(start: date, today: date) -> Milestone:
    """The first milestone after ``today``."""
    ahead = today + timedelta(days=400)  # a year's anniversary is never further away
    return next(m for m in milestones(start, ahead) if m.day > today)


def milestone_on(start: date, today: date) -> Milestone | None:
    """The milestone reached exactly ``today``, if any."""
    reached = milestones(start, today)
    return reached[-1] if reached and reached[-1].day == today else None


def latest_milestone(start: date, today: date) -> Milestone | None:
    reached = milestones(start, today)
    return reached[-1] if reached else None


@dataclass(frozen=True)
class RecoveryDays:
    start: date
    days: int
    today_milestone: Milestone | None
    latest: Milestone | None
    upcoming: Milestone

    @property
    def days_to_go(self) -> int:
        return (self.upcoming.day - self.start).days - self.days


def recovery_days(start: date | None, today: date) -> RecoveryDays | None:
    if start is None or start > today:
        return None
    return RecoveryDays(
        start=start,
        days=(today - start).days,
        today_milestone=milestone_on(start, today),
        latest=latest_milestone(start, today),
        upcoming=next_milestone(start, today),
    )


# --- who sees what ----------------------------------------------------------------------------


def recovery_profile(user: User) -> RecoveryProfile:
    """The member's preferences; an unsaved one with the defaults if they never chose."""
    profile = RecoveryProfile.objects.filter(user=user).first()
    return profile or RecoveryProfile(user=user)


def visible_goals(viewer, owner: User) -> list[Goal]:
    """The owner's active goals that ``viewer`` may see (``permissions.goals_visible_to``)."""
    goals = Goal.objects.filter(owner=owner, archived_at__isnull=True).select_related("group")
    return list(permissions.goals_visible_to(viewer, owner, goals).order_by("created_at", "pk"))


def milestone_badge(viewer, member: User, *, shares_group: bool) -> Milestone | None:
    """The latest milestone as a badge on the profile: only if the member chose to
    celebrate there, and only for those who may see their day count."""
    if member.recovery_date is None or not recovery_profile(member).celebrate:
        return None
    if not permissions.can_see_days(viewer, member, shares_group=shares_group):
        return None
    return latest_milestone(member.recovery_date, member_today(member))


@dataclass(frozen=True)
class MoodRow:
    """A check-in as a mentor may see it: no note, ever."""

    day: date
    mood: int | None
    cravings: int | None
    goals_met: int


def shared_check_ins(viewer, owner: User) -> list[MoodRow] | None:
    """Mood and cravings of the last days, for the owner's mentor when the owner shares
    them; None for anyone else. The note is not even read from the database."""
    if not permissions.can_see_check_ins(viewer, owner):
        return None
    since = member_today(owner) - timedelta(days=MENTOR_CHECK_IN_DAYS - 1)
    rows = (
        CheckIn.objects.filter(owner=owner, day__gte=since)
        .annotate(met=Count("goals_met"))
        .order_by("-day")
        .values("day", "mood", "cravings", "met")
    )
    return [
        MoodRow(day=row["day"], mood=row["mood"], cravings=row["cravings"], goals_met=row["met"])
        for row in rows
    ]


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalProgress:
    goal: Goal
    streak: int  # days for a daily goal, weeks for a weekly one
    met_today: bool
    this_week: int  # days met this week (weekly goals)

    @property
    def unit(self) -> str:
        if self.goal.is_weekly:
            return "week" if self.streak == 1 else "weeks"
        return "day" if self.streak == 1 else "days"


def goal_progress(goals: list[Goal], today: date) -> list[GoalProgress]:
    """Streaks for these goals (one owner's), in one query."""
    met: dict[int, set[date]] = {goal.pk: set() for goal in goals}
    rows = CheckIn.goals_met.through.objects.filter(goal__in=goals, checkin__day__lte=today)
    for goal_id, day in rows.values_list("goal_id", "checkin__day"):
        met[goal_id].add(day)
    return [
        GoalProgress(
            goal=goal,
            streak=(
                weekly_streak(met[goal.pk], today, goal.weekly_target)
                if goal.is_weekly
                else streak(met[goal.pk], today)
            ),
            met_today=today in met[goal.pk],
            this_week=days_this_week(met[goal.pk], today),
        )
        for goal in goals
    ]


def check_ins_of(owner: User, *, today: date, days: int = HISTORY_DAYS) -> list[CheckIn]:
    """The owner's own check-ins of the last ``days`` days, newest first, with their goals."""
    since = today - timedelta(days=days - 1)
    return list(
        CheckIn.objects.filter(owner=owner, day__gte=since, day__lte=today).prefetch_related(
            "goals_met"
        )
    )


# --- services ---------------------------------------------------------------------------------


def get_own_goal(owner: User, goal_id: int) -> Goal:
    """The member's own goal; anyone else's does not exist for them."""
    goal = Goal.objects.filter(pk=goal_id, owner=owner).first()
    if goal is None:
        raise Http404("No such goal.")
    return goal


def _goal_group(owner: User, visibility: str, group_id: int | None) -> SupportGroup | None:
    if visibility != Goal.Visibility.GROUP:
        return None
    membership = (
        Membership.objects.filter(user=owner, group_id=group_id).select_related("group").first()
        if group_id
        else None
    )
    if membership is None:
        raise ValidationError({"group": "Choose one of your groups to share this goal with."})
    return membership.group


def save_goal(
    *,
    owner: User,
    goal: Goal | None = None,
    title: str,
    cadence: str,
    weekly_target: int | None,
    visibility: str,
    group_id: int | None = None,
) -> Goal:
    """Add a goal, or change one of the member's own."""
    if goal is not None and goal.owner_id != owner.pk:
        raise Http404("No such goal.")
    ratelimit.hit(RATE_ACTION, key=f"goal:{owner.pk}")
    if cadence not in Goal.Cadence.values:
        raise ValidationError({"cadence": "Choose how often."})
    if cadence == Goal.Cadence.WEEKLY and not (weekly_target and 1 <= weekly_target <= 7):
        raise ValidationError({"weekly_target": "A weekly goal is for 1 to 7 days a week."})
    if visibility not in Goal.Visibility.values:
        raise ValidationError({"visibility": "Choose who can see this goal."})
    group = _goal_group(owner, visibility, group_id)
    title = publishing.screen_goal_title(title=title, group=group)
    if goal is None:
        active = Goal.objects.filter(owner=owner, archived_at__isnull=True).count()
        if active >= GOALS_MAX:
            raise ValidationError(
                {"title": f"You have {GOALS_MAX} goals. Archive one to add another."}
            )
        goal = Goal(owner=owner)
    goal.title, goal.cadence, goal.visibility, goal.group = title, cadence, visibility, group
    if cadence == Goal.Cadence.WEEKLY:
        goal.weekly_target = weekly_target
    goal.save()
    return goal


def set_goal_archived(*, owner: User, goal: Goal, archived: bool) -> Goal:
    """Archive a goal (it leaves the list and every page others see; its history stays the
    member's) or bring it back."""
    if goal.owner_id != owner.pk:
        raise Http404("No such goal.")
    if archived and goal.archived_at is None:
        goal.archived_at = timezone.now()
    elif not archived and goal.archived_at is not None:
        if Goal.objects.filter(owner=owner, archived_at__isnull=True).count() >= GOALS_MAX:
            raise ValidationError({"__all__": f"You have {GOALS_MAX} active goals already."})
        goal.archived_at = None
    goal.save(update_fields=["archived_at"])
    return goal


def record_check_in(
    *,
    owner: User,
    day: date,
    mood: int | None,
    cravings: int | None,
    note: str,
    goal_ids: Iterable[int],
    now: datetime | None = None,
) -> CheckIn:
    """Save the member's check-in for ``day`` (their own calendar day); a second one for the
    same day replaces the first. ``crisis_categories`` on the result says whether the note
    suggests risk, for the view to offer support; no one else is told."""
    today = member_today(owner, now=now)
    if day > today:
        raise ValidationError({"day": "A check-in is for today or a day before, not the future."})
    if day < today - timedelta(days=BACKFILL_DAYS):
        raise ValidationError(
            {"day": f"You can fill in a check-in for the last {BACKFILL_DAYS} days."}
        )
    if mood is not None and not 1 <= mood <= 5:
        raise ValidationError({"mood": "Mood is from 1 to 5."})
    if cravings is not None and not 0 <= cravings <= 4:
        raise ValidationError({"cravings": "Cravings are from 0 to 4."})
    note = publishing.clean_text(
        note, field="note", label="Your note", max_length=NOTE_MAX, required=False
    )
    wanted = set(goal_ids)
    goals = list(Goal.objects.filter(owner=owner, pk__in=wanted))
    if len(goals) != len(wanted):
        raise ValidationError({"goals_met": "Choose from your own goals."})
    ratelimit.hit(RATE_ACTION, key=f"check-in:{owner.pk}")
    with transaction.atomic():
        check_in, created = CheckIn.objects.select_for_update().get_or_create(
            owner=owner,
            day=day,
            defaults={"mood": mood, "cravings": cravings, "note": note},
        )
        if not created:
            check_in.mood, check_in.cravings, check_in.note = mood, cravings, note
            check_in.updated_at = timezone.now()
            check_in.save(update_fields=["mood", "cravings", "note", "updated_at"])
        check_in.goals_met.set(goals)
    check_in.crisis_categories = crisis.detect(note) if note else frozenset()
    return check_in


def delete_check_in(*, owner: User, day: date) -> bool:
    """Delete the member's check-in for ``day``; whether there was one."""
    deleted, _ = CheckIn.objects.filter(owner=owner, day=day).delete()
    return bool(deleted)


def set_recovery_date(
    *,
    user: User,
    recovery_date: date | None,
    visibility: str,
    celebrate: bool,
    mentor_sees_days: bool,
    share_check_ins: bool,
) -> bool:
    """Save the member's recovery date and who sees what of it. Returns whether this was a
    new start (a later date than before): nobody is told and nothing keeps the old date."""
    today = member_today(user)
    if recovery_date is not None and not date(1900, 1, 1) <= recovery_date <= today:
        raise ValidationError({"recovery_date": "A recovery date is between 1900 and today."})
    if visibility not in User.Visibility.values:
        raise ValidationError({"recovery_date_visibility": "Choose who can see your day count."})
    reset = (
        user.recovery_date is not None
        and recovery_date is not None
        and recovery_date > user.recovery_date
    )
    user.recovery_date, user.recovery_date_visibility = recovery_date, visibility
    with transaction.atomic():
        user.save(update_fields=["recovery_date", "recovery_date_visibility"])
        RecoveryProfile.objects.update_or_create(
            user=user,
            defaults={
                "celebrate": celebrate,
                "mentor_sees_days": mentor_sees_days,
                "share_check_ins": share_check_ins,
            },
        )
    return reset


def shared_goal_progress(viewer, owner: User) -> list[GoalProgress]:
    """The owner's goals another member may see, with their streaks, for the profile page
    (the owner has their recovery page for their own)."""
    if viewer.is_authenticated and viewer.pk == owner.pk:
        return []
    return goal_progress(visible_goals(viewer, owner), member_today(owner))
