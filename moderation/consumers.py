"""The live review queue: a doorbell that tells a moderator's open queue page to refresh.

It carries no queue data: on "queue_changed" the page fetches the list again over
HTTP, where every permission check already lives. ``"urgent": true`` marks a change
that needs someone soon (crisis words), which the page announces assertively. Events come from
forum.realtime.broadcast_queue_change, sent after the change commits.

Like every socket, it re-checks its authority when told on the member's authority group
(a logout, a password change, a change of role) and, as a backstop, in the notifications
socket's watcher (forum.notify_consumer), which polls the authority epochs.
"""

import json

from channels.db import database_sync_to_async

from forum import notify_consumer, realtime, selectors
from forum.cache import UNAVAILABLE
from forum.models import User
from forum.sockets import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED

from . import permissions


class QueueConsumer(notify_consumer.WatchedSocket):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        ids = await database_sync_to_async(permissions.moderated_group_ids)(user)
        if ids is not None and not ids:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        try:
            await self.watch_authority(user)
            await self._listen(ids)
        except UNAVAILABLE:
            await self.try_again_later()
            return
        await self.accept()
        notify_consumer.watch().add(self)

    async def _listen(self, ids: list[int] | None) -> None:
        """Hear the queues of these groups (None: the site's), and no others."""
        # Site moderators hear every change on "modqueue.site"; group moderators, their groups'.
        names = (
            [realtime.queue_group(None)] if ids is None else [realtime.queue_group(i) for i in ids]
        )
        for name in set(self.groups_joined) - set(names):
            await self.channel_layer.group_discard(name, self.channel_name)
        for name in set(names) - set(self.groups_joined):
            await self.channel_layer.group_add(name, self.channel_name)
        self.groups_joined = names

    def _standing(self) -> tuple[int | None, list[int] | None, float]:
        """(why the socket must close, or None; the groups moderated now; session expiry)."""
        code = notify_consumer.socket_refusal(
            user_id=self.user_id, session_key=self.session_key, session_hash=self.session_hash
        )
        if code is not None:
            return code, [], 0.0
        ids = permissions.moderated_group_ids(User.objects.get(pk=self.user_id))
        if ids is not None and not ids:
            return CLOSE_FORBIDDEN, [], 0.0
        return None, ids, selectors.session_expiry(self.session_key) or 0.0

    async def _still_moderates(self) -> bool:
        """Re-check; close the socket, or follow a change of the groups moderated."""
        code, ids, expires_at = await database_sync_to_async(self._standing)()
        if code is not None:
            await self._revoke(code)
            return False
        self.session_expires_at = expires_at  # browsing may have extended the session
        await self._listen(ids)
        return True

    async def revalidate(self) -> None:
        await self._still_moderates()

    async def disconnect(self, code: int) -> None:
        await self.unwatch_authority()
        await self.leave(*self.groups_joined)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The client has nothing to say; a ping gets a pong, anything else is ignored."""
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def queue_changed(self, event: dict) -> None:
        # Authority is re-checked on every ring (moderators are few, rings rare): someone
        # no longer moderating, or no longer active, stops hearing the queue at once.
        if self.closing or not await self._still_moderates():
            return
        frame = {"type": "queue_changed"}
        if event.get("urgent"):
            # Someone's words suggest they may be at risk (moderation.actions.raise_crisis_alert).
            frame["urgent"] = True
        await self.send(text_data=json.dumps(frame))
