"""Every moderation action: check -> mutate -> log -> notify -> broadcast, one function each.

Targets are posts, threads, chat messages and members. Every action writes one
append-only ModerationLogEntry with before/after snapshots; member-written text
(flag details, reasons, messages, notes, appeals) goes through the write path's text
step (``forum.publishing.prepare_text``), and anything that leaves the process (chat
frames, the queue's live updates) is sent after the transaction commits.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, QuerySet
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from forum import content_warnings, notify, publishing, realtime
from forum.models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Notification,
    Post,
    PostRevision,
    SupportGroup,
    Thread,
    User,
)

from . import context_notes, permissions, policy, ratelimit, trust
from .models import (
    FLAG_WEIGHTS,
    Appeal,
    ContextNote,
    DomainRule,
    Flag,
    FlagReason,
    LinkApproval,
    ModerationLogEntry,
    ModeratorNote,
    NoteAttachment,
    QueueItem,
    Rule,
    Sanction,
    WatchedPhrase,
)

Action = ModerationLogEntry.Action

# What a member can appeal: what was done to them or to their words.
APPEALABLE = frozenset(
    {
        Action.CONTENT_HIDDEN,
        Action.CONTENT_EDITED,
        Action.WARNING,
        Action.CHAT_MUTE,
        Action.SLOW_MODE,
        Action.SUSPENSION,
        Action.BAN,
    }
)
SANCTION_ACTIONS = {
    Sanction.Kind.WARNING: Action.WARNING,
    Sanction.Kind.CHAT_MUTE: Action.CHAT_MUTE,
    Sanction.Kind.SLOW_MODE: Action.SLOW_MODE,
    Sanction.Kind.SUSPENSION: Action.SUSPENSION,
    Sanction.Kind.BAN: Action.BAN,
}
# Sanctions that end a member's right to an open chat socket.
SOCKET_CLOSING = frozenset({Sanction.Kind.SUSPENSION, Sanction.Kind.BAN})
MAX_DURATION = timedelta(days=3650)


# --- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    """What an action or a flag is about, whatever its model."""

    obj: Any
    kind: str  # "post", "thread", "chat message", "member"
    group: SupportGroup | None
    author: User | None
    label: str
    url: str

    @property
    def content_type(self) -> ContentType:
        return ContentType.objects.get_for_model(type(self.obj))

    @property
    def is_hidden(self) -> bool:
        if self.kind == "chat message":
            return self.obj.is_removed
        if self.kind in {"post", "thread"}:
            return self.obj.is_hidden
        return False

    @property
    def is_hidden_by_review(self) -> bool:
        """Hidden by members' flags until a moderator looks, not by a moderator."""
        if self.kind == "chat message":
            return self.obj.removed_by == ChatMessage.RemovedBy.REVIEW
        return self.kind in {"post", "thread"} and self.obj.hidden_pending_review

    @property
    def is_gone(self) -> bool:
        """Taken back by its author: nothing left to act on."""
        if self.kind == "post":
            return self.obj.is_removed_by_author
        if self.kind == "chat message":
            return self.obj.removed_by == ChatMessage.RemovedBy.AUTHOR
        if self.kind == "member":
            return not self.obj.is_active
        return False

    def snapshot(self) -> dict[str, Any]:
        obj = self.obj
        if self.kind == "post":
            return {
                "source": obj.source,
                "content_warning": obj.content_warning,
                "hidden": obj.is_hidden,
                "moderator_note": obj.moderator_note,
            }
        if self.kind == "thread":
            return {
                "title": obj.title,
                "group": obj.group.slug,
                "locked": obj.is_locked,
                "pinned": obj.is_pinned,
                "hidden": obj.is_hidden,
                "content_warning": obj.content_warning,
            }
        if self.kind == "chat message":
            return {"source": obj.source, "removed": obj.removed_by or None}
        return {"handle": obj.handle}


def target_of(obj) -> Target:
    if isinstance(obj, Post):
        thread = obj.thread
        return Target(
            obj,
            "post",
            thread.group,
            obj.author,
            f"a post in “{thread.title}”",
            obj.get_absolute_url(),
        )
    if isinstance(obj, Thread):
        return Target(
            obj,
            "thread",
            obj.group,
            obj.author,
            f"the thread “{obj.title}”",
            obj.get_absolute_url(),
        )
    if isinstance(obj, ChatMessage):
        room = obj.room
        return Target(
            obj,
            "chat message",
            room.group,
            obj.author,
            f"a chat message in {room.group.name} / {room.name}",
            f"{room.get_absolute_url()}#msg-{obj.pk}",
        )
    if isinstance(obj, User):
        return member_target(obj)
    raise TypeError(f"cannot moderate {type(obj).__name__}")


def member_target(member: User, group: SupportGroup | None = None) -> Target:
    """A member as the target of an action, in ``group`` (None: site-wide, or a flag)."""
    return Target(
        member,
        "member",
        group,
        member,
        f"@{member.handle}",
        reverse("profile", kwargs={"handle": member.handle}),
    )


def load_target(kind: str, pk: int) -> Any:
    """The object behind a (kind, id) pair from a form or a frame; Http404-free None."""
    models = {
        "post": Post.objects.select_related("thread__group", "author"),
        "thread": Thread.objects.select_related("group", "author"),
        "chat message": ChatMessage.objects.select_related("room__group", "author"),
        "member": User.objects.all(),
    }
    if kind not in models:
        return None
    return models[kind].filter(pk=pk).first()


# --- bookkeeping -----------------------------------------------------------------------------


def log_action(
    *,
    actor: User | None,
    action: str,
    target: Target,
    member: User | None = None,
    reason: str = "",
    rule: Rule | None = None,
    before: dict | None = None,
    after: dict | None = None,
    target_override: tuple[str, int] | None = None,
) -> ModerationLogEntry:
    group = target.group
    target_type, target_id = target_override or (target.kind, target.obj.pk)
    member = member if member is not None else target.author
    return ModerationLogEntry.objects.create(
        actor_id=actor.pk if actor else None,
        actor_handle=actor.handle if actor else "",
        actor_role=(permissions.moderation_standing(actor, group) or "") if actor else "automatic",
        action=action,
        group_id=group.pk if group else None,
        group_name=group.name if group else "",
        target_type=target_type,
        target_id=target_id,
        target_label=target.label[:200],
        member_id=member.pk if member else None,
        member_handle=member.handle if member else "",
        rule_title=rule.title if rule else "",
        reason=reason,
        before=before or {},
        after=after or {},
    )


def notify_member(member: User | None, text: str, *, group: SupportGroup | None) -> None:
    """Tell a member what a moderator did, without naming the moderator."""
    if member is None:
        return
    notify.notify(
        recipient=member,
        kind=Notification.Kind.MODERATION,
        group=group,
        text=text[:300],
        url=reverse("moderation:mine"),
    )


def _because(rule: Rule | None, reason: str) -> str:
    parts = [part for part in (rule.title if rule else "", reason) if part]
    return ": ".join(parts)


def clean_reason(value: str, *, required: bool = True, field: str = "reason") -> str:
    return _reason_with_html(value, required=required, field=field)[0]


def _reason_with_html(
    value: str, *, required: bool = True, field: str = "reason"
) -> tuple[str, str]:
    return publishing.prepare_text(value, field=field, label="The reason", required=required)


def _rule(rule: Rule | None, group: SupportGroup | None) -> Rule | None:
    if (
        rule is not None
        and rule.group_id is not None
        and (group is None or rule.group_id != group.pk)
    ):
        raise ValidationError({"rule": "That rule belongs to another group."})
    return rule


def _resolve_items(target: Target, *, actor: User, resolution: str) -> None:
    items = QueueItem.objects.filter(
        content_type=target.content_type, object_id=target.obj.pk, state=QueueItem.State.OPEN
    )
    if items.update(
        state=QueueItem.State.RESOLVED,
        resolved_at=timezone.now(),
        resolved_by=actor,
        resolution=resolution[:200],
    ):
        realtime.broadcast_queue_change(target.group.pk if target.group else None)


def _check_live(target: Target) -> None:
    if target.is_gone:
        raise PermissionDenied(f"Its author has already deleted {target.label}.")


# --- flags -----------------------------------------------------------------------------------


def flag(*, flagger: User, obj, reason: str, details: str = "") -> Flag:
    """A member flags content or a member, once per item. Enough distinct flags hide
    content until a moderator looks; a crisis concern never hides anything."""
    permissions.check_can_flag(flagger, obj)
    target = target_of(obj)
    if reason not in FlagReason.values:
        raise ValidationError({"reason": "Choose a reason from the list."})
    ratelimit.hit("flag", key=str(flagger.pk))
    source, html = publishing.prepare_text(
        details,
        field="details",
        label="What is wrong",
        max_length=1_000,
        required=reason == FlagReason.OTHER,
    )
    try:
        with transaction.atomic():
            item = _open_item(target)
            made = Flag.objects.create(
                flagger=flagger,
                content_type=target.content_type,
                object_id=obj.pk,
                item=item,
                reason=reason,
                details_source=source,
                details_html=html,
            )
            item.flag_count = F("flag_count") + 1
            item.weight = F("weight") + FLAG_WEIGHTS[reason]
            item.is_urgent = item.is_urgent or reason == FlagReason.CRISIS
            item.last_flag_at = made.created_at
            item.save(update_fields=["flag_count", "weight", "is_urgent", "last_flag_at"])
            _hide_if_flagged_enough(item, target)
            realtime.broadcast_queue_change(target.group.pk if target.group else None)
    except IntegrityError:
        raise ValidationError({"reason": "You have already flagged this. Thank you."}) from None
    return made


def _open_item(target: Target) -> QueueItem:
    """The open item for a target, created if none; locked for this transaction."""
    lookup = {
        "content_type": target.content_type,
        "object_id": target.obj.pk,
        "state": QueueItem.State.OPEN,
        "kind": QueueItem.Kind.FLAGS,
    }
    item = QueueItem.objects.select_for_update().filter(**lookup).first()
    if item is None:
        try:
            with transaction.atomic():
                item = QueueItem.objects.create(**lookup, group=target.group, member=target.author)
        except IntegrityError:  # another flag opened it at the same moment
            item = QueueItem.objects.select_for_update().get(**lookup)
    return item


def _hide_if_flagged_enough(item: QueueItem, target: Target) -> None:
    if target.kind == "member" or target.is_hidden:
        return
    flaggers = (
        Flag.objects.filter(item=item)
        .exclude(reason=FlagReason.CRISIS)
        .exclude(flagger__isnull=True)  # automatic flags are not members' votes to hide
        .values("flagger")
        .distinct()
        .count()
    )
    if flaggers < settings.KINSHIP_FLAGS_TO_HIDE:
        return
    before = target.snapshot()
    _hide(
        target, pending_review=True, reason="Hidden after several flags, until a moderator looks."
    )
    QueueItem.objects.filter(pk=item.pk).update(hidden_pending_review=True)
    log_action(
        actor=None,
        action=Action.HIDDEN_BY_FLAGS,
        target=target,
        reason=f"{flaggers} members flagged it.",
        before=before,
        after=target.snapshot(),
    )


def _hide(target: Target, *, pending_review: bool, reason: str) -> None:
    obj, now = target.obj, timezone.now()
    if target.kind == "chat message":
        obj.removed_at = now
        obj.removed_by = (
            ChatMessage.RemovedBy.REVIEW if pending_review else ChatMessage.RemovedBy.MODERATOR
        )
        obj.removal_reason = reason
        obj.version = ChatRoom.take_seq(obj.room_id)
        obj.save(update_fields=["removed_at", "removed_by", "removal_reason", "version"])
        realtime.broadcast_room_change(room=obj.room, kind="message_removed", message=obj)
        return
    obj.hidden_at, obj.hidden_pending_review, obj.hidden_reason = now, pending_review, reason
    obj.save(update_fields=["hidden_at", "hidden_pending_review", "hidden_reason"])


def _unhide(target: Target) -> None:
    obj = target.obj
    if target.kind == "chat message":
        obj.removed_at, obj.removed_by, obj.removal_reason = None, "", ""
        obj.version = ChatRoom.take_seq(obj.room_id)
        obj.save(update_fields=["removed_at", "removed_by", "removal_reason", "version"])
        realtime.broadcast_room_change(room=obj.room, kind="message_updated", message=obj)
        return
    obj.hidden_at, obj.hidden_pending_review, obj.hidden_reason = None, False, ""
    obj.save(update_fields=["hidden_at", "hidden_pending_review", "hidden_reason"])


# --- the queue -------------------------------------------------------------------------------


def dismiss_flags(*, actor: User, item: QueueItem, note: str = "") -> QueueItem:
    """Nothing wrong: close the item, and show again what the flags had hidden."""
    group = item.group
    permissions.check_can_moderate(actor, "dismiss_flags", group)
    if item.kind != QueueItem.Kind.FLAGS:
        raise PermissionDenied("Appeals are decided, not dismissed.")
    note = clean_reason(note, required=False, field="note")
    with transaction.atomic():
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if not item.is_open:
            raise PermissionDenied("Another moderator has already resolved this item.")
        obj = item.target
        target = target_of(obj) if obj is not None else None
        approving = False
        if target is not None:
            before = target.snapshot()
            if item.hidden_pending_review and target.is_hidden and target.is_hidden_by_review:
                _unhide(target)
                approving = item.held_by_policy  # the write path held it: this approves it
        if approving:
            _mark_approved(item, actor=actor)
            publishing.notify_on_approval(obj=obj)
        else:
            item.state, item.resolved_at = QueueItem.State.RESOLVED, timezone.now()
            item.resolved_by, item.resolution = actor, "Flags dismissed"
            item.save(update_fields=["state", "resolved_at", "resolved_by", "resolution"])
        if target is not None:
            log_action(
                actor=actor,
                action=Action.CONTENT_APPROVED if approving else Action.FLAGS_DISMISSED,
                target=target,
                reason=note,
                before=before,
                after=target.snapshot(),
            )
        realtime.broadcast_queue_change(group.pk if group else None)
    return item


# --- content ---------------------------------------------------------------------------------


def hide_content(*, actor: User, obj, reason: str, rule: Rule | None = None) -> Target:
    """Remove a post, thread or chat message from view, with a reason its author sees.

    The text stays stored (hidden) so the decision can be reviewed and reversed."""
    target = target_of(obj)
    if target.kind == "member":  # _hide has no fields to set on a member: refuse, not crash
        raise PermissionDenied("Members are not hidden: choose a sanction instead.")
    permissions.check_can_moderate(actor, "hide_content", target.group)
    _check_live(target)
    rule = _rule(rule, target.group)
    reason = clean_reason(reason)
    if target.is_hidden and not target.is_hidden_by_review:
        raise PermissionDenied("This is already removed.")
    with transaction.atomic():
        before = target.snapshot()
        _hide(target, pending_review=False, reason=_because(rule, reason))
        _resolve_items(target, actor=actor, resolution="Removed")
        log_action(
            actor=actor,
            action=Action.CONTENT_HIDDEN,
            target=target,
            reason=reason,
            rule=rule,
            before=before,
            after=target.snapshot(),
        )
        notify_member(
            target.author, f"removed {target.label}: {_because(rule, reason)}", group=target.group
        )
    return target


CHAT_REMOVAL_REASON = "Removed from the chat by a moderator."


def remove_chat_message(*, actor: User, message: ChatMessage, reason: str = "") -> ChatMessage:
    """A leader or moderator removes a chat message: it disappears from every screen at once."""
    hide_content(actor=actor, obj=message, reason=reason or CHAT_REMOVAL_REASON)
    return message


def restore_content(*, actor: User, obj, reason: str = "") -> Target:
    target = target_of(obj)
    permissions.check_can_moderate(actor, "restore_content", target.group)
    _check_live(target)
    if not target.is_hidden:
        raise PermissionDenied("This is not hidden: there is nothing to restore.")
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        before = target.snapshot()
        _unhide(target)
        _resolve_items(target, actor=actor, resolution="Restored")
        log_action(
            actor=actor,
            action=Action.CONTENT_RESTORED,
            target=target,
            reason=reason,
            before=before,
            after=target.snapshot(),
        )
        notify_member(target.author, f"restored {target.label}.", group=target.group)
    return target


def edit_content(*, actor: User, post: Post, body: str, note: str) -> Post:
    """Edit a member's post (to take out a phone number, say), with a note every reader sees."""
    target = target_of(post)
    permissions.check_can_moderate(actor, "edit_content", target.group)
    _check_live(target)
    source, html = publishing.prepare_text(
        body, field="body", label="The post", max_length=publishing.POST_MAX, kind="edit"
    )
    note_source, note_html = publishing.prepare_text(
        note, field="note", label="The note", max_length=300
    )
    if source == post.source:
        raise ValidationError({"body": "The text is unchanged."})
    with transaction.atomic():
        before = target.snapshot()
        PostRevision.objects.create(
            post=post,
            source=post.source,
            html=post.html,
            created_at=post.edited_at or post.created_at,
        )
        post.source, post.html, post.moderator_note = source, html, note_html
        post.edited_at = timezone.now()
        post.save(update_fields=["source", "html", "moderator_note", "edited_at"])
        log_action(
            actor=actor,
            action=Action.CONTENT_EDITED,
            target=target,
            reason=note_source,
            before=before,
            after=target.snapshot(),
        )
        notify_member(target.author, f"edited {target.label}: {note_source}", group=target.group)
    return post


def set_content_warning(
    *, actor: User, obj, warning: str, categories: list[str] | None = None
) -> Target:
    """Add, change or clear (empty text) a content warning on a post or thread.

    ``categories`` (forum.content_warnings codes) replaces the post's categories, or a
    thread's opening post's; None leaves them as they are."""
    target = target_of(obj)
    if target.kind not in {"post", "thread"}:
        raise PermissionDenied("Content warnings go on posts and threads.")
    permissions.check_can_moderate(actor, "set_content_warning", target.group)
    _check_live(target)
    warning = publishing.clean_text(
        warning,
        field="content_warning",
        label="The content warning",
        max_length=publishing.CONTENT_WARNING_MAX,
        required=False,
        multiline=False,
    )
    tagged = obj if target.kind == "post" else Post.objects.get(thread=obj, parent__isnull=True)
    old_codes = list(tagged.cw_categories or [])
    new_codes = old_codes
    if categories is not None:
        new_codes = content_warnings.clean_categories(categories, field="categories")
    if warning == obj.content_warning and new_codes == old_codes:
        raise ValidationError({"content_warning": "That is already its content warning."})
    added = content_warnings.labels(code for code in new_codes if code not in old_codes)
    # What the author is told about: a new (non-empty) text and categories just added.
    news = [f"“{warning}”"] if warning and warning != obj.content_warning else []
    news += added
    with transaction.atomic():
        before = {**target.snapshot(), "cw_categories": old_codes}
        obj.content_warning = warning
        obj.save(update_fields=["content_warning"])
        if new_codes != old_codes:
            tagged.cw_categories = new_codes
            tagged.save(update_fields=["cw_categories"])
        log_action(
            actor=actor,
            action=Action.CONTENT_WARNING_SET,
            target=target,
            reason="; ".join(filter(None, [warning, ", ".join(added)])),
            before=before,
            after={**target.snapshot(), "cw_categories": new_codes},
        )
        if news:
            notify_member(
                target.author,
                f"added the content warning {', '.join(news)} to {target.label}.",
                group=target.group,
            )
    return target


def _switch_thread(
    *,
    actor: User,
    thread: Thread,
    field: str,
    value: bool,
    permission: str,
    on: str,
    off: str,
    reason: str,
) -> Thread:
    """Lock or pin (``on``) a thread, or undo it (``off``), and tell its author."""
    action = on if value else off
    target = target_of(thread)
    permissions.check_can_moderate(actor, permission, target.group)
    if getattr(thread, field) == value:
        raise PermissionDenied(f"The thread is already {Action(action).label}.")
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        before = target.snapshot()
        setattr(thread, field, value)
        thread.save(update_fields=[field])
        log_action(
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            before=before,
            after=target.snapshot(),
        )
        because = f": {reason}" if reason else "."
        notify_member(
            target.author,
            f"{Action(action).label} your thread “{thread.title}”{because}",
            group=target.group,
        )
    return thread


def lock_thread(*, actor: User, thread: Thread, locked: bool = True, reason: str = "") -> Thread:
    """Lock a thread against new replies (its leaders and moderators still write), or unlock it."""
    return _switch_thread(
        actor=actor,
        thread=thread,
        field="is_locked",
        value=locked,
        permission="lock_thread",
        on=Action.THREAD_LOCKED,
        off=Action.THREAD_UNLOCKED,
        reason=reason,
    )


def pin_thread(*, actor: User, thread: Thread, pinned: bool = True, reason: str = "") -> Thread:
    """Pin a thread to the top of its group, or unpin it."""
    return _switch_thread(
        actor=actor,
        thread=thread,
        field="is_pinned",
        value=pinned,
        permission="pin_thread",
        on=Action.THREAD_PINNED,
        off=Action.THREAD_UNPINNED,
        reason=reason,
    )


def move_thread(*, actor: User, thread: Thread, to_group: SupportGroup, reason: str = "") -> Thread:
    """Move a thread to another group; the mover must moderate both. Open queue items
    about the thread or its posts go with it, to the new group's moderators."""
    target = target_of(thread)
    from_group = target.group
    permissions.check_can_moderate(actor, "move_thread", from_group)
    permissions.check_can_moderate(actor, "move_thread", to_group)
    if to_group.pk == from_group.pk:
        raise ValidationError({"group": "The thread is already in that group."})
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        before = target.snapshot()
        thread.group = to_group
        thread.save(update_fields=["group"])
        if _open_items_about(thread).update(group=to_group):
            realtime.broadcast_queue_change(from_group.pk)
            realtime.broadcast_queue_change(to_group.pk)
        log_action(
            actor=actor,
            action=Action.THREAD_MOVED,
            target=target,
            reason=reason,
            before=before,
            after=target_of(thread).snapshot(),
        )
        notify_member(
            target.author, f"moved your thread “{thread.title}” to {to_group.name}.", group=to_group
        )
    return thread


# Slow mode on a place: from ten seconds to a day between one member's messages there.
SLOW_MODE_PLACE_MIN = 10
SLOW_MODE_PLACE_MAX = 86_400


def set_slow_mode(
    *, actor: User, place: Thread | ChatRoom, seconds: int, reason: str = ""
) -> Target:
    """Make every member wait ``seconds`` between replies in a thread or messages in a chat
    room (0 turns it off); its group's leaders and moderators are exempt. Logged with who
    set it and when; a room's sockets hear the new pace at once."""
    if isinstance(place, Thread):
        target = target_of(place)
    elif isinstance(place, ChatRoom):
        target = Target(
            place,
            "chat room",
            place.group,
            None,
            f"the chat room {place.group.name} / {place.name}",
            place.get_absolute_url(),
        )
    else:
        raise TypeError(f"slow mode goes on threads and chat rooms, not {type(place).__name__}")
    permissions.check_can_moderate(actor, "slow_mode_place", target.group)
    if seconds != 0 and not SLOW_MODE_PLACE_MIN <= seconds <= SLOW_MODE_PLACE_MAX:
        raise ValidationError(
            {
                "seconds": f"Slow mode is {SLOW_MODE_PLACE_MIN} to {SLOW_MODE_PLACE_MAX:,} "
                "seconds between messages, or 0 to turn it off."
            }
        )
    if seconds == place.slow_mode_seconds:
        raise ValidationError({"seconds": "That is already its slow mode."})
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        before = {"slow_mode_seconds": place.slow_mode_seconds}
        place.slow_mode_seconds = seconds
        place.save(update_fields=["slow_mode_seconds"])
        log_action(
            actor=actor,
            action=Action.PLACE_SLOW_MODE_SET if seconds else Action.PLACE_SLOW_MODE_OFF,
            target=target,
            reason=reason,
            before=before,
            after={"slow_mode_seconds": seconds},
        )
        if isinstance(place, ChatRoom):
            realtime.broadcast_on_commit(
                realtime.room_group(place.pk),
                {"type": "chat.event", "frame": {"type": "room", **realtime.room_payload(place)}},
            )
    return target


def _open_items_about(thread: Thread) -> QuerySet[QueueItem]:
    """Open flag items on the thread itself or on any of its posts."""
    content_types = ContentType.objects.get_for_models(Thread, Post)
    posts = Post.objects.filter(thread=thread).values("pk")
    return QueueItem.objects.filter(state=QueueItem.State.OPEN, kind=QueueItem.Kind.FLAGS).filter(
        Q(content_type=content_types[Thread], object_id=thread.pk)
        | Q(content_type=content_types[Post], object_id__in=posts)
    )


# --- members ---------------------------------------------------------------------------------


def sanction_member(
    *,
    actor: User,
    member: User,
    kind: str,
    group: SupportGroup | None,
    reason: str,
    rule: Rule | None = None,
    message: str = "",
    duration: timedelta | None = None,
    slow_mode_seconds: int | None = None,
) -> Sanction:
    """One step on the ladder. ``group`` is None only for a site-wide ban; ``duration``
    None means no end (warnings have none; bans may have none)."""
    if kind not in Sanction.Kind.values:
        raise ValidationError({"kind": "Choose a sanction from the ladder."})
    if kind == Sanction.Kind.BAN:
        group = None
    elif group is None:
        raise ValidationError({"group": "This sanction applies in one group: choose it."})
    permissions.check_can_moderate(actor, kind, group)
    permissions.check_can_sanction(actor, member, group)
    rule = _rule(rule, group)
    reason, reason_html = _reason_with_html(reason)
    message_source, message_html = publishing.prepare_text(
        message, field="message", label="The message to the member", required=False
    )
    ends_at = _ends_at(kind, duration)
    if kind == Sanction.Kind.SLOW_MODE and not (
        slow_mode_seconds and 10 <= slow_mode_seconds <= 86_400
    ):
        raise ValidationError(
            {"slow_mode_seconds": "Slow mode is 10 seconds to a day between posts."}
        )
    if kind != Sanction.Kind.WARNING and permissions.sanction_in_force(member, kind, group):
        raise PermissionDenied(
            f"{member.handle} is already {Sanction.Kind(kind).label.lower()} here; "
            "lift that one first to change it."
        )
    target = member_target(member, group)
    with transaction.atomic():
        sanction = Sanction.objects.create(
            member=member,
            group=group,
            kind=kind,
            rule=rule,
            reason_source=reason,
            reason_html=reason_html,
            message_source=message_source,
            message_html=message_html,
            ends_at=ends_at,
            created_by=actor,
            slow_mode_seconds=slow_mode_seconds if kind == Sanction.Kind.SLOW_MODE else None,
        )
        log_action(
            actor=actor,
            action=SANCTION_ACTIONS[kind],
            target=target,
            member=member,
            reason=reason,
            rule=rule,
            before={},
            after=_sanction_snapshot(sanction),
            target_override=("sanction", sanction.pk),
        )
        where = f" in {group.name}" if group else ""
        until = f" until {timezone.localtime(ends_at):%d %b %Y, %H:%M %Z}" if ends_at else ""
        notify_member(
            member,
            f"{Sanction.Kind(kind).label}{where}{until}: {_because(rule, reason)}",
            group=group,
        )
        if kind in SOCKET_CLOSING:
            transaction.on_commit(lambda: realtime.bump_authority(member.pk))
    permissions.forget_sanctions(member)
    return sanction


def _ends_at(kind: str, duration: timedelta | None) -> datetime | None:
    if kind == Sanction.Kind.WARNING:
        return None
    if duration is None:
        if kind == Sanction.Kind.BAN:
            return None
        raise ValidationError({"duration": "Choose how long it lasts."})
    if not timedelta(minutes=1) <= duration <= MAX_DURATION:
        raise ValidationError({"duration": "A sanction lasts from a minute to ten years."})
    return timezone.now() + duration


def _sanction_snapshot(sanction: Sanction) -> dict[str, Any]:
    return {
        "kind": sanction.kind,
        "group": sanction.group_id,
        "ends_at": sanction.ends_at.isoformat() if sanction.ends_at else None,
        "lifted": sanction.lifted_at is not None,
        "slow_mode_seconds": sanction.slow_mode_seconds,
    }


# The ladder's steps by name: sanction_member with the kind fixed (a ban is site-wide).
warn_member = partial(sanction_member, kind=Sanction.Kind.WARNING)
mute_in_chat = partial(sanction_member, kind=Sanction.Kind.CHAT_MUTE)
suspend_from_group = partial(sanction_member, kind=Sanction.Kind.SUSPENSION)
ban_member = partial(sanction_member, kind=Sanction.Kind.BAN, group=None)


def lift_sanction(*, actor: User, sanction: Sanction, reason: str = "") -> Sanction:
    """End a sanction early; the same ranks apply as to placing it."""
    permissions.check_can_lift_sanction(actor, sanction)
    if not sanction.is_active() or sanction.kind == Sanction.Kind.WARNING:
        raise PermissionDenied("This sanction is not in force: there is nothing to lift.")
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        _lift(sanction, actor=actor)
        member = sanction.member
        log_action(
            actor=actor,
            action=Action.SANCTION_LIFTED,
            target=member_target(member, sanction.group),
            reason=reason,
            before={"kind": sanction.kind},
            after=_sanction_snapshot(sanction),
            target_override=("sanction", sanction.pk),
        )
        notify_member(member, f"lifted: {sanction.get_kind_display()}.", group=sanction.group)
    return sanction


def _lift(sanction: Sanction, *, actor: User) -> None:
    sanction.lifted_at, sanction.lifted_by = timezone.now(), actor
    sanction.save(update_fields=["lifted_at", "lifted_by"])
    permissions.forget_sanctions(sanction.member)


def add_note(*, actor: User, member: User, group: SupportGroup | None, text: str) -> ModeratorNote:
    """A note moderators share about a member; logged, never shown to the member."""
    permissions.check_can_moderate(actor, "moderator_notes", group)
    source, html = publishing.prepare_text(text, field="text", label="The note")
    with transaction.atomic():
        note = ModeratorNote.objects.create(
            member=member, group=group, author=actor, source=source, html=html
        )
        log_action(
            actor=actor,
            action=Action.NOTE_ADDED,
            target=member_target(member, group),
            reason=source,
        )
    return note


# --- rules -----------------------------------------------------------------------------------

RULE_TITLE_MAX = 120


def _rule_target(rule: Rule) -> Target:
    return Target(rule, "rule", rule.group, None, f"the rule “{rule.title}”", "")


def add_rule(*, actor: User, group: SupportGroup | None, title: str, description: str = "") -> Rule:
    """A rule sanctions can cite: one group's own, or (``group`` None) the site's."""
    permissions.check_can_moderate(actor, "manage_rules", group)
    title = publishing.clean_text(
        title, field="title", label="The rule", max_length=RULE_TITLE_MAX, multiline=False
    )
    description, _html = publishing.prepare_text(
        description, field="description", label="What it means", required=False
    )
    rules = Rule.objects.filter(group=group)
    if rules.filter(title__iexact=title).exists():
        raise ValidationError({"title": "There is already a rule with that name here."})
    with transaction.atomic():
        position = (rules.aggregate(last=Max("position"))["last"] or 0) + 1
        rule = Rule.objects.create(
            group=group, title=title, description=description, position=position
        )
        log_action(
            actor=actor,
            action=Action.RULE_ADDED,
            target=_rule_target(rule),
            reason=description,
            after={"title": title, "description": description},
            target_override=("rule", rule.pk),
        )
    return rule


def remove_rule(*, actor: User, rule: Rule) -> None:
    """Retire a rule. Sanctions that cited it keep its title in the log."""
    permissions.check_can_moderate(actor, "manage_rules", rule.group)
    with transaction.atomic():
        log_action(
            actor=actor,
            action=Action.RULE_REMOVED,
            target=_rule_target(rule),
            before={"title": rule.title, "description": rule.description},
            target_override=("rule", rule.pk),
        )
        rule.delete()


# --- appeals ---------------------------------------------------------------------------------


def appeal(*, member: User, entry: ModerationLogEntry, text: str) -> Appeal:
    """A member appeals one action taken on them or their words, once."""
    if entry.member_id != member.pk or entry.action not in APPEALABLE:
        raise PermissionDenied("You can appeal actions taken on you or your words.")
    ratelimit.hit("appeal", key=str(member.pk))
    source, html = publishing.prepare_text(text, field="text", label="Your appeal")
    try:
        with transaction.atomic():
            made = Appeal.objects.create(entry=entry, appellant=member, source=source, html=html)
            QueueItem.objects.create(
                kind=QueueItem.Kind.APPEAL,
                content_type=ContentType.objects.get_for_model(Appeal),
                object_id=made.pk,
                group_id=entry.group_id,
                member=member,
                appeal=made,
            )
            realtime.broadcast_queue_change(entry.group_id)
    except IntegrityError:
        raise ValidationError({"text": "You have already appealed this action."}) from None
    return made


def decide_appeal(*, actor: User, appeal: Appeal, grant: bool, note: str) -> Appeal:
    """A moderator other than the one who acted decides; the decision is final and logged."""
    entry = appeal.entry
    group = SupportGroup.objects.filter(pk=entry.group_id).first() if entry.group_id else None
    permissions.check_can_moderate(actor, "decide_appeal", group)
    if entry.actor_id == actor.pk:
        raise PermissionDenied("Another moderator decides appeals against your own actions.")
    if appeal.appellant_id == actor.pk:  # a moderator sanctioned by a site moderator, say
        raise PermissionDenied("Another moderator decides your own appeals.")
    note_source, note_html = publishing.prepare_text(note, field="note", label="Your decision")
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().get(pk=appeal.pk)
        if appeal.state != Appeal.State.PENDING:
            raise PermissionDenied("This appeal has already been decided; the decision is final.")
        member = appeal.appellant
        target = replace(member_target(member, group), label=f"an appeal by @{member.handle}")
        if grant:
            _reverse(entry, actor=actor)
        appeal.state = Appeal.State.GRANTED if grant else Appeal.State.UPHELD
        appeal.decided_by, appeal.decided_at = actor, timezone.now()
        appeal.decision_source, appeal.decision_html = note_source, note_html
        appeal.save(
            update_fields=["state", "decided_by", "decided_at", "decision_source", "decision_html"]
        )
        QueueItem.objects.filter(appeal=appeal).update(
            state=QueueItem.State.RESOLVED,
            resolved_at=appeal.decided_at,
            resolved_by=actor,
            resolution=appeal.get_state_display(),
        )
        log_action(
            actor=actor,
            action=Action.APPEAL_GRANTED if grant else Action.APPEAL_UPHELD,
            target=target,
            member=member,
            reason=note_source,
            before={"entry": entry.pk, "action": entry.action},
            after={"state": appeal.state},
            target_override=("log entry", entry.pk),
        )
        verdict = "reversed" if grant else "upheld"
        notify_member(
            member, f"decided your appeal: the action was {verdict}. {note_source}", group=group
        )
        realtime.broadcast_queue_change(entry.group_id)
    return appeal


def _reverse(entry: ModerationLogEntry, *, actor: User) -> None:
    """Undo what a granted appeal was about."""
    if entry.target_type == "sanction":
        sanction = Sanction.objects.filter(pk=entry.target_id).first()
        if sanction is not None and sanction.is_active():
            _lift(sanction, actor=actor)
        return
    obj = load_target(entry.target_type, entry.target_id)
    if obj is None:
        return
    target = target_of(obj)
    if entry.action == Action.CONTENT_HIDDEN and target.is_hidden:
        _unhide(target)
    elif entry.action == Action.CONTENT_EDITED and isinstance(obj, Post):
        previous = entry.before.get("source")
        if previous is not None:
            obj.source, obj.html = publishing.prepare_text(
                previous, field="body", label="The post", max_length=publishing.POST_MAX
            )
            obj.moderator_note = ""
            obj.save(update_fields=["source", "html", "moderator_note"])


# --- crisis words ----------------------------------------------------------------------------

CRISIS_REASON_PREFIX = "Crisis words: "


def raise_crisis_alert(*, obj, categories: frozenset[str]) -> QueueItem | None:
    """Content with words suggesting risk (moderation.crisis) opens, or joins, an urgent
    queue item with no flagger, so a moderator reaches out. The content itself is never
    touched: nothing is hidden, held or logged publicly. Moderators watching the queue get
    a live urgent alert. Returns None when its author has already deleted it."""
    if not categories:
        return None
    target = target_of(obj)
    if target.is_gone:
        return None
    with transaction.atomic():
        item = _open_item(target)
        known = set(categories)
        if item.auto_reason.startswith(CRISIS_REASON_PREFIX):
            known |= set(item.auto_reason.removeprefix(CRISIS_REASON_PREFIX).split(", "))
        item.is_urgent = True
        item.auto_reason = (CRISIS_REASON_PREFIX + ", ".join(sorted(known)))[:200]
        item.last_flag_at = timezone.now()
        item.save(update_fields=["is_urgent", "auto_reason", "last_flag_at"])
        _broadcast_urgent(target.group.pk if target.group else None)
        _alert_session_leaders(obj, categories)
    return item


def _alert_session_leaders(obj, categories: frozenset[str]) -> None:
    """In a live session the people running it hear at once, on their console."""
    if not isinstance(obj, ChatMessage) or obj.room.kind != ChatRoom.Kind.SESSION:
        return
    frame = {
        "type": "crisis_alert",
        "id": obj.pk,
        "author": obj.author.handle if obj.author_id else None,
        "categories": sorted(categories),
    }
    realtime.broadcast_on_commit(
        realtime.session_leaders_group(obj.room.live_session.pk),
        {"type": "chat.event", "frame": frame},
    )


def _broadcast_urgent(group_id: int | None) -> None:
    """Like realtime.broadcast_queue_change, marked urgent so open queues announce it."""
    event = {"type": "queue.changed", "urgent": True}
    realtime.broadcast_on_commit(realtime.queue_group(None), event)
    if group_id is not None:
        realtime.broadcast_on_commit(realtime.queue_group(group_id), event)


@receiver(publishing.crisis_words)
def _on_crisis_words(sender, *, obj, categories: frozenset[str], **kwargs) -> None:
    raise_crisis_alert(obj=obj, categories=categories)


# --- watched phrases -------------------------------------------------------------------------


def _watched_target(phrase: WatchedPhrase) -> Target:
    return Target(phrase, "watched phrase", phrase.group, None, f"“{phrase.pattern}”", "")


def _watched_snapshot(phrase: WatchedPhrase) -> dict[str, Any]:
    return {
        "pattern": phrase.pattern,
        "match": phrase.match,
        "action": phrase.action,
        "message": phrase.message,
    }


def add_watched_phrase(
    *,
    actor: User,
    group: SupportGroup | None,
    pattern: str,
    match: str,
    action: str,
    message: str = "",
) -> WatchedPhrase:
    """Watch for a word, phrase or expression in one group (or, ``group`` None, the whole
    site). The list stays among moderators: its log entries are not public."""
    permissions.check_can_moderate(actor, "manage_rules", group)
    pattern = publishing.clean_text(
        pattern,
        field="pattern",
        label="The pattern",
        max_length=policy.PATTERN_MAX,
        multiline=False,
    )
    errors = {}
    if match not in WatchedPhrase.Match.values:
        errors["match"] = "Choose how the pattern is matched."
    elif problem := policy.validate_pattern(pattern, match):
        errors["pattern"] = problem
    if action not in WatchedPhrase.Action.values:
        errors["action"] = "Choose what happens to text that contains it."
    message = publishing.clean_text(
        message,
        field="message",
        label="The message",
        max_length=WatchedPhrase._meta.get_field("message").max_length,
        required=False,
        multiline=False,
    )
    if message and action != WatchedPhrase.Action.BLOCK:
        errors["message"] = "Only a block shows the author a message."
    if errors:
        raise ValidationError(errors)
    existing = WatchedPhrase.objects.filter(group=group, match=match, pattern__iexact=pattern)
    if existing.exists():
        raise ValidationError({"pattern": "This pattern is already watched here."})
    with transaction.atomic():
        phrase = WatchedPhrase.objects.create(
            group=group,
            pattern=pattern,
            match=match,
            action=action,
            message=message,
            created_by=actor,
        )
        log_action(
            actor=actor,
            action=Action.WATCHED_ADDED,
            target=_watched_target(phrase),
            after=_watched_snapshot(phrase),
            target_override=("watched phrase", phrase.pk),
        )
    return phrase


def remove_watched_phrase(*, actor: User, phrase: WatchedPhrase) -> None:
    """Stop watching for a phrase; the log keeps what it was."""
    permissions.check_can_moderate(actor, "manage_rules", phrase.group)
    with transaction.atomic():
        log_action(
            actor=actor,
            action=Action.WATCHED_REMOVED,
            target=_watched_target(phrase),
            before=_watched_snapshot(phrase),
            target_override=("watched phrase", phrase.pk),
        )
        phrase.delete()


# --- held posts: approval ------------------------------------------------------------------


def _mark_approved(item: QueueItem, *, actor: User) -> None:
    """Resolve a held item as approved, keeping how long its author waited."""
    now = timezone.now()
    item.state, item.resolved_at, item.resolved_by = QueueItem.State.RESOLVED, now, actor
    item.resolution = "Approved"
    item.approval_seconds = max(0, int((now - item.opened_at).total_seconds()))
    item.save(
        update_fields=["state", "resolved_at", "resolved_by", "resolution", "approval_seconds"]
    )


def held_item(obj) -> QueueItem | None:
    """The open queue item holding ``obj`` for approval, if the write path held it."""
    return QueueItem.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=obj.pk,
        state=QueueItem.State.OPEN,
        kind=QueueItem.Kind.FLAGS,
        held_by_policy=True,
        hidden_pending_review=True,
    ).first()


def approve_held(*, actor: User, obj) -> QueueItem:
    """A moderator or a trusted member of the group lets a held post, thread or chat
    message through. A member's flag on it leaves the decision to moderators."""
    permissions.check_can_approve_held(actor, obj)
    target = target_of(obj)
    is_moderator = permissions.can_moderate(actor, "dismiss_flags", target.group)
    with transaction.atomic():
        item = held_item(obj)
        if item is None or not (target.is_hidden and target.is_hidden_by_review):
            raise PermissionDenied("This is not waiting for approval.")
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if not item.is_open:
            raise PermissionDenied("Someone has already approved or removed this.")
        if not is_moderator and item.flags.filter(flagger__isnull=False).exists():
            raise PermissionDenied("A member flagged this: a moderator will decide.")
        before = target.snapshot()
        _unhide(target)
        _mark_approved(item, actor=actor)
        publishing.notify_on_approval(obj=obj)
        log_action(
            actor=actor,
            action=Action.CONTENT_APPROVED,
            target=target,
            before=before,
            after=target.snapshot(),
        )
        realtime.broadcast_queue_change(target.group.pk if target.group else None)
    return item


# --- link rules ------------------------------------------------------------------------------


def _domain_target(rule: DomainRule) -> Target:
    label = f"{rule.domain} ({rule.get_kind_display().split(':')[0].lower()})"
    return Target(rule, "domain", rule.group, None, label, "")


def allow_links(*, actor: User, member: User, group: SupportGroup) -> LinkApproval:
    """Let a member below the link threshold post links in ``group`` (the leader's way
    past it, besides time and good standing). Logged; the member is told."""
    permissions.check_can_moderate(actor, "allow_links", group)
    # Asked of the database: ``group`` may carry the actor's role, annotated for the page.
    if not Membership.objects.filter(user=member, group=group).exists():
        raise ValidationError({"handle": f"{member.handle} is not a member of {group.name}."})
    with transaction.atomic():
        approval, created = LinkApproval.objects.get_or_create(
            member=member, group=group, defaults={"approved_by": actor}
        )
        if not created:
            raise ValidationError({"handle": f"{member.handle} may post links here already."})
        log_action(actor=actor, action=Action.LINKS_ALLOWED, target=member_target(member, group))
        notify_member(member, f"You can now post links in {group.name}.", group=group)
    return approval


def withdraw_links(*, actor: User, approval: LinkApproval) -> None:
    """Take a link allowance back: the member's links wait for review again until they
    reach the threshold by themselves."""
    group, member = approval.group, approval.member
    permissions.check_can_moderate(actor, "allow_links", group)
    with transaction.atomic():
        approval.delete()
        log_action(actor=actor, action=Action.LINKS_WITHDRAWN, target=member_target(member, group))


def add_domain_rule(
    *, actor: User, group: SupportGroup | None, domain: str, kind: str
) -> DomainRule:
    """Block or allow links to a domain (and its subdomains), in a group or site-wide."""
    permissions.check_can_moderate(actor, "manage_rules", group)
    domain = trust.normalise_domain(domain or "")
    if problem := trust.validate_domain(domain):
        raise ValidationError({"domain": problem})
    if kind not in DomainRule.Kind.values:
        raise ValidationError({"kind": "Choose block or allow."})
    if DomainRule.objects.filter(group=group, domain=domain).exists():
        raise ValidationError({"domain": "There is already a rule for this domain here."})
    with transaction.atomic():
        rule = DomainRule.objects.create(group=group, domain=domain, kind=kind, created_by=actor)
        log_action(
            actor=actor,
            action=Action.DOMAIN_ADDED,
            target=_domain_target(rule),
            after={"domain": domain, "kind": kind},
            target_override=("link rule", rule.pk),
        )
    return rule


def remove_domain_rule(*, actor: User, rule: DomainRule) -> None:
    permissions.check_can_moderate(actor, "manage_rules", rule.group)
    with transaction.atomic():
        log_action(
            actor=actor,
            action=Action.DOMAIN_REMOVED,
            target=_domain_target(rule),
            before={"domain": rule.domain, "kind": rule.kind},
            target_override=("link rule", rule.pk),
        )
        rule.delete()


# --- context notes ---------------------------------------------------------------------------

CLAIM_MAX = ContextNote._meta.get_field("claim").max_length
PHRASINGS_MAX = 5_000
CORRECTION_MAX = 5_000
SOURCES_MAX = 2_000


def _note_target(note: ContextNote) -> Target:
    return Target(note, "context note", None, None, f"“{note.claim}”", "")


def _note_snapshot(note: ContextNote) -> dict[str, Any]:
    return {
        "claim": note.claim,
        "phrasings": note.phrasing_list,
        "correction": note.correction_source,
        "sources": note.source_list,
        "hold_on_match": note.hold_on_match,
        "active": note.is_active,
    }


def save_context_note(
    *,
    actor: User,
    note: ContextNote | None = None,
    claim: str,
    phrasings: str = "",
    correction: str,
    sources: str = "",
    hold_on_match: bool = False,
) -> ContextNote:
    """Add a note to the library (``note`` None) or edit one. Site moderators keep the
    library: it is matched against every group's posts. All fields are checked together,
    so a form shows every problem at once."""
    permissions.check_can_moderate(actor, "manage_rules", None)
    errors: dict[str, list[str]] = {}

    def checked(call):
        try:
            return call()
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                errors.setdefault(field, []).extend(messages)
            return ("", "")

    claim_source = checked(
        lambda: publishing.prepare_text(
            claim, field="claim", label="The claim", max_length=CLAIM_MAX
        )
    )[0]
    claim_source = " ".join(claim_source.split())  # one plain sentence, as matched and shown
    phrasings_source = checked(
        lambda: publishing.prepare_text(
            phrasings, field="phrasings", label="The other phrasings",
            max_length=PHRASINGS_MAX, required=False,
        )
    )[0]  # fmt: skip
    correction_source, correction_html = checked(
        lambda: publishing.prepare_text(
            correction, field="correction", label="The correction", max_length=CORRECTION_MAX
        )
    )
    sources_text = checked(
        lambda: (
            publishing.clean_text(
                sources, field="sources", label="The sources", max_length=SOURCES_MAX,
                required=False,
            ),
        )
    )[0]  # fmt: skip
    duplicate = ContextNote.objects.filter(claim__iexact=claim_source)
    if note is not None:
        duplicate = duplicate.exclude(pk=note.pk)
    if claim_source and duplicate.exists():
        errors.setdefault("claim", []).append("The library already has a note for this claim.")
    if errors:
        raise ValidationError(errors)
    # One source a line, blank lines dropped: the page shows them as a list.
    sources_text = "\n".join(line.strip() for line in sources_text.splitlines() if line.strip())
    phrasings_source = "\n".join(
        " ".join(line.split()) for line in phrasings_source.splitlines() if line.strip()
    )
    with transaction.atomic():
        if note is None:
            note = ContextNote(created_by=actor)
            before, action = None, Action.CONTEXT_NOTE_ADDED
        else:
            note = ContextNote.objects.select_for_update().get(pk=note.pk)
            before, action = _note_snapshot(note), Action.CONTEXT_NOTE_EDITED
        note.claim, note.phrasings = claim_source, phrasings_source
        note.correction_source, note.correction_html = correction_source, correction_html
        note.sources, note.hold_on_match = sources_text, bool(hold_on_match)
        note.updated_at = timezone.now()
        note.save()  # its post_save signal recompiles the library in every worker
        log_action(
            actor=actor,
            action=action,
            target=_note_target(note),
            before=before,
            after=_note_snapshot(note),
            target_override=("context note", note.pk),
        )
    return note


def set_context_note_active(*, actor: User, note: ContextNote, active: bool) -> ContextNote:
    """Retire a note (no longer matched nor shown under anything) or bring it back. The
    attachments stay, so bringing a note back shows it again where it was."""
    permissions.check_can_moderate(actor, "manage_rules", None)
    with transaction.atomic():
        note = ContextNote.objects.select_for_update().get(pk=note.pk)
        if note.is_active == active:
            state = "in use" if active else "retired"
            raise ValidationError({"note": f"This note is already {state}."})
        before = _note_snapshot(note)
        note.is_active, note.updated_at = active, timezone.now()
        note.save(update_fields=["is_active", "updated_at"])
        log_action(
            actor=actor,
            action=Action.CONTEXT_NOTE_RESTORED if active else Action.CONTEXT_NOTE_RETIRED,
            target=_note_target(note),
            before=before,
            after=_note_snapshot(note),
            target_override=("context note", note.pk),
        )
    return note


def retire_context_note(*, actor: User, note: ContextNote) -> ContextNote:
    return set_context_note_active(actor=actor, note=note, active=False)


def restore_context_note(*, actor: User, note: ContextNote) -> ContextNote:
    return set_context_note_active(actor=actor, note=note, active=True)


def note_shown_on(obj):
    """Where a note on ``obj`` is shown: a thread's notes sit under its opening post."""
    if isinstance(obj, Thread):
        return Post.objects.filter(thread=obj, parent__isnull=True).first()
    return obj


def attachments_on(obj) -> QuerySet[NoteAttachment]:
    """Every attachment (detached ones too) on ``obj``, or on a thread's opening post."""
    shown_on = note_shown_on(obj)
    if shown_on is None:
        return NoteAttachment.objects.none()
    return NoteAttachment.objects.filter(
        content_type=ContentType.objects.get_for_model(type(shown_on)), object_id=shown_on.pk
    ).select_related("note", "attached_by", "decided_by")


def _attachment_log(
    *, actor: User | None, action: str, target: Target, attachment: NoteAttachment, reason=""
) -> None:
    note = attachment.note
    log_action(
        actor=actor,
        action=action,
        target=target,
        reason=reason,
        after={
            "note": note.pk,
            "claim": note.claim,
            "state": attachment.state,
            "score": attachment.score,
        },
    )


def _settle_misinformation_item(target: Target, *, actor: User) -> None:
    """Once no automatic attachment waits for a decision, an item that only the matcher
    opened has done its job. Anything else (a member's flag, a hold, crisis words) keeps
    it open for the moderator to decide as usual."""
    if attachments_on(target.obj).filter(state=NoteAttachment.State.SUGGESTED).exists():
        return
    # A new thread's notes sit under its opening post while the queue holds the thread.
    targets = [target]
    if target.kind == "post" and target.obj.parent_id is None:
        targets.append(target_of(target.obj.thread))
    for each in targets:
        items = QueueItem.objects.filter(
            content_type=each.content_type,
            object_id=each.obj.pk,
            state=QueueItem.State.OPEN,
            kind=QueueItem.Kind.FLAGS,
            is_urgent=False,
            hidden_pending_review=False,
            auto_reason="",
        )
        for item in items:
            others = Flag.objects.filter(item=item).exclude(
                flagger__isnull=True, reason=FlagReason.MISINFORMATION
            )
            if not others.exists():
                _resolve_items(each, actor=actor, resolution="Context notes reviewed")


def attach_note(*, actor: User, note: ContextNote, obj, reason: str = "") -> NoteAttachment:
    """A moderator puts a note under a post, thread (its opening post) or chat message."""
    target = target_of(obj)
    if target.kind == "member":
        raise ValidationError({"note": "Notes go under posts and chat messages."})
    permissions.check_can_moderate(actor, "review_queue", target.group)
    _check_live(target)
    if not note.is_active:
        raise ValidationError({"note": "This note is retired: bring it back first."})
    reason = clean_reason(reason, required=False)
    shown_on = note_shown_on(obj)
    if shown_on is None:
        raise ValidationError({"note": "There is nothing to show the note under."})
    now = timezone.now()
    with transaction.atomic():
        attachment, created = NoteAttachment.objects.select_for_update().get_or_create(
            note=note,
            content_type=ContentType.objects.get_for_model(type(shown_on)),
            object_id=shown_on.pk,
            defaults={
                "state": NoteAttachment.State.CONFIRMED,
                "attached_by": actor,
                "decided_by": actor,
                "decided_at": now,
            },
        )
        if not created:
            if attachment.is_shown:
                raise ValidationError({"note": "This note is already shown under it."})
            attachment.state = NoteAttachment.State.CONFIRMED
            attachment.attached_by, attachment.attached_at = actor, now
            attachment.decided_by, attachment.decided_at = actor, now
            attachment.save()
        _attachment_log(
            actor=actor,
            action=Action.CONTEXT_ATTACHED,
            target=target,
            attachment=attachment,
            reason=reason,
        )
        _redraw_if_chat(shown_on)
    return attachment


def _redraw_if_chat(obj) -> None:
    """A chat message whose note changed takes a new version, so every open room redraws it
    (and a client that missed the broadcast fetches it on resume)."""
    if not isinstance(obj, ChatMessage):
        return
    message = ChatMessage.objects.select_related("room", "author").get(pk=obj.pk)
    message.version = ChatRoom.take_seq(message.room_id)
    message.save(update_fields=["version"])
    message.context_note = context_notes.note_shown_under(message)
    realtime.broadcast_room_change(room=message.room, kind="message_updated", message=message)


def _attachment_target(attachment: NoteAttachment) -> Target:
    obj = attachment.target
    if obj is None:
        raise ValidationError({"note": "What the note was under no longer exists."})
    return target_of(obj)


def confirm_attachment(*, actor: User, attachment: NoteAttachment) -> NoteAttachment:
    """A moderator agrees with the matcher: the note stays, and is no longer waiting."""
    target = _attachment_target(attachment)
    permissions.check_can_moderate(actor, "review_queue", target.group)
    with transaction.atomic():
        attachment = NoteAttachment.objects.select_for_update().get(pk=attachment.pk)
        if attachment.state != NoteAttachment.State.SUGGESTED:
            raise ValidationError({"note": "This note is not waiting for confirmation."})
        attachment.state = NoteAttachment.State.CONFIRMED
        attachment.decided_by, attachment.decided_at = actor, timezone.now()
        attachment.save(update_fields=["state", "decided_by", "decided_at"])
        _attachment_log(
            actor=actor, action=Action.CONTEXT_CONFIRMED, target=target, attachment=attachment
        )
        _settle_misinformation_item(target, actor=actor)
    return attachment


def detach_note(*, actor: User, attachment: NoteAttachment, reason: str = "") -> NoteAttachment:
    """Take a note off. The attachment stays as the record, so the matcher never puts it
    back on the same content."""
    target = _attachment_target(attachment)
    permissions.check_can_moderate(actor, "review_queue", target.group)
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        attachment = NoteAttachment.objects.select_for_update().get(pk=attachment.pk)
        if attachment.state == NoteAttachment.State.DETACHED:
            raise ValidationError({"note": "This note has already been taken off."})
        attachment.state = NoteAttachment.State.DETACHED
        attachment.decided_by, attachment.decided_at = actor, timezone.now()
        attachment.save(update_fields=["state", "decided_by", "decided_at"])
        _attachment_log(
            actor=actor,
            action=Action.CONTEXT_DETACHED,
            target=target,
            attachment=attachment,
            reason=reason,
        )
        _settle_misinformation_item(target, actor=actor)
        _redraw_if_chat(attachment.target)
    return attachment


def log_automatic_attachments(*, obj, note_scores: list[tuple[int, float]]) -> None:
    """The write path attached notes by itself: every attach is logged, with no actor."""
    target = target_of(obj)
    attachments = {
        a.note_id: a
        for a in attachments_on(obj).filter(note_id__in=[note_id for note_id, _ in note_scores])
    }
    with transaction.atomic():
        for note_id, _score in note_scores:
            attachment = attachments.get(note_id)
            if attachment is not None:
                _attachment_log(
                    actor=None,
                    action=Action.CONTEXT_ATTACHED,
                    target=target,
                    attachment=attachment,
                    reason="Matched by the context-note library.",
                )


@receiver(publishing.context_notes_attached)
def _on_context_notes_attached(sender, *, obj, note_scores, **kwargs) -> None:
    log_automatic_attachments(obj=obj, note_scores=note_scores)
