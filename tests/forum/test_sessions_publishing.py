"""The write path of live sessions (forum.publishing, "live sessions"): scheduling, editing,
cancelling, RSVPs and the group's readings; good input, bad input, and who may."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from forum import publishing, recurrence
from forum.models import (
    ChatRoom,
    LiveSession,
    Membership,
    Notification,
    SessionRSVP,
    SessionScript,
)
from moderation.models import ModerationLogEntry, WatchedPhrase
from tests.conftest import join, make_group, make_user

FUTURE = date(2030, 10, 15)  # a Tuesday; British Summer Time ends on 27 October 2030


@pytest.fixture(autouse=True)
def unlimited(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}


@pytest.fixture
def circle(db):
    group = make_group("evening-circle")
    leader, member, other = make_user("lantern"), make_user("river"), make_user("meadow")
    join(leader, group, Membership.Role.LEADER)
    join(member, group)
    join(other, group)
    return group, leader, member, other


def schedule(actor, group, **changes) -> list[LiveSession]:
    fields = {
        "title": "Tuesday open share",
        "starts_on": FUTURE,
        "start_time": time(19),
        "end_time": time(20),
        "time_zone": "Europe/London",
    }
    fields.update(changes)
    return publishing.schedule_session(
        actor=actor, group=group, plan=publishing.SessionPlan(**fields)
    )


def errors_of(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


# --- scheduling ------------------------------------------------------------------------------


def test_a_leader_schedules_a_session_with_its_own_room(circle):
    group, leader, member, _other = circle
    [session] = schedule(
        leader,
        group,
        topic="**Gratitude** <script>alert(1)</script>",
        format=LiveSession.Format.TOPIC,
        capacity=12,
        co_leaders=f"@{member.handle}",
        opens_before_minutes=10,
    )
    assert session.leader == session.facilitator == leader
    assert session.starts_at == datetime(2030, 10, 15, 18, tzinfo=UTC)  # 19:00 BST
    assert session.ends_at == datetime(2030, 10, 15, 19, tzinfo=UTC)
    assert session.series is None
    assert list(session.co_leaders.all()) == [member]
    assert "<strong>Gratitude</strong>" in session.topic_html
    assert "<script" not in session.topic_html
    assert session.welcome_source == publishing.DEFAULT_WELCOME
    assert session.welcome_html.startswith("<p>Welcome")
    room = session.room
    assert room.kind == ChatRoom.Kind.SESSION
    assert room.group == group
    assert room.name == "Tuesday open share"
    assert room.slug.startswith("session-") and len(room.slug) == len("session-") + 8
    assert session.phase() == LiveSession.Phase.SCHEDULED


def test_a_weekly_series_keeps_its_local_time_across_the_clock_change(circle, settings):
    group, leader, _member, _other = circle
    sessions = schedule(leader, group, weekly=True)
    assert len(sessions) == settings.KINSHIP_SESSION_SERIES_WEEKS == 12
    assert len({s.series for s in sessions}) == 1 and sessions[0].series is not None
    assert len({s.room_id for s in sessions}) == 12
    assert [s.starts_at.hour for s in sessions[:3]] == [18, 18, 19]  # BST, BST, GMT
    local = {recurrence.local(s.starts_at, "Europe/London").strftime("%a %H:%M") for s in sessions}
    assert local == {"Tue 19:00"}
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in sessions)


def test_a_session_may_run_past_midnight(circle):
    group, leader, _member, _other = circle
    [session] = schedule(leader, group, start_time=time(23), end_time=time(0, 30))
    assert session.ends_at - session.starts_at == timedelta(minutes=90)


def test_a_title_with_markup_is_kept_as_text_and_a_welcome_is_rendered(circle):
    group, leader, _member, _other = circle
    [session] = schedule(leader, group, title="<b>Men's</b> share", welcome="Hello _you_.")
    assert session.title == "<b>Men's</b> share"
    assert session.welcome_html.strip() == "<p>Hello <em>you</em>.</p>"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"title": "   "}, "title", "cannot be empty"),
        ({"title": "x" * 121}, "title", "limit is 120"),
        ({"title": "bad\x07bell"}, "title", "control characters"),
        ({"topic": "y" * 4001}, "topic", "limit is 4,000"),
        ({"topic": "nul\x00"}, "topic", "NUL"),
        ({"welcome": "w" * 1001}, "welcome", "limit is 1,000"),
        ({"format": "karaoke"}, "format", "Choose a format"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "not a time zone we know"),
        ({"time_zone": ""}, "time_zone", "not a time zone we know"),
        ({"starts_on": None}, "starts_on", "Enter the date"),
        ({"start_time": None}, "start_time", "Enter a start time"),
        ({"end_time": None}, "end_time", "Enter an end time"),
        ({"end_time": time(19)}, "end_time", "ends after it starts"),
        ({"start_time": time(7), "end_time": time(19, 30)}, "end_time", "at most 12 hours"),
        ({"start_time": time(19), "end_time": time(18)}, "end_time", "at most 12 hours"),
        ({"starts_on": date(2020, 1, 7)}, "starts_on", "has passed"),
        ({"capacity": 1}, "capacity", "2 to 1000"),
        ({"capacity": 1001}, "capacity", "2 to 1000"),
        ({"opens_before_minutes": -1}, "opens_before_minutes", "0 to 120"),
        ({"opens_before_minutes": 121}, "opens_before_minutes", "0 to 120"),
        ({"opens_before_minutes": None}, "opens_before_minutes", "0 to 120"),
        ({"transcript": "forever"}, "transcript", "Choose what happens"),
        ({"transcript": "keep_days"}, "transcript_days", "1 to 365"),
        ({"transcript": "keep_days", "transcript_days": 0}, "transcript_days", "1 to 365"),
        ({"transcript": "keep_days", "transcript_days": 366}, "transcript_days", "1 to 365"),
        ({"co_leaders": "nobody-here"}, "co_leaders", "nobody-here"),
        ({"co_leaders": ",".join(f"h{i}" for i in range(11))}, "co_leaders", "at most 10"),
        ({"opening_script_id": 999_999}, "opening_script", "this group's readings"),
        ({"closing_script_id": 999_999}, "closing_script", "this group's readings"),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(circle, changes, field, words):
    group, leader, _member, _other = circle
    errors = errors_of(lambda: schedule(leader, group, **changes))
    assert field in errors, errors
    assert words in errors[field][0]
    assert not LiveSession.objects.exists()
    assert not ChatRoom.objects.filter(kind=ChatRoom.Kind.SESSION).exists()


def test_every_bad_field_is_reported_at_once(circle):
    group, leader, _member, _other = circle
    errors = errors_of(
        lambda: schedule(leader, group, title="", capacity=0, format="x", time_zone="Nowhere")
    )
    assert {"title", "capacity", "format", "time_zone"} <= set(errors)


def test_a_co_leader_must_be_a_member_of_the_group_and_is_named(circle):
    group, leader, member, _other = circle
    make_user("drifter")  # has an account, not in this group
    errors = errors_of(lambda: schedule(leader, group, co_leaders=f"{member.handle}, drifter"))
    assert "drifter" in errors["co_leaders"][0]
    assert member.handle not in errors["co_leaders"][0]


def test_co_leaders_are_deduplicated_and_the_leader_is_left_out(circle):
    group, leader, member, other = circle
    [session] = schedule(
        leader, group, co_leaders=f"{member.handle} @{member.handle.upper()}; {other.handle} "
        f"{leader.handle}"
    )  # fmt: skip
    assert set(session.co_leaders.all()) == {member, other}


def test_a_reading_of_another_group_is_refused(circle):
    group, leader, _member, _other = circle
    elsewhere = make_group("elsewhere")
    join(leader, elsewhere, Membership.Role.LEADER)
    theirs = publishing.save_script(actor=leader, group=elsewhere, title="Preamble", text="Hi.")
    errors = errors_of(lambda: schedule(leader, group, opening_script_id=theirs.pk))
    assert "opening_script" in errors
    ours = publishing.save_script(actor=leader, group=group, title="Preamble", text="Hello.")
    [session] = schedule(leader, group, opening_script_id=ours.pk, closing_script_id=ours.pk)
    assert session.opening_script == session.closing_script == ours


def test_days_are_kept_only_with_keep_for_days(circle):
    group, leader, _member, _other = circle
    [kept] = schedule(leader, group, transcript="keep_days", transcript_days=30)
    assert (kept.transcript, kept.transcript_days) == ("keep_days", 30)
    [deleted] = schedule(leader, group, transcript="delete", transcript_days=30)
    assert deleted.transcript_days is None


def test_watched_phrases_apply_to_a_sessions_words(circle):
    group, leader, _member, _other = circle
    WatchedPhrase.objects.create(group=group, pattern="cheap pills", action="block", message="No.")
    errors = errors_of(lambda: schedule(leader, group, title="Cheap pills night"))
    assert errors == {"title": ["No."]}
    errors = errors_of(lambda: schedule(leader, group, topic="We talk about cheap pills."))
    assert errors == {"topic": ["No."]}
    WatchedPhrase.objects.create(group=group, pattern="darn", action="censor")
    [session] = schedule(leader, group, title="Darn good share", topic="A darn good topic")
    assert "darn" not in session.title.lower()
    assert "darn" not in session.topic_source.lower()
    WatchedPhrase.objects.create(group=group, pattern="miracle cure", action="hold")
    errors = errors_of(lambda: schedule(leader, group, welcome="Ask me for the miracle cure"))
    assert "rephrase" in errors["welcome"][0]


@pytest.mark.parametrize("role", ["leader", "moderator"])
def test_leaders_and_group_moderators_schedule(circle, role):
    group, _leader, _member, _other = circle
    actor = make_user("actor")
    join(actor, group, role)
    assert len(schedule(actor, group)) == 1


def test_a_site_moderator_schedules_in_any_group(circle, site_moderator):
    group, _leader, _member, _other = circle
    assert len(schedule(site_moderator, group)) == 1


def test_a_member_may_not_schedule(circle):
    group, _leader, member, _other = circle
    with pytest.raises(PermissionDenied, match="leaders and moderators schedule"):
        schedule(member, group)


def test_a_private_group_does_not_exist_for_an_outsider(db, outsider):
    group = make_group("hidden-circle", private=True)
    with pytest.raises(Http404):
        schedule(outsider, group)


# --- editing ---------------------------------------------------------------------------------


def test_editing_changes_this_occurrence_and_its_room(circle):
    group, leader, member, _other = circle
    sessions = schedule(leader, group, weekly=True)
    session = sessions[1]
    edited = publishing.edit_session(
        actor=leader,
        session=session,
        plan=publishing.SessionPlan(
            title="Step study",
            format=LiveSession.Format.STUDY,
            starts_on=FUTURE + timedelta(weeks=1, days=1),
            start_time=time(18, 30),
            end_time=time(20),
            time_zone="America/New_York",
            co_leaders=member.handle,
            capacity=30,
        ),
    )
    assert edited.title == "Step study"
    assert edited.starts_at == datetime(2030, 10, 23, 22, 30, tzinfo=UTC)
    assert list(edited.co_leaders.all()) == [member]
    assert ChatRoom.objects.get(pk=session.room_id).name == "Step study"
    others = LiveSession.objects.exclude(pk=session.pk)
    assert set(others.values_list("title", flat=True)) == {"Tuesday open share"}


def test_editing_a_started_session_may_keep_its_start(circle):
    group, leader, _member, _other = circle
    [session] = schedule(leader, group)
    started = timezone.now() - timedelta(minutes=5)
    LiveSession.objects.filter(pk=session.pk).update(starts_at=started)
    session.refresh_from_db()
    local = recurrence.local(started, "UTC")
    edited = publishing.edit_session(
        actor=leader,
        session=session,
        plan=publishing.SessionPlan(
            title="Renamed while running",
            starts_on=local.date(),
            start_time=local.time(),
            end_time=(local + timedelta(hours=1)).time(),
            time_zone="UTC",
        ),
    )
    assert edited.title == "Renamed while running"
    errors = errors_of(
        lambda: publishing.edit_session(
            actor=leader,
            session=edited,
            plan=publishing.SessionPlan(
                title="Moved back",
                starts_on=date(2020, 1, 1),
                start_time=time(19),
                end_time=time(20),
                time_zone="UTC",
            ),
        )
    )
    assert "starts_on" in errors


def test_an_ended_or_cancelled_session_cannot_be_edited(circle):
    group, leader, _member, _other = circle
    ended, cancelled = schedule(leader, group), schedule(leader, group)
    LiveSession.objects.filter(pk=ended[0].pk).update(ended_at=timezone.now())
    publishing.cancel_session(actor=leader, session=cancelled[0])
    for session, word in ((ended[0], "over"), (cancelled[0], "cancelled")):
        session.refresh_from_db()
        errors = errors_of(
            lambda s=session: publishing.edit_session(
                actor=leader,
                session=s,
                plan=publishing.SessionPlan(
                    title="Again",
                    starts_on=FUTURE,
                    start_time=time(19),
                    end_time=time(20),
                    time_zone="UTC",
                ),
            )
        )
        assert word in errors["__all__"][0]


def test_a_member_may_not_edit(circle):
    group, leader, member, _other = circle
    [session] = schedule(leader, group, co_leaders=member.handle)
    with pytest.raises(PermissionDenied):
        publishing.edit_session(
            actor=member,
            session=session,
            plan=publishing.SessionPlan(
                title="Mine now",
                starts_on=FUTURE,
                start_time=time(19),
                end_time=time(20),
                time_zone="UTC",
            ),
        )


# --- cancelling ------------------------------------------------------------------------------


def test_cancelling_logs_it_archives_the_room_and_tells_who_was_coming(circle):
    group, leader, member, other = circle
    [session] = schedule(leader, group)
    publishing.toggle_rsvp(user=member, session=session)
    [cancelled] = publishing.cancel_session(actor=leader, session=session, reason="Snowed in.")
    assert cancelled.phase() == LiveSession.Phase.CANCELLED
    assert ChatRoom.objects.get(pk=session.room_id).state == ChatRoom.State.ARCHIVED
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.SESSION_CANCELLED)
    assert (entry.actor_handle, entry.reason, entry.group_id) == (
        leader.handle,
        "Snowed in.",
        group.pk,
    )
    assert entry.target_type == "live session" and entry.target_id == session.pk
    [note] = Notification.objects.filter(recipient=member)
    assert "Tuesday open share" in note.text and "Snowed in." in note.text
    assert note.url == session.get_absolute_url()
    assert not Notification.objects.filter(recipient=other).exists()


def test_cancelling_twice_or_once_open_is_refused(circle):
    group, leader, _member, _other = circle
    [session] = schedule(leader, group)
    publishing.cancel_session(actor=leader, session=session)
    session.refresh_from_db()
    errors = errors_of(lambda: publishing.cancel_session(actor=leader, session=session))
    assert "cancelled" in errors["__all__"][0]
    [running] = schedule(leader, group)
    LiveSession.objects.filter(pk=running.pk).update(opened_at=timezone.now())
    running.refresh_from_db()
    errors = errors_of(lambda: publishing.cancel_session(actor=leader, session=running))
    assert "end the session instead" in errors["__all__"][0]
    assert ModerationLogEntry.objects.count() == 1


def test_cancelling_the_rest_of_a_series(circle):
    group, leader, _member, _other = circle
    sessions = schedule(leader, group, weekly=True)
    cancelled = publishing.cancel_session(actor=leader, session=sessions[9], following=True)
    assert [s.pk for s in cancelled] == [s.pk for s in sessions[9:]]
    still = LiveSession.objects.filter(cancelled_at__isnull=True)
    assert set(still.values_list("pk", flat=True)) == {s.pk for s in sessions[:9]}
    assert ModerationLogEntry.objects.count() == 3


def test_a_member_may_not_cancel(circle):
    group, leader, member, _other = circle
    [session] = schedule(leader, group)
    with pytest.raises(PermissionDenied):
        publishing.cancel_session(actor=member, session=session)
    assert LiveSession.objects.get(pk=session.pk).cancelled_at is None


# --- RSVPs -----------------------------------------------------------------------------------


def test_an_rsvp_toggles(circle):
    group, leader, member, _other = circle
    [session] = schedule(leader, group)
    assert publishing.toggle_rsvp(user=member, session=session) is True
    assert SessionRSVP.objects.filter(session=session, user=member).count() == 1
    assert publishing.toggle_rsvp(user=member, session=session) is False
    assert not SessionRSVP.objects.exists()


def test_only_members_rsvp_and_only_before_the_end(circle, outsider):
    group, leader, member, _other = circle
    [session] = schedule(leader, group)
    with pytest.raises(PermissionDenied):
        publishing.toggle_rsvp(user=outsider, session=session)
    LiveSession.objects.filter(pk=session.pk).update(ended_at=timezone.now())
    session.refresh_from_db()
    assert (
        "over"
        in errors_of(lambda: publishing.toggle_rsvp(user=member, session=session))["__all__"][0]
    )


# --- readings --------------------------------------------------------------------------------


def test_a_reading_is_saved_rendered_edited_and_deleted(circle):
    group, leader, _member, _other = circle
    script = publishing.save_script(
        actor=leader, group=group, title="Preamble", text="We are **peers**.\n<img src=x>"
    )
    assert "<strong>peers</strong>" in script.html and "<img" not in script.html
    [session] = schedule(leader, group, opening_script_id=script.pk)
    again = publishing.save_script(
        actor=leader, group=group, script=script, title="Preamble (short)", text="Peers."
    )
    assert SessionScript.objects.get().title == "Preamble (short)" == again.title
    publishing.delete_script(actor=leader, script=again)
    session.refresh_from_db()
    assert session.opening_script is None
    assert not SessionScript.objects.exists()


@pytest.mark.parametrize(
    ("title", "text", "field"),
    [
        ("", "Text", "title"),
        ("t" * 81, "Text", "title"),
        ("Preamble", "", "text"),
        ("Preamble", "x" * 10_001, "text"),
        ("Duplicate", "Text", "title"),
    ],
)
def test_a_bad_reading_is_a_field_error(circle, title, text, field):
    group, leader, _member, _other = circle
    publishing.save_script(actor=leader, group=group, title="duplicate", text="First.")
    errors = errors_of(
        lambda: publishing.save_script(actor=leader, group=group, title=title, text=text)
    )
    assert field in errors
    assert SessionScript.objects.count() == 1


def test_members_do_not_manage_readings(circle):
    group, leader, member, _other = circle
    script = publishing.save_script(actor=leader, group=group, title="Preamble", text="Hi.")
    with pytest.raises(PermissionDenied):
        publishing.save_script(actor=member, group=group, title="Mine", text="Hi.")
    with pytest.raises(PermissionDenied):
        publishing.delete_script(actor=member, script=script)
    elsewhere = make_group("elsewhere")
    join(leader, elsewhere, Membership.Role.LEADER)
    errors = errors_of(lambda: publishing.save_script(
        actor=leader, group=elsewhere, script=script, title="Moved", text="Hi."
    ))  # fmt: skip
    assert "another group" in errors["__all__"][0]
