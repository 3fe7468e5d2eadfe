"""The chat room WebSocket: a thin adapter over the write path.

Every frame that changes something goes through forum.publishing (or, for removals
by leaders and moderators, moderation.actions), exactly like a forum post. The
protocol is documented in docs/chat-protocol.md.
"""

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.http import Http404

from moderation import actions, permissions
from moderation.ratelimit import RateLimited

from . import engagement, fanout, live, presence, publishing, realtime, selectors
from .backends import load_member, read_with_member
from .cache import UNAVAILABLE
from .models import ChatMessage, ChatRoom, LiveSession, User
from .sockets import (
    CLOSE_FORBIDDEN,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHENTICATED,
    AuthorityListener,
    TryAgainWhileLayerDown,
)
from .watch import announce_presence, watch

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_FRAME_BYTES = 8 * 1024
TYPING_INTERVAL = 3.0
CLOSE_TOO_BIG = 1009
# Where forum.asgi keeps the server's own send for forum.fanout.
SERVER_SEND = "kinship.server_send"
CLOSE_NOT_FOUND = 4404


UNAVAILABLE_RETRY_SECONDS = 2
UNAVAILABLE_FRAME = {
    "type": "error",
    "code": "unavailable",
    "message": "Chat cannot reach the server's services just now. It reconnects and "
    "catches up by itself.",
    "retry_after": UNAVAILABLE_RETRY_SECONDS,
}


@functools.cache
def _writers() -> ThreadPoolExecutor:
    """The worker's writer threads: a socket's writes still run one at a time (its frames
    are handled in turn), but different sockets' writes overlap their waits on the
    database. Their broadcasts may then leave out of order; clients put that right by
    version (docs/chat-protocol.md, "Delivery guarantees")."""
    return ThreadPoolExecutor(
        max_workers=settings.KINSHIP_CHAT_WRITE_THREADS, thread_name_prefix="chat-write"
    )


class FrameError(Exception):
    def __init__(self, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.frame = {"type": "error", "code": code, "message": message, **extra}


def _field(frame: dict, name: str, kind: type):
    value = frame.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FrameError("missing_field", f"The frame needs a {kind.__name__} field '{name}'.")
    return value


def _optional(frame: dict, name: str, kind: type):
    value = frame.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise FrameError("missing_field", f"'{name}' is a {kind.__name__} when given.")
    return value


def _flag(frame: dict, name: str) -> bool:
    value = frame.get(name)
    if not isinstance(value, bool):
        raise FrameError("missing_field", f"The frame needs a true/false field '{name}'.")
    return value


SESSION_OPS = frozenset(
    {"raise_hand", "lower_hand", "give_floor", "pass_floor", "lock", "pin", "reading",
     "share_timer", "open_room", "close_room", "end_session", "hand_over",
     "remove_participant", "mute_participant"}
)  # fmt: skip


def _session_call(op: str, f: dict) -> Callable[[User, LiveSession], object]:
    """Read and type-check a session control's fields now (a bad frame is answered at
    once), and return the call to run on the write path with (user, session)."""
    match op:
        case "raise_hand":
            return lambda u, s: live.raise_hand(actor=u, session=s)
        case "lower_hand":
            handle = _optional(f, "handle", str)
            return lambda u, s: live.lower_hand(actor=u, session=s, handle=handle)
        case "give_floor":
            handle = _optional(f, "handle", str)
            return lambda u, s: live.give_floor(actor=u, session=s, handle=handle)
        case "pass_floor":
            return lambda u, s: live.pass_floor(actor=u, session=s)
        case "lock":
            locked = _flag(f, "locked")
            return lambda u, s: live.set_lock(actor=u, session=s, locked=locked)
        case "pin":
            message_id = _optional(f, "id", int)
            return lambda u, s: live.pin_message(actor=u, session=s, message_id=message_id)
        case "reading":
            which = _field(f, "which", str)
            return lambda u, s: live.post_reading(actor=u, session=s, which=which)
        case "share_timer":
            seconds = _field(f, "seconds", int)
            return lambda u, s: live.set_share_timer(actor=u, session=s, seconds=seconds)
        case "open_room":
            return lambda u, s: live.open_room(actor=u, session=s)
        case "close_room":
            return lambda u, s: live.close_room(actor=u, session=s)
        case "end_session":
            return lambda u, s: live.end_session(actor=u, session=s)
        case "hand_over":
            handle = _field(f, "handle", str)
            return lambda u, s: live.hand_over(actor=u, session=s, handle=handle)
        case "remove_participant":
            handle, reason = _field(f, "handle", str), _field(f, "reason", str)
            return lambda u, s: live.remove_participant(
                actor=u, session=s, handle=handle, reason=reason
            )
        case "mute_participant":
            handle, reason = _field(f, "handle", str), _field(f, "reason", str)
            minutes = _field(f, "minutes", int)
            return lambda u, s: live.mute_participant(
                actor=u, session=s, handle=handle, minutes=minutes, reason=reason
            )
    raise FrameError("unknown_type", "Unknown frame type.")


class ChatConsumer(TryAgainWhileLayerDown, AuthorityListener, AsyncWebsocketConsumer):
    unavailable_frame = UNAVAILABLE_FRAME
    room_id: int
    user_id: int
    handle: str
    conn_id: str
    authority_epoch: int | None

    # --- connection -----------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        # A handler that raises ends the consumer without websocket_disconnect, so the
        # socket's watch and presence entries are released here in every case.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._leave()

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections (a hop to the sync thread) before
        # every message. Here every database call goes through database_sync_to_async,
        # which closes them around the call in the thread that makes it, so that hop only
        # cost each frame time (bench/README.md).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            room = await database_sync_to_async(self._open_room)(user, kwargs)
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except PermissionDenied:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        except DatabaseError:
            await self.try_again_later()
            return
        session = self.scope["session"]
        self.session_key = session.session_key
        self.session_hash = session.get(HASH_SESSION_KEY, "")
        self.session_expires_at = session.get_expiry_date().timestamp()
        self.room_id, self.user_id, self.handle = room.pk, user.pk, user.handle
        self.session_id = room.live_session.pk if room.kind == ChatRoom.Kind.SESSION else None
        # Room broadcasts and changes of the member's standing come through the relay,
        # held until the connect frames are sent.
        self.outlet = fanout.Outlet(
            self.scope.get(SERVER_SEND, self.base_send),
            user_id=user.pk,
            on_authority=self._authority_changed_in_room,
            on_stalled=self._stalled,
        )
        self.conn_id = uuid.uuid4().hex
        self.last_typing = 0.0
        self.closing = False
        self.authority_epoch = (await database_sync_to_async(realtime.authority_epochs)([user.pk]))[
            user.pk
        ]
        try:
            await fanout.relay().join(room.pk, self.outlet)
        except UNAVAILABLE:
            await self.try_again_later()
            return
        await self.accept()
        if self.session_id is not None:
            # Before the history, as on resume: a gap may have been a change of state.
            await self._send_session_state()
        await self._send_history(self._after_from_query())
        await self._send({"type": "room", **realtime.room_payload(room)})
        if self.session_id is not None:
            if await database_sync_to_async(self._leads_session)():
                self.leaders_group = realtime.session_leaders_group(self.session_id)
                await self.channel_layer.group_add(self.leaders_group, self.channel_name)
            newcomer = await database_sync_to_async(self._join_session)()
            await self._send_session_state()  # with this member counted in
            # Leaders run the meeting: the welcome is for members at their first one.
            leads = getattr(self, "leaders_group", None) is not None
            if newcomer is not None and newcomer.session.welcome_html and not leads:
                # Addressed to the newcomer alone: nobody else learns it is their first time.
                await self._send({"type": "welcome", "html": newcomer.session.welcome_html})
        watch().add(self)
        try:
            await presence.store().touch(room.pk, self.conn_id, self.handle, now=presence.now())
            members = await presence.store().members(room.pk, now=presence.now())
            await self._send({"type": "presence", "members": members})
            await announce_presence(room.pk, known=watch().last_members)
        except UNAVAILABLE:  # the watch renews presence once Redis answers again
            logger.warning("presence unavailable on connect", exc_info=True)
        self.outlet.open()

    async def try_again_later(self) -> None:
        """The database or Redis is unreachable: say so and close with a code the client
        retries (docs/chat-protocol.md), rather than failing the handshake."""
        self.left = True  # never watched nor listed present: nothing to leave
        await super().try_again_later()

    @staticmethod
    def _open_room(user, kwargs) -> ChatRoom:
        # A direct conversation's room: its participants only, 404 for everyone else.
        room = selectors.get_room_for(
            user, slug=kwargs["slug"], room_slug=kwargs["room_slug"], allow_direct=True
        )
        permissions.check_can_read_room(user, room)
        if room.kind == ChatRoom.Kind.SESSION:
            permissions.check_can_attend_session(user, room.live_session)
        return room

    def _session(self) -> LiveSession:
        return LiveSession.objects.select_related("group", "room", "fellowship_room").get(
            pk=self.session_id
        )

    def _leads_session(self) -> bool:
        return permissions.can_facilitate(User.objects.get(pk=self.user_id), self._session())

    def _join_session(self):
        return live.join_session(user=User.objects.get(pk=self.user_id), session=self._session())

    def _leave_session(self) -> None:
        live.leave_session(user=User.objects.get(pk=self.user_id), session=self._session())

    async def _send_session_state(self) -> None:
        state = await database_sync_to_async(lambda: live.session_payload(self._session()))()
        await self._send({"type": "session", "session": state})

    def _after_from_query(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            after = int(query.get("after", [""])[0])
        except ValueError:
            return None
        return after if after >= 0 else None

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if not hasattr(self, "conn_id") or getattr(self, "left", False):
            return  # refused before accept, or already gone
        self.left = True
        watch().discard(self)
        if self.session_id is not None:
            try:
                await database_sync_to_async(self._leave_session)()
            except Exception:  # attendance is closed at the session's end in any case
                logger.warning("attendance update on disconnect failed", exc_info=True)
        await fanout.relay().leave(self.room_id, self.outlet)
        if getattr(self, "leaders_group", None):
            await self.channel_layer.group_discard(self.leaders_group, self.channel_name)
        try:
            await presence.store().leave(self.room_id, self.conn_id, self.handle)
            await announce_presence(self.room_id, known=watch().last_members)
        except Exception:  # presence heals itself when the entry expires
            logger.warning("presence update on disconnect failed", exc_info=True)

    # --- frames from the client -------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            await self._send_error("binary_unsupported", "Send JSON text frames.")
            return
        if len(text_data.encode("utf-8")) > MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            await self._send_error("bad_json", "Frames are JSON objects.")
            return
        frame_type = frame.get("type")
        handler = self.HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
        if handler is None:
            await self._send_error("unknown_type", "Unknown frame type.")
            return
        self.outlet.hold()  # the answer goes first: an ack before the message's broadcast
        try:
            await handler(self, frame)
        except FrameError as error:
            await self._send(error.frame)
        except UNAVAILABLE:  # e.g. a typing notice while the channel layer is down
            logger.warning("chat frame %s failed: Redis unavailable", frame_type, exc_info=True)
            await self._send(UNAVAILABLE_FRAME)
        finally:
            self.outlet.open()

    async def _on_send(self, frame: dict) -> None:
        client_id = _field(frame, "client_id", str)
        body = _field(frame, "body", str)
        # The member's one-message override of their own quiet hours (docs/chat-protocol.md).
        post_anyway = frame.get(publishing.QUIET_HOURS_FIELD) is True
        message = await self._write(
            lambda user, room: publishing.publish_chat_message(
                author=user, room=room, body=body, client_id=client_id, post_anyway=post_anyway
            )[0],
            client_id=client_id,
        )
        ack = {"type": "ack", "client_id": client_id, "id": message.pk, "seq": message.seq,
               "version": message.version}  # fmt: skip
        if message.removed_by == ChatMessage.RemovedBy.REVIEW:
            # A watched phrase held it: the author hears so at once (docs/chat-protocol.md).
            ack["removed_by"] = message.removed_by
            ack["notice"] = publishing.HOLD_NOTICE
        if getattr(message, "crisis_categories", None):
            # Words that suggest risk: the sender (only) sees support at once; nothing is held.
            ack["support"] = await self._support()
        await self._send(ack)

    async def _on_edit(self, frame: dict) -> None:
        message_id, body = _field(frame, "id", int), _field(frame, "body", str)
        versions = {}

        def edit(user, room) -> ChatMessage:
            message = self._message(room, message_id)
            versions["before"] = message.version
            return publishing.edit_chat_message(editor=user, message=message, body=body)

        message = await self._write(edit, id=message_id)
        if message.version == versions["before"]:
            # Nothing changed, so nothing was broadcast: answer the sender alone.
            payload = await database_sync_to_async(realtime.message_payload)(message)
            await self._send({"type": "message_updated", "message": payload})
        elif getattr(message, "crisis_categories", None):
            support = await self._support()
            await self._send({"type": "support", "id": message.pk, "support": support})

    @staticmethod
    async def _support() -> dict:
        """What a sender whose words suggest risk is offered at once (docs/chat-protocol.md)."""
        return {"resources": await database_sync_to_async(selectors.crisis_resource_payloads)()}

    async def _on_delete(self, frame: dict) -> None:
        message_id = _field(frame, "id", int)

        def delete(user, room) -> ChatMessage:
            message = self._message(room, message_id)
            if message.author_id == user.pk:
                return publishing.withdraw_chat_message(author=user, message=message)
            if room.kind == ChatRoom.Kind.DIRECT:  # moderators act on a report, not in here
                raise PermissionDenied("You can only delete your own messages.")
            return actions.remove_chat_message(actor=user, message=message)

        await self._write(delete, id=message_id)

    async def _on_flag(self, frame: dict) -> None:
        message_id, reason = _field(frame, "id", int), _field(frame, "reason", str)
        details = frame.get("details", "")
        if not isinstance(details, str):
            raise FrameError("missing_field", "'details' is text.", id=message_id)

        def flag(user, room) -> dict:
            message = self._message(room, message_id)
            made = actions.flag(flagger=user, obj=message, reason=reason, details=details)
            return selectors.flagged_frame(made)

        # Only the flagger hears of it: nobody else learns who flagged.
        await self._send(await self._write(flag, id=message_id))

    async def _on_resume(self, frame: dict) -> None:
        after = _field(frame, "after", int)
        if after < 0:
            raise FrameError("missing_field", "'after' is a sequence number, 0 or more.")
        if self.session_id is not None:
            # Before the history: a gap may have been a change of the session's state.
            await self._send_session_state()
        await self._send_history(after)

    async def _on_typing(self, frame: dict) -> None:
        now = time.monotonic()
        if now - self.last_typing < TYPING_INTERVAL:
            return
        self.last_typing = now
        if not await database_sync_to_async(self._with_fresh_state)(permissions.can_write_room):
            return  # readers who cannot write here do not show as typing
        await self.channel_layer.group_send(
            realtime.room_group(self.room_id),
            realtime.chat_event({"type": "typing", "handle": self.handle}),
        )

    async def _on_read(self, frame: dict) -> None:
        seq = _field(frame, "seq", int)
        if seq < 0:
            raise FrameError("missing_field", "'seq' is a sequence number, 0 or more.")
        await database_sync_to_async(self._mark_read)(seq)

    async def _on_session(self, frame: dict) -> None:
        """A share-queue or facilitation control (docs/chat-protocol.md, "Live sessions")."""
        op = frame["type"]
        if self.session_id is None:
            raise FrameError("not_a_session", "This room is not a live session.", op=op)
        try:
            call = _session_call(op, frame)
        except FrameError as error:
            error.frame["op"] = op  # the console shows it beside the control that sent it
            raise

        def control(user, room):
            call(user, LiveSession.objects.select_related("group", "room").get(pk=self.session_id))

        await self._write(control, op=op)
        await self._send({"type": "done", "op": op})

    HANDLERS = {
        "send": _on_send,
        "edit": _on_edit,
        "delete": _on_delete,
        "resume": _on_resume,
        "typing": _on_typing,
        "read": _on_read,
        "flag": _on_flag,
        **dict.fromkeys(SESSION_OPS, _on_session),
    }

    # --- the write path, run in a thread --------------------------------------------

    async def _write(self, change: Callable[[User, ChatRoom], T], **extra) -> T:
        """Run a write-path call in one of the worker's writer threads (``_writers``);
        refusals become error frames that carry the ``client_id`` or message ``id`` they
        answer. A ``client_id`` (a new message) is also asked for a resend with the member
        (``_with_fresh_state``)."""
        try:
            return await database_sync_to_async(
                self._with_fresh_state, thread_sensitive=False, executor=_writers()
            )(change, extra.get("client_id"))
        except ValidationError as error:
            text = " ".join(error.messages)
            # The member's own quiet hours: the client may resend with "post_anyway": true.
            quiet = publishing.QUIET_HOURS_FIELD in getattr(error, "error_dict", {})
            code = "quiet_hours" if quiet else "invalid"
            fields = sorted(getattr(error, "error_dict", {}))
            raise FrameError(
                code, text, **({"fields": fields} if fields else {}), **extra
            ) from None
        except RateLimited as error:
            raise FrameError(
                "rate_limited", str(error), retry_after=error.retry_after, **extra
            ) from None
        except Http404 as error:
            raise FrameError("not_found", str(error) or "No such message.", **extra) from None
        except PermissionDenied as error:
            raise FrameError("forbidden", str(error) or "Not allowed.", **extra) from None
        except (DatabaseError, *UNAVAILABLE) as error:
            # Unreachable, or the transaction was rolled back: nothing was stored or sent.
            logger.warning("chat write failed: %s", error, exc_info=True)
            raise FrameError(
                "unavailable",
                "That could not be saved just now, so nothing changed. Please try again.",
                retry_after=UNAVAILABLE_RETRY_SECONDS,
                **extra,
            ) from None

    def _with_fresh_state(self, change, client_id: str | None = None):
        # Fresh rows each time (the room's state or the member's role may have changed),
        # read with the member in one statement: the room, and for a message whether its
        # client id was sent before.
        rider = selectors.room_with_member(self.user_id, self.room_id)
        if client_id is not None:
            rider += publishing.sent_before_with_member(self.room_id, client_id)
        with read_with_member(rider):
            user = load_member(self.user_id)
        if user is None:
            raise User.DoesNotExist
        return change(user, selectors.room_to_write(user, self.room_id))

    @staticmethod
    def _message(room: ChatRoom, message_id: int) -> ChatMessage:
        message = ChatMessage.objects.filter(pk=message_id, room=room).first()
        if message is None:
            raise Http404("No such message in this room.")
        message.room = room
        return message

    def _mark_read(self, seq: int) -> None:
        user = User.objects.get(pk=self.user_id)
        room = ChatRoom.objects.get(pk=self.room_id)
        engagement.mark_room_read(user=user, room=room, seq=seq)

    def _recheck(self) -> tuple[int | None, float]:
        code = selectors.socket_refusal(
            user_id=self.user_id,
            session_key=self.session_key,
            session_hash=self.session_hash,
            room_id=self.room_id,
        )
        return code, selectors.session_expiry(self.session_key) or 0.0

    # --- frames to the client ---------------------------------------------------------

    async def _send(self, frame: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(frame))

    async def _send_error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _send_history(self, after: int | None) -> None:
        # latest_seq is read first: a change committed in between is then both in the
        # messages and above latest_seq, never silently covered by it.
        latest = (await database_sync_to_async(selectors.latest_seqs)([self.room_id])).get(
            self.room_id, 0
        )
        messages, more = await database_sync_to_async(selectors.room_changes)(
            self.room_id, after=after, limit=settings.KINSHIP_CHAT_HISTORY
        )
        await self._send(
            {"type": "history", "messages": messages, "latest_seq": latest, "has_more": more}
        )

    async def chat_event(self, event: dict) -> None:
        """A broadcast to this socket alone (a live session's leaders' alerts); a room's
        come through forum.fanout. Sent in turn with those."""
        self.outlet.push(realtime.event_text(event))

    async def send_heartbeat(self, latest_seq: int) -> None:
        self.outlet.push(json.dumps({"type": "heartbeat", "latest_seq": latest_seq}))

    def _stalled(self) -> None:
        """The client stopped reading: rather than buffer every broadcast for it without
        end, the socket closes (1013) and the client resumes from the database when it
        reconnects."""
        if not self.closing:
            logger.info("chat socket of %s stopped reading; closing it", self.handle)
            self.closing = True
            self.slow_close = asyncio.get_running_loop().create_task(
                self.close(code=CLOSE_TRY_AGAIN)
            )

    def _authority_changed_in_room(self, event: dict) -> None:
        """The relay holds the outlet: no later room frame goes out before the re-check."""

        async def recheck() -> None:
            try:
                await self.authority_changed(event)
            finally:
                self.outlet.open()

        self.rechecking = asyncio.get_running_loop().create_task(recheck())

    async def revalidate(self) -> None:
        try:
            code, expires_at = await database_sync_to_async(self._recheck)()
        except DatabaseError:
            logger.warning("chat socket re-check failed; trying again", exc_info=True)
            self.authority_epoch = None  # so the watch's next round re-checks it
            return
        if code is None:
            self.session_expires_at = expires_at  # browsing may have extended the session
        else:
            await self._revoke(code)

    async def _revoke(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            self.outlet.close()
            await self.close(code=code)
