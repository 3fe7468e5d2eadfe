"""Real-time plumbing shared by the write path and the consumers.

The channel layer is a doorbell, not a store: it may drop a broadcast. Everything
sent here was committed to the database first, with a sequence number, so a client
that misses a broadcast notices the gap (heartbeat) and catches up (resume).
Payloads are complete and already sanitised: fan-out never touches the database.
"""

import asyncio
import collections
import hashlib
import json
import logging
import os
import weakref
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction

from .cache import UNAVAILABLE
from .models import ChatMessage, ChatRoom

logger = logging.getLogger(__name__)


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_leaders_group(session_id: int) -> str:
    """The sockets of a live session's facilitators (crisis alerts reach them there)."""
    return f"session-leaders.{session_id}"


def queue_group(group_id: int | None) -> str:
    """Moderators watching the queue of one group, or (None) of the whole site."""
    return "modqueue.site" if group_id is None else f"modqueue.{group_id}"


def broadcast_queue_change(group_id: int | None) -> None:
    """Tell the moderators of ``group_id`` (and site moderators) that their queue changed."""
    event = {"type": "queue.changed"}
    broadcast_on_commit(queue_group(None), event)
    if group_id is not None:
        broadcast_on_commit(queue_group(group_id), event)


def message_payload(message: ChatMessage, *, author_handle: str | None = None) -> dict[str, Any]:
    """A message as clients see it; a removed message carries no text. A message with a
    moderators' context note (``message.context_note``, a moderation.context_notes.NoteView,
    set by the write path or forum.selectors) carries it as ``context``."""
    if author_handle is None:
        author_handle = message.author.handle if message.author_id else None
    payload = {
        "id": message.pk,
        "seq": message.seq,
        "version": message.version,
        "author": author_handle,
        "html": "" if message.is_removed else message.html,
        # The Markdown source, so the author can edit what they wrote (plain text).
        "source": "" if message.is_removed else message.source,
        "created_at": message.created_at.isoformat(),
        "edited": message.edited_at is not None,
        "removed": message.is_removed,
        "removed_by": message.removed_by or None,
        "client_id": message.client_id,
    }
    note = getattr(message, "context_note", None)
    if note is not None and not message.is_removed:
        payload["context"] = {
            "claim": note.claim,
            "html": note.correction_html,  # written by moderators through the write path
            "sources": list(note.sources),
        }
    return payload


def room_payload(room: ChatRoom) -> dict[str, Any]:
    return {"name": room.name, "state": room.state, "slow_mode": room.slow_mode_seconds}


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to a channel-layer group once the current transaction commits.

    A failed send is logged, not raised: the change is already stored, and clients
    recover it through heartbeat and resume.
    """
    transaction.on_commit(lambda: _send(group, event))


def _send(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _serving_loop()
    if loop is not None:
        # In a worker's thread for sync code (a page, a chat write): the serving loop
        # sends it, in order, and the write goes on without waiting for the round trip.
        try:
            loop.call_soon_threadsafe(_enqueue, layer, group, event)
            return
        except RuntimeError:  # the loop has closed (a worker shutting down)
            pass
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # the layer is a doorbell; the record is in the database
        logger.warning("broadcast to %s failed", group, exc_info=True)


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop whose sync_to_async thread this is, if it runs (asgiref keeps it)."""
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


class _Outbox:
    """One event loop's broadcasts from its sync threads, sent one at a time in order."""

    def __init__(self) -> None:
        self.pending: collections.deque[tuple[Any, str, dict[str, Any]]] = collections.deque()
        self.sending: asyncio.Task | None = None

    def append(self, layer, group: str, event: dict[str, Any]) -> None:
        self.pending.append((layer, group, event))
        if self.sending is None or self.sending.done():
            self.sending = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        while self.pending:
            layer, group, event = self.pending.popleft()
            try:
                await layer.group_send(group, event)
            except Exception:  # the layer is a doorbell; the record is in the database
                logger.warning("broadcast to %s failed", group, exc_info=True)


_outboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox]" = (
    weakref.WeakKeyDictionary()
)


def _enqueue(layer, group: str, event: dict[str, Any]) -> None:
    """On the serving loop."""
    loop = asyncio.get_running_loop()
    if loop not in _outboxes:
        _outboxes[loop] = _Outbox()
    _outboxes[loop].append(layer, group, event)


def chat_event(frame: dict[str, Any]) -> dict[str, Any]:
    """A room broadcast. The frame goes as the JSON every socket sends: encoded once here,
    not once per socket (forum.fanout)."""
    return {"type": "chat.event", "text": json.dumps(frame)}


def event_text(event: dict[str, Any]) -> str:
    """What a socket sends for a chat.event: its JSON, or its frame encoded."""
    return event.get("text") or json.dumps(event["frame"])


def broadcast_room_change(*, room: ChatRoom, kind: str, message: ChatMessage) -> None:
    """Broadcast a stored message change: kind is message, message_updated or message_removed."""
    broadcast_on_commit(
        room_group(room.pk), chat_event({"type": kind, "message": message_payload(message)})
    )


# Authority epochs: a counter per member, bumped whenever something that may end their
# right to an open socket happens (logout, password change, ban, leaving a group, ...).
# Once the change commits, every open socket of the member (chat, notifications, review
# queue) is also told on the member's authority group and re-checks at once. The
# broadcast may be lost, so each worker process also polls the counters of its connected
# members and re-checks those whose counter moved: revocation never depends on it.


def _epoch_key(user_id: int) -> str:
    return f"authority:{user_id}"


def authority_group(user_id: int) -> str:
    """Every open socket of one member, whatever its kind."""
    return f"authority.{user_id}"


def session_digest(session_key: str | None) -> str:
    """Names a session in broadcasts without carrying its key (a credential)."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()


def bump_authority(user_id: int, *, ended_session: str | None = None) -> None:
    """``ended_session``: the key of a session that ends now (a logout): its sockets close
    without a re-check, which could run before the session is deleted."""
    key = _epoch_key(user_id)
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:  # evicted in between
            cache.set(key, 1, timeout=None)
    event = {"type": "authority.changed", "user": user_id}
    if ended_session:
        event["ended_session"] = session_digest(ended_session)
    broadcast_on_commit(authority_group(user_id), event)


def authority_epochs(user_ids: list[int]) -> dict[int, int | None]:
    """Each member's epoch; None for all while the cache is unreachable, which makes every
    socket re-check against the database until it answers again (forum.watch)."""
    try:
        found = cache.get_many([_epoch_key(user_id) for user_id in user_ids])
    except UNAVAILABLE:
        logger.warning("authority epochs unavailable; sockets re-check against the database")
        return dict.fromkeys(user_ids)
    return {user_id: found.get(_epoch_key(user_id), 0) for user_id in user_ids}
