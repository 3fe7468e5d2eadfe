"""Facilitating a live session (forum/live.py) and the session rules of the write path.

Sessions and their rooms are created directly here (not through the scheduling
service), so these tests pin down facilitation alone. Time is a clock the tests move:
attendance, phases, the grace period and transcript purges all read ``timezone.now``.
"""

import threading
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic, sleep

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import live, publishing, realtime
from forum.models import (
    ChatMessage,
    ChatRoom,
    HandRaise,
    LiveSession,
    Membership,
    SessionParticipant,
    SessionScript,
    SupportGroup,
    User,
)
from moderation import permissions
from moderation.models import ModerationLogEntry, Sanction
from tests.chat_helpers import broadcast_frame
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db

Action = ModerationLogEntry.Action
Phase = LiveSession.Phase


class Clock:
    """``timezone.now`` under the test's control."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@dataclass
class World:
    group: SupportGroup
    sage: User  # leads the group and the session
    fern: User  # a plain member of the group, co-leader of the session
    river: User  # member
    meadow: User  # member
    stranger: User  # not in the group
    clock: Clock


@pytest.fixture
def world(clock, settings) -> World:
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    group = make_group("open-circle")
    sage, fern = make_user("sage"), make_user("fern")
    river, meadow, stranger = make_user("river"), make_user("meadow"), make_user("stranger")
    join(sage, group, Membership.Role.LEADER)
    for member in (fern, river, meadow):
        join(member, group)
    return World(group, sage, fern, river, meadow, stranger, clock)


def make_session(
    world: World,
    *,
    group: SupportGroup | None = None,
    starts_in: timedelta = timedelta(minutes=-5),
    length: timedelta = timedelta(hours=1),
    co_leaders: list[User] | None = None,
    **extra,
) -> LiveSession:
    """A session and its room; by default it started five minutes ago (room open), led
    by sage with fern as co-leader."""
    group = group or world.group
    number = LiveSession.objects.count() + 1
    room = ChatRoom.objects.create(
        group=group, name=f"Session {number}", slug=f"session-{number}", kind=ChatRoom.Kind.SESSION
    )
    starts = timezone.now() + starts_in
    leader = extra.pop("leader", world.sage)
    session = LiveSession.objects.create(
        group=group,
        room=room,
        title=f"Tuesday share {number}",
        starts_at=starts,
        ends_at=starts + length,
        leader=leader,
        facilitator=leader,
        **extra,
    )
    session.co_leaders.add(*co_leaders if co_leaders is not None else [world.fern])
    return session


@pytest.fixture
def session(world) -> LiveSession:
    return make_session(world)


def fresh(session: LiveSession) -> LiveSession:
    return LiveSession.objects.select_related("group", "room").get(pk=session.pk)


def present(session: LiveSession, *users: User) -> None:
    for user in users:
        live.join_session(user=user, session=session)


def participant(session: LiveSession, user: User) -> SessionParticipant:
    return SessionParticipant.objects.get(session=session, user=user)


def room_seq(session: LiveSession) -> int:
    return ChatRoom.objects.values_list("last_seq", flat=True).get(pk=session.room_id)


def queue(session: LiveSession) -> list[str]:
    return list(HandRaise.objects.filter(session=session).values_list("user__handle", flat=True))


def say(session: LiveSession, author: User, body: str = "Thank you all") -> ChatMessage:
    """A chat message through the write path, as the consumer would send it."""
    room = ChatRoom.objects.select_related("group").get(pk=session.room_id)
    message, created = publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=f"c-{ChatMessage.objects.count()}"
    )
    assert created
    return message


def logged(session: LiveSession, action: str) -> list[ModerationLogEntry]:
    return list(
        ModerationLogEntry.objects.filter(
            action=action, target_type="live session", target_id=session.pk
        )
    )


def error_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- opening and closing the room ------------------------------------------------------------


def test_a_leader_opens_the_room_before_its_time_and_it_is_logged(world):
    session = make_session(world, starts_in=timedelta(hours=2))
    assert session.phase() == Phase.SCHEDULED
    live.open_room(actor=world.sage, session=session)
    assert fresh(session).phase() == Phase.OPEN
    [entry] = logged(session, Action.SESSION_OPENED)
    assert entry.actor_id == world.sage.pk and entry.group_id == world.group.pk
    with pytest.raises(ValidationError) as excinfo:
        live.open_room(actor=world.sage, session=session)
    assert error_of(excinfo) == {"session": ["The room is already open."]}


def test_closing_stops_the_floor_and_reopening_opens_again(world, session):
    present(session, world.river)
    live.give_floor(actor=world.sage, session=session, handle="river")
    live.close_room(actor=world.fern, session=session)
    closed = fresh(session)
    assert closed.phase() == Phase.CLOSED and closed.floor_holder_id is None
    assert len(logged(session, Action.SESSION_CLOSED)) == 1
    with pytest.raises(ValidationError) as excinfo:
        live.close_room(actor=world.sage, session=session)
    assert "Open the room first" in error_of(excinfo)["session"][0]
    live.open_room(actor=world.sage, session=session)
    assert fresh(session).phase() == Phase.OPEN
    assert fresh(session).closed_at is None


def test_an_ended_session_cannot_be_opened_or_closed_again(world, session):
    live.end_session(actor=world.sage, session=session)
    for control in (live.open_room, live.close_room):
        with pytest.raises(ValidationError) as excinfo:
            control(actor=world.sage, session=session)
        assert "This session is over" in error_of(excinfo)["session"][0]
    assert fresh(session).phase() == Phase.ENDED


# --- lock, pin, readings ---------------------------------------------------------------------


def test_lock_and_unlock_each_once_and_both_logged(world, session):
    live.set_lock(actor=world.sage, session=session, locked=True)
    assert fresh(session).chat_locked
    assert live.session_payload(fresh(session))["locked"] is True
    with pytest.raises(ValidationError) as excinfo:
        live.set_lock(actor=world.sage, session=session, locked=True)
    assert error_of(excinfo) == {"locked": ["The chat is already locked."]}
    live.set_lock(actor=world.fern, session=session, locked=False)
    assert not fresh(session).chat_locked
    assert live.session_payload(fresh(session))["locked"] is False
    with pytest.raises(ValidationError) as excinfo:
        live.set_lock(actor=world.sage, session=session, locked=False)
    assert error_of(excinfo) == {"locked": ["The chat is not locked."]}
    assert [e.actor_id for e in logged(session, Action.SESSION_LOCKED)] == [world.sage.pk]
    assert [e.actor_id for e in logged(session, Action.SESSION_UNLOCKED)] == [world.fern.pk]


def test_the_chat_cannot_be_locked_before_the_room_opens(world):
    session = make_session(world, starts_in=timedelta(hours=2))
    with pytest.raises(ValidationError):
        live.set_lock(actor=world.sage, session=session, locked=True)
    assert not fresh(session).chat_locked


def test_pin_a_message_of_the_room_and_unpin_it(world, session):
    message = say(session, world.sage, "Our guidelines: listen, no cross-talk.")
    live.pin_message(actor=world.sage, session=session, message_id=message.pk)
    pinned = live.session_payload(fresh(session))["pinned"]
    assert pinned["id"] == message.pk and "no cross-talk" in pinned["html"]
    live.pin_message(actor=world.sage, session=session, message_id=None)
    assert fresh(session).pinned_id is None
    assert live.session_payload(fresh(session))["pinned"] is None
    with pytest.raises(ValidationError) as excinfo:
        live.pin_message(actor=world.sage, session=session, message_id=None)
    assert error_of(excinfo) == {"id": ["Nothing is pinned."]}


def test_a_message_of_another_room_or_a_removed_one_cannot_be_pinned(world, session):
    other = make_session(world)
    elsewhere = say(other, world.sage, "Not in this session")
    removed = say(session, world.river, "Taken back")
    publishing.withdraw_chat_message(author=world.river, message=removed)
    for message_id in (elsewhere.pk, removed.pk, 10**9):
        with pytest.raises(ValidationError) as excinfo:
            live.pin_message(actor=world.sage, session=session, message_id=message_id)
        assert error_of(excinfo) == {"id": ["No such message in this session to pin."]}
    assert fresh(session).pinned_id is None


def test_a_pinned_message_removed_later_is_no_longer_shown(world, session):
    message = say(session, world.river, "Pin me")
    live.pin_message(actor=world.sage, session=session, message_id=message.pk)
    publishing.withdraw_chat_message(author=world.river, message=message)
    assert live.session_payload(fresh(session))["pinned"] is None


def test_a_reading_needs_a_script(world, session):
    for which in ("opening", "closing"):
        with pytest.raises(ValidationError) as excinfo:
            live.post_reading(actor=world.sage, session=session, which=which)
        assert error_of(excinfo) == {"which": [f"This session has no {which} reading."]}
    with pytest.raises(ValidationError) as excinfo:
        live.post_reading(actor=world.sage, session=session, which="middle")
    assert "which" in error_of(excinfo)
    assert not ChatMessage.objects.exists()


def test_a_reading_is_posted_with_the_scripts_html_and_takes_a_seq(world):
    script = SessionScript.objects.create(
        group=world.group,
        title="Preamble",
        source="We are **here**",
        html="<p>We are <strong>here</strong></p>",
    )
    session = make_session(world, opening_script=script)
    say(session, world.river, "hello")
    message = live.post_reading(actor=world.fern, session=session, which="opening")
    assert message.html == script.html and message.source == script.source
    assert message.author_id == world.fern.pk and message.room_id == session.room_id
    assert message.seq == message.version == room_seq(session) == 2
    with pytest.raises(ValidationError):
        live.post_reading(actor=world.fern, session=session, which="closing")


def test_a_reading_waits_for_the_room_to_open(world):
    script = SessionScript.objects.create(group=world.group, title="P", source="x", html="<p>x</p>")
    session = make_session(world, starts_in=timedelta(hours=2), opening_script=script)
    with pytest.raises(ValidationError):
        live.post_reading(actor=world.sage, session=session, which="opening")
    assert not ChatMessage.objects.exists()


# --- the share queue -------------------------------------------------------------------------


def test_hands_queue_in_order_and_each_goes_up_once(world, session):
    live.raise_hand(actor=world.river, session=session)
    live.raise_hand(actor=world.meadow, session=session)
    assert queue(session) == ["river", "meadow"]
    with pytest.raises(ValidationError) as excinfo:
        live.raise_hand(actor=world.river, session=session)
    assert error_of(excinfo) == {"hand": ["Your hand is already up."]}
    assert live.session_payload(fresh(session))["queue"] == ["river", "meadow"]


def test_lowering_a_hand(world, session):
    live.raise_hand(actor=world.river, session=session)
    live.raise_hand(actor=world.meadow, session=session)
    live.lower_hand(actor=world.river, session=session)
    assert queue(session) == ["meadow"]
    with pytest.raises(ValidationError) as excinfo:
        live.lower_hand(actor=world.river, session=session)
    assert error_of(excinfo) == {"hand": ["Your hand is not up."]}
    # A member cannot take someone else's hand down; a leader can.
    with pytest.raises(PermissionDenied):
        live.lower_hand(actor=world.river, session=session, handle="meadow")
    assert queue(session) == ["meadow"]
    live.lower_hand(actor=world.sage, session=session, handle="@Meadow")
    assert queue(session) == []
    with pytest.raises(ValidationError) as excinfo:
        live.lower_hand(actor=world.sage, session=session, handle="meadow")
    assert error_of(excinfo) == {"hand": ["meadow has no hand up."]}
    with pytest.raises(ValidationError):
        live.lower_hand(actor=world.sage, session=session, handle="nobody-by-that-name")


def test_a_hand_goes_up_only_while_the_room_is_open_and_not_from_the_floor(world):
    session = make_session(world, starts_in=timedelta(hours=2))
    with pytest.raises(ValidationError):
        live.raise_hand(actor=world.river, session=session)
    live.open_room(actor=world.sage, session=session)
    present(session, world.river)
    live.give_floor(actor=world.sage, session=session, handle="river")
    with pytest.raises(ValidationError) as excinfo:
        live.raise_hand(actor=world.river, session=session)
    assert error_of(excinfo) == {"hand": ["You have the floor now."]}
    assert queue(session) == []


def test_outsiders_muted_and_removed_members_cannot_raise_a_hand(world, session):
    with pytest.raises(PermissionDenied):
        live.raise_hand(actor=world.stranger, session=session)
    present(session, world.river, world.meadow)
    live.mute_participant(
        actor=world.sage, session=session, handle="river", minutes=10, reason="Cross-talk"
    )
    with pytest.raises(PermissionDenied, match="muted"):
        live.raise_hand(actor=world.river, session=session)
    live.remove_participant(actor=world.sage, session=session, handle="meadow", reason="Spam")
    with pytest.raises(PermissionDenied, match="removed you"):
        live.raise_hand(actor=world.meadow, session=session)
    assert queue(session) == []


# --- the floor -------------------------------------------------------------------------------


def test_giving_the_floor_to_someone_present_takes_their_hand_down(world, session):
    present(session, world.river, world.meadow)
    live.raise_hand(actor=world.river, session=session)
    live.raise_hand(actor=world.meadow, session=session)
    live.give_floor(actor=world.sage, session=session, handle="meadow")
    state = live.session_payload(fresh(session))
    assert state["floor"]["handle"] == "meadow" and state["queue"] == ["river"]


def test_the_floor_cannot_go_to_someone_who_left_or_never_came(world, session):
    present(session, world.river)
    live.leave_session(user=world.river, session=session)
    assert participant(session, world.river).sockets == 0
    for handle in ("river", "meadow", "no-such-handle"):
        with pytest.raises(ValidationError) as excinfo:
            live.give_floor(actor=world.sage, session=session, handle=handle)
        assert error_of(excinfo) == {"handle": [f"{handle} is not in the session now."]}
    assert fresh(session).floor_holder_id is None


def test_next_with_an_empty_queue_is_an_error(world, session):
    present(session, world.river)
    with pytest.raises(ValidationError) as excinfo:
        live.give_floor(actor=world.sage, session=session)
    assert error_of(excinfo) == {"handle": ["Nobody here has a hand up."]}


def test_next_skips_the_hands_of_people_who_left(world, session):
    present(session, world.river, world.meadow)
    live.raise_hand(actor=world.river, session=session)
    live.raise_hand(actor=world.meadow, session=session)
    live.leave_session(user=world.river, session=session)
    live.give_floor(actor=world.sage, session=session)
    assert fresh(session).floor_holder_id == world.meadow.pk
    assert queue(session) == ["river"]  # kept for when they come back
    live.pass_floor(actor=world.meadow, session=session)
    with pytest.raises(ValidationError):  # river is still away
        live.give_floor(actor=world.sage, session=session)
    present(session, world.river)
    live.give_floor(actor=world.sage, session=session)
    assert fresh(session).floor_holder_id == world.river.pk


def test_the_sharer_passes_the_floor_and_only_they_or_a_leader_can(world, session):
    present(session, world.river, world.meadow)
    live.give_floor(actor=world.sage, session=session, handle="river")
    with pytest.raises(PermissionDenied):
        live.pass_floor(actor=world.meadow, session=session)
    assert fresh(session).floor_holder_id == world.river.pk
    live.pass_floor(actor=world.river, session=session)
    assert fresh(session).floor_holder_id is None
    live.give_floor(actor=world.sage, session=session, handle="meadow")
    live.pass_floor(actor=world.fern, session=session)  # a co-leader takes it back
    assert fresh(session).floor_holder_id is None
    with pytest.raises(ValidationError) as excinfo:
        live.pass_floor(actor=world.sage, session=session)
    assert error_of(excinfo) == {"floor": ["Nobody has the floor."]}


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [(0, True), (1, True), (3600, True), (-1, False), (3601, False), (10**12, False)],
)
def test_share_timer_bounds(world, session, seconds, ok):
    if ok:
        live.set_share_timer(actor=world.sage, session=session, seconds=seconds)
        assert fresh(session).share_seconds == seconds
    else:
        with pytest.raises(ValidationError) as excinfo:
            live.set_share_timer(actor=world.sage, session=session, seconds=seconds)
        assert "seconds" in error_of(excinfo)
        assert fresh(session).share_seconds == 0


def test_the_floor_shows_when_a_timed_share_ends(world, session):
    present(session, world.river)
    live.set_share_timer(actor=world.sage, session=session, seconds=180)
    live.give_floor(actor=world.sage, session=session, handle="river")
    floor = live.session_payload(fresh(session))["floor"]
    assert floor["since"] == world.clock.now.isoformat()
    assert floor["ends_at"] == (world.clock.now + timedelta(seconds=180)).isoformat()
    live.set_share_timer(actor=world.sage, session=session, seconds=0)
    assert live.session_payload(fresh(session))["floor"]["ends_at"] is None


# --- handing over, removing, muting ----------------------------------------------------------


def test_facilitation_is_handed_to_a_co_leader_and_the_leader_keeps_control(world, session):
    live.hand_over(actor=world.sage, session=session, handle="@fern")
    assert fresh(session).facilitator_id == world.fern.pk
    assert live.session_payload(fresh(session))["facilitator"] == "fern"
    [entry] = logged(session, Action.FACILITATION_HANDED)
    assert entry.member_id == world.fern.pk and entry.actor_id == world.sage.pk
    live.set_lock(actor=world.fern, session=session, locked=True)
    # Decided: the group's leader (and the session's own leader) can still step in.
    live.set_lock(actor=world.sage, session=session, locked=False)
    with pytest.raises(ValidationError) as excinfo:
        live.hand_over(actor=world.sage, session=session, handle="fern")
    assert error_of(excinfo) == {"handle": ["fern already facilitates."]}
    live.hand_over(actor=world.fern, session=session, handle="sage")
    assert fresh(session).facilitator_id == world.sage.pk


def test_a_sessions_own_leader_keeps_control_after_handing_over(world):
    """Decided: handing over changes who runs the session, not who may step in. The
    session's leader keeps the controls even as a plain member of the group."""
    session = make_session(world, leader=world.river, co_leaders=[])
    assert permissions.can_facilitate(world.river, session)
    assert not permissions.can_facilitate(world.meadow, session)
    live.hand_over(actor=world.river, session=session, handle="sage")
    assert fresh(session).facilitator_id == world.sage.pk
    live.set_lock(actor=world.river, session=fresh(session), locked=True)
    live.set_lock(actor=world.sage, session=fresh(session), locked=False)
    with pytest.raises(PermissionDenied):
        live.set_lock(actor=world.meadow, session=fresh(session), locked=True)
    # Whoever facilitates now has the controls too, whatever their role in the group.
    handed = make_session(world, co_leaders=[world.meadow])
    live.hand_over(actor=world.sage, session=handed, handle="meadow")
    handed.co_leaders.remove(world.meadow)
    live.set_lock(actor=world.meadow, session=fresh(handed), locked=True)


def test_facilitation_cannot_go_to_a_plain_member_or_nobody(world, session):
    for handle in ("river", "stranger", "no-such-handle"):
        with pytest.raises(ValidationError) as excinfo:
            live.hand_over(actor=world.sage, session=session, handle=handle)
        assert error_of(excinfo) == {"handle": [f"{handle} is not a co-leader of this session."]}
    assert fresh(session).facilitator_id == world.sage.pk
    assert logged(session, Action.FACILITATION_HANDED) == []


def test_a_removed_participant_is_out_for_good(world, session, django_capture_on_commit_callbacks):
    present(session, world.river, world.meadow)
    live.raise_hand(actor=world.river, session=session)
    live.give_floor(actor=world.sage, session=session, handle="river")
    world.clock.advance(minutes=4)
    epoch = realtime.authority_epochs([world.river.pk])[world.river.pk]
    with django_capture_on_commit_callbacks(execute=True):
        live.remove_participant(
            actor=world.sage, session=session, handle="river", reason="Harassing others"
        )
    # Their open sockets re-check at once (forum.watch) and close.
    assert realtime.authority_epochs([world.river.pk])[world.river.pk] == epoch + 1
    removed = participant(session, world.river)
    assert removed.removed_at == world.clock.now and removed.sockets == 0
    assert removed.present_since is None and removed.seconds_attended == 4 * 60
    state = fresh(session)
    assert state.floor_holder_id is None and queue(session) == []
    [entry] = logged(session, Action.PARTICIPANT_REMOVED)
    assert entry.member_id == world.river.pk and entry.reason == "Harassing others"
    # They cannot write, rejoin, or be counted present.
    with pytest.raises(PermissionDenied, match="removed you"):
        say(session, world.river)
    with pytest.raises(PermissionDenied, match="removed you"):
        permissions.check_can_attend_session(world.river, state)
    assert not permissions.can_stay_in_session(world.river, state.room)
    assert live.join_session(user=world.river, session=state) is None
    assert participant(session, world.river).sockets == 0
    assert live.session_payload(state)["present"] == 1  # meadow
    with pytest.raises(ValidationError):
        live.remove_participant(actor=world.sage, session=session, handle="river", reason="Again")
    permissions.check_can_attend_session(world.meadow, state)  # others stay welcome


def test_removing_needs_a_reason_someone_here_and_never_a_facilitator(world, session):
    present(session, world.river, world.fern)
    with pytest.raises(ValidationError) as excinfo:
        live.remove_participant(actor=world.sage, session=session, handle="river", reason=" ")
    assert "reason" in error_of(excinfo)
    with pytest.raises(ValidationError):
        live.remove_participant(actor=world.sage, session=session, handle="meadow", reason="x")
    with pytest.raises(PermissionDenied, match="leads this session"):
        live.remove_participant(actor=world.sage, session=session, handle="fern", reason="x")
    assert not SessionParticipant.objects.filter(removed_at__isnull=False).exists()
    assert logged(session, Action.PARTICIPANT_REMOVED) == []


def test_muting_a_participant_is_a_logged_chat_mute(world, session):
    present(session, world.river)
    sanction = live.mute_participant(
        actor=world.sage, session=session, handle="river", minutes=15, reason="Cross-talk"
    )
    assert sanction.kind == Sanction.Kind.CHAT_MUTE and sanction.group_id == world.group.pk
    assert sanction.member_id == world.river.pk
    assert sanction.ends_at == world.clock.now + timedelta(minutes=15)
    [entry] = ModerationLogEntry.objects.filter(action=Action.CHAT_MUTE)
    assert entry.member_id == world.river.pk and entry.reason == "Cross-talk"
    with pytest.raises(PermissionDenied, match="muted"):
        say(session, world.river)


def test_a_muted_member_loses_the_floor_and_their_place_in_the_queue(world, session):
    present(session, world.river, world.meadow)
    live.raise_hand(actor=world.meadow, session=session)
    live.give_floor(actor=world.sage, session=session, handle="river")
    for handle in ("river", "meadow"):
        live.mute_participant(
            actor=world.sage, session=session, handle=handle, minutes=5, reason="Cross-talk"
        )
    state = live.session_payload(fresh(session))
    assert state["floor"] is None and state["queue"] == []
    with pytest.raises(ValidationError):  # nobody left to give the floor to
        live.give_floor(actor=world.sage, session=session)


def test_mute_bounds_and_who_may_mute(world, session):
    present(session, world.river)
    for minutes in (0, 24 * 60 + 1):
        with pytest.raises(ValidationError) as excinfo:
            live.mute_participant(
                actor=world.sage, session=session, handle="river", minutes=minutes, reason="x"
            )
        assert "minutes" in error_of(excinfo)
    with pytest.raises(ValidationError):  # not in the session
        live.mute_participant(
            actor=world.sage, session=session, handle="meadow", minutes=5, reason="x"
        )
    # A co-leader who is a plain member runs the floor but does not sanction.
    with pytest.raises(PermissionDenied):
        live.mute_participant(
            actor=world.fern, session=session, handle="river", minutes=5, reason="x"
        )
    assert not Sanction.objects.exists()


# --- the end ---------------------------------------------------------------------------------


def test_ending_closes_attendance_clears_the_floor_and_archives_the_room(world, session):
    present(session, world.river, world.meadow)
    live.raise_hand(actor=world.meadow, session=session)
    live.give_floor(actor=world.sage, session=session, handle="river")
    live.set_lock(actor=world.sage, session=session, locked=True)
    world.clock.advance(minutes=30)
    live.end_session(actor=world.fern, session=session)
    ended = fresh(session)
    assert ended.phase() == Phase.ENDED and ended.ended_at == world.clock.now
    assert ended.floor_holder_id is None and not ended.chat_locked and queue(session) == []
    assert ended.room.state == ChatRoom.State.ARCHIVED
    for user in (world.river, world.meadow):
        row = participant(session, user)
        assert row.present_since is None and row.sockets == 0
        assert row.seconds_attended == 30 * 60
    [entry] = logged(session, Action.SESSION_ENDED)
    assert entry.actor_id == world.fern.pk
    with pytest.raises(ValidationError) as excinfo:
        live.end_session(actor=world.sage, session=session)
    assert error_of(excinfo) == {"session": ["This session has already ended."]}
    with pytest.raises(PermissionDenied, match="over"):
        say(session, world.sage)
    # A socket closing after the end adds nothing.
    world.clock.advance(minutes=30)
    live.leave_session(user=world.river, session=ended)
    assert participant(session, world.river).seconds_attended == 30 * 60


def test_a_session_cannot_end_before_it_starts(world):
    session = make_session(world, starts_in=timedelta(hours=2))
    with pytest.raises(ValidationError) as excinfo:
        live.end_session(actor=world.sage, session=session)
    assert "cancel it instead" in error_of(excinfo)["session"][0]
    assert fresh(session).ended_at is None


def test_a_closed_room_can_still_be_ended(world, session):
    live.close_room(actor=world.sage, session=session)
    live.end_session(actor=world.sage, session=session)
    assert fresh(session).phase() == Phase.ENDED


def test_the_default_transcript_is_deleted_for_real_at_the_end(world, session):
    message = say(session, world.river)
    live.pin_message(actor=world.sage, session=session, message_id=message.pk)
    other = make_session(world)
    kept = say(other, world.river, "In another session")
    live.end_session(actor=world.sage, session=session)
    assert not ChatMessage.objects.filter(room_id=session.room_id).exists()
    assert ChatMessage.objects.filter(pk=kept.pk).exists()
    ended = fresh(session)
    assert ended.transcript_purged_at == world.clock.now and ended.pinned_id is None
    assert live.session_payload(ended)["transcript_purged"] is True


def test_a_kept_transcript_stays(world):
    session = make_session(world, transcript=LiveSession.Transcript.KEEP)
    say(session, world.river)
    live.end_session(actor=world.sage, session=session)
    world.clock.advance(days=400)
    live.sweep_sessions()
    assert ChatMessage.objects.filter(room_id=session.room_id).count() == 1
    assert fresh(session).transcript_purged_at is None
    assert live.session_payload(fresh(session))["transcript_purged"] is False


def test_a_transcript_kept_for_days_is_purged_by_the_sweep_then_and_not_before(world):
    session = make_session(world, transcript=LiveSession.Transcript.KEEP_DAYS, transcript_days=3)
    say(session, world.river)
    live.end_session(actor=world.sage, session=session)
    ended_at = world.clock.now
    assert ChatMessage.objects.filter(room_id=session.room_id).count() == 1
    world.clock.advance(days=3, seconds=-1)
    assert live.sweep_sessions() == 0
    assert ChatMessage.objects.filter(room_id=session.room_id).count() == 1
    world.clock.advance(seconds=1)
    assert live.sweep_sessions() == 1
    assert not ChatMessage.objects.filter(room_id=session.room_id).exists()
    assert fresh(session).transcript_purged_at == ended_at + timedelta(days=3)
    assert live.sweep_sessions() == 0


def test_the_fellowship_room_opens_once_after_the_end(world):
    session = make_session(world, fellowship_after=True)
    live.end_session(actor=world.sage, session=session)
    ended = fresh(session)
    room = ended.fellowship_room
    assert room is not None and room.kind == ChatRoom.Kind.GROUP and room.group == world.group
    assert room.state == ChatRoom.State.OPEN
    assert live.session_payload(ended)["fellowship_url"] == room.get_absolute_url()
    world.clock.advance(days=2)
    live.sweep_sessions()
    assert ChatRoom.objects.filter(slug__startswith="fellowship-").count() == 1
    without = make_session(world)
    live.end_session(actor=world.sage, session=without)
    assert fresh(without).fellowship_room_id is None  # only where the leader asked for one
    assert ChatRoom.objects.filter(slug__startswith="fellowship-").count() == 1


def test_the_sweep_ends_overdue_sessions_once(world, settings):
    settings.KINSHIP_SESSION_GRACE_MINUTES = 60
    overdue = make_session(world)  # started 5 minutes ago, planned to end in 55
    present(overdue, world.river)
    say(overdue, world.river)
    world.clock.advance(minutes=55 + 59)
    running = make_session(world)
    live.raise_hand(actor=world.meadow, session=running)
    assert live.sweep_sessions() == 0  # within the grace
    world.clock.advance(minutes=2)
    assert live.sweep_sessions() == 1
    swept = fresh(overdue)
    assert swept.ended_at == overdue.auto_ends_at
    assert swept.room.state == ChatRoom.State.ARCHIVED
    assert not ChatMessage.objects.filter(room_id=overdue.room_id).exists()  # the default
    # Attendance ends with the session, not when the sweep came round.
    row = participant(overdue, world.river)
    assert row.present_since is None and row.seconds_attended == (55 + 60) * 60
    assert logged(overdue, Action.SESSION_ENDED) == []  # nobody ended it
    assert live.sweep_sessions() == 0
    assert fresh(running).ended_at is None and queue(running) == ["meadow"]


def test_cancelled_sessions_are_not_swept(world):
    session = make_session(
        world, starts_in=timedelta(days=-2), cancelled_at=timezone.now() - timedelta(days=3)
    )
    assert live.sweep_sessions() == 0
    assert fresh(session).ended_at is None


# --- sequence numbers and broadcasts ---------------------------------------------------------


@pytest.fixture
def broadcasts(monkeypatch) -> list[tuple[str, dict]]:
    sent: list[tuple[str, dict]] = []
    original = realtime.broadcast_on_commit

    def record(group: str, event: dict) -> None:
        sent.append((group, event))
        original(group, event)

    monkeypatch.setattr(realtime, "broadcast_on_commit", record)
    return sent


def test_every_change_of_state_takes_the_rooms_next_seq_and_broadcasts_it(world, broadcasts):
    script = SessionScript.objects.create(group=world.group, title="P", source="x", html="<p>x</p>")
    session = make_session(world, starts_in=timedelta(hours=1), opening_script=script)
    steps = [
        lambda: live.join_session(user=world.river, session=session),
        lambda: live.join_session(user=world.meadow, session=session),
        lambda: live.open_room(actor=world.sage, session=session),
        lambda: live.raise_hand(actor=world.river, session=session),
        lambda: say(session, world.meadow),  # a message shares the counter
        lambda: live.raise_hand(actor=world.meadow, session=session),
        lambda: live.lower_hand(actor=world.meadow, session=session),
        lambda: live.give_floor(actor=world.sage, session=session),
        lambda: live.set_share_timer(actor=world.sage, session=session, seconds=120),
        lambda: live.pass_floor(actor=world.river, session=session),
        lambda: live.set_lock(actor=world.sage, session=session, locked=True),
        lambda: live.post_reading(actor=world.sage, session=session, which="opening"),
        lambda: live.pin_message(
            actor=world.sage, session=session, message_id=ChatMessage.objects.first().pk
        ),
        lambda: live.hand_over(actor=world.sage, session=session, handle="fern"),
        lambda: live.close_room(actor=world.fern, session=session),
        lambda: live.open_room(actor=world.fern, session=session),
        lambda: live.leave_session(user=world.meadow, session=session),
        lambda: live.end_session(actor=world.fern, session=session),
    ]
    seqs = []
    for step in steps:
        broadcasts.clear()
        before = room_seq(session)
        step()
        seq = room_seq(session)
        assert seq == before + 1, step  # exactly one number per change
        frames = [
            broadcast_frame(event)
            for group, event in broadcasts
            if group == realtime.room_group(session.room_id)
        ]
        states = [frame["session"] for frame in frames if frame["type"] == "session"]
        if states:
            assert fresh(session).state_seq == seq
            assert [state["version"] for state in states] == [seq]
        else:  # a message
            assert [frame["message"]["version"] for frame in frames] == [seq]
        seqs.append(seq)
    assert seqs == sorted(set(seqs))


def test_a_refused_control_takes_no_seq_and_broadcasts_nothing(world, session, broadcasts):
    before = room_seq(session)
    with pytest.raises(ValidationError):
        live.pass_floor(actor=world.sage, session=session)
    with pytest.raises(PermissionDenied):
        live.set_lock(actor=world.river, session=session, locked=True)
    assert room_seq(session) == before and fresh(session).state_seq == 0
    assert broadcasts == []


def test_the_broadcast_state_is_the_state_after_the_change(world, session, broadcasts):
    present(session, world.river)
    broadcasts.clear()
    live.give_floor(actor=world.sage, session=session, handle="river")
    [(_, event)] = broadcasts
    state = event["frame"]["session"]
    assert state == live.session_payload(fresh(session), now=timezone.now())
    assert state["floor"]["handle"] == "river" and state["phase"] == Phase.OPEN
    assert state["present"] == 1 and state["co_leaders"] == ["fern"]


# --- who may use the controls ----------------------------------------------------------------


LEADER_CONTROLS = {
    "open_room": lambda a, s: live.open_room(actor=a, session=s),
    "close_room": lambda a, s: live.close_room(actor=a, session=s),
    "lock": lambda a, s: live.set_lock(actor=a, session=s, locked=True),
    "pin": lambda a, s: live.pin_message(actor=a, session=s, message_id=None),
    "reading": lambda a, s: live.post_reading(actor=a, session=s, which="opening"),
    "give_floor": lambda a, s: live.give_floor(actor=a, session=s, handle="meadow"),
    "give_floor_next": lambda a, s: live.give_floor(actor=a, session=s),
    "pass_floor_of_another": lambda a, s: live.pass_floor(actor=a, session=s),
    "lower_anothers_hand": lambda a, s: live.lower_hand(actor=a, session=s, handle="meadow"),
    "share_timer": lambda a, s: live.set_share_timer(actor=a, session=s, seconds=60),
    "hand_over": lambda a, s: live.hand_over(actor=a, session=s, handle="fern"),
    "remove_participant": lambda a, s: live.remove_participant(
        actor=a, session=s, handle="meadow", reason="x"
    ),
    "mute_participant": lambda a, s: live.mute_participant(
        actor=a, session=s, handle="meadow", minutes=5, reason="x"
    ),
    "end_session": lambda a, s: live.end_session(actor=a, session=s),
}


@pytest.fixture
def busy_session(world) -> LiveSession:
    """An open session where each control above would succeed for a leader: an opening
    reading, a pinned message, meadow's hand up and fern (a co-leader) sharing."""
    script = SessionScript.objects.create(group=world.group, title="P", source="x", html="<p>x</p>")
    session = make_session(world, opening_script=script)
    present(session, world.river, world.meadow, world.fern)
    live.pin_message(
        actor=world.sage, session=session, message_id=say(session, world.sage, "Pinned").pk
    )
    live.raise_hand(actor=world.meadow, session=session)
    live.give_floor(actor=world.sage, session=session, handle="fern")
    return fresh(session)


@pytest.mark.parametrize("control", sorted(LEADER_CONTROLS))
def test_a_member_cannot_use_any_leader_control(world, busy_session, control):
    before = (room_seq(busy_session), ChatMessage.objects.count(), HandRaise.objects.count())
    with pytest.raises(PermissionDenied):
        LEADER_CONTROLS[control](world.river, busy_session)
    after = fresh(busy_session)
    assert (room_seq(after), ChatMessage.objects.count(), HandRaise.objects.count()) == before
    assert after.floor_holder_id == world.fern.pk and after.ended_at is None
    assert after.pinned_id is not None and after.facilitator_id == world.sage.pk
    assert not after.chat_locked and after.share_seconds == 0
    assert not Sanction.objects.exists()
    assert not SessionParticipant.objects.filter(removed_at__isnull=False).exists()
    assert not ModerationLogEntry.objects.exists()


@pytest.mark.parametrize("control", sorted(LEADER_CONTROLS))
def test_the_same_controls_work_for_the_leader(world, busy_session, control):
    """The other half of the table above: each refusal was about the actor, not the state."""
    if control == "open_room":
        live.close_room(actor=world.sage, session=busy_session)
    before = room_seq(busy_session)
    LEADER_CONTROLS[control](world.sage, busy_session)
    if control != "mute_participant":  # a sanction, not a change of the session
        assert room_seq(busy_session) == before + 1


def test_a_member_of_another_group_is_refused_and_a_private_group_stays_hidden(world):
    private = make_group("womens-circle", private=True, join_policy="request")
    join(world.sage, private, Membership.Role.LEADER)
    hidden = make_session(world, group=private, co_leaders=[])
    session = make_session(world)
    with pytest.raises(PermissionDenied):
        live.set_lock(actor=world.stranger, session=session, locked=True)
    with pytest.raises(Http404):
        live.set_lock(actor=world.river, session=hidden, locked=True)
    with pytest.raises(PermissionDenied):
        permissions.check_can_attend_session(world.stranger, session)


# --- attendance ------------------------------------------------------------------------------


def test_attendance_adds_up_the_spans_a_member_was_here(world, session):
    live.join_session(user=world.river, session=session)
    world.clock.advance(minutes=10)
    live.leave_session(user=world.river, session=session)
    world.clock.advance(minutes=5)  # away: not counted
    live.join_session(user=world.river, session=session)
    world.clock.advance(minutes=3)
    assert live.attended_minutes(participant(session, world.river)) == 13
    later = world.clock.now + timedelta(days=1)  # a span still open counts to the end only
    # away from T+10 to T+15; the session is over (with its grace) at T+55+60
    assert live.attended_minutes(participant(session, world.river), now=later) == 10 + 100
    live.leave_session(user=world.river, session=session)
    row = participant(session, world.river)
    assert row.seconds_attended == 13 * 60 and row.present_since is None
    live.leave_session(user=world.river, session=session)  # a stray close: no harm
    assert participant(session, world.river).seconds_attended == 13 * 60


def test_time_before_the_room_opened_is_not_counted(world):
    session = make_session(world, starts_in=timedelta(minutes=30))  # opens in 15 minutes
    live.join_session(user=world.river, session=session)
    live.join_session(user=world.meadow, session=session)
    world.clock.advance(minutes=10)
    live.leave_session(user=world.meadow, session=session)  # left before it opened
    world.clock.advance(minutes=15)
    live.leave_session(user=world.river, session=session)
    assert participant(session, world.meadow).seconds_attended == 0
    assert participant(session, world.river).seconds_attended == 10 * 60


def test_a_room_opened_early_counts_from_the_opening(world):
    session = make_session(world, starts_in=timedelta(hours=2))
    live.join_session(user=world.river, session=session)
    world.clock.advance(minutes=20)
    live.open_room(actor=world.sage, session=session)
    world.clock.advance(minutes=7)
    live.leave_session(user=world.river, session=fresh(session))
    assert participant(session, world.river).seconds_attended == 7 * 60


def test_present_counts_who_is_here_now(world, session):
    present(session, world.river, world.meadow)
    assert live.session_payload(fresh(session))["present"] == 2
    live.leave_session(user=world.meadow, session=session)
    assert live.session_payload(fresh(session))["present"] == 1


def test_an_ended_sessions_state_no_longer_changes(world, session, settings):
    """Past its grace a session is over even before the sweep: a socket leaving then
    closes its attendance and takes no sequence number."""
    present(session, world.river)
    world.clock.advance(minutes=55 + settings.KINSHIP_SESSION_GRACE_MINUTES + 20)
    before = room_seq(session)
    live.leave_session(user=world.river, session=session)
    assert room_seq(session) == before
    row = participant(session, world.river)
    # Counted up to the session's end, not to when the tab was closed.
    assert row.present_since is None
    assert row.seconds_attended == (55 + settings.KINSHIP_SESSION_GRACE_MINUTES) * 60


def test_two_sockets_of_one_member_count_once(world, session):
    live.join_session(user=world.river, session=session)
    world.clock.advance(minutes=2)
    live.join_session(user=world.river, session=session)  # a second tab
    assert participant(session, world.river).sockets == 2
    assert live.session_payload(fresh(session))["present"] == 1
    world.clock.advance(minutes=8)
    live.leave_session(user=world.river, session=session)
    assert participant(session, world.river).present_since is not None  # still here
    world.clock.advance(minutes=5)
    live.leave_session(user=world.river, session=session)
    assert participant(session, world.river).seconds_attended == 15 * 60


def test_first_session_is_true_only_for_the_first_session_in_that_group(world):
    first, second = make_session(world), make_session(world)
    elsewhere_group = make_group("night-owls")
    join(world.river, elsewhere_group)
    elsewhere = make_session(world, group=elsewhere_group, co_leaders=[])
    newcomer = live.join_session(user=world.river, session=first)
    assert newcomer is not None and newcomer.first_session
    assert live.join_session(user=world.river, session=first) is None  # second socket
    live.leave_session(user=world.river, session=first)
    live.leave_session(user=world.river, session=first)
    assert live.join_session(user=world.river, session=first) is None  # came back
    assert live.join_session(user=world.river, session=second) is None
    assert not participant(second, world.river).first_session
    assert live.join_session(user=world.river, session=elsewhere).first_session


def test_nobody_joins_an_ended_session(world, session):
    live.end_session(actor=world.sage, session=session)
    assert live.join_session(user=world.river, session=fresh(session)) is None
    assert not SessionParticipant.objects.filter(user=world.river).exists()


# --- the write path in a session's room ------------------------------------------------------


def test_while_someone_has_the_floor_only_they_and_the_leaders_post(world, session):
    say(session, world.river, "Before anyone shares")
    present(session, world.meadow)
    live.give_floor(actor=world.sage, session=session, handle="meadow")
    with pytest.raises(PermissionDenied) as excinfo:
        say(session, world.river, "Can I add something?")
    assert str(excinfo.value).startswith("meadow has the floor")
    assert "Raise your hand" in str(excinfo.value)
    say(session, world.meadow, "My share")
    say(session, world.sage, "Thank you, meadow")
    say(session, world.fern, "Thank you")
    live.pass_floor(actor=world.meadow, session=session)
    say(session, world.river, "Now I can")
    assert ChatMessage.objects.filter(room_id=session.room_id).count() == 5


def test_a_locked_chat_refuses_members_and_lets_leaders_speak(world, session):
    live.set_lock(actor=world.sage, session=session, locked=True)
    with pytest.raises(PermissionDenied, match="locked the chat"):
        say(session, world.river)
    say(session, world.sage)
    say(session, world.fern)
    room = ChatRoom.objects.select_related("group").get(pk=session.room_id)
    assert not permissions.can_write_room(world.river, room)
    assert permissions.can_write_room(world.fern, room)


@pytest.mark.parametrize(
    ("phase", "refusal"),
    [("scheduled", "not open yet"), ("closed", "closed the room"), ("ended", "over")],
)
def test_only_an_open_room_takes_messages(world, phase, refusal):
    session = make_session(world, starts_in=timedelta(hours=2 if phase == "scheduled" else -0.1))
    if phase == "closed":
        live.close_room(actor=world.sage, session=session)
    elif phase == "ended":
        live.end_session(actor=world.sage, session=session)
    for author in (world.river, world.sage):  # leaders too
        with pytest.raises(PermissionDenied, match=refusal):
            say(session, author)
    assert not ChatMessage.objects.exists()


def test_a_session_left_unended_is_read_only_after_its_grace(world, settings):
    settings.KINSHIP_SESSION_GRACE_MINUTES = 30
    session = make_session(world)
    world.clock.advance(minutes=55 + 29)
    say(session, world.river, "Still here")
    world.clock.advance(minutes=1)
    with pytest.raises(PermissionDenied, match="over"):
        say(session, world.river)


def test_a_site_moderator_outside_the_group_steps_in_but_does_not_post(world, session):
    """As in every room (docs/permissions.md): site moderators read, and write only
    where they are members. The predicate and the check agree."""
    warden = make_user("warden", is_site_moderator=True)
    room = ChatRoom.objects.select_related("group").get(pk=session.room_id)
    permissions.check_can_attend_session(warden, session)
    live.set_lock(actor=warden, session=session, locked=True)  # leads every group
    assert not permissions.can_write_room(warden, room)
    with pytest.raises(PermissionDenied, match="Only members"):
        say(session, warden)
    join(warden, world.group)
    assert permissions.can_write_room(warden, fresh(session).room)
    say(session, warden)


def test_the_write_predicate_and_check_agree_in_a_session(world, session):
    warden = make_user("warden", is_site_moderator=True)
    present(session, world.meadow)
    live.give_floor(actor=world.sage, session=session, handle="meadow")
    users = (world.sage, world.fern, world.river, world.meadow, world.stranger, warden)
    for change in (None, "lock", "close"):
        if change == "lock":
            live.pass_floor(actor=world.sage, session=session)
            live.set_lock(actor=world.sage, session=session, locked=True)
        elif change == "close":
            live.close_room(actor=world.sage, session=session)
        for user in users:
            room = ChatRoom.objects.select_related("group").get(pk=session.room_id)
            try:
                permissions.check_can_write_room(user, room)
                allowed = True
            except PermissionDenied:
                allowed = False
            room = ChatRoom.objects.select_related("group").get(pk=session.room_id)
            assert permissions.can_write_room(user, room) == allowed, (change, user)


# --- queries ---------------------------------------------------------------------------------


def _payload_queries(session: LiveSession) -> int:
    with CaptureQueriesContext(connection) as queries:
        live.session_payload(fresh_for_payload(session))
    return len(queries)


def fresh_for_payload(session: LiveSession) -> LiveSession:
    # As the consumer loads it (forum.consumers.ChatConsumer._session).
    return LiveSession.objects.select_related("group", "room", "fellowship_room").get(pk=session.pk)


def test_the_state_costs_the_same_queries_for_one_hand_or_ten(world, session):
    message = say(session, world.sage, "Pinned")
    live.pin_message(actor=world.sage, session=session, message_id=message.pk)
    present(session, world.river)
    live.give_floor(actor=world.sage, session=session, handle="river")
    live.raise_hand(actor=world.meadow, session=session)
    one = _payload_queries(session)
    for n in range(9):
        member = make_user(f"guest{n}")
        join(member, world.group)
        present(session, member)
        live.raise_hand(actor=member, session=session)
        session.co_leaders.add(member)
    assert len(live.session_payload(fresh(session))["queue"]) == 10
    assert _payload_queries(session) == one
    assert one <= 6


# --- row locks (PostgreSQL) ------------------------------------------------------------------


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["join", "leave"])
def test_joining_and_leaving_take_the_sessions_row_before_the_participants(world, change):
    """Every control locks the session's row and then participants' (end_session closes
    everyone's attendance, remove_participant one's). A socket that joins or leaves must
    take them in the same order: holding a participant's row while it waits for the
    session's, it would deadlock with a leader ending the session as members close their
    tabs, and PostgreSQL would abort one of the two."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL: run with DATABASE_URL=postgres://...")
    session = make_session(world)
    present(session, world.river)
    row = participant(session, world.river)
    held, release = threading.Event(), threading.Event()

    def control() -> None:  # a leader's control in progress: the session's row is taken
        try:
            with transaction.atomic():
                LiveSession.objects.select_for_update().get(pk=session.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    def socket() -> None:
        try:
            step = live.join_session if change == "join" else live.leave_session
            step(user=world.river, session=session)
        finally:
            connection.close()

    threads = [threading.Thread(target=control), threading.Thread(target=socket)]
    threads[0].start()
    assert held.wait(10)
    threads[1].start()
    deadline = monotonic() + 10
    while _lock_waiters() == 0 and monotonic() < deadline:  # the socket waits its turn
        sleep(0.05)
    try:
        with transaction.atomic():  # the row end_session would take next is free
            SessionParticipant.objects.select_for_update(nowait=True).get(pk=row.pk)
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    assert participant(session, world.river).sockets == (2 if change == "join" else 0)
