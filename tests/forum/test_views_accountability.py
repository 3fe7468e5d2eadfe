"""The recovery pages: the check-in form, goals, the recovery date, history, the mentor's view.
Bad input comes back as field errors on the page, never a 500."""

from datetime import timedelta

import pytest
from django.urls import reverse

from forum import accountability
from forum.models import CheckIn, Goal, Mentorship, Notification
from tests.conftest import join


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


def today_of(user):
    return accountability.member_today(user)


def make_goal(owner, title="Call my mentor", **fields) -> Goal:
    return Goal.objects.create(owner=owner, title=title, **fields)


def errors_of(response, form: str) -> dict:
    return response.context[form].errors


# --- the page ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_recovery_pages_need_a_login(client):
    for name in ("recovery", "check_in_history", "goal_new"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.django_db
def test_the_page_celebrates_a_milestone_today(signed_in, member):
    member.recovery_date = today_of(member) - timedelta(days=90)
    member.save()
    body = signed_in.get(reverse("recovery")).content.decode()
    assert "90 days today — well done." in body
    assert "Next: 6 months" in body


@pytest.mark.django_db
def test_the_page_without_a_date_invites_one_gently(signed_in):
    body = signed_in.get(reverse("recovery")).content.decode()
    assert "Set a recovery date below" in body


@pytest.mark.django_db
def test_the_page_shows_streaks(signed_in, member):
    goal = make_goal(member)
    today = today_of(member)
    for back in range(1, 4):  # yesterday and the two days before; nothing yet today
        CheckIn.objects.create(owner=member, day=today - timedelta(days=back)).goals_met.add(goal)
    body = signed_in.get(reverse("recovery")).content.decode()
    assert "Not yet today · 3 days in a row" in body


# --- check-ins --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_checking_in_twice_the_same_day_updates_it(signed_in, member):
    goal = make_goal(member)
    first = {"mood": "2", "cravings": "3", "note": "Rough morning.", "goals_met": [goal.pk]}
    response = signed_in.post(reverse("check_in"), first)
    assert response.status_code == 302
    response = signed_in.post(reverse("check_in"), {"mood": "4", "cravings": "", "note": "Better."})
    assert response.status_code == 302
    saved = CheckIn.objects.get(owner=member)
    assert (saved.day, saved.mood, saved.cravings, saved.note) == (
        today_of(member),
        4,
        None,
        "Better.",
    )
    assert not saved.goals_met.exists()
    page = signed_in.get(reverse("recovery")).content.decode()
    assert "Saving again changes it." in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"day": "+1"}, "day", "not the future"),
        ({"day": "-40"}, "day", "last 30 days"),
        ({"day": "yesterday-ish"}, "day", "YYYY-MM-DD"),
        ({"mood": "9"}, "mood", "Choose from the list"),
        ({"mood": "abc"}, "mood", "Choose from the list"),
        ({"cravings": "-1"}, "cravings", "Choose from the list"),
        ({"goals_met": ["999999"]}, "goals_met", "your own goals"),
        ({"note": "x" * 501}, "note", "the limit is 500"),
        ({"note": "bell\x07ring"}, "note", "control characters"),
    ],
)
def test_bad_check_in_input_shows_field_errors(signed_in, member, data, field, message):
    if data.get("day", "").startswith(("+", "-")):
        data = {"day": (today_of(member) + timedelta(days=int(data["day"]))).isoformat()}
    response = signed_in.post(reverse("check_in"), {"mood": "3", **data})
    assert response.status_code == 200
    errors = errors_of(response, "check_in_form")
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not CheckIn.objects.exists()


@pytest.mark.django_db
def test_someone_elses_goal_cannot_be_ticked(signed_in, other_member):
    theirs = make_goal(other_member)
    response = signed_in.post(reverse("check_in"), {"goals_met": [theirs.pk]})
    assert "goals_met" in errors_of(response, "check_in_form")
    assert not CheckIn.objects.exists()


@pytest.mark.django_db
def test_a_missed_day_can_be_filled_in_and_edited_from_history(signed_in, member):
    yesterday = today_of(member) - timedelta(days=1)
    signed_in.post(reverse("check_in"), {"day": yesterday.isoformat(), "note": "Late entry"})
    assert CheckIn.objects.get(owner=member).day == yesterday
    page = signed_in.get(reverse("recovery"), {"day": yesterday.isoformat()})
    assert page.context["check_in_form"].initial["note"] == "Late entry"
    # A day outside the window, or nonsense, falls back to today.
    page = signed_in.get(reverse("recovery"), {"day": "2001-01-01"})
    assert page.context["check_in_form"].initial["day"] == today_of(member)


@pytest.mark.django_db
def test_a_note_with_crisis_words_shows_support_to_its_author(signed_in):
    response = signed_in.post(reverse("check_in"), {"note": "I want to kill myself."}, follow=True)
    assert response.context["support_resources"]
    assert "Support is here if you want it" in response.content.decode()
    assert not Notification.objects.exists()
    # Once: the next view is the plain page.
    assert signed_in.get(reverse("recovery")).context["support_resources"] is None


@pytest.mark.django_db
def test_history_is_the_last_30_days_and_a_check_in_can_be_deleted(signed_in, member):
    today = today_of(member)
    CheckIn.objects.create(owner=member, day=today, note="today's words")
    CheckIn.objects.create(owner=member, day=today - timedelta(days=30), note="too old")
    body = signed_in.get(reverse("check_in_history")).content.decode()
    assert "today&#x27;s words" in body and "too old" not in body
    url = reverse("check_in_delete", kwargs={"day": today.isoformat()})
    assert signed_in.post(url).status_code == 302
    assert not CheckIn.objects.filter(day=today).exists()
    assert signed_in.post(url).status_code == 404
    bad = reverse("check_in_delete", kwargs={"day": "not-a-day"})
    assert signed_in.post(bad).status_code == 404


# --- goals ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_adding_and_editing_a_goal(signed_in, member, public_group):
    join(member, public_group)
    response = signed_in.post(
        reverse("goal_new"),
        {"title": "Go to a meeting", "cadence": "weekly", "weekly_target": "3",
         "visibility": "group", "group": str(public_group.pk)},
    )  # fmt: skip
    assert response.status_code == 302
    goal = Goal.objects.get(owner=member)
    assert (goal.cadence, goal.weekly_target, goal.group) == ("weekly", 3, public_group)
    edit = reverse("goal_edit", kwargs={"goal_id": goal.pk})
    assert signed_in.get(edit).context["form"].initial["group"] == str(public_group.pk)
    signed_in.post(edit, {"title": "Two meetings", "cadence": "daily", "visibility": "only_me"})
    goal.refresh_from_db()
    assert (goal.title, goal.cadence, goal.group) == ("Two meetings", "daily", None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "a" * 121}, "title"),
        ({"cadence": "hourly"}, "cadence"),
        ({"cadence": "weekly", "weekly_target": "9"}, "weekly_target"),
        ({"cadence": "weekly", "weekly_target": "many"}, "weekly_target"),
        ({"cadence": "weekly", "weekly_target": ""}, "weekly_target"),
        ({"visibility": "world"}, "visibility"),
        ({"visibility": "group"}, "group"),
        ({"visibility": "group", "group": "12345"}, "group"),
    ],
)
def test_bad_goal_input_shows_field_errors(signed_in, data, field):
    form = {"title": "Walk", "cadence": "daily", "visibility": "only_me", **data}
    response = signed_in.post(reverse("goal_new"), form)
    assert response.status_code == 200
    assert list(errors_of(response, "form")) == [field]
    assert not Goal.objects.exists()


@pytest.mark.django_db
def test_a_group_the_member_is_not_in_cannot_be_chosen(signed_in, private_group):
    form = {"title": "Walk", "cadence": "daily", "visibility": "group"}
    response = signed_in.post(reverse("goal_new"), {**form, "group": str(private_group.pk)})
    assert list(errors_of(response, "form")) == ["group"]
    assert private_group.name not in response.content.decode()


@pytest.mark.django_db
def test_someone_elses_goal_is_a_404(signed_in, other_member):
    goal = make_goal(other_member)
    assert signed_in.get(reverse("goal_edit", kwargs={"goal_id": goal.pk})).status_code == 404
    archive = reverse("goal_archive", kwargs={"goal_id": goal.pk})
    assert signed_in.post(archive).status_code == 404
    assert Goal.objects.get(pk=goal.pk).archived_at is None


@pytest.mark.django_db
def test_archiving_and_bringing_back_a_goal(signed_in, member):
    goal = make_goal(member)
    archive = reverse("goal_archive", kwargs={"goal_id": goal.pk})
    signed_in.post(archive)
    goal.refresh_from_db()
    assert not goal.is_active
    page = signed_in.get(reverse("recovery"))
    assert page.context["progress"] == [] and page.context["archived"] == [goal]
    signed_in.post(archive, {"restore": "1"})
    goal.refresh_from_db()
    assert goal.is_active


# --- the recovery date ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_start_is_met_kindly(signed_in, member):
    today = today_of(member)
    member.recovery_date = today - timedelta(days=200)
    member.save()
    new_start = today - timedelta(days=2)
    response = signed_in.post(
        reverse("recovery_date"),
        {"recovery_date": new_start.isoformat(), "recovery_date_visibility": "only_me"},
        follow=True,
    )
    body = response.content.decode()
    assert f"Every day counts. Your new start is {new_start:%-d %B %Y}." in body
    assert "reset" not in body.lower() and "relapse" not in body.lower()
    member.refresh_from_db()
    assert member.recovery_date == new_start
    assert not Notification.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"recovery_date": "+1"}, "recovery_date"),
        ({"recovery_date": "1899-12-31"}, "recovery_date"),
        ({"recovery_date": "soon"}, "recovery_date"),
        ({"recovery_date_visibility": "mentor"}, "recovery_date_visibility"),
        ({"recovery_date_visibility": ""}, "recovery_date_visibility"),
    ],
)
def test_bad_recovery_date_input_shows_field_errors(signed_in, member, data, field):
    if data.get("recovery_date") == "+1":
        data = {"recovery_date": (today_of(member) + timedelta(days=1)).isoformat()}
    form = {"recovery_date": "", "recovery_date_visibility": "only_me", **data}
    response = signed_in.post(reverse("recovery_date"), form)
    assert response.status_code == 200
    assert list(errors_of(response, "date_form")) == [field]
    member.refresh_from_db()
    assert member.recovery_date is None


# --- the profile and the mentor's view --------------------------------------------------------


@pytest.mark.django_db
def test_the_badge_shows_only_when_the_member_celebrates(client, member, other_member):
    member.recovery_date = today_of(member) - timedelta(days=400)
    member.recovery_date_visibility = "everyone"
    member.save()
    client.force_login(other_member)
    url = reverse("profile", kwargs={"handle": member.handle})
    assert "milestone-badge" not in client.get(url).content.decode()
    accountability.set_recovery_date(
        user=member,
        recovery_date=member.recovery_date,
        visibility="everyone",
        celebrate=True,
        mentor_sees_days=False,
        share_check_ins=False,
    )
    body = client.get(url).content.decode()
    assert 'class="milestone-badge"' in body and ">1 year</span>" in body
    accountability.set_recovery_date(
        user=member,
        recovery_date=member.recovery_date,
        visibility="only_me",
        celebrate=True,
        mentor_sees_days=False,
        share_check_ins=False,
    )
    body = client.get(url).content.decode()
    assert "milestone-badge" not in body and "in recovery" not in body


@pytest.fixture
def mentorship(member, other_member, public_group):
    """meadow mentors river."""
    join(member, public_group)
    join(other_member, public_group)
    return Mentorship.objects.create(
        mentor=other_member, mentee=member, group=public_group, state="active"
    )


@pytest.mark.django_db
def test_the_mentor_sees_what_is_shared_and_nothing_else(client, mentorship, member):
    make_goal(member, title="Private walk")
    make_goal(member, title="Call my mentor daily", visibility="mentor")
    CheckIn.objects.create(owner=member, day=today_of(member), mood=2, note="hidden words")
    url = reverse("mentorship_goals", kwargs={"mentorship_id": mentorship.pk})
    client.force_login(mentorship.mentor)
    body = client.get(url).content.decode()
    assert "Call my mentor daily" in body and "Private walk" not in body
    assert "hidden words" not in body and "2 of 5" not in body
    assert body.count("Not shared.") == 2  # the days and the check-ins
    accountability.set_recovery_date(
        user=member,
        recovery_date=today_of(member) - timedelta(days=7),
        visibility="only_me",
        celebrate=False,
        mentor_sees_days=True,
        share_check_ins=True,
    )
    body = client.get(url).content.decode()
    assert "1 week today" in body and "2 of 5" in body and "hidden words" not in body
    # The mentee sees the same page, told whose view it is.
    client.force_login(member)
    body = client.get(url).content.decode()
    assert f"What {mentorship.mentor.handle} sees of your recovery" in body


@pytest.mark.django_db
def test_the_mentor_view_is_a_404_to_others_and_after_the_end(client, mentorship, outsider):
    url = reverse("mentorship_goals", kwargs={"mentorship_id": mentorship.pk})
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    mentorship.state = "ended"
    mentorship.save()
    client.force_login(mentorship.mentor)
    assert client.get(url).status_code == 404
    missing = reverse("mentorship_goals", kwargs={"mentorship_id": 999999})
    assert client.get(missing).status_code == 404


@pytest.mark.django_db
def test_the_recovery_page_links_both_sides_of_a_mentorship(client, mentorship, member):
    url = reverse("mentorship_goals", kwargs={"mentorship_id": mentorship.pk})
    client.force_login(member)
    assert f"See what {mentorship.mentor.handle}, your mentor, sees" in (
        client.get(reverse("recovery")).content.decode()
    )
    client.force_login(mentorship.mentor)
    body = client.get(reverse("recovery")).content.decode()
    assert f"What {member.handle} shares with you" in body and url in body
