"""Support reactions, thread subscriptions, blocks and in-app notifications."""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from moderation import permissions

from . import notify, page_cache, standing
from .models import (
    Block,
    ChatRoom,
    Mute,
    Notification,
    Post,
    Reaction,
    RoomReadState,
    Subscription,
    Thread,
    User,
)


def subscribe(*, user: User, thread: Thread) -> None:
    Subscription.objects.get_or_create(user=user, thread=thread)


def set_subscription(*, user: User, thread: Thread, follow: bool) -> None:
    permissions.check_can_view_group(user, thread.group)
    if not permissions.can_subscribe(user, thread):
        raise PermissionDenied("Sign in to follow threads.")
    if follow:
        subscribe(user=user, thread=thread)
    else:
        Subscription.objects.filter(user=user, thread=thread).delete()


def toggle_support(*, user: User, post: Post) -> bool:
    """Add or take back a "support" reaction; returns whether it is now given."""
    permissions.check_can_support(user, post)
    with transaction.atomic():
        page_cache.thread_changed(post.thread_id)  # the count changes in place, unsignalled
        deleted, _ = Reaction.objects.filter(post=post, user=user).delete()
        if deleted:
            Post.objects.filter(pk=post.pk).update(support_count=F("support_count") - 1)
            return False
        try:
            with transaction.atomic():
                Reaction.objects.create(post=post, user=user)
        except IntegrityError:  # a concurrent click already added it
            return True
        Post.objects.filter(pk=post.pk).update(support_count=F("support_count") + 1)
        return True


def block_member(*, user: User, member: User) -> None:
    """Collapse a member's words for ``user`` and stop them reaching ``user``; they are not told."""
    permissions.check_can_block(user, member)
    Block.objects.get_or_create(blocker=user, blocked=member)


def unblock_member(*, user: User, member: User) -> None:
    Block.objects.filter(blocker=user, blocked=member).delete()


def blocked_ids(user: User) -> set[int]:
    """The members ``user`` has blocked."""
    if not user.is_authenticated:
        return set()
    return set(Block.objects.filter(blocker=user).values_list("blocked_id", flat=True))


def _can_be_told(user: User, thread: Thread) -> bool:
    return user.is_active and permissions.can_view_group(user, thread.group)


def set_thread_mute(*, user: User, thread: Thread, muted: bool) -> None:
    permissions.check_can_view_thread(user, thread)
    if muted:
        Mute.objects.get_or_create(user=user, thread=thread)
    else:
        Mute.objects.filter(user=user, thread=thread).delete()


def set_room_mute(*, user: User, room: ChatRoom, muted: bool) -> None:
    permissions.check_can_read_room(user, room)
    if muted:
        Mute.objects.get_or_create(user=user, room=room)
    else:
        Mute.objects.filter(user=user, room=room).delete()


def _silenced(post: Post) -> set[int]:
    """Members this post must not notify: who blocked its author, who muted its thread."""
    muted = Q(thread_id=post.thread_id)
    ids = set(Mute.objects.filter(muted).values_list("user_id", flat=True))
    if post.author_id is not None:
        ids |= set(
            Block.objects.filter(blocked_id=post.author_id).values_list("blocker_id", flat=True)
        )
    return ids


def notify_mentions(
    *, post: Post, mentioned: Iterable[User], skip: set[int] | None = None
) -> set[int]:
    """Tell mentioned members who can read the post; returns who was told. ``skip``: who
    must not be told (already told, or silenced); None works out the silenced."""
    told: set[int] = set()
    skip = _silenced(post) if skip is None else skip
    for user in mentioned:
        if user.pk == post.author_id or user.pk in skip or not _can_be_told(user, post.thread):
            continue
        # One who turned mentions off may still hear of the reply as the thread's follower.
        if notify.notify(
            recipient=user,
            kind=Notification.Kind.MENTION,
            actor=post.author,
            group=post.thread.group,
            thread=post.thread,
            post=post,
        ):
            told.add(user.pk)
    return told


def notify_reply(*, post: Post, parent: Post, mentioned: Iterable[User]) -> None:
    """Notify the parent's author, the mentioned, then the thread's followers, once each."""
    thread = post.thread
    told = {post.author_id}
    silenced = _silenced(post)
    parent_author = parent.author
    if (
        parent_author is not None
        and parent_author.pk not in told
        and parent_author.pk not in silenced
        and not parent.is_removed_by_author
        and _can_be_told(parent_author, thread)
    ):
        notify.notify(
            recipient=parent_author,
            kind=Notification.Kind.REPLY,
            actor=post.author,
            group=thread.group,
            thread=thread,
            post=post,
        )
        told.add(parent_author.pk)
    told |= notify_mentions(post=post, mentioned=mentioned, skip=told | silenced)
    followers = Subscription.objects.filter(thread=thread, user__is_active=True).exclude(
        user_id__in=told | silenced
    )
    if thread.group.is_private:
        # Someone who left a private group keeps no window into it.
        followers = followers.filter(
            Q(user__memberships__group=thread.group)
            | Q(user__is_site_moderator=True)
            | Q(user__is_superuser=True)
        )
    notify.notify_many(
        recipient_ids=followers.values_list("user_id", flat=True).distinct(),
        kind=Notification.Kind.THREAD_REPLY,
        actor=post.author,
        group=thread.group,
        thread=thread,
        post=post,
    )


def mark_notifications_read(*, user: User) -> int:
    marked = Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if marked:  # the badge in the member's other tabs goes quiet too
        standing.changed(user.pk)
        notify.broadcast_unread_count(user.pk)
    return marked


def mark_room_read(*, user: User, room: ChatRoom, seq: int) -> None:
    seq = min(seq, room.last_seq)
    state, created = RoomReadState.objects.get_or_create(
        room=room, user=user, defaults={"last_read_seq": seq}
    )
    if not created and seq > state.last_read_seq:
        RoomReadState.objects.filter(pk=state.pk, last_read_seq__lt=seq).update(last_read_seq=seq)
