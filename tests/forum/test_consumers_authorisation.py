"""docs/permissions.md against the chat socket's frames (forum/consumers.py).

- Every chat row of the two action tables, for every role, as the frame a client would
  send: what the table allows succeeds, everything else is refused with an error frame
  (not a close), changes nothing, and the socket keeps working. Anonymous visitors and
  non-members cannot open a room's socket at all (tests/forum/test_ws_matrix.py).
- Objects owned by someone else: another's message, one's own flag, a leader's control by
  a co-leader, the other participant's direct message.
- Isolation: a member of one group never receives another group's events, and frames
  naming another room's messages answer ``not_found`` with none of their words.

Real ASGI stack, real session cookies, real commits (tests/chat_helpers.py).
"""

import pytest

from forum import conversations, live, publishing
from forum.models import ChatMessage, ChatRoom, LiveSession, Membership, User
from moderation.models import Flag
from tests.chat_helpers import ChatSocket, db, login_session, open_socket, room_path, run_async
from tests.conftest import join, make_group, make_user
from tests.forum.test_consumers_sessions import make_session
from tests.permissions_world import (
    ROLES,
    TABLES,
    VISIBILITIES,
    World,
    build_world,
    lift_limits,
)

pytestmark = pytest.mark.django_db(transaction=True)

ACTION_TABLES = {"public": "Public group", "private": "Private group"}
# What a room broadcasts to every socket in it, the sender's included.
BROADCASTS = frozenset({"presence", "heartbeat", "typing", "message", "message_updated",
                        "message_removed"})  # fmt: skip
# Who cannot open a room's socket: for them every frame is refused at the handshake.
NO_SOCKET = {"anonymous": 4401, "non-member": {"public": 4403, "private": 4404}}
# The chat rows of the action tables, each checked by the frame that does it.
CHAT_ROWS = (
    "read chat rooms",
    "write in an open room",
    "write in a read-only room",
    "write in an archived room",
    "edit own chat message",
    "delete own chat message",
    "remove another's chat message",
)
# A former member deleting their own message: allowed by the rules, but the room's socket
# refuses non-members at the handshake; they delete over HTTP instead ("Your data",
# tests/forum/test_views_privacy.py).
NOT_OVER_THE_SOCKET = {("delete own chat message", "non-member")}


@pytest.fixture
def quick(settings):
    return lift_limits(settings)


def test_every_chat_row_of_the_action_tables_is_checked_here():
    for visibility in VISIBILITIES:
        rows = TABLES[ACTION_TABLES[visibility]].rows
        chat_rows = {row for row in rows if "chat" in row or "room" in row}
        assert chat_rows - {"manage rooms (create, rename, make read-only, archive)"} == set(
            CHAT_ROWS
        )


async def _opening(socket: ChatSocket) -> None:
    for kind in ("history", "room", "presence"):
        await socket.expect(kind, skip=())


async def _alive(socket: ChatSocket) -> None:
    """The socket survived: it still answers a resume."""
    await socket.send({"type": "resume", "after": 0})
    await socket.expect("history", skip=BROADCASTS)


async def _outcome(socket: ChatSocket, frame: dict, success: str) -> str:
    """ "yes" when the frame was done (its ``success`` frame arrived), "no" when it was
    refused with ``forbidden``, and the socket still works either way."""
    await socket.send(frame)
    while True:
        answer = await socket.next()
        if answer["type"] == success:
            await _alive(socket)
            return "yes"
        if answer["type"] == "error":
            assert answer["code"] == "forbidden" and answer["message"], answer
            answers_to = answer.get("id", answer.get("client_id"))
            assert answers_to in {frame.get("id"), frame.get("client_id")}, answer
            await _alive(socket)
            return "no"
        assert answer["type"] in BROADCASTS, answer


def _prepare(world: World) -> dict:
    rooms = {state: world.room(state) for state in ChatRoom.State.values}
    return {
        "rooms": rooms,
        "own": world.own_chat_message(),  # written while a member, for those who left
        "own_to_edit": world.own_chat_message(client_id="own-to-edit"),
        "others": world.others_chat_message(),
    }


def _versions(*messages: ChatMessage) -> list[int]:
    return [ChatMessage.objects.get(pk=m.pk).version for m in messages]


@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_chat_frames_match_the_permissions_table(visibility, role):
    world = build_world(visibility, role)
    made = _prepare(world)
    documented = {row: TABLES[ACTION_TABLES[visibility]].rows[row][role] for row in CHAT_ROWS}
    key = login_session(world.actor) if world.actor.is_authenticated else None
    own, own_to_edit, others = made["own"], made["own_to_edit"], made["others"]
    if role in NO_SOCKET:
        refusal = NO_SOCKET[role]
        refusal = refusal[visibility] if isinstance(refusal, dict) else refusal

    async def scenario() -> dict[str, str]:
        sockets: dict[str, ChatSocket] = {}
        for state, room in made["rooms"].items():
            socket = ChatSocket(room_path(room), session_key=key)
            connected, code = await socket.connect()
            if not connected:
                assert role in NO_SOCKET and code == refusal, (state, code)
                return dict.fromkeys(CHAT_ROWS, "no")
            await _opening(socket)
            sockets[state] = socket
        opened, read_only, archived = (sockets[s] for s in ("open", "read_only", "archived"))

        def send(n: int) -> dict:
            return {"type": "send", "client_id": f"c{n}", "body": f"Frame {n}"}

        seen = {
            "read chat rooms": "yes",
            "write in an open room": await _outcome(opened, send(1), "ack"),
            "write in a read-only room": await _outcome(read_only, send(2), "ack"),
            "write in an archived room": await _outcome(archived, send(3), "ack"),
            "edit own chat message": await _outcome(
                opened, {"type": "edit", "id": own_to_edit.pk, "body": "Changed"},
                "message_updated",
            ),
            "delete own chat message": await _outcome(
                opened, {"type": "delete", "id": own.pk}, "message_removed"
            ),
            "remove another's chat message": await _outcome(
                opened, {"type": "delete", "id": others.pk}, "message_removed"
            ),
        }  # fmt: skip
        for socket in sockets.values():
            await socket.disconnect()
        return seen

    before = _versions(own, own_to_edit, others)
    seen = run_async(scenario)
    expected = {
        row: "no" if (row, role) in NOT_OVER_THE_SOCKET else cell
        for row, cell in documented.items()
    }
    assert seen == expected
    # A refused frame changed nothing: each message moved only if its row said yes.
    after = _versions(own, own_to_edit, others)
    rows = ("delete own chat message", "edit own chat message", "remove another's chat message")
    moved = [b != a for b, a in zip(before, after, strict=True)]
    assert moved == [seen[row] == "yes" for row in rows]
    sent = ChatMessage.objects.filter(client_id__in=["c1", "c2", "c3"], author__pk=world.actor.pk)
    writes = ("write in an open room", "write in a read-only room", "write in an archived room")
    assert sent.count() == sum(seen[row] == "yes" for row in writes)


# --- someone else's things -------------------------------------------------------------


@pytest.fixture
def circle(settings):
    lift_limits(settings)
    group = make_group("open-circle")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.LEADER)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    return group, room, river, meadow, sage


def _say(author: User, room: ChatRoom, body: str, client_id: str) -> ChatMessage:
    return publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=client_id
    )[0]


def test_frames_on_someone_elses_things_are_refused_and_change_nothing(circle):
    group, room, river, meadow, sage = circle
    theirs = _say(meadow, room, "Meadow's own words", "m1")
    mine = _say(river, room, "River's own words", "r1")
    # A direct conversation: sage leads the group but is an ordinary participant here.
    request = conversations.request_conversation(starter=meadow, recipient=sage, note="Hi")
    conversation = conversations.accept(user=sage, conversation=request)
    direct = ChatRoom.objects.select_related("group").get(pk=conversation.room_id)
    dm = _say(meadow, direct, "Just between us", "d1")
    # A session in which river is a co-leader: co-leaders run the floor, but mute nobody.
    session = make_session(group, sage)
    session.co_leaders.add(river)
    before = _versions(theirs, mine, dm)

    async def scenario() -> list[dict]:
        river_key, sage_key = await db(login_session, river), await db(login_session, sage)
        errors = []
        socket = await open_socket(room, session_key=river_key)
        await _opening(socket)
        for frame in (
            {"type": "edit", "id": theirs.pk, "body": "Words put in meadow's mouth"},
            {"type": "flag", "id": mine.pk, "reason": "spam"},
        ):
            await socket.send(frame)
            errors.append(await socket.expect("error"))
            await _alive(socket)
        await socket.disconnect()
        in_direct = await open_socket(direct, session_key=sage_key)
        await _opening(in_direct)
        await in_direct.send({"type": "delete", "id": dm.pk})
        errors.append(await in_direct.expect("error"))
        await _alive(in_direct)
        await in_direct.disconnect()
        meadow_socket = await open_socket(session.room, meadow)
        await meadow_socket.collect(0.5)  # the opening frames
        co_leader = await open_socket(session.room, session_key=river_key)
        await co_leader.collect(0.5)
        await co_leader.send({"type": "mute_participant", "handle": "meadow", "minutes": 5,
                              "reason": "Talking over others"})  # fmt: skip
        errors.append(await co_leader.expect("error", skip={"presence", "heartbeat", "session"}))
        await co_leader.send({"type": "lock", "locked": True})  # a co-leader runs the floor
        await co_leader.expect("done", skip={"presence", "heartbeat", "session"}, op="lock")
        for sock in (co_leader, meadow_socket):
            await sock.disconnect()
        return errors

    errors = run_async(scenario)
    assert [(e["code"], e.get("id", e.get("op"))) for e in errors] == [
        ("forbidden", theirs.pk),
        ("forbidden", mine.pk),
        ("forbidden", dm.pk),
        ("forbidden", "mute_participant"),
    ]
    assert _versions(theirs, mine, dm) == before
    assert not meadow.sanctions.exists()
    assert LiveSession.objects.get(pk=session.pk).chat_locked


# --- one group's room never hears another's ------------------------------------------------


def test_a_member_of_one_group_never_receives_another_groups_events(circle):
    _group, room, river, meadow, _sage = circle
    elsewhere = make_group("far-harbour", private=True)
    heron, kestrel = make_user("heron"), make_user("kestrel")
    join(heron, elsewhere, Membership.Role.LEADER)
    join(kestrel, elsewhere)
    their_room = ChatRoom.objects.create(group=elsewhere, name="Night", slug="night")
    secret = _say(kestrel, their_room, "A far harbour secret", "k0")
    _say(meadow, room, "Good evening, everyone", "m0")
    session = make_session(elsewhere, heron)
    secret_words = ("far harbour", "Far Harbour", "kestrel", "heron", "Night", "night")

    def their_activity() -> None:
        said = _say(kestrel, their_room, "Far harbour news tonight", "k1")
        publishing.edit_chat_message(
            editor=kestrel, message=ChatMessage.objects.get(pk=said.pk), body="Far harbour, edited"
        )
        publishing.withdraw_chat_message(
            author=kestrel, message=ChatMessage.objects.get(pk=said.pk)
        )
        room_there = ChatRoom.objects.get(pk=their_room.pk)
        room_there.name = "Night owls"
        room_there.save()
        live.set_lock(actor=heron, session=LiveSession.objects.get(pk=session.pk), locked=True)

    async def scenario():
        river_socket = await open_socket(room, river)
        await _opening(river_socket)
        kestrel_socket = await open_socket(their_room, kestrel)
        await _opening(kestrel_socket)
        await kestrel_socket.send({"type": "typing"})
        await db(their_activity)
        busy = {"presence", "heartbeat", "typing", "message", "message_updated"}
        await kestrel_socket.expect("message_removed", skip=busy)
        # Frames from group A naming group B's message: not found, and none of its words.
        answers = []
        for frame in (
            {"type": "edit", "id": secret.pk, "body": "x"},
            {"type": "delete", "id": secret.pk},
            {"type": "flag", "id": secret.pk, "reason": "spam"},
        ):
            await river_socket.send(frame)
            answers.append(await river_socket.expect("error"))
        await river_socket.send({"type": "resume", "after": 0})
        answers.append(await river_socket.expect("history"))
        await river_socket.collect(0.5)  # anything late from the other room lands in frames
        for socket in (river_socket, kestrel_socket):
            await socket.disconnect()
        return river_socket.frames, answers

    frames, answers = run_async(scenario)
    assert [a.get("code") for a in answers[:3]] == ["not_found"] * 3
    assert [m["author"] for m in answers[3]["messages"]] == ["meadow"]
    for frame in frames:
        assert frame["type"] in {"history", "room", "presence", "heartbeat", "error"}, frame
        text = str(frame)
        assert not any(word in text for word in secret_words), frame
    assert not Flag.objects.filter(flagger=river).exists()
