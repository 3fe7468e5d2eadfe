"""Attendance services (forum.attendance): a member's history, proofs, leaders' counts."""

from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404
from django.template import Context, Template
from django.utils import timezone

from forum import attendance, memberships
from forum.models import AttendanceProof, ChatRoom, LiveSession, Membership, SessionParticipant
from tests.conftest import join, make_group, make_user

_slugs = count(1)


def make_session(
    group,
    *,
    starts_at: datetime,
    title: str = "Evening share",
    time_zone: str = "UTC",
    fmt: str = LiveSession.Format.OPEN_SHARE,
    topic: str = "",
    leader=None,
) -> LiveSession:
    room = ChatRoom.objects.create(
        group=group, slug=f"session-{next(_slugs)}", name=title[:60], kind=ChatRoom.Kind.SESSION
    )
    return LiveSession.objects.create(
        group=group,
        room=room,
        title=title,
        topic_source=topic,
        topic_html=f"<p>{topic}</p>" if topic else "",
        format=fmt,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        time_zone=time_zone,
        leader=leader,
        facilitator=leader,
        # Over, so nothing here depends on the session being live.
        ended_at=starts_at + timedelta(hours=1),
    )


def attend(session, user, *, seconds: int = 45 * 60, first: bool = False, **extra):
    return SessionParticipant.objects.create(
        session=session, user=user, seconds_attended=seconds, first_session=first, **extra
    )


def at(day: date, hour: int = 19) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def proof_for(user, date_from, date_to, **shows) -> AttendanceProof:
    choices = {
        "shows_handle": False,
        "shows_group": True,
        "shows_title": False,
        "shows_duration": True,
    }
    choices.update(shows)
    return attendance.create_proof(user=user, date_from=date_from, date_to=date_to, **choices)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


D1, D2, D3 = date(2025, 3, 3), date(2025, 3, 10), date(2025, 3, 17)


@pytest.fixture
def group(db):
    group = make_group("harbour-lights")
    group.name = "Harbour Lights Recovery"
    group.save()
    return group


@pytest.fixture
def sessions(group, member, other_member):
    """Three Monday sessions; river attended all three, meadow the second."""
    join(member, group)
    join(other_member, group)
    made = [
        make_session(group, starts_at=at(D1), title="Monday night share"),
        make_session(
            group,
            starts_at=at(D2),
            title="Step four workbook",
            fmt=LiveSession.Format.STUDY,
            topic="Resentments and the inventory",
        ),
        make_session(group, starts_at=at(D3), title="Speaker: Sam's story"),
    ]
    attend(made[0], member, seconds=50 * 60, first=True)
    attend(made[1], member, seconds=61 * 60 + 59)
    attend(made[2], member, seconds=30 * 60)
    attend(made[1], other_member, seconds=55 * 60)
    return made


# --- history -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_is_newest_first_with_the_session_details(sessions, member):
    rows = attendance.attendance_of(member)
    assert [row.date for row in rows] == [D3, D2, D1]
    assert [row.minutes for row in rows] == [30, 61, 50]
    study = rows[1]
    assert study.group_name == "Harbour Lights Recovery"
    assert study.title == "Step four workbook"
    assert study.format == "Step or workbook study"
    assert study.session_id == sessions[1].pk


@pytest.mark.django_db
def test_less_than_a_minute_is_not_attendance(group, member):
    brief = make_session(group, starts_at=at(D1))
    attend(brief, member, seconds=59)
    nothing = make_session(group, starts_at=at(D2))
    attend(nothing, member, seconds=0)
    arriving = make_session(group, starts_at=timezone.now() - timedelta(minutes=2))
    attend(arriving, member, seconds=0, present_since=timezone.now() - timedelta(seconds=30))
    assert attendance.attendance_of(member) == []


@pytest.mark.django_db
def test_a_span_still_open_counts(group, member):
    live = make_session(group, starts_at=timezone.now() - timedelta(minutes=10))
    attend(live, member, seconds=30, present_since=timezone.now() - timedelta(minutes=5), sockets=1)
    (row,) = attendance.attendance_of(member)
    assert row.minutes == 5


@pytest.mark.django_db
def test_history_shows_only_the_members_own_sessions(sessions, other_member):
    rows = attendance.attendance_of(other_member)
    assert [(row.session_id, row.minutes) for row in rows] == [(sessions[1].pk, 55)]


@pytest.mark.django_db
def test_history_keeps_sessions_of_a_group_the_member_left(sessions, group, member):
    memberships.leave_group(user=member, group=group)
    assert not Membership.objects.filter(user=member, group=group).exists()
    assert len(attendance.attendance_of(member)) == 3


@pytest.mark.django_db
def test_dates_are_the_sessions_own_local_dates(group, member):
    # 23:30 on Sunday 9 March 2025 in Los Angeles (the day clocks went forward) is
    # 06:30 UTC on the 10th; 08:00 on 10 March in Auckland is 19:00 UTC on the 9th.
    la = make_session(
        group, starts_at=datetime(2025, 3, 10, 6, 30, tzinfo=UTC), time_zone="America/Los_Angeles"
    )
    nz = make_session(
        group, starts_at=datetime(2025, 3, 9, 19, 0, tzinfo=UTC), time_zone="Pacific/Auckland"
    )
    attend(la, member)
    attend(nz, member)
    rows = {row.session_id: row for row in attendance.attendance_of(member)}
    assert rows[la.pk].date == date(2025, 3, 9)
    assert rows[la.pk].starts_at.hour == 23
    assert rows[nz.pk].date == date(2025, 3, 10)
    assert rows[nz.pk].starts_at.hour == 8

    on_the_9th = attendance.attendance_of(
        member, date_from=date(2025, 3, 9), date_to=date(2025, 3, 9)
    )
    assert [row.session_id for row in on_the_9th] == [la.pk]
    on_the_10th = attendance.attendance_of(
        member, date_from=date(2025, 3, 10), date_to=date(2025, 3, 10)
    )
    assert [row.session_id for row in on_the_10th] == [nz.pk]


@pytest.mark.django_db
def test_history_range_is_inclusive(sessions, member):
    rows = attendance.attendance_of(member, date_from=D1, date_to=D2)
    assert [row.date for row in rows] == [D2, D1]
    assert [row.date for row in attendance.attendance_of(member, date_from=D3)] == [D3]
    assert [row.date for row in attendance.attendance_of(member, date_to=D1)] == [D1]


@pytest.mark.django_db
def test_history_range_at_the_ends_of_the_calendar(sessions, member):
    assert len(attendance.attendance_of(member, date_from=date.min, date_to=date.max)) == 3
    assert attendance.attendance_of(member, date_from=date.max) == []
    assert attendance.attendance_of(member, date_to=date.min) == []


# --- proofs ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_proof_snapshots_only_the_chosen_columns_oldest_first(sessions, member):
    proof = proof_for(member, D1, D3)
    assert proof.entries == [
        {"date": "2025-03-03", "group": "Harbour Lights Recovery", "minutes": 50},
        {"date": "2025-03-10", "group": "Harbour Lights Recovery", "minutes": 61},
        {"date": "2025-03-17", "group": "Harbour Lights Recovery", "minutes": 30},
    ]
    assert (proof.shows_handle, proof.shows_group, proof.shows_title, proof.shows_duration) == (
        False,
        True,
        False,
        True,
    )
    assert len(proof.token) >= 32


@pytest.mark.django_db
def test_proof_with_nothing_but_dates(sessions, member):
    proof = proof_for(member, D2, D2, shows_group=False, shows_duration=False)
    assert proof.entries == [{"date": "2025-03-10"}]


@pytest.mark.django_db
def test_proof_with_everything_chosen_still_has_no_topic(sessions, member):
    proof = proof_for(member, D2, D2, shows_handle=True, shows_title=True)
    assert proof.entries == [
        {
            "date": "2025-03-10",
            "group": "Harbour Lights Recovery",
            "title": "Step four workbook",
            "minutes": 61,
        }
    ]
    assert "Resentments" not in str(proof.entries)


@pytest.mark.django_db
def test_a_proof_does_not_change_when_the_session_does(sessions, member):
    proof = proof_for(member, D1, D3, shows_title=True)
    LiveSession.objects.filter(pk=sessions[0].pk).update(title="Renamed later")
    proof.refresh_from_db()
    assert proof.entries[0]["title"] == "Monday night share"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("date_from", "date_to", "field", "words"),
    [
        (None, D3, "date_from", "first day"),
        (D1, None, "date_to", "last day"),
        (D3, D1, "date_to", "before the first day"),
        (D1, "future", "date_to", "future"),
        (date(2020, 3, 16), D3, "date_from", "at most 5 years"),
        (date(2025, 1, 1), date(2025, 2, 1), NON_FIELD_ERRORS, "no sessions between"),
    ],
)
def test_bad_ranges_are_field_errors(sessions, member, date_from, date_to, field, words):
    if date_to == "future":
        date_to = attendance.latest_today() + timedelta(days=1)
    with pytest.raises(ValidationError) as excinfo:
        proof_for(member, date_from, date_to)
    assert field in errors_of(excinfo)
    assert words in " ".join(errors_of(excinfo)[field])
    assert not AttendanceProof.objects.exists()


@pytest.mark.django_db
def test_both_missing_days_are_reported_together(member):
    with pytest.raises(ValidationError) as excinfo:
        proof_for(member, None, None)
    assert set(errors_of(excinfo)) == {"date_from", "date_to"}


@pytest.mark.django_db
def test_five_years_exactly_is_allowed(group, member):
    attend(make_session(group, starts_at=at(date(2021, 6, 1))), member)
    proof = proof_for(member, date(2020, 3, 17), date(2025, 3, 17))
    assert len(proof.entries) == 1


@pytest.mark.django_db
def test_today_is_allowed(group, member):
    today = timezone.now().date()
    attend(make_session(group, starts_at=timezone.now() - timedelta(minutes=5)), member)
    proof = proof_for(member, today - timedelta(days=1), today)
    assert len(proof.entries) == 1


@pytest.mark.django_db
def test_the_number_of_proofs_is_capped(sessions, member, settings):
    for _ in range(attendance.PROOFS_MAX):
        AttendanceProof.objects.create(user=member, date_from=D1, date_to=D3)
    with pytest.raises(ValidationError) as excinfo:
        proof_for(member, D1, D3)
    assert "revoke one" in " ".join(errors_of(excinfo)[NON_FIELD_ERRORS])


@pytest.mark.django_db
def test_owner_revokes_a_proof(sessions, member):
    proof = proof_for(member, D1, D3)
    attendance.revoke_proof(user=member, proof=proof)
    assert not AttendanceProof.objects.filter(pk=proof.pk).exists()


@pytest.mark.django_db
def test_another_member_cannot_revoke_a_proof(sessions, member, other_member):
    proof = proof_for(member, D1, D3)
    with pytest.raises(Http404):
        attendance.revoke_proof(user=other_member, proof=proof)
    assert AttendanceProof.objects.filter(pk=proof.pk).exists()


# --- the verification page shows only what was chosen -------------------------------------


def proof_page(client, proof) -> str:
    response = client.get(proof.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_proof_page_omits_what_was_not_chosen(client, sessions, member, other_member):
    proof = proof_for(
        member, D1, D3, shows_handle=False, shows_group=False, shows_title=False,
        shows_duration=False,
    )  # fmt: skip
    html = proof_page(client, proof)
    assert "the holder of this proof" in html
    assert "attended <strong>3 sessions</strong>" in html
    for hidden in (
        member.handle,
        "Harbour Lights",
        "Monday night share",
        "Step four workbook",
        "Resentments",
        "Minutes present",
        ">50<",
        other_member.handle,
        member.email,
    ):
        assert hidden not in html, hidden
    assert "3 March 2025" in html


@pytest.mark.django_db
def test_proof_page_shows_what_was_chosen_and_never_anyone_else(
    client, sessions, member, other_member
):
    proof = proof_for(member, D1, D3, shows_handle=True, shows_title=True)
    html = proof_page(client, proof)
    assert f"@{member.handle}" in html
    assert "Harbour Lights Recovery" in html
    assert "Step four workbook" in html
    assert "141 minutes in all" in html
    assert other_member.handle not in html
    assert "Resentments" not in html
    assert member.email not in html


@pytest.mark.django_db
def test_revoked_proof_is_gone(client, sessions, member):
    proof = proof_for(member, D1, D3)
    url = proof.get_absolute_url()
    attendance.revoke_proof(user=member, proof=proof)
    response = client.get(url)
    assert response.status_code == 404
    assert "withdrawn" in response.content.decode()


# --- leaders' counts ---------------------------------------------------------------------


@pytest.mark.django_db
def test_session_counts(group, member, other_member):
    session = make_session(group, starts_at=at(D1))
    attend(session, member, seconds=20 * 60, first=True)
    attend(session, other_member, seconds=40 * 60)
    attend(session, make_user("dawn"), seconds=70 * 60, first=True)
    attend(session, make_user("dusk"), seconds=30, first=True)  # under a minute
    assert attendance.session_counts(session) == {
        "attended": 3,
        "first_time": 2,
        "median_minutes": 40,
    }


@pytest.mark.django_db
def test_session_counts_of_an_empty_session(group):
    session = make_session(group, starts_at=at(D1))
    assert attendance.session_counts(session) == {
        "attended": 0,
        "first_time": 0,
        "median_minutes": None,
    }


def render_counts(session, user) -> str:
    template = Template("{% load attendance %}{% session_counts session %}")
    return template.render(Context({"session": session, "user": user}))


@pytest.mark.django_db
def test_leaders_see_counts_and_no_names(sessions, group, member, other_member):
    leader = make_user("lantern")
    join(leader, group, Membership.Role.LEADER)
    session = LiveSession.objects.select_related("group").get(pk=sessions[1].pk)
    html = render_counts(session, leader)
    assert "Attended" in html
    assert "<dd>2</dd>" in html
    assert "58 min" in html  # the median of 61 and 55
    assert member.handle not in html
    assert other_member.handle not in html


@pytest.mark.django_db
def test_members_and_visitors_see_no_counts(sessions, member):
    session = LiveSession.objects.select_related("group").get(pk=sessions[1].pk)
    assert render_counts(session, member).strip() == ""
    assert render_counts(session, AnonymousUser()).strip() == ""
