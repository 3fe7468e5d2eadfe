"""forum.accountability: streaks and milestones (pure), the services' refusals, and who sees
what of a member's goals, check-ins and days (the visibility matrix; notes never leak)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse

from forum import accountability, memberships, selectors
from forum.accountability import (
    add_months,
    milestone_on,
    milestones,
    next_milestone,
    recovery_days,
    streak,
    weekly_streak,
)
from forum.models import CheckIn, Goal, Mentorship, Notification, RecoveryProfile, User
from moderation import permissions
from moderation.models import ModerationLogEntry, QueueItem
from tests.conftest import join, make_group, make_user

D = date(2025, 6, 18)  # a Wednesday


def days(*offsets: int) -> set[date]:
    return {D - timedelta(days=n) for n in offsets}


# --- daily streaks ----------------------------------------------------------------------------


def test_streak_counts_consecutive_days_up_to_today():
    assert streak(days(0, 1, 2), D) == 3


def test_streak_is_alive_until_the_day_ends():
    # Nothing yet today: yesterday's run still counts.
    assert streak(days(1, 2, 3), D) == 3


def test_a_gap_ends_the_streak():
    assert streak(days(0, 1, 3, 4, 5), D) == 2
    assert streak(days(2, 3, 4), D) == 0


def test_no_days_no_streak_and_future_days_do_not_count():
    assert streak(set(), D) == 0
    assert streak({D + timedelta(days=1)}, D) == 0


# --- weekly streaks ---------------------------------------------------------------------------


def test_weekly_streak_counts_weeks_that_reach_the_target():
    # This week (Mon 16 June..) has 3; the two weeks before have 3 and 4.
    met = days(0, 1, 2) | days(7, 8, 9) | days(14, 15, 16, 17)
    assert weekly_streak(met, D, 3) == 3


def test_this_week_short_of_the_target_does_not_break_it_yet():
    met = days(0) | days(7, 8, 9) | days(14, 15, 16)
    assert weekly_streak(met, D, 3) == 2


def test_a_past_week_short_of_the_target_ends_it():
    met = days(0, 1, 2) | days(7) | days(14, 15, 16)
    assert weekly_streak(met, D, 3) == 1


def test_weeks_run_monday_to_sunday():
    sunday, monday = date(2025, 6, 15), date(2025, 6, 16)
    assert accountability.week_start(sunday) == date(2025, 6, 9)
    assert accountability.days_this_week({sunday, monday}, monday) == 1


# --- the member's own day ---------------------------------------------------------------------


def test_today_is_the_members_day_in_their_zone_across_dst():
    member = User(handle="river", quiet_timezone="America/New_York")
    # The night clocks go forward: 04:30 UTC is still 23:30 on the 8th in New York.
    assert accountability.member_today(member, now=datetime(2025, 3, 9, 4, 30, tzinfo=UTC)) == (
        date(2025, 3, 8)
    )
    # The night they go back: 04:30 UTC is 00:30 (EDT) on 2 November.
    assert accountability.member_today(member, now=datetime(2025, 11, 2, 4, 30, tzinfo=UTC)) == (
        date(2025, 11, 2)
    )
    ahead = User(handle="isle", quiet_timezone="Pacific/Kiritimati")
    assert accountability.member_today(ahead, now=datetime(2025, 1, 1, 10, tzinfo=UTC)) == date(
        2025, 1, 2
    )


def test_without_a_zone_the_day_is_utcs():
    assert accountability.member_today(
        User(handle="river"), now=datetime(2025, 1, 1, 23, 59, tzinfo=UTC)
    ) == date(2025, 1, 1)
    bogus = User(handle="river", quiet_timezone="Mars/Olympus")
    assert accountability.member_zone(bogus).key == "UTC"


# --- milestones -------------------------------------------------------------------------------


def test_milestones_in_order():
    found = milestones(date(2024, 1, 1), date(2026, 1, 1))
    assert [(m.label, m.day) for m in found] == [
        ("1 day", date(2024, 1, 2)),
        ("1 week", date(2024, 1, 8)),
        ("30 days", date(2024, 1, 31)),
        ("60 days", date(2024, 3, 1)),  # a leap February
        ("90 days", date(2024, 3, 31)),
        ("6 months", date(2024, 7, 1)),
        ("1 year", date(2025, 1, 1)),
        ("2 years", date(2026, 1, 1)),
    ]
    assert found[-2].days == 366


def test_a_leap_day_start_has_its_anniversary_on_28_february():
    start = date(2024, 2, 29)
    years = [m for m in milestones(start, date(2028, 3, 1)) if "year" in m.label]
    assert [m.day for m in years] == [
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert add_months(start, 6) == date(2024, 8, 29)


def test_six_months_from_the_31st_is_the_end_of_a_shorter_month():
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2022, 8, 31), 6) == date(2023, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)


def test_milestone_today_and_the_next_one():
    start = date(2025, 1, 1)
    assert milestone_on(start, date(2025, 4, 1)).label == "90 days"
    assert milestone_on(start, date(2025, 4, 2)) is None
    assert next_milestone(start, date(2025, 4, 1)).label == "6 months"
    assert next_milestone(start, start).label == "1 day"
    assert next_milestone(start, date(2031, 5, 1)).day == date(2032, 1, 1)


def test_recovery_days_summary():
    summary = recovery_days(date(2025, 1, 1), date(2025, 4, 1))
    assert (summary.days, summary.today_milestone.label, summary.upcoming.label) == (
        90,
        "90 days",
        "6 months",
    )
    assert summary.days_to_go == (date(2025, 7, 1) - date(2025, 4, 1)).days
    assert recovery_days(None, D) is None
    assert recovery_days(D + timedelta(days=1), D) is None


# --- services: goals --------------------------------------------------------------------------


def goal_of(owner, **fields) -> Goal:
    values = {"title": "Call my mentor", "cadence": "daily", "weekly_target": None}
    values |= {"visibility": "only_me"} | fields
    return accountability.save_goal(owner=owner, **values)


def field_of(excinfo) -> list[str]:
    return list(excinfo.value.message_dict)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"title": "call\u202emom"}, "title"),
        ({"title": "nul\x00"}, "title"),
        ({"cadence": "hourly"}, "cadence"),
        ({"cadence": "weekly", "weekly_target": 0}, "weekly_target"),
        ({"cadence": "weekly", "weekly_target": 8}, "weekly_target"),
        ({"cadence": "weekly", "weekly_target": None}, "weekly_target"),
        ({"visibility": "everyone"}, "visibility"),
        ({"visibility": "group"}, "group"),
    ],
)
def test_save_goal_refuses_bad_input(member, fields, field):
    with pytest.raises(ValidationError) as excinfo:
        goal_of(member, **fields)
    assert field_of(excinfo) == [field]
    assert not Goal.objects.exists()


@pytest.mark.django_db
def test_a_goal_is_shared_only_with_one_of_the_members_own_groups(member, public_group):
    with pytest.raises(ValidationError) as excinfo:
        goal_of(member, visibility="group", group_id=public_group.pk)
    assert field_of(excinfo) == ["group"]
    join(member, public_group)
    goal = goal_of(member, visibility="group", group_id=public_group.pk)
    assert goal.group == public_group
    # Back to "only me": the group is forgotten.
    goal = accountability.save_goal(
        owner=member,
        goal=goal,
        title="Call my mentor",
        cadence="weekly",
        weekly_target=3,
        visibility="only_me",
        group_id=public_group.pk,
    )
    assert (goal.group, goal.cadence, goal.weekly_target) == (None, "weekly", 3)


@pytest.mark.django_db
def test_someone_elses_goal_does_not_exist(member, other_member):
    goal = goal_of(other_member)
    with pytest.raises(Http404):
        accountability.get_own_goal(member, goal.pk)
    with pytest.raises(Http404):
        accountability.save_goal(
            owner=member,
            goal=goal,
            title="Mine now",
            cadence="daily",
            weekly_target=None,
            visibility="only_me",
        )
    with pytest.raises(Http404):
        accountability.set_goal_archived(owner=member, goal=goal, archived=True)
    assert Goal.objects.get(pk=goal.pk).title == "Call my mentor"


@pytest.mark.django_db
def test_goals_are_limited_and_archiving_makes_room(member, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    goals = [goal_of(member, title=f"Goal {n}") for n in range(accountability.GOALS_MAX)]
    with pytest.raises(ValidationError) as excinfo:
        goal_of(member, title="One more")
    assert field_of(excinfo) == ["title"]
    accountability.set_goal_archived(owner=member, goal=goals[0], archived=True)
    goal_of(member, title="One more")
    with pytest.raises(ValidationError):
        accountability.set_goal_archived(owner=member, goal=goals[0], archived=False)


# --- services: check-ins ----------------------------------------------------------------------

NOW = datetime(2025, 6, 18, 12, tzinfo=UTC)


def check_in(owner, *, day=D, goals=(), now=NOW, **fields) -> CheckIn:
    values = {"mood": 3, "cravings": 1, "note": ""} | fields
    return accountability.record_check_in(
        owner=owner, day=day, goal_ids=[g.pk for g in goals], now=now, **values
    )


@pytest.mark.django_db
def test_a_second_check_in_the_same_day_updates_the_first(member):
    first_goal, second_goal = goal_of(member), goal_of(member, title="Meeting")
    check_in(member, goals=[first_goal], note="first")
    again = check_in(member, goals=[second_goal], mood=5, cravings=0, note="second")
    assert CheckIn.objects.filter(owner=member).count() == 1
    assert (again.mood, again.cravings, again.note) == (5, 0, "second")
    assert list(again.goals_met.all()) == [second_goal]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"day": D + timedelta(days=1)}, "day"),
        ({"day": D - timedelta(days=accountability.BACKFILL_DAYS + 1)}, "day"),
        ({"mood": 0}, "mood"),
        ({"mood": 6}, "mood"),
        ({"cravings": -1}, "cravings"),
        ({"cravings": 5}, "cravings"),
        ({"note": "n" * (accountability.NOTE_MAX + 1)}, "note"),
        ({"note": "bad\x07bell"}, "note"),
    ],
)
def test_record_check_in_refuses_bad_input(member, fields, field):
    with pytest.raises(ValidationError) as excinfo:
        check_in(member, **fields)
    assert field_of(excinfo) == [field]
    assert not CheckIn.objects.exists()


@pytest.mark.django_db
def test_a_check_in_takes_only_the_members_own_goals(member, other_member):
    theirs = goal_of(other_member)
    with pytest.raises(ValidationError) as excinfo:
        check_in(member, goals=[theirs])
    assert field_of(excinfo) == ["goals_met"]


@pytest.mark.django_db
def test_the_day_follows_the_members_zone_near_midnight(member):
    member.quiet_timezone = "Pacific/Auckland"
    # 11:30 UTC on 18 June is 23:30 on the 18th in Auckland; 12:30 UTC is already the 19th.
    check_in(member, day=date(2025, 6, 18), now=datetime(2025, 6, 18, 11, 30, tzinfo=UTC))
    with pytest.raises(ValidationError):
        check_in(member, day=date(2025, 6, 19), now=datetime(2025, 6, 18, 11, 30, tzinfo=UTC))
    check_in(member, day=date(2025, 6, 19), now=datetime(2025, 6, 18, 12, 30, tzinfo=UTC))


@pytest.mark.django_db
def test_streaks_from_check_ins_across_a_dst_change(member, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    member.quiet_timezone = "Europe/London"
    daily = goal_of(member)
    weekly = goal_of(member, title="Meeting", cadence="weekly", weekly_target=2)
    # 23:30 local each night from 27 March to 1 April 2025 (the clocks went forward on the 30th).
    for day in range(27, 32):
        local_night = datetime(2025, 3, day, 22, 30, tzinfo=UTC)  # 22:30 GMT / 23:30 BST
        check_in(member, day=date(2025, 3, day), goals=[daily, weekly], now=local_night)
    today = date(2025, 3, 31)
    progress = {p.goal.pk: p for p in accountability.goal_progress([daily, weekly], today)}
    assert (progress[daily.pk].streak, progress[daily.pk].met_today) == (5, True)
    # Week of 24 March: 4 days (27-30); week of 31 March: 1 so far, not yet 2.
    assert (progress[weekly.pk].streak, progress[weekly.pk].this_week) == (1, 1)


@pytest.mark.django_db
def test_a_note_with_crisis_words_offers_support_and_tells_no_one(member):
    saved = check_in(member, note="Tonight I want to kill myself.")
    assert saved.crisis_categories
    assert not QueueItem.objects.exists()
    assert not Notification.objects.exists()
    assert not check_in(member, note="A calm day.").crisis_categories


@pytest.mark.django_db
def test_delete_check_in_only_the_members_own(member, other_member):
    check_in(other_member)
    assert accountability.delete_check_in(owner=member, day=D) is False
    assert CheckIn.objects.filter(owner=other_member).exists()
    check_in(member)
    assert accountability.delete_check_in(owner=member, day=D) is True


# --- services: the recovery date and a reset ---------------------------------------------------


def set_date(user, when, **choices) -> bool:
    values = {"visibility": "only_me", "celebrate": False, "mentor_sees_days": False}
    values |= {"share_check_ins": False} | choices
    return accountability.set_recovery_date(user=user, recovery_date=when, **values)


@pytest.mark.django_db
def test_a_reset_is_private_and_keeps_no_trace(member):
    today = accountability.member_today(member)
    assert set_date(member, today - timedelta(days=400), visibility="everyone") is False
    assert set_date(member, today - timedelta(days=3), visibility="everyone") is True
    member.refresh_from_db()
    assert member.recovery_date == today - timedelta(days=3)
    assert member.recovery_date_visibility == "everyone"
    assert not Notification.objects.exists()
    assert not ModerationLogEntry.objects.exists()
    # An earlier date is a correction, not a new start.
    assert set_date(member, today - timedelta(days=10)) is False


@pytest.mark.django_db
def test_set_recovery_date_refuses_the_future_and_unknown_choices(member):
    tomorrow = accountability.member_today(member) + timedelta(days=1)
    with pytest.raises(ValidationError) as excinfo:
        set_date(member, tomorrow)
    assert field_of(excinfo) == ["recovery_date"]
    with pytest.raises(ValidationError) as excinfo:
        set_date(member, None, visibility="mentor-and-friends")
    assert field_of(excinfo) == ["recovery_date_visibility"]
    assert not RecoveryProfile.objects.exists()


@pytest.mark.django_db
def test_deleting_an_account_deletes_its_accountability_rows(member, public_group):
    join(member, public_group)
    goal = goal_of(member, visibility="group", group_id=public_group.pk)
    check_in(member, goals=[goal], note="mine")
    set_date(member, date(2024, 1, 1), celebrate=True)
    member.delete()
    assert not Goal.objects.exists()
    assert not CheckIn.objects.exists()
    assert not RecoveryProfile.objects.exists()
    assert not CheckIn.goals_met.through.objects.exists()


# --- who sees what: the matrix ----------------------------------------------------------------

NOTE = "my-secret-note-7f3a"
VIEWERS = ("owner", "same_group", "other_member", "mentor", "ended_mentor", "outsider")


@pytest.fixture
def circle(db):
    """owner belongs to two groups: G (with same_group) and H (with other_member); mentor
    mentors owner (active), ended_mentor did once; outsider shares nothing."""
    people = {name: make_user(name.replace("_", "-")) for name in VIEWERS}
    g, h = make_group("goal-group"), make_group("other-group")
    for name, groups in (("owner", (g, h)), ("same_group", (g,)), ("other_member", (h,))):
        for group in groups:
            join(people[name], group)
    Mentorship.objects.create(
        mentor=people["mentor"], mentee=people["owner"], group=h, state="active"
    )
    Mentorship.objects.create(
        mentor=people["ended_mentor"], mentee=people["owner"], group=h, state="ended"
    )
    people["g"], people["h"] = g, h
    return people


def shared_goals(circle) -> dict[str, Goal]:
    owner = circle["owner"]
    return {
        "only_me": goal_of(owner, title="Private goal"),
        "mentor": goal_of(owner, title="Mentor goal", visibility="mentor"),
        "group": goal_of(owner, title="Group goal", visibility="group", group_id=circle["g"].pk),
    }


EXPECTED = {
    "only_me": {"owner"},
    "mentor": {"owner", "mentor"},
    "group": {"owner", "same_group"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", list(EXPECTED))
def test_visible_goals_matrix(circle, visibility, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    goal = shared_goals(circle)[visibility]
    seen_by = {
        name
        for name in VIEWERS
        if goal in accountability.visible_goals(circle[name], circle["owner"])
    }
    assert seen_by == EXPECTED[visibility]
    assert accountability.visible_goals(AnonymousUser(), circle["owner"]) == []


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", list(EXPECTED))
def test_the_profile_shows_goals_per_the_matrix(client, circle, visibility, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    title = shared_goals(circle)[visibility].title
    url = reverse("profile", kwargs={"handle": circle["owner"].handle})
    for name in VIEWERS:
        if name == "owner":
            continue  # the owner has their recovery page
        client.force_login(circle[name])
        shown = title in client.get(url).content.decode()
        assert shown == (name in EXPECTED[visibility]), f"{visibility} goal for {name}"
    client.logout()
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_leaving_the_group_ends_a_group_goals_sharing(circle):
    goal = goal_of(circle["owner"], visibility="group", group_id=circle["g"].pk)
    memberships.leave_group(user=circle["owner"], group=circle["g"])
    assert goal not in accountability.visible_goals(circle["same_group"], circle["owner"])


@pytest.mark.django_db
def test_an_archived_goal_is_seen_by_no_one_else(circle):
    goal = goal_of(circle["owner"], visibility="mentor")
    accountability.set_goal_archived(owner=circle["owner"], goal=goal, archived=True)
    assert accountability.visible_goals(circle["mentor"], circle["owner"]) == []


@pytest.mark.django_db
def test_is_mentor_of_means_an_active_mentorship_only(circle):
    assert permissions.is_mentor_of(circle["mentor"], circle["owner"])
    assert not permissions.is_mentor_of(circle["ended_mentor"], circle["owner"])
    assert not permissions.is_mentor_of(circle["owner"], circle["mentor"])


@pytest.mark.django_db
def test_mood_reaches_the_mentor_only_when_shared_and_never_the_note(circle):
    owner = circle["owner"]
    accountability.record_check_in(
        owner=owner,
        day=accountability.member_today(owner),
        mood=2,
        cravings=3,
        note=NOTE,
        goal_ids=[],
    )
    assert accountability.shared_check_ins(circle["mentor"], owner) is None
    set_date(owner, None, share_check_ins=True)
    rows = accountability.shared_check_ins(circle["mentor"], owner)
    assert [(r.mood, r.cravings) for r in rows] == [(2, 3)]
    assert not hasattr(rows[0], "note")
    for name in ("same_group", "other_member", "ended_mentor", "outsider"):
        assert accountability.shared_check_ins(circle[name], owner) is None


@pytest.mark.django_db
def test_day_count_and_badge_follow_the_members_choices(circle):
    owner = circle["owner"]
    start = accountability.member_today(owner) - timedelta(days=95)

    def can_see(name):
        viewer = circle[name]
        shares = selectors.shares_a_group(viewer, owner)
        return permissions.can_see_days(viewer, owner, shares_group=shares), (
            accountability.milestone_badge(viewer, owner, shares_group=shares)
        )

    set_date(owner, start)
    assert {n for n in VIEWERS if can_see(n)[0]} == {"owner"}
    set_date(owner, start, mentor_sees_days=True)
    assert {n for n in VIEWERS if can_see(n)[0]} == {"owner", "mentor"}
    assert can_see("mentor")[1] is None  # no badge unless the member celebrates
    set_date(owner, start, visibility="groups", celebrate=True)
    assert {n for n in VIEWERS if can_see(n)[0]} == {"owner", "same_group", "other_member"}
    assert can_see("same_group")[1].label == "90 days"
    assert can_see("outsider") == (False, None)


@pytest.mark.django_db
def test_a_check_in_note_appears_on_no_page_anyone_else_can_open(client, circle, settings):
    """The member shares everything there is to share; the note still reaches nobody."""
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    owner = circle["owner"]
    goals = shared_goals(circle)
    today = accountability.member_today(owner)
    set_date(
        owner,
        today - timedelta(days=30),
        visibility="everyone",
        celebrate=True,
        mentor_sees_days=True,
        share_check_ins=True,
    )
    for back in range(3):
        accountability.record_check_in(
            owner=owner,
            day=today - timedelta(days=back),
            mood=4,
            cravings=1,
            note=f"{NOTE} day {back}",
            goal_ids=[g.pk for g in goals.values()],
        )
    mentorship = Mentorship.objects.get(mentor=circle["mentor"])
    pages = [
        reverse("profile", kwargs={"handle": owner.handle}),
        reverse("mentorship_goals", kwargs={"mentorship_id": mentorship.pk}),
        reverse("recovery"),
        reverse("check_in_history"),
        f"{reverse('recovery')}?day={today.isoformat()}",
        reverse("home"),
        reverse("notifications"),
        reverse("group", kwargs={"slug": circle["g"].slug}),
    ]
    client.force_login(owner)
    assert NOTE in client.get(reverse("check_in_history")).content.decode()
    for name in VIEWERS:
        if name == "owner":
            continue
        client.force_login(circle[name])
        for url in pages:
            body = client.get(url).content.decode()
            assert NOTE not in body, f"{url} shows the note to {name}"
    client.force_login(circle["mentor"])
    body = client.get(pages[1]).content.decode()
    assert "Mentor goal" in body
    assert "4 of 5" in body  # mood is shared with the mentor; the note is not
