"""Reads for the review side: the queue, an item with its surroundings, a member's history.

Like forum.selectors, each read runs a constant number of queries whatever the data
size, and says only what the given reviewer may see. Who may review what is decided in
moderation.permissions; these functions apply its answers.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, Count, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.expressions import Window as Over
from django.shortcuts import get_object_or_404
from django.utils import timezone

from forum.models import ChatMessage, ChatRoom, Membership, Post, SupportGroup, Thread, User
from forum.selectors import Window, window_of, with_viewer_role

from . import actions, permissions
from .models import Flag, FlagReason, ModeratorNote, QueueItem, Sanction

QUEUE_PER_PAGE = 50
# Reasons whose content is blurred until the moderator chooses to look.
DISTRESSING = frozenset({FlagReason.TRIGGERING, FlagReason.CRISIS})
CHAT_CONTEXT = timedelta(minutes=5)
# QueueItem.content_type.model -> the kind moderation.actions.load_target takes.
_TARGET_KINDS = {
    "post": "post",
    "thread": "thread",
    "chatmessage": "chat message",
    "user": "member",
}


def _visible_to(ids: list[int] | None) -> Q:
    """Sanctions and notes a reviewer sees: their groups' and the site-wide ones."""
    if ids is None:
        return Q()
    return Q(group__isnull=True) | Q(group_id__in=ids)


# --- the queue -------------------------------------------------------------------------------


@dataclass
class Row:
    """One queue item as the list shows it."""

    item: QueueItem
    kind: str
    where: str
    reasons: list[tuple[str, int]] = field(default_factory=list)
    is_crisis: bool = False
    waiting_long: bool = False


def open_items(user, ids: list[int] | None, *, group_filter: str = "") -> QuerySet[QueueItem]:
    """The open items this reviewer reviews (``ids``: permissions.moderated_group_ids);
    never the ones about the reviewer themselves."""
    items = QueueItem.objects.filter(state=QueueItem.State.OPEN).exclude(member_id=user.pk)
    if ids is not None:
        items = items.filter(group_id__in=ids)
    if group_filter == "site":
        items = items.filter(group__isnull=True)
    elif group_filter:
        items = items.filter(group__slug=group_filter)
    return items


def queue_page(
    user, ids: list[int] | None, *, group_filter: str = "", page: int = 1
) -> tuple[Window, int]:
    """One page of the open items this user reviews, most pressing first (urgent, then
    the weightiest, then the oldest), as Rows, and how many wait in all; constant queries
    whatever the kinds of content in the queue."""
    items = (
        _with_description(open_items(user, ids, group_filter=group_filter))
        .select_related("group", "member", "appeal__entry")
        # Counted over every matching item before the page is cut: no COUNT query.
        .annotate(waiting=Over(Count("pk")))
        .order_by("-is_urgent", "-weight", "opened_at", "pk")
    )
    window = window_of(items, page, QUEUE_PER_PAGE)
    if window.items:
        waiting = window.items[0].waiting
    else:  # past the last page
        waiting = open_items(user, ids, group_filter=group_filter).count()
    window.items = _rows(window.items)
    return window, waiting


def _with_description(items: QuerySet[QueueItem]) -> QuerySet[QueueItem]:
    """What each item is about and where (see _describe), in the same query: one subquery
    per kind of target rather than one prefetch query per kind present."""
    target = OuterRef("object_id")
    posts = Post.objects.filter(pk=target)
    threads = Thread.objects.filter(pk=target)
    messages = ChatMessage.objects.filter(pk=target)
    members = User.objects.filter(pk=target)

    def by_kind(**columns: tuple[QuerySet, str]) -> Case:
        return Case(
            *(
                When(
                    Q(content_type__app_label="forum", content_type__model=model),
                    then=Subquery(rows.values(column)[:1]),
                )
                for model, (rows, column) in columns.items()
            ),
            output_field=CharField(),
        )

    return items.annotate(
        target_model=F("content_type__model"),
        target_title=by_kind(
            post=(posts, "thread__title"),
            thread=(threads, "title"),
            chatmessage=(messages, "room__name"),
            user=(members, "handle"),
        ),
        target_group=by_kind(
            post=(posts, "thread__group__name"),
            thread=(threads, "group__name"),
            chatmessage=(messages, "room__group__name"),
        ),
        target_room_kind=by_kind(chatmessage=(messages, "room__kind")),
    )


def queue_groups(ids: list[int] | None) -> list[SupportGroup]:
    """The groups the queue's filter offers: the reviewer's own, or (site moderators) the
    groups with something open."""
    groups = SupportGroup.objects.order_by("name").only("name", "slug")
    if ids is not None:
        return list(groups.filter(pk__in=ids))
    open_items = QueueItem.objects.filter(state=QueueItem.State.OPEN)
    return list(groups.filter(pk__in=open_items.values("group_id")))


AUTOMATIC = "automatic"


def _reason_label(reason: str) -> str:
    return "A watched phrase" if reason == AUTOMATIC else FlagReason(reason).label


def _rows(items: list[QueueItem]) -> list[Row]:
    counts: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for entry in (
        Flag.objects.filter(item__in=[item.pk for item in items])
        .annotate(automatic=Q(flagger__isnull=True))
        .values("item_id", "reason", "automatic")
        .annotate(n=Count("pk"))
        .order_by("item_id", "-n", "reason")
    ):
        # A watched phrase's flag is "other" with no flagger: say what it is.
        reason = AUTOMATIC if entry["automatic"] else entry["reason"]
        counts[entry["item_id"]].append((reason, entry["n"]))
    cutoff = timezone.now() - timedelta(minutes=settings.KINSHIP_QUEUE_WAIT_MINUTES)
    rows = []
    for item in items:
        kind, where = _describe(item)
        rows.append(
            Row(
                item=item,
                kind=kind,
                where=where,
                reasons=[(_reason_label(reason), n) for reason, n in counts[item.pk]],
                is_crisis=any(reason == FlagReason.CRISIS for reason, _ in counts[item.pk]),
                waiting_long=item.opened_at < cutoff,
            )
        )
    return rows


def _describe(item: QueueItem) -> tuple[str, str]:
    """What the item is and where, from the columns _with_description added."""
    if item.kind == QueueItem.Kind.APPEAL:
        entry = item.appeal.entry if item.appeal else None
        if entry is None:
            return "appeal", ""
        where = f"against “{entry.get_action_display()}” {entry.target_label}"
        return "appeal", where + (f" in {entry.group_name}" if entry.group_name else "")
    model, title, group = item.target_model, item.target_title, item.target_group
    if title is None:
        return "deleted content", item.group.name if item.group else ""
    if model == "post":
        return "post", f"in “{title}”, {group}"
    if model == "thread":
        return "thread", f"“{title}” in {group}"
    if model == "chatmessage" and item.target_room_kind == ChatRoom.Kind.DIRECT:
        return "direct message", f"in a private conversation ({group})"
    if model == "chatmessage":
        return "chat message", f"in {group} / {title}"
    if model == "user":
        return "member", f"@{title}"
    return "item", ""


# --- one item --------------------------------------------------------------------------------


def get_item_for(user, item_id: int) -> QueueItem:
    """The queue item, if this user reviews it: 404 if it (or its private group) is unknown
    to them, 403 if they may see the group but not review its queue or the item is about
    themselves."""
    item = get_object_or_404(
        QueueItem.objects.select_related(
            "group", "member", "content_type", "appeal__entry", "appeal__appellant", "resolved_by"
        ),
        pk=item_id,
    )
    permissions.check_can_review_item(user, item)
    return item


def item_target(item: QueueItem) -> actions.Target | None:
    """The content or member an item is about (for an appeal: what the action touched)."""
    if item.kind == QueueItem.Kind.APPEAL:
        entry = item.appeal.entry if item.appeal else None
        if entry is None or entry.target_type in {"sanction", "log entry"}:
            return None
        obj = actions.load_target(entry.target_type, entry.target_id)
    else:
        obj = actions.load_target(_TARGET_KINDS.get(item.content_type.model, ""), item.object_id)
    return actions.target_of(obj) if obj is not None else None


def content_context(target: actions.Target | None) -> dict[str, Any]:
    """The flagged content in its surroundings: a post among its neighbours, a chat message
    among the room's messages five minutes either side, a thread with its opening post."""
    if target is None:
        return {}
    obj = target.obj
    if target.kind == "post":
        earlier = Post.objects.filter(thread=obj.thread_id, created_at__lte=obj.created_at).exclude(
            pk=obj.pk
        )
        later = Post.objects.filter(thread=obj.thread_id, created_at__gt=obj.created_at)
        return {
            "thread": obj.thread,
            "parent": obj.parent if obj.parent_id else None,
            "before": list(
                earlier.exclude(pk=obj.parent_id or 0)
                .select_related("author")
                .order_by("-created_at")[:2]
            )[::-1],
            "after": list(later.select_related("author").order_by("created_at")[:2]),
        }
    if target.kind == "chat message" and obj.room.kind == ChatRoom.Kind.DIRECT:
        # A private conversation: moderators see what was reported, never the rest of it.
        return {"room": obj.room, "direct": True, "before": [], "after": []}
    if target.kind == "chat message":
        room_messages = ChatMessage.objects.filter(room=obj.room_id).select_related("author")
        return {
            "room": obj.room,
            "before": list(
                room_messages.filter(
                    seq__lt=obj.seq, created_at__gte=obj.created_at - CHAT_CONTEXT
                ).order_by("-seq")[:15]
            )[::-1],
            "after": list(
                room_messages.filter(
                    seq__gt=obj.seq, created_at__lte=obj.created_at + CHAT_CONTEXT
                ).order_by("seq")[:15]
            ),
        }
    if target.kind == "thread":
        return {
            "thread": obj,
            "opening": Post.objects.filter(thread=obj, parent__isnull=True)
            .select_related("author")
            .first(),
        }
    return {"profile": obj}


def is_distressing(flags: list[Flag], target: actions.Target | None) -> bool:
    """Flagged as triggering or a crisis, or carrying a content warning."""
    if any(flag.reason in DISTRESSING for flag in flags):
        return True
    if target is None:
        return False
    warning = getattr(target.obj, "content_warning", "")
    if target.kind == "post":
        warning = warning or target.obj.thread.content_warning
    return bool(warning)


def move_destinations(user, thread: Thread) -> QuerySet[SupportGroup]:
    """The groups this user could move the thread to: the others they moderate."""
    ids = permissions.moderated_group_ids(user)
    groups = SupportGroup.objects.exclude(pk=thread.group_id).order_by("name")
    return groups if ids is None else groups.filter(pk__in=ids)


# --- a member --------------------------------------------------------------------------------


def member_history(user, member: User | None, *, item: QueueItem | None = None) -> dict[str, Any]:
    """What this reviewer may know of a member: flags on their words (other than
    ``item``'s), the sanctions and moderator notes of the reviewer's groups and site-wide."""
    if member is None:
        return {}
    ids = permissions.moderated_group_ids(user)
    past_flags = Flag.objects.filter(item__member=member)
    if item is not None:
        past_flags = past_flags.exclude(item=item)
    return {
        "past_flags": past_flags.count(),
        "sanctions": list(
            Sanction.objects.filter(member=member)
            .filter(_visible_to(ids))
            .select_related("rule", "group", "member")
        ),
        "notes": list(
            ModeratorNote.objects.filter(member=member)
            .filter(_visible_to(ids))
            .select_related("author", "group")
        ),
    }


def member_groups_for(actor, member: User) -> list[SupportGroup]:
    """The member's groups where the actor leads or moderates (site moderators: all of
    them), annotated with the actor's role so permission checks need no more queries."""
    groups = SupportGroup.objects.filter(memberships__user=member).order_by("name")
    if not permissions.is_site_moderator(actor):
        led = Membership.objects.filter(user=actor, role__in=permissions.LEADING_ROLES)
        groups = groups.filter(pk__in=led.values("group_id"))
    return list(with_viewer_role(groups, actor).distinct())
