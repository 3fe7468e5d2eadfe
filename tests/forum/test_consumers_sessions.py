"""A live session over its room's WebSocket: docs/chat-protocol.md, "Live sessions".

Like tests/forum/test_consumers.py these talk to the real ASGI stack with real signed-in
members, and writes commit for real so the broadcasts reach every socket.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from forum import live
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
from tests.chat_helpers import ChatSocket, db, login_session, open_socket, room_path, run_async
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db(transaction=True)

RECHECK = 0.2
REVOKED_WITHIN = 5.0


@dataclass
class Meeting:
    group: SupportGroup
    session: LiveSession
    sage: User  # leads the group and the session
    river: User  # member, never at a session of this group before
    meadow: User  # member


@pytest.fixture
def meeting(settings) -> Meeting:
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    group = make_group("open-circle")
    sage, river, meadow = make_user("sage"), make_user("river"), make_user("meadow")
    join(sage, group, Membership.Role.LEADER)
    join(river, group)
    join(meadow, group)
    return Meeting(group, make_session(group, sage), sage, river, meadow)


def make_session(group: SupportGroup, leader: User, **extra) -> LiveSession:
    """An open session (it started five minutes ago) with its own room."""
    number = LiveSession.objects.count() + 1
    room = ChatRoom.objects.create(
        group=group, name=f"Session {number}", slug=f"session-{number}", kind=ChatRoom.Kind.SESSION
    )
    starts = timezone.now() - timedelta(minutes=5)
    return LiveSession.objects.create(
        group=group,
        room=room,
        title="Tuesday share",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        leader=leader,
        facilitator=leader,
        welcome_source="Welcome, we are glad you came.",
        welcome_html="<p>Welcome, we are glad you came.</p>",
        **extra,
    )


def fresh(session: LiveSession) -> LiveSession:
    return LiveSession.objects.get(pk=session.pk)


async def connect(meeting: Meeting, user: User, **kwargs) -> tuple[ChatSocket, dict]:
    """A socket in the session's room, past its opening frames; returns (socket, frames by
    type). A session room opens with session, history, room, session again (with the
    newcomer counted in), welcome (newcomers only), presence, in that order."""
    socket = await open_socket(meeting.session.room, user, **kwargs)
    opening = {}
    for kind in ("session", "history", "room", "session"):
        opening[kind] = await socket.expect(kind, skip=())
    frame = await socket.next()
    if frame["type"] == "welcome":
        opening["welcome"] = frame
        frame = await socket.next()
    assert frame["type"] == "presence", frame
    return socket, opening


async def until(socket: ChatSocket, kind: str, *, timeout: float = 3, **fields) -> dict:
    """The next frame of ``kind`` (with ``fields``), passing over everything else."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            frame = await socket.next(max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            raise AssertionError(
                f"no {kind!r} frame {fields or ''} within {timeout}s: {socket.frames}"
            ) from None
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


async def state_where(socket: ChatSocket, check) -> dict:
    """The next ``session`` state for which ``check(state)`` holds."""
    while True:
        state = (await until(socket, "session"))["session"]
        if check(state):
            return state


def state_seq(session: LiveSession) -> int:
    return LiveSession.objects.values_list("state_seq", flat=True).get(pk=session.pk)


def room_seq(session: LiveSession) -> int:
    return ChatRoom.objects.values_list("last_seq", flat=True).get(pk=session.room_id)


def participant(session: LiveSession, user: User) -> SessionParticipant:
    return SessionParticipant.objects.get(session=session, user=user)


# --- joining ---------------------------------------------------------------------------------


def test_connecting_sends_the_current_state(meeting):
    def prepare():
        live.join_session(user=meeting.meadow, session=meeting.session)
        live.raise_hand(actor=meeting.meadow, session=meeting.session)
        live.set_lock(actor=meeting.sage, session=meeting.session, locked=True)
        live.leave_session(user=meeting.meadow, session=meeting.session)

    async def scenario():
        await db(prepare)
        socket, opening = await connect(meeting, meeting.sage)
        state = opening["session"]["session"]
        assert state["id"] == meeting.session.pk and state["phase"] == "open"
        assert state["locked"] is True and state["queue"] == ["meadow"]
        assert state["facilitator"] == "sage" and state["floor"] is None
        assert state["present"] == 1  # sage, just counted
        # Its version is the room's latest number: the join itself was a change.
        assert state["version"] == await db(state_seq, meeting.session)
        assert state["version"] == await db(room_seq, meeting.session)
        assert opening["history"]["latest_seq"] < state["version"]
        await socket.disconnect()

    run_async(scenario)


def test_a_newcomer_is_welcomed_once_and_nobody_else_hears_it(meeting):
    async def scenario():
        sage, opening = await connect(meeting, meeting.sage)
        assert "welcome" not in opening  # leaders run the meeting, even their first one
        river, opening = await connect(meeting, meeting.river)
        assert opening["welcome"] == {
            "type": "welcome",
            "html": "<p>Welcome, we are glad you came.</p>",
        }
        second, opening = await connect(meeting, meeting.river)  # another tab
        assert "welcome" not in opening
        frames = await sage.collect(0.5) + await river.collect(0.2)
        assert [f for f in frames if f["type"] == "welcome"] == []
        for socket in (sage, river, second):
            await socket.disconnect()
        # A later session of the same group: river is no newcomer any more.
        later = await db(make_session, meeting.group, meeting.sage)
        meeting.session = later
        river, opening = await connect(meeting, meeting.river)
        assert "welcome" not in opening
        await river.disconnect()

    run_async(scenario)


def test_no_welcome_is_sent_when_the_session_has_none(meeting):
    async def scenario():
        await db(
            LiveSession.objects.filter(pk=meeting.session.pk).update,
            welcome_source="",
            welcome_html="",
        )
        river, opening = await connect(meeting, meeting.river)
        assert "welcome" not in opening
        assert [f for f in await river.collect(0.3) if f["type"] == "welcome"] == []
        await river.disconnect()

    run_async(scenario)
    assert participant(meeting.session, meeting.river).first_session


def test_a_removed_participant_cannot_come_back(meeting):
    def remove():
        live.remove_participant(
            actor=meeting.sage, session=meeting.session, handle="river", reason="Spam links"
        )

    async def scenario():
        river, _ = await connect(meeting, meeting.river)
        await river.disconnect()
        await db(remove)
        socket = ChatSocket(
            room_path(meeting.session.room), session_key=await db(login_session, meeting.river)
        )
        assert await socket.connect() == (False, 4403)

    run_async(scenario)


def test_a_full_session_refuses_members_but_not_its_leaders(meeting):
    async def scenario():
        await db(LiveSession.objects.filter(pk=meeting.session.pk).update, capacity=1)
        river, _ = await connect(meeting, meeting.river)
        socket = ChatSocket(
            room_path(meeting.session.room), session_key=await db(login_session, meeting.meadow)
        )
        assert await socket.connect() == (False, 4403)
        sage, _ = await connect(meeting, meeting.sage)
        await sage.disconnect()
        await river.disconnect()
        meadow, _ = await connect(meeting, meeting.meadow)  # river's seat is free again
        await meadow.disconnect()

    run_async(scenario)


# --- controls --------------------------------------------------------------------------------


def test_a_leaders_control_is_done_and_every_socket_sees_the_new_state(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        meadow, _ = await connect(meeting, meeting.meadow)
        await sage.send({"type": "lock", "locked": True})
        assert await until(sage, "done") == {"type": "done", "op": "lock"}
        version = await db(state_seq, meeting.session)
        for socket in (sage, river, meadow):
            state = await state_where(socket, lambda s: s["locked"])
            assert state["version"] == version == await db(room_seq, meeting.session)
        # A member's own control: raising a hand.
        await river.send({"type": "raise_hand"})
        assert await until(river, "done") == {"type": "done", "op": "raise_hand"}
        for socket in (sage, river, meadow):
            await state_where(socket, lambda s: s["queue"] == ["river"])
        await sage.send({"type": "give_floor"})
        await until(sage, "done", op="give_floor")
        for socket in (sage, river, meadow):
            state = await state_where(socket, lambda s: s["floor"] is not None)
            assert state["floor"]["handle"] == "river" and state["queue"] == []
        await river.send({"type": "pass_floor"})
        await until(river, "done", op="pass_floor")
        await state_where(meadow, lambda s: s["floor"] is None)
        for socket in (sage, river, meadow):
            await socket.disconnect()

    run_async(scenario)
    assert fresh(meeting.session).chat_locked


def test_a_reading_reaches_everyone_as_a_message(meeting):
    async def scenario():
        script = await db(
            SessionScript.objects.create,
            group=meeting.group,
            title="Preamble",
            source="We meet to share.",
            html="<p>We meet to share.</p>",
        )
        await db(LiveSession.objects.filter(pk=meeting.session.pk).update, opening_script=script)
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        await sage.send({"type": "reading", "which": "opening"})
        await until(sage, "done", op="reading")
        message = (await until(river, "message"))["message"]
        assert message["html"] == "<p>We meet to share.</p>" and message["author"] == "sage"
        await sage.send({"type": "reading", "which": "closing"})
        error = await until(sage, "error")
        assert error["code"] == "invalid" and error["op"] == "reading"
        assert error["message"] == "This session has no closing reading."
        await sage.disconnect()
        await river.disconnect()

    run_async(scenario)


BAD_CONTROLS = [
    {"type": "lock"},
    {"type": "lock", "locked": "yes"},
    {"type": "lock", "locked": 1},
    {"type": "pin", "id": "3"},
    {"type": "pin", "id": True},
    {"type": "share_timer"},
    {"type": "share_timer", "seconds": "5"},
    {"type": "share_timer", "seconds": 2.5},
    {"type": "give_floor", "handle": 5},
    {"type": "lower_hand", "handle": ["river"]},
    {"type": "reading"},
    {"type": "hand_over"},
    {"type": "remove_participant", "handle": "river"},
    {"type": "remove_participant", "reason": "x"},
    {"type": "mute_participant", "handle": "river", "reason": "x", "minutes": "5"},
    {"type": "mute_participant", "handle": "river", "minutes": 5},
]


def test_ill_formed_controls_are_missing_field_and_the_socket_stays_open(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        before = await db(room_seq, meeting.session)
        for frame in BAD_CONTROLS:
            await sage.send(frame)
            error = await until(sage, "error")
            assert error["code"] == "missing_field", (frame, error)
            # The op: the console shows the error beside the control that sent it.
            assert error["op"] == frame["type"] and error["message"], frame
        assert await db(room_seq, meeting.session) == before  # nothing changed
        await sage.send({"type": "share_timer", "seconds": 120})
        await until(sage, "done", op="share_timer")
        await sage.disconnect()

    run_async(scenario)
    assert fresh(meeting.session).share_seconds == 120


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "lock", "locked": True},
        {"type": "give_floor", "handle": "meadow"},
        {"type": "give_floor"},
        {"type": "share_timer", "seconds": 60},
        {"type": "pin"},
        {"type": "reading", "which": "opening"},
        {"type": "open_room"},
        {"type": "close_room"},
        {"type": "end_session"},
        {"type": "hand_over", "handle": "sage"},
        {"type": "lower_hand", "handle": "meadow"},
        {"type": "remove_participant", "handle": "meadow", "reason": "x"},
        {"type": "mute_participant", "handle": "meadow", "minutes": 5, "reason": "x"},
    ],
    ids=lambda frame: "-".join(str(v) for v in frame.values()),
)
def test_a_member_sending_a_leader_control_is_forbidden(meeting, frame):
    async def scenario():
        meadow, _ = await connect(meeting, meeting.meadow)
        await db(live.raise_hand, actor=meeting.meadow, session=meeting.session)
        river, _ = await connect(meeting, meeting.river)
        before = await db(room_seq, meeting.session)
        await river.send(frame)
        error = await until(river, "error")
        assert error["code"] == "forbidden" and error["op"] == frame["type"]
        assert error["message"]
        assert await db(room_seq, meeting.session) == before
        await river.send({"type": "raise_hand"})  # still connected, still a member
        await until(river, "done", op="raise_hand")
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    session = fresh(meeting.session)
    assert session.ended_at is None and not session.chat_locked and session.floor_holder is None


def test_controls_in_an_ordinary_room_are_not_a_session(meeting):
    async def scenario():
        room = await db(
            ChatRoom.objects.create, group=meeting.group, name="General", slug="general"
        )
        socket = await open_socket(room, meeting.sage)
        await until(socket, "presence")
        for frame in ({"type": "raise_hand"}, {"type": "lock", "locked": True}, {"type": "lock"}):
            await socket.send(frame)
            error = await until(socket, "error")
            assert error["code"] == "not_a_session" and error["op"] == frame["type"], frame
        await socket.disconnect()

    run_async(scenario)


# --- the floor over the socket ---------------------------------------------------------------


def test_a_send_without_the_floor_is_refused_with_who_has_it(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        meadow, _ = await connect(meeting, meeting.meadow)
        await sage.send({"type": "give_floor", "handle": "meadow"})
        await state_where(river, lambda s: s["floor"] is not None)
        await river.send({"type": "send", "client_id": "c-1", "body": "Me too!"})
        error = await until(river, "error")
        assert error["code"] == "forbidden" and error["client_id"] == "c-1"
        assert error["message"].startswith("meadow has the floor")
        await meadow.send({"type": "send", "client_id": "c-2", "body": "My share"})
        await until(meadow, "ack", client_id="c-2")
        await sage.send({"type": "send", "client_id": "c-3", "body": "Thank you"})
        await until(sage, "ack", client_id="c-3")
        for socket in (sage, river, meadow):
            await socket.disconnect()

    run_async(scenario)
    assert not ChatMessage.objects.filter(client_id="c-1").exists()


def test_resume_sends_the_session_state_before_the_history(meeting):
    async def scenario():
        river, opening = await connect(meeting, meeting.river)
        seen = opening["session"]["session"]["version"]
        await river.disconnect()  # away while the state changes and someone speaks
        await db(live.set_lock, actor=meeting.sage, session=meeting.session, locked=True)
        await db(
            ChatMessage.objects.create,
            room=meeting.session.room,
            author=meeting.sage,
            client_id="x",
            source="Locked for the reading",
            html="<p>Locked for the reading</p>",
            seq=await db(ChatRoom.take_seq, meeting.session.room_id),
            version=await db(room_seq, meeting.session),
        )
        river, _ = await connect(meeting, meeting.river)
        await river.collect(0.3)
        await river.send({"type": "resume", "after": seen})
        state = await river.expect("session")  # first, before the history
        assert state["session"]["locked"] is True
        history = await river.expect("history", skip={"presence", "heartbeat", "typing"})
        assert [m["source"] for m in history["messages"]] == ["Locked for the reading"]
        assert history["latest_seq"] == state["session"]["version"]
        await river.disconnect()

    run_async(scenario)


# --- removal and leaving ---------------------------------------------------------------------


@pytest.fixture
def quick_recheck(settings):
    settings.KINSHIP_CHAT_RECHECK_SECONDS = RECHECK


@pytest.mark.usefixtures("quick_recheck")
def test_a_removed_participants_socket_closes_with_4403(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        started = time.monotonic()
        await sage.send(
            {"type": "remove_participant", "handle": "river", "reason": "Harassing others"}
        )
        await until(sage, "done", op="remove_participant")
        assert await river.closed(timeout=REVOKED_WITHIN) == 4403
        assert time.monotonic() - started < REVOKED_WITHIN
        await river.disconnect()
        state = await state_where(sage, lambda s: s["present"] == 1)
        assert state["queue"] == []
        await sage.disconnect()

    run_async(scenario)
    assert participant(meeting.session, meeting.river).removed_at is not None


@pytest.mark.usefixtures("quick_recheck")
def test_a_session_that_is_not_touched_keeps_its_sockets_open(meeting):
    async def scenario():
        river, _ = await connect(meeting, meeting.river)
        await river.collect(RECHECK + 1.2)  # two watch rounds
        await river.send({"type": "raise_hand"})
        await until(river, "done", op="raise_hand")
        await river.disconnect()

    run_async(scenario)


def test_disconnecting_closes_the_attendance_span(meeting):
    async def scenario():
        river, _ = await connect(meeting, meeting.river)
        second, _ = await connect(meeting, meeting.river)
        row = await db(participant, meeting.session, meeting.river)
        assert row.sockets == 2 and row.present_since is not None
        await second.disconnect()
        row = await db(participant, meeting.session, meeting.river)
        assert row.sockets == 1 and row.present_since is not None
        await river.disconnect()
        row = await db(participant, meeting.session, meeting.river)
        assert row.sockets == 0 and row.present_since is None

    run_async(scenario)


def test_leaving_takes_nobodys_hand_down_but_updates_who_is_here(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        await river.send({"type": "raise_hand"})
        await until(river, "done", op="raise_hand")
        await state_where(sage, lambda s: s["present"] == 2 and s["queue"] == ["river"])
        await river.disconnect()
        state = await state_where(sage, lambda s: s["present"] == 1)
        assert state["queue"] == ["river"]
        await sage.send({"type": "give_floor"})  # nobody here has a hand up
        error = await until(sage, "error")
        assert error["code"] == "invalid" and error["op"] == "give_floor"
        await sage.disconnect()

    run_async(scenario)
    assert HandRaise.objects.count() == 1


def test_ending_the_session_archives_the_room_for_every_socket(meeting):
    async def scenario():
        sage, _ = await connect(meeting, meeting.sage)
        river, _ = await connect(meeting, meeting.river)
        await sage.send({"type": "end_session"})
        await until(sage, "done", op="end_session")
        for socket in (sage, river):
            assert (await until(socket, "room"))["state"] == "archived"
            await state_where(socket, lambda s: s["phase"] == "ended")
        await river.send({"type": "send", "client_id": "late", "body": "Bye"})
        error = await until(river, "error")
        assert error["code"] == "forbidden" and "over" in error["message"]
        await sage.send({"type": "end_session"})
        error = await until(sage, "error")
        assert error["code"] == "invalid" and error["message"] == "This session has already ended."
        await sage.disconnect()
        await river.disconnect()

    run_async(scenario)
    assert participant(meeting.session, meeting.river).present_since is None
