"""Actions leaders and moderators take: check -> mutate -> broadcast, in one place each."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from forum import realtime
from forum.models import ChatMessage, ChatRoom, User

from . import permissions


def remove_chat_message(*, actor: User, message: ChatMessage) -> ChatMessage:
    """A leader or moderator removes a message: it disappears from every screen at once.

    The text stays stored (hidden) so the decision can be reviewed; only the author's
    own deletion erases it.
    """
    permissions.check_can_read_room(actor, message.room)
    if not permissions.can_delete_chat_message(actor, message):
        raise PermissionDenied("Only the group's leaders and moderators can remove messages.")
    with transaction.atomic():
        message.removed_at = timezone.now()
        message.removed_by = ChatMessage.RemovedBy.MODERATOR
        message.version = ChatRoom.take_seq(message.room_id)
        message.save(update_fields=["removed_at", "removed_by", "version"])
        realtime.broadcast_room_change(room=message.room, kind="message_removed", message=message)
    return message
