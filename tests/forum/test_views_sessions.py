"""Live sessions' pages (forum/views/sessions.py): the schedule, a session's page, the forms,
RSVPs, calendars and readings, for members, leaders and outsiders."""

import re
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forum import publishing
from forum.models import ChatMessage, ChatRoom, LiveSession, Membership, SessionRSVP
from forum.views.sessions import feed_token
from tests.conftest import join, make_group, make_user

FUTURE = date(2030, 10, 15)


@pytest.fixture(autouse=True)
def unlimited(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}


@pytest.fixture
def circle(db):
    group = make_group("evening-circle")
    leader, member = make_user("lantern"), make_user("river")
    join(leader, group, Membership.Role.LEADER)
    join(member, group)
    return group, leader, member


def schedule(leader, group, **changes) -> LiveSession:
    fields = {
        "title": "Tuesday open share",
        "starts_on": FUTURE,
        "start_time": time(19),
        "end_time": time(20),
        "time_zone": "Europe/London",
    }
    fields.update(changes)
    return publishing.schedule_session(
        actor=leader, group=group, plan=publishing.SessionPlan(**fields)
    )[0]


def set_times(session: LiveSession, *, starts_in: timedelta, minutes: int = 60) -> LiveSession:
    """Move a session relative to now (the write path only schedules in the future)."""
    starts = timezone.now() + starts_in
    LiveSession.objects.filter(pk=session.pk).update(
        starts_at=starts, ends_at=starts + timedelta(minutes=minutes)
    )
    session.refresh_from_db()
    return session


def url(name: str, session: LiveSession, **extra) -> str:
    return reverse(name, kwargs={"slug": session.group.slug, "session_id": session.pk, **extra})


FORM = {
    "title": "Thursday step study",
    "format": "study",
    "topic": "Step **three**.",
    "starts_on": "2030-10-17",
    "start_time": "18:30",
    "end_time": "19:45",
    "time_zone": "America/New_York",
    "capacity": "",
    "co_leaders": "",
    "opening_script": "",
    "closing_script": "",
    "opens_before_minutes": "15",
    "welcome": "",
    "transcript": "delete",
    "transcript_days": "",
}


# --- the group's sessions page ---------------------------------------------------------------


def test_the_sessions_page_lists_upcoming_and_past_in_the_sessions_zone(client, circle):
    group, leader, member = circle
    upcoming = schedule(leader, group)
    set_times(schedule(leader, group, title="Last week"), starts_in=-timedelta(days=7))
    cancelled = schedule(leader, group, title="Called off")
    publishing.cancel_session(actor=leader, session=cancelled)
    publishing.toggle_rsvp(user=member, session=upcoming)
    client.force_login(member)
    page = client.get(reverse("sessions", kwargs={"slug": group.slug})).content.decode()
    upcoming_part, past_part = page.split('id="past-heading"')
    assert "Tuesday open share" in upcoming_part and "Called off" in upcoming_part
    assert "Last week" in past_part and "Last week" not in upcoming_part
    assert "1 going" in upcoming_part and "You're going" in upcoming_part
    assert "Cancelled" in upcoming_part
    assert '<time class="local-time" datetime="2030-10-15T18:00:00+00:00"' in page
    assert "Tue 15 Oct 2030, 19:00 to 20:00 (Europe/London)" in page
    assert "js/local_time.js" in page
    assert "Schedule a session" not in page


def test_leaders_see_how_to_schedule(client, circle):
    group, leader, _member = circle
    client.force_login(leader)
    page = client.get(reverse("sessions", kwargs={"slug": group.slug})).content.decode()
    assert reverse("session_new", kwargs={"slug": group.slug}) in page
    assert reverse("session_scripts", kwargs={"slug": group.slug}) in page


def test_a_public_groups_sessions_are_listed_to_anyone_a_private_ones_to_members(
    client, circle, outsider
):
    group, leader, member = circle
    schedule(leader, group)
    assert client.get(reverse("sessions", kwargs={"slug": group.slug})).status_code == 200
    private = make_group("hidden-circle", private=True)
    join(leader, private, Membership.Role.LEADER)
    join(member, private)
    session = schedule(leader, private, title="Members only")
    for who in (None, outsider):
        if who:
            client.force_login(who)
        for target in (reverse("sessions", kwargs={"slug": private.slug}), url("session", session),
                       url("session_ics", session)):  # fmt: skip
            response = client.get(target)
            assert response.status_code == 404, (who, target)
            assert b"Members only" not in response.content
    client.force_login(member)
    assert b"Members only" in client.get(reverse("sessions", kwargs={"slug": private.slug})).content


def test_the_sessions_page_queries_do_not_grow_with_sessions(client, circle):
    group, leader, member = circle
    other = make_group("busy-circle")
    join(leader, other, Membership.Role.LEADER)
    join(member, other)
    schedule(leader, group)
    for n in range(10):
        session = schedule(leader, other, title=f"Session {n}")
        publishing.toggle_rsvp(user=member, session=session)
    for n in range(10):
        set_times(schedule(leader, other, title=f"Old {n}"), starts_in=-timedelta(days=n + 1))
    client.force_login(member)
    client.get("/")

    def count(slug: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("sessions", kwargs={"slug": slug}))
        assert response.status_code == 200
        return len(queries)

    assert count(group.slug) == count(other.slug)


def test_the_group_page_shows_the_next_three_sessions(client, circle):
    group, leader, member = circle
    for day in range(5):
        schedule(leader, group, title=f"Share {day}", starts_on=FUTURE + timedelta(days=day))
    client.force_login(member)
    page = client.get(group.get_absolute_url()).content.decode()
    assert "Upcoming sessions" in page
    assert all(f"Share {day}" in page for day in range(3))
    assert "Share 3" not in page
    assert reverse("sessions", kwargs={"slug": group.slug}) in page


def test_the_group_page_links_sessions_even_with_none(client, circle):
    group, _leader, _member = circle
    page = client.get(group.get_absolute_url()).content.decode()
    assert "Upcoming sessions" not in page
    assert reverse("sessions", kwargs={"slug": group.slug}) in page


# --- a session's page ------------------------------------------------------------------------


def test_before_it_opens_the_page_counts_down_and_states_the_transcript_policy(client, circle):
    group, leader, member = circle
    join(make_user("meadow"), group)
    session = schedule(leader, group, co_leaders="meadow", capacity=20, topic="Gratitude _lists_")
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert 'data-opens-at="2030-10-15T17:45:00+00:00"' in page
    assert "js/session_page.js" in page
    assert "What is said here is deleted when the session ends." in page
    assert "<em>lists</em>" in page
    assert "20 people at a time" in page and "meadow" in page
    assert 'id="session-console"' not in page  # the room is not open yet
    assert url("session_ics", session) in page
    assert url("session_rsvp", session) in page
    assert url("session_edit", session) not in page


def test_the_transcript_policy_says_what_the_leader_chose(client, circle):
    group, leader, member = circle
    client.force_login(member)
    kept = schedule(leader, group, transcript="keep_days", transcript_days=7)
    page = unescape(client.get(url("session", kept)).content.decode())
    assert "kept for the group's members to read for 7 days after the session" in page
    forever = schedule(leader, group, transcript="keep")
    page = unescape(client.get(url("session", forever)).content.decode())
    assert "kept for the group's members to read after the session" in page


def test_leaders_see_edit_and_cancel_and_the_console_before_it_opens(client, circle):
    group, leader, _member = circle
    session = schedule(leader, group)
    client.force_login(leader)
    page = client.get(url("session", session)).content.decode()
    assert url("session_edit", session) in page
    assert url("session_cancel", session) in page
    assert 'id="session-console"' in page  # to open the room early
    assert 'data-facilitator="true"' in page


def test_an_open_session_holds_its_room(client, circle):
    group, leader, member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(minutes=5))
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert 'id="session-console"' in page
    assert f'data-ws-path="/ws/g/{group.slug}/chat/{session.room.slug}/"' in page
    assert 'id="session-state"' in page
    assert 'data-facilitator="false"' in page
    assert "Live now" in page
    assert 'id="session-countdown"' not in page
    assert page.index("What is said here is deleted") < page.index('id="session-console"')


def test_a_non_member_reads_about_it_and_is_asked_to_join(client, circle, outsider):
    group, leader, _member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(minutes=5))
    client.force_login(outsider)
    page = client.get(url("session", session)).content.decode()
    assert "Tuesday open share" in page
    assert 'id="session-console"' not in page
    assert reverse("group_join", kwargs={"slug": group.slug}) in page
    client.logout()
    page = client.get(url("session", session)).content.decode()
    assert 'id="session-console"' not in page and "Log in" in page


def test_a_full_or_removed_member_is_told_why(client, circle):
    from forum.models import SessionParticipant

    group, leader, member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(minutes=5))
    SessionParticipant.objects.create(session=session, user=member, removed_at=timezone.now())
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert "A leader removed you from this session." in page
    assert 'id="session-console"' not in page


def test_an_ended_session_says_so_and_links_the_fellowship_room(client, circle):
    group, leader, member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(hours=3))
    fellowship = ChatRoom.objects.create(group=group, slug="fellowship-1", name="Fellowship")
    LiveSession.objects.filter(pk=session.pk).update(
        ended_at=timezone.now(), fellowship_room=fellowship
    )
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert "This session has ended." in page
    assert fellowship.get_absolute_url() in page
    assert "has been deleted, as the group chose" in page
    assert 'id="session-console"' not in page
    assert url("session_rsvp", session) not in page


def test_an_ended_session_with_a_kept_transcript_shows_it_read_only(client, circle):
    group, leader, member = circle
    session = set_times(schedule(leader, group, transcript="keep"), starts_in=-timedelta(hours=3))
    ChatMessage.objects.create(
        room=session.room, author=member, client_id="c1", source="Thanks all",
        html="<p>Thanks all</p>", seq=1, version=1,
    )  # fmt: skip
    ChatRoom.objects.filter(pk=session.room_id).update(state="archived", last_seq=1)
    LiveSession.objects.filter(pk=session.pk).update(ended_at=timezone.now())
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert 'id="session-console"' in page
    assert "Thanks all" in page
    assert "What was said is below, read-only." in page


def test_a_cancelled_session_says_so(client, circle):
    group, leader, member = circle
    session = schedule(leader, group)
    publishing.cancel_session(actor=leader, session=session)
    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    assert "This session was cancelled." in page
    assert url("session_rsvp", session) not in page


def test_the_old_room_address_of_a_session_leads_to_its_page(client, circle):
    group, leader, member = circle
    session = schedule(leader, group)
    client.force_login(member)
    response = client.get(
        reverse("room", kwargs={"slug": group.slug, "room_slug": session.room.slug})
    )
    assert response.status_code == 302
    assert response["Location"] == session.get_absolute_url()
    rooms = client.get(reverse("rooms", kwargs={"slug": group.slug})).content.decode()
    assert session.room.slug not in rooms


def test_a_missing_session_or_one_of_another_group_is_404(client, circle):
    group, leader, member = circle
    other = make_group("other-circle")
    join(leader, other, Membership.Role.LEADER)
    theirs = schedule(leader, other)
    client.force_login(member)
    wrong = reverse("session", kwargs={"slug": group.slug, "session_id": theirs.pk})
    assert client.get(wrong).status_code == 404
    gone = reverse("session", kwargs={"slug": group.slug, "session_id": 999_999})
    assert client.get(gone).status_code == 404


# --- RSVP ------------------------------------------------------------------------------------


def test_rsvp_toggles_and_says_so(client, circle):
    group, leader, member = circle
    session = schedule(leader, group)
    client.force_login(member)
    response = client.post(url("session_rsvp", session), follow=True)
    assert SessionRSVP.objects.filter(session=session, user=member).exists()
    assert b"You&#x27;re going" in response.content
    assert b"including you" in response.content
    client.post(url("session_rsvp", session))
    assert not SessionRSVP.objects.exists()


def test_rsvp_is_a_post_for_members(client, circle, outsider):
    group, leader, _member = circle
    session = schedule(leader, group)
    assert client.post(url("session_rsvp", session)).status_code == 302  # to the login page
    client.force_login(outsider)
    assert client.get(url("session_rsvp", session)).status_code == 405
    assert client.post(url("session_rsvp", session)).status_code == 403
    assert not SessionRSVP.objects.exists()


def test_rsvp_to_an_ended_session_is_refused_kindly(client, circle):
    group, leader, member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(hours=3))
    client.force_login(member)
    response = client.post(url("session_rsvp", session), follow=True)
    assert response.status_code == 200
    assert b"This session is over." in response.content
    assert not SessionRSVP.objects.exists()


# --- scheduling, editing, cancelling ---------------------------------------------------------


def test_the_schedule_form_for_a_leader_and_nobody_else(client, circle, outsider):
    group, leader, member = circle
    target = reverse("session_new", kwargs={"slug": group.slug})
    assert client.get(target).status_code == 302
    client.force_login(member)
    assert client.get(target).status_code == 403
    client.force_login(outsider)
    assert client.get(target).status_code == 403
    client.force_login(leader)
    page = client.get(target).content.decode()
    assert "data-zone-from-browser" in page  # no earlier choice: the browser's zone
    assert '<option value="Europe/London">' in page
    private = make_group("hidden-circle", private=True)
    client.force_login(outsider)
    assert client.get(reverse("session_new", kwargs={"slug": private.slug})).status_code == 404


def test_scheduling_through_the_form(client, circle):
    group, leader, _member = circle
    client.force_login(leader)
    response = client.post(reverse("session_new", kwargs={"slug": group.slug}), FORM)
    session = LiveSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == session.get_absolute_url()
    assert session.starts_at == datetime(2030, 10, 17, 22, 30, tzinfo=UTC)
    assert session.format == "study" and session.time_zone == "America/New_York"
    page = client.get(reverse("session_new", kwargs={"slug": group.slug})).content.decode()
    assert "data-zone-from-browser" not in page  # the leader's previous choice now
    assert '<option value="America/New_York" selected>' in page


def test_a_weekly_series_through_the_form(client, circle):
    group, leader, _member = circle
    client.force_login(leader)
    response = client.post(
        reverse("session_new", kwargs={"slug": group.slug}), {**FORM, "weekly": "on"}, follow=True
    )
    assert LiveSession.objects.count() == 12
    assert b"Scheduled 12 weekly sessions" in response.content


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"title": ""}, "title", "The title cannot be empty."),
        ({"starts_on": "next tuesday"}, "starts_on", "Enter a date as YYYY-MM-DD."),
        ({"starts_on": "2020-01-07"}, "starts_on", "That time has passed"),
        ({"start_time": "7pm"}, "start_time", "Enter a time as HH:MM."),
        ({"end_time": "18:30"}, "end_time", "The session ends after it starts."),
        ({"time_zone": "Mars/Base"}, "time_zone", "is not a time zone we know"),
        ({"capacity": "lots"}, "capacity", "Enter a whole number."),
        ({"capacity": "1"}, "capacity", "2 to 1000"),
        ({"co_leaders": "ghost"}, "co_leaders", "ghost"),
        ({"opening_script": "12345"}, "opening_script", "Choose one of this group"),
        ({"format": "rave"}, "format", "Choose a format."),
        ({"transcript": "keep_days"}, "transcript_days", "Keep it for 1 to 365 days."),
        ({"opens_before_minutes": "500"}, "opens_before_minutes", "0 to 120 minutes"),
    ],
)
def test_bad_input_shows_field_errors_and_keeps_what_was_typed(client, circle, changes, field,
                                                               words):  # fmt: skip
    group, leader, _member = circle
    client.force_login(leader)
    data = {**FORM, "topic": "Keep this topic", **changes}
    response = client.post(reverse("session_new", kwargs={"slug": group.slug}), data)
    assert response.status_code == 200
    assert not LiveSession.objects.exists()
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert words in " ".join(form.errors[field])
    page = response.content.decode()
    assert "Keep this topic" in page
    assert 'class="error" role="alert"' in page


def test_editing_through_the_form_starts_from_the_session(client, circle):
    group, leader, member = circle
    session = schedule(leader, group, co_leaders=member.handle, welcome="Hi newcomers")
    client.force_login(leader)
    page = client.get(url("session_edit", session)).content.decode()
    assert 'value="Tuesday open share"' in page
    assert 'value="19:00"' in page and 'value="2030-10-15"' in page
    assert 'value="river"' in page and "Hi newcomers" in page
    assert 'name="weekly"' not in page
    response = client.post(
        url("session_edit", session),
        {**FORM, "title": "Renamed", "starts_on": "2030-10-15", "start_time": "19:00",
         "end_time": "21:00", "time_zone": "Europe/London", "co_leaders": ""},
    )  # fmt: skip
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.title == "Renamed"
    assert session.ends_at == datetime(2030, 10, 15, 20, tzinfo=UTC)
    assert not session.co_leaders.exists()
    client.force_login(member)
    assert client.get(url("session_edit", session)).status_code == 403


def test_cancelling_through_the_form(client, circle):
    group, leader, member = circle
    first, *rest = publishing.schedule_session(
        actor=leader,
        group=group,
        plan=publishing.SessionPlan(
            title="Weekly",
            starts_on=FUTURE,
            start_time=time(19),
            end_time=time(20),
            time_zone="UTC",
            weekly=True,
        ),
    )
    client.force_login(member)
    assert client.post(url("session_cancel", first)).status_code == 403
    client.force_login(leader)
    page = client.get(url("session_cancel", first)).content.decode()
    assert 'name="following"' in page
    response = client.post(
        url("session_cancel", rest[5]), {"reason": "Summer break", "following": "on"}
    )
    assert response.status_code == 302
    assert LiveSession.objects.filter(cancelled_at__isnull=False).count() == 6
    response = client.post(url("session_cancel", rest[5]), {"reason": ""})
    assert response.status_code == 200
    assert b"was cancelled" in response.content


# --- calendars -------------------------------------------------------------------------------


def unfold(body: bytes) -> list[str]:
    """Content lines of an iCalendar body, checking CRLF endings and 75-octet lines."""
    assert body.endswith(b"\r\n")
    raw = body.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in raw)
    assert all(len(line) <= 75 for line in raw), [line for line in raw if len(line) > 75]
    lines: list[str] = []
    for line in raw:
        text = line.decode("utf-8")  # folding never splits a character
        if text.startswith(" "):
            lines[-1] += text[1:]
        else:
            lines.append(text)
    return lines


def ics_unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def properties(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        name, _sep, value = line.partition(":")
        found.setdefault(name, value)
    return found


def test_a_sessions_calendar_file_is_valid_icalendar(client, circle):
    group, leader, member = circle
    title = "Men's share; tea, biscuits & a \\ backslash"
    topic = "Gratitude — what's going well? " * 6 + "\nSecond line; with, punctuation"
    session = schedule(leader, group, title=title, topic=topic)
    client.force_login(member)
    response = client.get(url("session_ics", session))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    lines = unfold(response.content)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 1
    props = properties(lines)
    assert props["VERSION"] == "2.0" and props["PRODID"]
    assert props["UID"] == f"session-{session.pk}@testserver"
    assert re.fullmatch(r"\d{8}T\d{6}Z", props["DTSTAMP"])
    assert props["DTSTART"] == "20301015T180000Z"
    assert props["DTEND"] == "20301015T190000Z"
    assert ";" not in props["SUMMARY"].replace("\\;", "")
    assert ics_unescape(props["SUMMARY"]) == title
    description = ics_unescape(props["DESCRIPTION"])
    assert "Second line; with, punctuation" in description
    assert "What is said here is deleted when the session ends." in description
    assert props["URL"] == f"http://testserver{session.get_absolute_url()}"
    assert props["STATUS"] == "CONFIRMED"
    assert any(len(line.encode()) > 75 for line in lines)  # something was folded


def test_a_cancelled_sessions_calendar_file_says_cancelled(client, circle):
    group, leader, member = circle
    session = schedule(leader, group)
    publishing.cancel_session(actor=leader, session=session)
    client.force_login(member)
    props = properties(unfold(client.get(url("session_ics", session)).content))
    assert props["STATUS"] == "CANCELLED"


def test_a_public_groups_feed_is_public_and_lists_what_is_coming(client, circle):
    group, leader, _member = circle
    schedule(leader, group, title="Next week")
    set_times(schedule(leader, group, title="Long gone"), starts_in=-timedelta(days=3))
    publishing.cancel_session(actor=leader, session=schedule(leader, group, title="Off"))
    response = client.get(reverse("group_sessions_feed", kwargs={"slug": group.slug}))
    assert response.status_code == 200
    lines = unfold(response.content)
    summaries = [line for line in lines if line.startswith("SUMMARY:")]
    assert summaries == ["SUMMARY:Next week"]
    assert properties(lines)["X-WR-CALNAME"] == "Evening Circle: sessions"


def test_a_private_groups_feed_needs_a_members_personal_token(client, circle, outsider):
    group, leader, member = circle
    private = make_group("hidden-circle", private=True)
    join(leader, private, Membership.Role.LEADER)
    join(member, private)
    session = schedule(leader, private, title="Members only")
    feed = reverse("group_sessions_feed", kwargs={"slug": private.slug})

    client.force_login(member)
    page = client.get(url("session", session)).content.decode()
    link = re.search(r'value="(http://testserver[^"]+feed\.ics\?token=[^"]+)"', page).group(1)
    assert "This link is personal" in page
    token = parse_qs(urlsplit(link.replace("&amp;", "&")).query)["token"][0]
    client.logout()  # calendar apps have no session cookie

    assert b"SUMMARY:Members only" in client.get(feed, {"token": token}).content
    assert client.get(feed).status_code == 404
    assert client.get(feed, {"token": token[:-2] + "xx"}).status_code == 404
    assert client.get(feed, {"token": feed_token(member, group)}).status_code == 404
    assert client.get(feed, {"token": feed_token(outsider, private)}).status_code == 404
    assert client.get(feed, {"token": "not-a-token"}).status_code == 404
    Membership.objects.filter(user=member, group=private).delete()
    assert client.get(feed, {"token": token}).status_code == 404
    nowhere = reverse("group_sessions_feed", kwargs={"slug": "no-such-group"})
    assert client.get(nowhere).status_code == 404


# --- readings --------------------------------------------------------------------------------


def test_leaders_add_edit_and_delete_readings(client, circle):
    group, leader, member = circle
    scripts = reverse("session_scripts", kwargs={"slug": group.slug})
    client.force_login(member)
    assert client.get(scripts).status_code == 403
    client.force_login(leader)
    response = client.post(scripts, {"title": "Preamble", "text": "We are **peers**."})
    assert response.status_code == 302
    page = client.get(scripts).content.decode()
    assert "Preamble" in page and "<strong>peers</strong>" in page
    response = client.post(scripts, {"title": "preamble", "text": ""})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"title", "text"}
    from forum.models import SessionScript

    script = SessionScript.objects.get()
    edit = reverse("session_script_edit", kwargs={"slug": group.slug, "script_id": script.pk})
    assert b"We are **peers**." in client.get(edit).content
    assert client.post(edit, {"title": "Preamble", "text": "Shorter."}).status_code == 302
    assert SessionScript.objects.get().source == "Shorter."
    response = client.post(edit, {"title": "", "text": "x"})
    assert response.status_code == 200 and "title" in response.context["form"].errors
    client.force_login(member)
    assert client.post(edit, {"delete": "1"}).status_code == 403
    client.force_login(leader)
    assert client.post(edit, {"delete": "1"}).status_code == 302
    assert not SessionScript.objects.exists()
    assert client.get(edit).status_code == 404


def test_the_schedule_form_offers_the_groups_readings(client, circle):
    group, leader, _member = circle
    script = publishing.save_script(actor=leader, group=group, title="Preamble", text="Hi.")
    client.force_login(leader)
    page = client.get(reverse("session_new", kwargs={"slug": group.slug})).content.decode()
    assert f'<option value="{script.pk}">Preamble</option>' in page
    client.post(
        reverse("session_new", kwargs={"slug": group.slug}),
        {**FORM, "opening_script": str(script.pk), "closing_script": str(script.pk)},
    )
    assert LiveSession.objects.get().opening_script == script


def test_leaders_set_slow_mode_from_the_session_page_and_members_do_not_see_it(client, circle):
    group, leader, member = circle
    session = set_times(schedule(leader, group), starts_in=-timedelta(minutes=5))
    client.force_login(member)
    assert 'class="inline-form slow-mode-form"' not in client.get(url("session", session)).text
    client.force_login(leader)
    page = client.get(url("session", session)).text
    action = reverse("room_slow_mode", args=[group.slug, session.room.slug])
    assert f'action="{action}"' in page
    response = client.post(action, {"seconds": "60"})
    assert response.status_code == 302 and response.url == url("session", session)
    session.room.refresh_from_db()
    assert session.room.slow_mode_seconds == 60
