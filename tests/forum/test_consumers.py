"""The chat WebSocket against its contract, docs/chat-protocol.md.

Every test talks to ``forum.asgi.application``, the real stack: origin validation
against ALLOWED_HOSTS, the session cookie through AuthMiddlewareStack, the URL router
and forum.consumers.ChatConsumer. Members sign in with real sessions
(tests/chat_helpers.py). Writes commit for real (transactional tests), so the
broadcasts that happen on commit reach the other sockets.
"""

import json
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from forum import consumers, memberships, publishing
from forum.models import ChatMessage, ChatRoom, Membership, RoomReadState, SupportGroup, User
from moderation import actions
from tests.chat_helpers import (
    ChatSocket,
    db,
    login_session,
    open_socket,
    room_path,
    run_async,
    session_store,
)
from tests.conftest import join, make_group, make_user
from tests.xss_oracle import assert_no_executable_html

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE_FIELDS = {
    "id", "seq", "version", "author", "html", "source", "created_at", "edited", "removed",
    "removed_by", "client_id",
}  # fmt: skip
# A sender's own message comes back to it as a broadcast, after the ack.
OWN_ECHO = {"presence", "heartbeat", "typing", "message"}
# Re-checks and heartbeats are slow on purpose in production; fast here.
RECHECK = 0.2
REVOKED_WITHIN = 5.0


@dataclass
class Chat:
    group: SupportGroup
    room: ChatRoom
    river: User  # member
    meadow: User  # member
    sage: User  # leader


def make_room(group: SupportGroup, slug: str, state: str = ChatRoom.State.OPEN) -> ChatRoom:
    return ChatRoom.objects.create(group=group, name=slug.title(), slug=slug, state=state)


@pytest.fixture
def chat(settings) -> Chat:
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    group = make_group("open-circle")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.LEADER)
    return Chat(group, make_room(group, "general"), river, meadow, sage)


def post(room: ChatRoom, author: User, body: str, client_id: str | None = None) -> ChatMessage:
    """A message through the write path (as if sent from another device)."""
    message, created = publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=client_id or f"c-{time.monotonic_ns()}"
    )
    assert created
    return message


def fresh(message: ChatMessage) -> ChatMessage:
    return ChatMessage.objects.select_related("room__group").get(pk=message.pk)


def last_seq(room: ChatRoom) -> int:
    return ChatRoom.objects.values_list("last_seq", flat=True).get(pk=room.pk)


async def settle(socket: ChatSocket) -> dict:
    """Read the frames every connection starts with, in order; return the history."""
    history = await socket.expect("history", skip=())
    await socket.expect("room", skip=())
    await socket.expect("presence", skip=())
    return history


async def settled(room: ChatRoom, *users: User) -> list[ChatSocket]:
    """Sockets of ``users`` in ``room``, all opened, then each read past its opening frames."""
    sockets = [await open_socket(room, user) for user in users]
    for socket in sockets:
        await settle(socket)
    return sockets


async def refused(room: ChatRoom, user: User | None = None, **kwargs) -> tuple[bool, object]:
    session_key = kwargs.pop("session_key", None)
    if session_key is None and user is not None:
        session_key = await db(login_session, user)
    socket = ChatSocket(kwargs.pop("path", None) or room_path(room), session_key=session_key,
                        **kwargs)  # fmt: skip
    result = await socket.connect()
    if result[0]:
        await socket.disconnect()
    return result


# --- the handshake ------------------------------------------------------------------


def test_anonymous_visitors_are_refused_with_4401(chat):
    async def scenario():
        assert await refused(chat.room) == (False, 4401)
        # A cookie naming no session is no better.
        assert await refused(chat.room, session_key="no-such-session-key-0123456789") == (
            False,
            4401,
        )

    run_async(scenario)


def test_a_non_member_of_a_public_group_is_refused_with_4403(chat):
    outsider = make_user("stranger")
    run_async(lambda: _expect_refusal(chat.room, outsider, 4403))


async def _expect_refusal(room, user, code):
    assert await refused(room, user) == (False, code)


def test_rooms_of_a_private_group_do_not_exist_for_outsiders(chat):
    private = make_group("womens-circle", private=True, join_policy="request")
    room = make_room(private, "general")
    join(chat.meadow, private)
    outsider = make_user("stranger")
    missing = ChatRoom(group=private, slug="no-such-room")

    async def scenario():
        # Same answer as for a room that does not exist: 4404, never 4403.
        assert await refused(room, outsider) == (False, 4404)
        assert await refused(room, chat.river) == (False, 4404)  # a member elsewhere only
        assert await refused(missing, outsider) == (False, 4404)
        socket = await open_socket(room, chat.meadow)  # a member of it gets in
        await settle(socket)
        await socket.disconnect()

    run_async(scenario)


def test_unknown_rooms_and_groups_are_refused_with_4404(chat):
    async def scenario():
        for path in (
            "/ws/g/open-circle/chat/no-such-room/",
            "/ws/g/no-such-group/chat/general/",
        ):
            assert await refused(chat.room, chat.river, path=path) == (False, 4404), path

    run_async(scenario)


def test_a_site_moderator_may_read_any_room_but_writes_only_where_a_member(chat):
    private = make_group("womens-circle", private=True, join_policy="request")
    room = make_room(private, "general")
    join(chat.meadow, private)
    said = post(room, chat.meadow, "Only for the circle")
    warden = make_user("warden", is_site_moderator=True)

    async def scenario():
        socket = await open_socket(room, warden)
        history = await settle(socket)
        assert [m["id"] for m in history["messages"]] == [said.pk]
        await socket.send({"type": "send", "client_id": "w1", "body": "Hello all"})
        error = await socket.expect("error")
        assert (error["code"], error["client_id"]) == ("forbidden", "w1")
        await socket.disconnect()

    run_async(scenario)
    assert ChatMessage.objects.filter(room=room).count() == 1


def test_the_origin_must_be_one_of_the_allowed_hosts(chat):
    async def scenario():
        key = await db(login_session, chat.river)
        for origin in (
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "https://localhost.evil.example",
            "null",
            None,  # no Origin header at all
        ):
            connected, code = await refused(chat.room, session_key=key, origin=origin)
            assert connected is False, origin
            # Refused by the origin check, before the consumer looked at anything.
            assert code not in {4401, 4403, 4404}, (origin, code)
        for origin in ("http://127.0.0.1", "http://localhost", "http://localhost:8000"):
            socket = await open_socket(chat.room, session_key=key, origin=origin)
            await settle(socket)
            await socket.disconnect()

    run_async(scenario)


def test_an_inactive_account_is_refused(chat):
    key = login_session(chat.river)  # signed in while still active
    User.objects.filter(pk=chat.river.pk).update(is_active=False)
    # Its session no longer authenticates anyone: the handshake treats it as signed out.
    run_async(lambda: _expect_refusal_with_key(chat.room, key, 4401))


async def _expect_refusal_with_key(room, key, code):
    assert await refused(room, session_key=key) == (False, code)


def test_a_session_from_before_a_password_change_is_refused(chat):
    key = login_session(chat.river)
    chat.river.set_password("a-new-quiet-password-88")
    chat.river.save()
    run_async(lambda: _expect_refusal_with_key(chat.room, key, 4401))


# --- frames the server refuses --------------------------------------------------------


def test_with_redis_unreachable_as_the_socket_starts_it_says_try_again_later(
    chat, monkeypatch, caplog
):
    from channels.layers import get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    async def scenario():
        # The pub/sub layer subscribes to the socket's channel as Channels starts it.
        monkeypatch.setattr(get_channel_layer(), "new_channel", down)
        socket = ChatSocket(room_path(chat.room), session_key=await db(login_session, chat.river))
        connected, _ = await socket.connect()
        assert connected  # accepted, so the browser sees the close code, not a failure
        frame = await socket.next()
        assert frame["type"] == "error" and frame["code"] == "unavailable"
        assert await socket.closed() == consumers.CLOSE_TRY_AGAIN

    run_async(scenario)
    assert [r.levelname for r in caplog.records if r.name.startswith("forum.")] == ["WARNING"]


def test_a_frame_over_8_kib_closes_the_socket_with_1009(chat):
    def frame_of(size: int, filler: str) -> str:
        start, end = '{"type": "typing", "pad": "', '"}'
        room = size - len(start.encode()) - len(end)
        pad = filler * (room // len(filler.encode()))
        text = start + pad + "x" * (room - len(pad.encode())) + end
        assert len(text.encode()) == size
        return text

    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        await socket.send_text(frame_of(consumers.MAX_FRAME_BYTES, "x"))  # exactly 8 KiB
        await socket.expect("typing", handle="river")
        # Bytes count, not characters: about 4,100 characters, 8,194 bytes.
        big = frame_of(consumers.MAX_FRAME_BYTES + 2, "é")
        assert len(big) < consumers.MAX_FRAME_BYTES
        await socket.send_text(big)
        assert await socket.closed() == 1009
        await socket.disconnect()

    run_async(scenario)


async def _assert_still_works(socket: ChatSocket, client_id: str = "still-here") -> dict:
    await socket.send({"type": "send", "client_id": client_id, "body": "Still here."})
    return await socket.expect("ack", client_id=client_id, skip=OWN_ECHO)


def test_a_binary_frame_is_refused_and_the_socket_stays_open(chat):
    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        await socket.send_bytes(
            json.dumps({"type": "send", "client_id": "b", "body": "x"}).encode()
        )
        error = await socket.expect("error")
        assert error["code"] == "binary_unsupported"
        await _assert_still_works(socket)
        await socket.disconnect()

    run_async(scenario)
    assert not ChatMessage.objects.filter(client_id="b").exists()


BAD_FRAMES = [
    # (raw text, error code)
    ("{not json", "bad_json"),
    ("", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('"send"', "bad_json"),
    ("42", "bad_json"),
    ("null", "bad_json"),
    ("{}", "unknown_type"),
    ('{"type": "shout"}', "unknown_type"),
    ('{"type": 5}', "unknown_type"),
    ('{"type": null}', "unknown_type"),
    ('{"type": "SEND", "client_id": "u", "body": "x"}', "unknown_type"),
    ('{"type": "send", "body": "no client id"}', "missing_field"),
    ('{"type": "send", "client_id": "m1"}', "missing_field"),
    ('{"type": "send", "client_id": "m2", "body": null}', "missing_field"),
    ('{"type": "send", "client_id": "m3", "body": 12}', "missing_field"),
    ('{"type": "send", "client_id": 7, "body": "x"}', "missing_field"),
    ('{"type": "edit", "body": "x"}', "missing_field"),
    ('{"type": "edit", "id": "1", "body": "x"}', "missing_field"),
    ('{"type": "edit", "id": true, "body": "x"}', "missing_field"),
    ('{"type": "edit", "id": 1}', "missing_field"),
    ('{"type": "delete"}', "missing_field"),
    ('{"type": "delete", "id": 1.5}', "missing_field"),
    ('{"type": "resume"}', "missing_field"),
    ('{"type": "resume", "after": -1}', "missing_field"),
    ('{"type": "resume", "after": "3"}', "missing_field"),
    ('{"type": "read"}', "missing_field"),
    ('{"type": "read", "seq": "2"}', "missing_field"),
    # Numbers far beyond any sequence or id are not a crash.
    ('{"type": "edit", "id": 100000000000000000000000000000, "body": "x"}', "not_found"),
    ('{"type": "delete", "id": -1}', "not_found"),
]


def test_bad_frames_get_an_error_frame_and_the_socket_keeps_working(chat):
    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        for raw, code in BAD_FRAMES:
            if raw:
                await socket.send_text(raw)
            else:  # the communicator cannot send an empty text frame; send it raw
                await socket.comm.send_input({"type": "websocket.receive", "text": ""})
            error = await socket.expect("error")
            assert error["code"] == code, (raw, error)
            assert isinstance(error["message"], str) and error["message"], (raw, error)
        # A resume from beyond the end is an empty history, not an error.
        await socket.send({"type": "resume", "after": 10**30})
        history = await socket.expect("history")
        assert history["messages"] == [] and history["has_more"] is False
        ack = await _assert_still_works(socket)
        assert ack["seq"] == 1  # nothing before it was stored
        await socket.disconnect()

    run_async(scenario)
    assert ChatMessage.objects.count() == 1


def test_a_type_that_is_a_list_or_an_object_is_an_unknown_type(chat):
    """Once a TypeError (an unhashable dict key) that killed the consumer."""

    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        for raw in ('{"type": ["send"]}', '{"type": {"a": 1}}'):
            await socket.send_text(raw)
            error = await socket.expect("error")
            assert error["code"] == "unknown_type", raw
        await _assert_still_works(socket)
        await socket.disconnect()

    run_async(scenario)


def test_refused_text_is_invalid_with_a_reason_and_stores_nothing(chat):
    cases = [
        ("empty", "", "empty"),
        ("blank", "  \n\t \u200b ", "empty"),
        ("long", "x" * (publishing.CHAT_MAX + 1), "2,000"),
        ("bell", "hi\x07there", "control"),
        ("nul", "hi\x00there", "NUL"),
        ("escape", "\x1b[31mred", "control"),
        ("bidi", "abc\u202edcba", "control"),
    ]

    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        for client_id, body, reason in cases:
            await socket.send({"type": "send", "client_id": client_id, "body": body})
            error = await socket.expect("error")
            assert error["code"] == "invalid", (client_id, error)
            assert error["client_id"] == client_id
            assert reason in error["message"], (client_id, error["message"])
        # The longest message allowed; in 4-byte characters it still fits in a frame.
        await socket.send({"type": "send", "client_id": "max", "body": "x" * publishing.CHAT_MAX})
        await socket.expect("ack", client_id="max", skip=OWN_ECHO)
        await socket.send({"type": "send", "client_id": "🌱", "body": "🌱" * publishing.CHAT_MAX})
        await socket.expect("ack", client_id="🌱", skip=OWN_ECHO)
        await socket.send({"type": "send", "client_id": "x" * 65, "body": "too long an id"})
        error = await socket.expect("error", skip=OWN_ECHO)
        assert error["code"] == "invalid"
        await socket.disconnect()

    run_async(scenario)
    assert sorted(ChatMessage.objects.values_list("client_id", flat=True)) == ["max", "🌱"]


def test_a_lone_surrogate_is_invalid_text(chat):
    """JSON can carry half a UTF-16 pair ("\\ud800"), which no database or sanitiser can
    encode; it once crashed the consumer in forum/sanitize.py."""
    said = post(chat.room, chat.river, "Fine words")

    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        await socket.send_text('{"type": "send", "client_id": "s", "body": "hi \\ud800 there"}')
        error = await socket.expect("error")
        assert (error["code"], error["client_id"]) == ("invalid", "s")
        await socket.send_text(f'{{"type": "edit", "id": {said.pk}, "body": "\\udfff"}}')
        error = await socket.expect("error")
        assert (error["code"], error["id"]) == ("invalid", said.pk)
        await _assert_still_works(socket)
        await socket.disconnect()

    run_async(scenario)
    assert fresh(said).source == "Fine words"
    assert not ChatMessage.objects.filter(client_id="s").exists()


def test_sending_too_fast_is_rate_limited_with_retry_after(chat, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (3, 10)}

    async def scenario():
        socket = await open_socket(chat.room, chat.river)
        await settle(socket)
        # The limit counts in fixed 10-second windows: do not start at a window's end.
        if time.time() % 10 > 8.5:
            await _sleep(10 - time.time() % 10 + 0.05)
        for n in range(3):
            await socket.send({"type": "send", "client_id": f"ok{n}", "body": f"Message {n}"})
            await socket.expect("ack", client_id=f"ok{n}", skip=OWN_ECHO)
        await socket.send({"type": "send", "client_id": "over", "body": "One too many"})
        error = await socket.expect("error", skip=OWN_ECHO)
        assert error["code"] == "rate_limited"
        assert error["client_id"] == "over"
        assert isinstance(error["retry_after"], int) and 1 <= error["retry_after"] <= 10
        # Resending a stored message costs no allowance: it is answered, not refused.
        await socket.send({"type": "send", "client_id": "ok0", "body": "Message 0"})
        await socket.expect("ack", client_id="ok0", skip=OWN_ECHO)
        await socket.disconnect()

    run_async(scenario)
    assert sorted(ChatMessage.objects.values_list("client_id", flat=True)) == ["ok0", "ok1", "ok2"]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


# --- room states ----------------------------------------------------------------------


def test_a_read_only_room_refuses_members_and_lets_leaders_write(chat):
    earlier = post(chat.room, chat.river, "Written while the room was open")
    ChatRoom.objects.filter(pk=chat.room.pk).update(state=ChatRoom.State.READ_ONLY)

    async def scenario():
        member, leader = await settled(chat.room, chat.river, chat.sage)
        await member.send({"type": "send", "client_id": "m", "body": "Can I?"})
        error = await member.expect("error")
        assert (error["code"], error["client_id"]) == ("forbidden", "m")
        assert "read-only" in error["message"]
        await member.send({"type": "edit", "id": earlier.pk, "body": "Changed"})
        assert (await member.expect("error"))["code"] == "forbidden"
        await leader.send({"type": "send", "client_id": "l", "body": "Announcement"})
        ack = await leader.expect("ack", client_id="l")
        message = await member.expect("message")
        assert message["message"]["id"] == ack["id"]
        await member.disconnect()
        await leader.disconnect()

    run_async(scenario)
    assert fresh(earlier).source == "Written while the room was open"


def test_an_archived_room_refuses_everyone_but_keeps_its_history(chat):
    earlier = post(chat.room, chat.river, "From before the archive")
    ChatRoom.objects.filter(pk=chat.room.pk).update(state=ChatRoom.State.ARCHIVED)
    warden = make_user("warden", is_site_moderator=True)

    async def scenario():
        for user in (chat.river, chat.sage, warden):
            socket = await open_socket(chat.room, user)
            history = await settle(socket)
            assert [m["id"] for m in history["messages"]] == [earlier.pk]
            await socket.send({"type": "send", "client_id": user.handle, "body": "Hello?"})
            error = await socket.expect("error")
            assert (error["code"], error["client_id"]) == ("forbidden", user.handle), user
            await socket.disconnect()

    run_async(scenario)
    assert ChatMessage.objects.count() == 1


def test_the_room_frame_comes_on_connect_and_when_a_leader_changes_the_room(chat):
    async def scenario():
        member = await open_socket(chat.room, chat.river)
        await member.expect("history", skip=())
        # Right after the first history: the room as it is now.
        assert await member.expect("room", skip=()) == {
            "type": "room", "name": "General", "state": "open", "slow_mode": 0,
        }  # fmt: skip
        await db(
            publishing.save_room, actor=chat.sage, group=chat.group, room=chat.room,
            name="Quiet hours", state=ChatRoom.State.READ_ONLY,
        )  # fmt: skip
        frame = await member.expect("room")
        assert frame == {
            "type": "room", "name": "Quiet hours", "state": "read_only", "slow_mode": 0,
        }  # fmt: skip
        await member.send({"type": "send", "client_id": "m", "body": "Still open?"})
        assert (await member.expect("error"))["code"] == "forbidden"
        await member.disconnect()

    run_async(scenario)


# --- delivery -------------------------------------------------------------------------


def test_a_message_is_acknowledged_with_its_seq_and_reaches_everyone(chat):
    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        bodies = ["Made it through **tonight**", "<img src=x onerror=alert(1)> thanks all"]
        acks = []
        for n, body in enumerate(bodies):
            await river.send({"type": "send", "client_id": f"c{n}", "body": body})
            ack = await river.expect("ack", client_id=f"c{n}")
            acks.append(ack)
            for socket in (meadow, river):
                frame = await socket.expect("message")
                message = frame["message"]
                assert set(message) == MESSAGE_FIELDS
                assert (message["id"], message["seq"], message["version"]) == (
                    ack["id"], ack["seq"], ack["version"],
                )  # fmt: skip
                assert (message["author"], message["source"]) == ("river", body)
                assert message["client_id"] == f"c{n}"
                assert (message["edited"], message["removed"], message["removed_by"]) == (
                    False, False, None,
                )  # fmt: skip
                assert_no_executable_html(message["html"], context=body)
        assert [a["seq"] for a in acks] == [1, 2]
        assert all(a["version"] == a["seq"] for a in acks)
        first = (await db(fresh, ChatMessage(pk=acks[0]["id"]))).html
        assert "<strong>tonight</strong>" in first
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    assert list(ChatMessage.objects.order_by("seq").values_list("seq", "client_id")) == [
        (1, "c0"),
        (2, "c1"),
    ]


@pytest.fixture
def two_writers(settings):
    settings.KINSHIP_CHAT_WRITE_THREADS = 2  # each run_async starts its writers afresh


def test_one_socket_s_slow_write_does_not_hold_up_another_s(chat, two_writers, monkeypatch):
    """Writes run in the worker's writer threads: meadow's message is stored, acknowledged
    and delivered while river's is still being written."""
    released = threading.Event()
    publish = publishing.publish_chat_message

    def slow_for_river(**kwargs):
        if kwargs["body"] == "slow":
            assert released.wait(5)
        return publish(**kwargs)

    monkeypatch.setattr(publishing, "publish_chat_message", slow_for_river)

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await river.send({"type": "send", "client_id": "r1", "body": "slow"})
        await meadow.send({"type": "send", "client_id": "m1", "body": "quick"})
        quick = await meadow.expect("ack", client_id="m1")
        assert (await meadow.expect("message"))["message"]["client_id"] == "m1"
        assert not released.is_set() and quick["seq"] == 1
        released.set()
        assert (await river.expect("ack", client_id="r1"))["seq"] == 2
        # River's frames wait while its own write runs, then all arrive.
        seen = {(await river.expect("message"))["message"]["seq"] for _ in range(2)}
        assert seen == {1, 2}
        assert (await meadow.expect("message"))["message"]["client_id"] == "r1"
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)


def test_resending_a_client_id_is_answered_with_the_first_ack(chat):
    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        frame = {"type": "send", "client_id": "3f0c9a50-once", "body": "Only once"}
        await river.send(frame)
        first = await river.expect("ack")
        await meadow.expect("message")
        await river.expect("message")
        # After a reconnect, say: the same client id on a new socket, even with other text.
        await river.disconnect()
        again = await open_socket(chat.room, chat.river)
        await settle(again)
        await again.send({**frame, "body": "Only once (resent)"})
        assert await again.expect("ack") == first
        await meadow.quiet(0.3)  # no second message went out
        await again.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    assert list(ChatMessage.objects.values_list("source", flat=True)) == ["Only once"]


def _changes_while_away(chat: Chat) -> tuple[int, list[int]]:
    """Messages 1-3, then (while a reader is away) a new message, an edit, a removal by
    the author, one by a leader, and a message created and edited. Returns the last seq
    the reader saw and the ids of the changed messages in change order."""
    first, second, third = (post(chat.room, chat.river, f"Before {n}") for n in (1, 2, 3))
    seen = last_seq(chat.room)
    new = post(chat.room, chat.meadow, "While you were away")
    publishing.edit_chat_message(editor=chat.river, message=fresh(first), body="Before 1, edited")
    publishing.withdraw_chat_message(author=chat.river, message=fresh(second))
    actions.remove_chat_message(actor=chat.sage, message=fresh(third))
    later = post(chat.room, chat.meadow, "Typo here")
    publishing.edit_chat_message(editor=chat.meadow, message=fresh(later), body="Fixed it")
    return seen, [new.pk, first.pk, second.pk, third.pk, later.pk]


def _assert_missed_changes(history: dict, chat: Chat, changed: list[int]) -> None:
    messages = history["messages"]
    assert [m["id"] for m in messages] == changed
    versions = [m["version"] for m in messages]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert history["latest_seq"] == last_seq(chat.room) == versions[-1]
    assert history["has_more"] is False
    new, edited, withdrawn, removed, later = messages
    assert new["seq"] == new["version"] and "While you were away" in new["html"]
    assert edited["edited"] is True and "Before 1, edited" in edited["html"]
    assert edited["seq"] < edited["version"]
    assert (withdrawn["removed"], withdrawn["removed_by"], withdrawn["html"]) == (
        True, "author", "",
    )  # fmt: skip
    assert (removed["removed"], removed["removed_by"], removed["html"]) == (True, "moderator", "")
    assert withdrawn["source"] == removed["source"] == ""
    assert "Fixed it" in later["html"] and later["edited"] is True


def test_reconnecting_with_after_returns_exactly_the_missed_changes(chat):
    seen, changed = _changes_while_away(chat)

    async def scenario():
        socket = await open_socket(chat.room, chat.meadow, after=seen)
        history = await socket.expect("history")
        await db(_assert_missed_changes, history, chat, changed)
        await socket.disconnect()

    run_async(scenario)


def test_a_resume_frame_returns_exactly_the_missed_changes(chat):
    async def scenario():
        socket = await open_socket(chat.room, chat.meadow)
        await settle(socket)
        await socket.disconnect()  # away ...
        seen, changed = await db(_changes_while_away, chat)
        socket = await open_socket(chat.room, chat.meadow)
        await settle(socket)
        await socket.send({"type": "resume", "after": seen})
        history = await socket.expect("history")
        await db(_assert_missed_changes, history, chat, changed)
        # Up to date: nothing more to send.
        await socket.send({"type": "resume", "after": history["latest_seq"]})
        assert (await socket.expect("history"))["messages"] == []
        await socket.disconnect()

    run_async(scenario)


def test_a_long_absence_is_paged_with_has_more(chat, settings):
    settings.KINSHIP_CHAT_HISTORY = 3
    for n in range(4):
        post(chat.room, chat.river, f"Before {n}")
    seen = last_seq(chat.room)
    for n in range(7):
        post(chat.room, chat.meadow, f"Away {n}")
    publishing.edit_chat_message(
        editor=chat.river, message=fresh(ChatMessage.objects.get(seq=1)), body="Edited while away"
    )
    expected = list(
        ChatMessage.objects.filter(version__gt=seen)
        .order_by("version")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 8

    async def scenario():
        socket = await open_socket(chat.room, chat.meadow, after=seen)
        pages = [await socket.expect("history", skip=())]
        await socket.expect("room", skip=())
        while pages[-1]["has_more"]:
            assert len(pages) < 5, "has_more never ends"
            await socket.send({"type": "resume", "after": pages[-1]["messages"][-1]["version"]})
            pages.append(await socket.expect("history"))
        await socket.disconnect()
        return pages

    pages = run_async(scenario)
    assert [len(page["messages"]) for page in pages] == [3, 3, 2]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert [m["id"] for page in pages for m in page["messages"]] == expected


def test_a_first_visit_shows_the_latest_messages_oldest_first(chat, settings):
    settings.KINSHIP_CHAT_HISTORY = 3
    messages = [post(chat.room, chat.river, f"Message {n}") for n in range(5)]
    messages.append(post(chat.room, chat.river, "<script>alert(1)</script> *hi*"))
    publishing.withdraw_chat_message(author=chat.river, message=fresh(messages[4]))

    async def scenario():
        socket = await open_socket(chat.room, chat.meadow)
        history = await settle(socket)
        await socket.disconnect()
        return history

    history = run_async(scenario)
    # The last three messages that still exist, not the removed one.
    assert [m["id"] for m in history["messages"]] == [m.pk for m in messages[2:4]] + [
        messages[5].pk
    ]
    assert history["latest_seq"] == last_seq(chat.room) == 7
    assert history["has_more"] is False
    for message in history["messages"]:
        assert set(message) == MESSAGE_FIELDS
        assert_no_executable_html(message["html"], context="history")
    assert "<em>hi</em>" in history["messages"][-1]["html"]


# --- edits and removals ---------------------------------------------------------------


def test_an_author_edits_and_everyone_sees_it(chat):
    said = post(chat.room, chat.river, "Tonight was hard")

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await river.send({"type": "edit", "id": said.pk, "body": "Tonight was *hard*, but ok"})
        frames = [await s.expect("message_updated") for s in (river, meadow)]
        assert frames[0] == frames[1]
        message = frames[0]["message"]
        assert (message["id"], message["seq"], message["edited"]) == (said.pk, said.seq, True)
        assert message["version"] == said.seq + 1
        assert "<em>hard</em>" in message["html"]
        assert message["source"] == "Tonight was *hard*, but ok"
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    stored = fresh(said)
    assert stored.source == "Tonight was *hard*, but ok"
    assert stored.edited_at is not None and stored.version == last_seq(chat.room) == 2


def test_an_edit_that_changes_nothing_is_answered_to_the_sender_alone(chat):
    said = post(chat.room, chat.river, "Same words")

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await river.send({"type": "edit", "id": said.pk, "body": "  Same words \n"})
        message = (await river.expect("message_updated"))["message"]
        assert (message["id"], message["version"], message["edited"]) == (
            said.pk, said.version, False,
        )  # fmt: skip
        await meadow.quiet(0.3)
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    assert last_seq(chat.room) == said.seq  # no number taken


def test_editing_someone_elses_message_is_forbidden(chat):
    said = post(chat.room, chat.river, "My words")

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        for socket, user in ((await open_socket(chat.room, chat.meadow), "meadow"),
                             (await open_socket(chat.room, chat.sage), "sage")):  # fmt: skip
            await settle(socket)
            await socket.send({"type": "edit", "id": said.pk, "body": "Your words now"})
            error = await socket.expect("error")
            assert (error["code"], error["id"]) == ("forbidden", said.pk), user
            await socket.disconnect()
        await river.collect(0.2)
        assert not [f for f in river.frames if f["type"] == "message_updated"]
        await river.disconnect()

    run_async(scenario)
    assert fresh(said).source == "My words" and fresh(said).version == said.seq


def test_an_author_deletes_a_message_and_its_text_is_erased(chat):
    said = post(chat.room, chat.river, "I should not have said that")

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await river.send({"type": "delete", "id": said.pk})
        frames = [await s.expect("message_removed") for s in (river, meadow)]
        assert frames[0] == frames[1]
        message = frames[0]["message"]
        assert (message["id"], message["removed"], message["removed_by"]) == (
            said.pk, True, "author",
        )  # fmt: skip
        assert (message["html"], message["source"]) == ("", "")
        assert message["version"] == said.seq + 1
        # Gone is gone: a second delete, or an edit, is refused.
        await river.send({"type": "delete", "id": said.pk})
        assert (await river.expect("error"))["code"] == "forbidden"
        await river.send({"type": "edit", "id": said.pk, "body": "Back again"})
        assert (await river.expect("error"))["code"] == "forbidden"
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    stored = fresh(said)
    assert (stored.source, stored.html, stored.removed_by) == ("", "", "author")
    assert stored.removed_at is not None


def test_a_leader_removes_someone_elses_message(chat):
    said = post(chat.room, chat.river, "Something against the guidelines")

    async def scenario():
        river, sage = await settled(chat.room, chat.river, chat.sage)
        await sage.send({"type": "delete", "id": said.pk})
        for socket in (sage, river):
            message = (await socket.expect("message_removed"))["message"]
            assert (message["id"], message["removed_by"], message["html"], message["source"]) == (
                said.pk, "moderator", "", "",
            )  # fmt: skip
        await river.disconnect()
        await sage.disconnect()

    run_async(scenario)
    stored = fresh(said)
    assert stored.removed_by == "moderator" and stored.removed_at is not None
    # Kept (hidden) so that the decision can be reviewed.
    assert stored.source == "Something against the guidelines"


def test_a_member_cannot_remove_someone_elses_message(chat):
    said = post(chat.room, chat.river, "Mine")

    async def scenario():
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        await meadow.send({"type": "delete", "id": said.pk})
        error = await meadow.expect("error")
        assert (error["code"], error["id"]) == ("forbidden", said.pk)
        await meadow.quiet(0.2)
        await meadow.disconnect()

    run_async(scenario)
    assert not fresh(said).is_removed


def test_a_message_of_another_room_or_none_at_all_is_not_found(chat):
    other_room = make_room(chat.group, "evening")
    elsewhere = post(other_room, chat.river, "In the other room")

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        for frame in (
            {"type": "edit", "id": elsewhere.pk, "body": "Changed from the wrong room"},
            {"type": "delete", "id": elsewhere.pk},
            {"type": "edit", "id": elsewhere.pk + 1000, "body": "x"},
            {"type": "delete", "id": elsewhere.pk + 1000},
        ):
            await river.send(frame)
            error = await river.expect("error")
            assert (error["code"], error["id"]) == ("not_found", frame["id"]), frame
        await river.disconnect()

    run_async(scenario)
    stored = fresh(elsewhere)
    assert stored.source == "In the other room" and not stored.is_removed


# --- presence, typing, read state ------------------------------------------------------


def test_presence_lists_who_is_here_and_drops_who_left(chat):
    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await river.expect("history", skip=())
        await river.expect("room", skip=())
        assert (await river.expect("presence", skip=()))["members"] == ["river"]
        meadow = await open_socket(chat.room, chat.meadow)
        await meadow.expect("history", skip=())
        await meadow.expect("room", skip=())
        assert (await meadow.expect("presence", skip=()))["members"] == ["meadow", "river"]
        await river.expect("presence", members=["meadow", "river"])
        await meadow.disconnect()
        await river.expect("presence", members=["river"])
        await river.disconnect()

    run_async(scenario)


async def _frames_until_the_end(socket: ChatSocket) -> None:
    while True:
        await socket.next()


def test_a_consumer_that_crashes_leaves_presence_and_the_watch_at_once(chat, monkeypatch):
    from forum.watch import watch

    async def crash(consumer, frame):
        raise RuntimeError("a bug in a frame handler")

    monkeypatch.setitem(consumers.ChatConsumer.HANDLERS, "typing", crash)

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        await river.expect("presence", members=["meadow", "river"])
        await meadow.send({"type": "typing"})
        with pytest.raises(RuntimeError, match="a bug in a frame handler"):
            await _frames_until_the_end(meadow)
        # Gone at once, not when the presence entry expires 30 s later.
        await river.expect("presence", members=["river"])
        assert {socket.handle for socket in watch().sockets} == {"river"}
        await river.disconnect()

    run_async(scenario)


def test_frames_skip_channels_cleanup_hop_and_database_calls_keep_theirs(chat, monkeypatch):
    """Channels hops to the sync thread before every message to close stale database
    connections; here each database call closes them itself, in the thread that makes it
    (channels.db.database_sync_to_async), so neither broadcasts nor the client's frames pay
    for the hop (bench/README.md)."""
    import channels.consumer
    import channels.db

    hops, cleanups = [], []

    async def counting_hop():
        hops.append(1)

    close_old_connections = channels.db.close_old_connections

    def counting_cleanup(**kwargs):
        cleanups.append(1)
        close_old_connections(**kwargs)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting_hop)
    monkeypatch.setattr(channels.db, "close_old_connections", counting_cleanup)

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        cleanups.clear()
        await db(post, chat.room, chat.meadow, "Broadcast to river")
        await river.expect("message")
        await river.send({"type": "send", "client_id": "c1", "body": "And back"})
        await river.expect("ack", client_id="c1")
        await river.expect("message")  # its own, back
        await river.send({"type": "resume", "after": 0})
        await river.expect("history")
        assert hops == []
        # Before and after each call: the test's own post, the write and the resume.
        assert len(cleanups) >= 6
        await river.disconnect()

    run_async(scenario)


def test_typing_is_relayed_at_most_once_per_interval(chat, monkeypatch):
    assert consumers.TYPING_INTERVAL == 3.0  # "at most one every 3 s" (the protocol)
    monkeypatch.setattr(consumers, "TYPING_INTERVAL", 0.6)

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        started = time.monotonic()
        for _ in range(5):
            await river.send({"type": "typing"})
        await meadow.expect("typing", handle="river", skip={"presence"})
        frames = await meadow.collect(max(0.0, 0.5 - (time.monotonic() - started)))
        assert [f for f in frames if f["type"] == "typing"] == [], "typing was not throttled"
        await _sleep(max(0.0, 0.8 - (time.monotonic() - started)))
        await river.send({"type": "typing"})
        await meadow.expect("typing", handle="river", skip={"presence"})
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    assert ChatMessage.objects.count() == 0  # typing is not stored


def test_readers_who_cannot_write_do_not_show_as_typing(chat):
    ChatRoom.objects.filter(pk=chat.room.pk).update(state=ChatRoom.State.READ_ONLY)

    async def scenario():
        river = await open_socket(chat.room, chat.river)  # a member: read-only for them
        sage = await open_socket(chat.room, chat.sage)  # a leader: may still write
        await settle(river)
        await settle(sage)
        await river.send({"type": "typing"})
        frames = await sage.collect(0.5)
        assert [f for f in frames if f["type"] == "typing"] == []
        await sage.send({"type": "typing"})
        await river.expect("typing", handle="sage", skip={"presence"})
        await river.disconnect()
        await sage.disconnect()

    run_async(scenario)


def test_a_read_frame_moves_the_read_marker_forward_only(chat):
    for n in range(3):
        post(chat.room, chat.river, f"Message {n}")

    def read_upto() -> int | None:
        return (
            RoomReadState.objects.filter(room=chat.room, user=chat.meadow)
            .values_list("last_read_seq", flat=True)
            .first()
        )

    async def scenario():
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        seen = []
        for seq in (2, 1, 999):
            await meadow.send({"type": "read", "seq": seq})
            # Frames are handled in order: once this is answered, the read is stored.
            await meadow.send({"type": "resume", "after": 3})
            await meadow.expect("history")
            seen.append(await db(read_upto))
        await meadow.disconnect()
        return seen

    assert run_async(scenario) == [2, 2, 3]  # never backwards, never past the room's end


# --- revoked authority -------------------------------------------------------------------


@pytest.fixture
def quick_recheck(settings):
    settings.KINSHIP_CHAT_RECHECK_SECONDS = RECHECK


async def _closes_after(chat: Chat, change, expected_code: int, *, user=None) -> None:
    socket = await open_socket(chat.room, user or chat.river)
    await settle(socket)
    await _assert_still_works(socket, "before")
    started = time.monotonic()
    await db(change)
    assert await socket.closed(timeout=REVOKED_WITHIN) == expected_code
    assert time.monotonic() - started < REVOKED_WITHIN
    await socket.disconnect()


@pytest.mark.usefixtures("quick_recheck")
def test_leaving_the_group_closes_the_socket_with_4403(chat):
    run_async(
        lambda: _closes_after(
            chat, lambda: memberships.leave_group(user=chat.river, group=chat.group), 4403
        )
    )


@pytest.mark.usefixtures("quick_recheck")
def test_logging_out_elsewhere_closes_the_socket_with_4401(chat):
    key = login_session(chat.river)

    def log_out_in_a_browser():
        browser = Client()
        browser.cookies[django_settings.SESSION_COOKIE_NAME] = key
        response = browser.post(reverse("logout"))
        assert response.status_code == 302
        assert not session_store().exists(key)

    async def scenario():
        socket = await open_socket(chat.room, session_key=key)
        await settle(socket)
        started = time.monotonic()
        await db(log_out_in_a_browser)
        assert await socket.closed(timeout=REVOKED_WITHIN) == 4401
        assert time.monotonic() - started < REVOKED_WITHIN
        await socket.disconnect()

    run_async(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_a_session_that_expires_closes_the_socket_with_4401(chat):
    key = login_session(chat.river)
    session = session_store(key)
    session.set_expiry(2)
    session.save()

    async def scenario():
        socket = await open_socket(chat.room, session_key=key)
        await settle(socket)
        await _assert_still_works(socket, "before-expiry")
        assert await socket.closed(timeout=2 + REVOKED_WITHIN) == 4401
        await socket.disconnect()

    run_async(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_a_session_extended_by_browsing_keeps_the_socket_open(chat):
    key = login_session(chat.river)
    session = session_store(key)
    session.set_expiry(1)
    session.save()

    async def scenario():
        socket = await open_socket(chat.room, session_key=key)
        await settle(socket)

        def browse():
            extended = session_store(key)
            extended.set_expiry(3600)
            extended.save()

        await db(browse)
        await _sleep(1.5)  # past the expiry the socket saw at its handshake
        await _assert_still_works(socket, "after-extension")
        await socket.disconnect()

    run_async(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_a_password_change_closes_the_socket_with_4401(chat):
    def change_password():
        user = User.objects.get(pk=chat.river.pk)
        user.set_password("another-calm-river-5522")
        user.save()

    run_async(lambda: _closes_after(chat, change_password, 4401))


@pytest.mark.usefixtures("quick_recheck")
def test_deactivation_closes_the_socket_with_4403(chat):
    def deactivate():
        user = User.objects.get(pk=chat.river.pk)
        user.is_active = False
        user.save()

    run_async(lambda: _closes_after(chat, deactivate, 4403))


@pytest.mark.usefixtures("quick_recheck")
def test_a_re_check_that_finds_nothing_wrong_keeps_the_socket_open(chat):
    def harmless_changes():
        user = User.objects.get(pk=chat.river.pk)
        user.bio_source = "One day at a time."
        user.save()  # bumps the authority epoch: a re-check happens
        memberships.leave_group(user=chat.meadow, group=chat.group)  # someone else leaves

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        await db(harmless_changes)
        await _sleep(RECHECK + 1.2)  # at least two watch rounds
        await _assert_still_works(river)
        await river.disconnect()

    run_async(scenario)


# --- heartbeat -----------------------------------------------------------------------------


def test_a_heartbeat_carries_the_rooms_latest_seq(chat, settings):
    settings.KINSHIP_CHAT_HEARTBEAT_SECONDS = 0.3
    said = post(chat.room, chat.river, "One")
    post(chat.room, chat.river, "Two")
    publishing.edit_chat_message(editor=chat.river, message=fresh(said), body="One, edited")

    async def scenario():
        socket = await open_socket(chat.room, chat.meadow)
        await settle(socket)
        beat = await socket.expect("heartbeat", skip={"presence"}, timeout=3)
        assert beat == {"type": "heartbeat", "latest_seq": 3}
        await db(post, chat.room, chat.river, "Three")
        await socket.expect("message", skip={"presence", "heartbeat"})
        await socket.expect("heartbeat", latest_seq=4, timeout=3)
        await socket.disconnect()

    run_async(scenario)


def test_a_socket_that_cannot_take_a_heartbeat_is_dropped_and_the_rest_still_beat():
    import asyncio

    from forum.watch import Watch

    class Gone:
        room_id = 1

        async def send_heartbeat(self, latest_seq: int) -> None:
            raise ConnectionError("client disconnected")

    class Alive:
        room_id = 1

        def __init__(self) -> None:
            self.beats: list[int] = []

        async def send_heartbeat(self, latest_seq: int) -> None:
            self.beats.append(latest_seq)

    watch, gone, alive = Watch(), Gone(), Alive()
    watch.sockets = {gone, alive}

    async def no_rooms(room_ids):
        return {}

    import forum.watch as watch_module

    original = watch_module.database_sync_to_async
    watch_module.database_sync_to_async = lambda func: no_rooms
    try:
        asyncio.run(watch._heartbeat())
    finally:
        watch_module.database_sync_to_async = original
    assert alive.beats == [0]
    assert watch.sockets == {alive}


# --- flagging a message (issue 4, the members' side) ------------------------------------


def test_a_member_flags_someone_elses_message_and_only_they_hear_of_it(chat):
    from moderation.models import Flag, QueueItem

    said = post(chat.room, chat.river, "Anyone selling? DM me")

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await meadow.send(
            {"type": "flag", "id": said.pk, "reason": "spam", "details": "Selling, it seems"}
        )
        # Not a crisis concern: thanks alone, no resources.
        assert await meadow.expect("flagged") == {"type": "flagged", "id": said.pk}
        # The author (and everyone else) learns nothing of it.
        await river.collect(0.3)
        assert not [f for f in river.frames if f["type"] in {"flagged", "error"}]
        await _assert_still_works(meadow, "after-flag")
        await river.disconnect()
        await meadow.disconnect()

    run_async(scenario)
    made = Flag.objects.get()
    assert (made.flagger, made.object_id, made.reason) == (chat.meadow, said.pk, "spam")
    assert made.details_source == "Selling, it seems"
    item = QueueItem.objects.get()
    assert (item.member, item.group, item.flag_count) == (chat.river, chat.group, 1)
    assert not fresh(said).is_removed  # one flag hides nothing


def test_a_crisis_concern_is_answered_with_the_crisis_resources(chat):
    from forum.models import CrisisResource

    # Only this test's resources: the migration's defaults exist until the first flush.
    CrisisResource.objects.all().delete()
    CrisisResource.objects.create(
        name="Warmline North",
        region="Anywhere",
        contact="555-0199",
        description="Someone to talk to.",
        url="https://warmline.example/",
    )
    CrisisResource.objects.create(
        name="Closed line", region="Nowhere", contact="0", is_active=False
    )
    worrying = post(chat.room, chat.river, "I can't do this any more")
    other = post(chat.room, chat.river, "Buy my pills")

    async def scenario():
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        await meadow.send({"type": "flag", "id": worrying.pk, "reason": "crisis"})
        crisis = await meadow.expect("flagged")
        await meadow.send({"type": "flag", "id": other.pk, "reason": "spam"})
        plain = await meadow.expect("flagged")
        await meadow.disconnect()
        return crisis, plain

    crisis, plain = run_async(scenario)
    # The resources "Need help now?" lists (active ones only), with what a link needs.
    assert crisis == {
        "type": "flagged",
        "id": worrying.pk,
        "resources": [
            {
                "name": "Warmline North",
                "region": "Anywhere",
                "contact": "555-0199",
                "description": "Someone to talk to.",
                "url": "https://warmline.example/",
            }
        ],
    }
    assert plain == {"type": "flagged", "id": other.pk}


def test_a_crisis_concern_gets_the_default_resources_when_none_are_set(chat):
    from forum.models.site import DEFAULT_CRISIS_RESOURCES

    worrying = post(chat.room, chat.river, "I can't do this any more")

    async def scenario():
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        await meadow.send({"type": "flag", "id": worrying.pk, "reason": "crisis"})
        frame = await meadow.expect("flagged")
        await meadow.disconnect()
        return frame

    frame = run_async(scenario)
    names = [resource["name"] for resource in frame["resources"]]
    assert names == [resource["name"] for resource in DEFAULT_CRISIS_RESOURCES]


def test_refused_flags_answer_with_an_error_carrying_the_id(chat):
    from moderation.models import Flag

    theirs = post(chat.room, chat.river, "Their words")
    mine = post(chat.room, chat.meadow, "My words")

    async def scenario():
        meadow = await open_socket(chat.room, chat.meadow)
        await settle(meadow)
        for frame, code in (
            ({"type": "flag", "id": theirs.pk, "reason": "rude"}, "invalid"),
            ({"type": "flag", "id": theirs.pk, "reason": "other"}, "invalid"),  # no details
            ({"type": "flag", "id": mine.pk, "reason": "spam"}, "forbidden"),
            ({"type": "flag", "id": theirs.pk + 1000, "reason": "spam"}, "not_found"),
            ({"type": "flag", "id": theirs.pk, "reason": "spam", "details": 3}, "missing_field"),
        ):
            await meadow.send(frame)
            error = await meadow.expect("error")
            assert (error["code"], error["id"]) == (code, frame["id"]), frame
        await meadow.send({"type": "flag", "id": theirs.pk, "reason": "crisis"})
        assert (await meadow.expect("flagged"))["id"] == theirs.pk
        # Once per message: the second is refused, kindly.
        await meadow.send({"type": "flag", "id": theirs.pk, "reason": "harassment"})
        error = await meadow.expect("error")
        assert (error["code"], error["id"]) == ("invalid", theirs.pk)
        assert "already flagged" in error["message"]
        await _assert_still_works(meadow, "still-open")
        await meadow.disconnect()

    run_async(scenario)
    assert list(Flag.objects.values_list("object_id", "reason")) == [(theirs.pk, "crisis")]


# --- crisis words: support for the sender, nothing held ---------------------------------------


def test_a_message_with_crisis_words_is_posted_and_the_sender_alone_is_offered_support(chat):
    from forum.models import CrisisResource
    from moderation.models import QueueItem

    CrisisResource.objects.all().delete()  # the defaults a migration stored, if still there
    CrisisResource.objects.create(
        name="Warmline North", region="Anywhere", contact="555-0199", url="https://w.example/"
    )

    async def scenario():
        river, meadow = await settled(chat.room, chat.river, chat.meadow)
        await river.send({"type": "send", "client_id": "hard", "body": "I want to end it all"})
        ack = await river.expect("ack", client_id="hard", skip=OWN_ECHO)
        # Everyone else gets the message as usual, and nothing about support or moderators.
        shown = await meadow.expect("message", skip=("presence", "heartbeat", "typing"))
        await meadow.collect(0.3)
        plain = await _assert_still_works(river, "plain")
        await river.disconnect()
        await meadow.disconnect()
        return ack, shown, meadow.frames, plain

    ack, shown, meadow_frames, plain = run_async(scenario)
    assert ack["support"] == {
        "resources": [
            {
                "name": "Warmline North",
                "region": "Anywhere",
                "contact": "555-0199",
                "description": "",
                "url": "https://w.example/",
            }
        ]
    }
    assert "support" not in plain  # ordinary words: an ordinary ack
    assert shown["message"]["id"] == ack["id"]
    assert "end it all" in shown["message"]["html"]
    assert not shown["message"]["removed"]
    assert not [f for f in meadow_frames if "support" in f or f["type"] == "support"]
    message = ChatMessage.objects.get(pk=ack["id"])
    assert not message.is_removed
    item = QueueItem.objects.get()
    assert (item.target, item.member, item.is_urgent, item.flag_count) == (
        message,
        chat.river,
        True,
        0,
    )
    assert item.auto_reason == "Crisis words: suicide"


def test_a_resent_crisis_message_still_offers_support_and_alerts_once(chat):
    from moderation.models import QueueItem

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        frame = {"type": "send", "client_id": "again", "body": "I took too many pills"}
        await river.send(frame)
        first = await river.expect("ack", client_id="again", skip=OWN_ECHO)
        await river.send(frame)
        second = await river.expect("ack", client_id="again", skip=OWN_ECHO)
        await river.disconnect()
        return first, second

    first, second = run_async(scenario)
    assert first["id"] == second["id"]
    assert first["support"]["resources"] and second["support"] == first["support"]
    assert QueueItem.objects.get().auto_reason == "Crisis words: overdose"


def test_an_edit_that_adds_crisis_words_offers_support_to_its_author(chat):
    from moderation.models import QueueItem

    said = post(chat.room, chat.river, "Rough evening")
    assert not QueueItem.objects.exists()

    async def scenario():
        river = await open_socket(chat.room, chat.river)
        await settle(river)
        await river.send({"type": "edit", "id": said.pk, "body": "Rough evening. I cut myself"})
        support = await river.expect("support", skip=OWN_ECHO | {"message_updated"})
        await river.disconnect()
        return support

    support = run_async(scenario)
    assert support["id"] == said.pk and support["support"]["resources"]
    assert fresh(said).source == "Rough evening. I cut myself"
    assert QueueItem.objects.get().auto_reason == "Crisis words: self-harm"


@pytest.mark.django_db
def test_a_socket_s_write_reads_member_room_role_and_a_resend_in_one_statement(
    settings, django_assert_num_queries
):
    """Each write reads them afresh (a ban or a closed room counts at once), all in the
    statement that loads the member; so does a message's check for a resend."""
    settings.KINSHIP_RATE_LIMITS = {k: (10**6, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group, river = make_group("write-path"), make_user("river")
    join(river, group, Membership.Role.MODERATOR)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    consumer = consumers.ChatConsumer()
    consumer.user_id, consumer.room_id = river.pk, room.pk
    with django_assert_num_queries(1):
        role = consumer._with_fresh_state(
            lambda user, room: consumers.permissions.membership_role(user, room.group), None
        )
    assert role == Membership.Role.MODERATOR

    def send(client_id: str) -> ChatMessage:
        return consumer._with_fresh_state(
            lambda user, room: publishing.publish_chat_message(
                author=user, room=room, body="Hello", client_id=client_id
            )[0],
            client_id,
        )

    send("c0")  # the worker compiles its watched phrases, link rules and notes once
    # The send: + in a savepoint (the test's transaction is open) the sequence number and
    # the insert: one statement on PostgreSQL.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 5):
        message = send("c1")
    assert (message.author_id, message.seq) == (river.pk, 2)
    with django_assert_num_queries(2):  # a resend: the member's statement, then the message
        again = send("c1")
    assert again.pk == message.pk and ChatMessage.objects.filter(room=room).count() == 2
