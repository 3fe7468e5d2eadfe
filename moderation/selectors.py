"""Reads for the review side: the queue, an item with its surroundings, a member's history.

Like forum.selectors, each read runs a constant number of queries whatever the data
size, and says only what the given reviewer may see. Who may review what is decided in
moderation.permissions; these functions apply its answers.
"""

import collections
import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import pluralize
from django.utils import timezone

from forum import sql
from forum.models import ChatMessage, ChatRoom, Membership, Post, SupportGroup, Thread, User
from forum.selectors import Window, with_viewer_role
from forum.sql import names

from . import actions, permissions
from .models import (
    Appeal,
    Flag,
    FlagReason,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Sanction,
)

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
    member: str | None = None  # the handle of the member the item is about
    flags: str = ""  # "2 flags: Spam or solicitation (2)"
    is_crisis: bool = False
    waiting_long: bool = False


def queue_page(
    user, ids: list[int] | None, *, group_filter: str = "", page: int = 1
) -> tuple[Window, int]:
    """One page of the open items this user reviews (``ids``:
    permissions.moderated_group_ids; never the items about themselves), most pressing first
    (urgent, then the weightiest, then the oldest), as Rows, and how many wait in all. One
    statement whatever the kinds of content in the queue, written by hand (forum.sql):
    through the ORM, building the query and PostgreSQL's planning of it (its joins for every
    open item, and a plan made anew for each page) took four times what this does
    (bench/README.md)."""
    if ids is not None and not ids:
        return Window(items=[], page=page, has_next=False), 0
    statement = _queue_sql(
        None if ids is None else len(ids),
        "site" if group_filter == "site" else "slug" if group_filter else "",
    )
    params: dict[str, Any] = {"me": user.pk, "slug": group_filter}
    params.update((f"group{n}", group_id) for n, group_id in enumerate(ids or ()))

    def read(offset: int, limit: int) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(statement, {**params, "offset": offset, "limit": limit})
            return cursor.fetchall()

    rows = read((page - 1) * QUEUE_PER_PAGE, QUEUE_PER_PAGE + 1)
    # Past the last page nothing was counted: the first item counts them all.
    counted = rows or read(0, 1)
    waiting = counted[0][0] if counted else 0
    window = Window(items=rows[:QUEUE_PER_PAGE], page=page, has_next=len(rows) > QUEUE_PER_PAGE)
    window.items = _rows(window.items)
    return window, waiting


@functools.cache
def _queue_sql(groups: int | None, by: str) -> str:
    """The page's items (``groups``: how many groups the reviewer's are, None for all;
    ``by``: "site", "slug" or no filter), each with what it is about and where."""
    item, i_id, i_state, i_member, i_group, i_type, i_object, i_appeal = names(
        QueueItem, "id", "state", "member", "group", "content_type", "object_id", "appeal"
    )
    i_urgent, i_weight, i_opened = names(QueueItem, "is_urgent", "weight", "opened_at")[1:]
    group, g_id, g_name, g_slug = names(SupportGroup, "id", "name", "slug")
    member, u_id, u_handle = names(User, "id", "handle")
    post, p_id, p_thread = names(Post, "id", "thread")
    thread, t_id, t_title, t_group = names(Thread, "id", "title", "group")
    message, c_id, c_room = names(ChatMessage, "id", "room")
    room, r_id, r_name, r_kind, r_group = names(ChatRoom, "id", "name", "kind", "group")
    appeal, a_id, a_entry = names(Appeal, "id", "entry")
    entry, e_id, e_action, e_label, e_group = names(
        ModerationLogEntry, "id", "action", "target_label", "group_name"
    )
    kinds, k_id, k_app, k_model = names(ContentType, "id", "app_label", "model")
    flag, f_item, f_reason, f_flagger = names(Flag, "item", "reason", "flagger")
    # The state is part of the statement, not a parameter: PostgreSQL's plan for a
    # prepared statement, kept after five runs, then sees that the index for open items
    # applies (with a parameter, each run was planned anew).
    where = [
        f"q.{i_state} = '{QueueItem.State.OPEN}'",
        f"(q.{i_member} IS NULL OR q.{i_member} <> %(me)s)",
    ]
    if groups is not None:
        where.append(f"q.{i_group} IN ({', '.join(f'%(group{n})s' for n in range(groups))})")
    if by == "site":
        where.append(f"q.{i_group} IS NULL")
    elif by == "slug":
        slug = f"SELECT {g_id} FROM {group} WHERE {g_slug} = %(slug)s"  # noqa: S608
        where.append(f"q.{i_group} = ({slug})")
    order = f"q.{i_urgent} DESC, q.{i_weight} DESC, q.{i_opened}, q.{i_id}"

    def target(model: str) -> str:  # the item is about a row of this forum model
        return f"k.{k_app} = 'forum' AND k.{k_model} = '{model}'"

    # Per item, "reason:a:count" for its flags of each reason by a watched phrase (a) or
    # by members (m), in one text.
    counted = f"""FROM (
        SELECT {f_reason} AS reason, COUNT(*) AS flags,
            CASE WHEN {f_flagger} IS NULL THEN 'a' ELSE 'm' END AS automatic
        FROM {flag} WHERE {f_item} = q.{i_id} GROUP BY 1, 3) n"""  # noqa: S608
    flags = sql.text_list("n.reason || ':' || n.automatic || ':' || n.flags", counted)
    # The page is cut first, counting what waits in all, and only its items are joined.
    return f"""
        WITH page AS (
            SELECT q.{i_id} AS id, COUNT(*) OVER () AS waiting FROM {item} q
            WHERE {" AND ".join(where)}
            ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s
        )
        SELECT page.waiting, {sql.columns(QueueItem, "q")}, m.{u_handle}, g.{g_name},
            k.{k_model}, COALESCE(pt.{t_title}, t.{t_title}, r.{r_name}, u.{u_handle}),
            COALESCE(pg.{g_name}, tg.{g_name}, rg.{g_name}), r.{r_kind},
            e.{e_action}, e.{e_label}, e.{e_group}, {flags}
        FROM page
        JOIN {item} q ON q.{i_id} = page.id
        JOIN {kinds} k ON k.{k_id} = q.{i_type}
        LEFT JOIN {member} m ON m.{u_id} = q.{i_member}
        LEFT JOIN {group} g ON g.{g_id} = q.{i_group}
        LEFT JOIN {post} p ON {target("post")} AND p.{p_id} = q.{i_object}
        LEFT JOIN {thread} pt ON pt.{t_id} = p.{p_thread}
        LEFT JOIN {group} pg ON pg.{g_id} = pt.{t_group}
        LEFT JOIN {thread} t ON {target("thread")} AND t.{t_id} = q.{i_object}
        LEFT JOIN {group} tg ON tg.{g_id} = t.{t_group}
        LEFT JOIN {message} c ON {target("chatmessage")} AND c.{c_id} = q.{i_object}
        LEFT JOIN {room} r ON r.{r_id} = c.{c_room}
        LEFT JOIN {group} rg ON rg.{g_id} = r.{r_group}
        LEFT JOIN {member} u ON {target("user")} AND u.{u_id} = q.{i_object}
        LEFT JOIN {appeal} a ON a.{a_id} = q.{i_appeal}
        LEFT JOIN {entry} e ON e.{e_id} = a.{a_entry}
        ORDER BY {order}
    """  # noqa: S608 (names come from the models, values are parameters)


def queue_groups(ids: list[int] | None) -> list[SupportGroup]:
    """The groups the queue's filter offers: the reviewer's own, or (site moderators) the
    groups with something open."""
    groups = SupportGroup.objects.order_by("name").only("name", "slug")
    if ids is not None:
        return list(groups.filter(pk__in=ids))
    open_items = QueueItem.objects.filter(state=QueueItem.State.OPEN)
    return list(groups.filter(pk__in=open_items.values("group_id")))


AUTOMATIC = "automatic"
_ACTION_LABELS = dict(ModerationLogEntry.Action.choices)


def _reason_label(reason: str) -> str:
    return "A watched phrase" if reason == AUTOMATIC else FlagReason(reason).label


def _rows(rows: list[tuple]) -> list[Row]:
    """Rows from the page statement's rows."""
    split = 1 + len(QueueItem._meta.concrete_fields)
    cutoff = timezone.now() - timedelta(minutes=settings.KINSHIP_QUEUE_WAIT_MINUTES)
    found = []
    for row in rows:
        item = sql.load(QueueItem, row[1:split])
        reasons = _reasons(row[-1])
        kind, where = _describe(item, *row[split + 1 : -1])
        found.append(
            Row(
                item=item,
                kind=kind,
                where=where,
                member=row[split],
                flags=_flags_line(item, reasons),
                is_crisis=any(reason == FlagReason.CRISIS for reason, _ in reasons),
                waiting_long=item.opened_at < cutoff,
            )
        )
    return found


def _flags_line(item: QueueItem, reasons: list[tuple[str, int]]) -> str:
    """How many flags, and why: nothing for an appeal, nor for an item the site opened
    alone (crisis words: its own line says so)."""
    if item.kind != QueueItem.Kind.FLAGS or (item.auto_reason and not item.flag_count):
        return ""
    line = f"{item.flag_count} flag{pluralize(item.flag_count)}"
    if reasons:
        line += ": " + ", ".join(f"{_reason_label(reason)} ({n})" for reason, n in reasons)
    return line


def _reasons(flags: str | None) -> list[tuple[str, int]]:
    """An item's flags counted by reason, the most given first, from the page statement's
    text (a watched phrase's flag is "other" with no flagger: it counts as AUTOMATIC)."""
    counts: collections.Counter[str] = collections.Counter()
    for part in flags.split(",") if flags else ():
        reason, by, n = part.split(":")
        counts[AUTOMATIC if by == "a" else reason] += int(n)
    return sorted(counts.items(), key=lambda count: (-count[1], count[0]))


def _describe(
    item: QueueItem,
    group_name: str | None,
    model: str,
    title: str | None,
    where: str | None,
    room_kind: str | None,
    action: str | None,
    target_label: str | None,
    entry_group: str | None,
) -> tuple[str, str]:
    """What the item is and where, from the page statement's columns: its group's name,
    its target's model, title (a thread's or room's, a member's handle), group and room
    kind, and for an appeal the action appealed against."""
    if item.kind == QueueItem.Kind.APPEAL:
        if action is None:
            return "appeal", ""
        # As get_action_display: an action no longer in the choices shows as stored.
        label = _ACTION_LABELS.get(action, action)
        described = f"against “{label}” {target_label}"
        return "appeal", described + (f" in {entry_group}" if entry_group else "")
    if title is None:
        return "deleted content", group_name or ""
    if model == "post":
        return "post", f"in “{title}”, {where}"
    if model == "thread":
        return "thread", f"“{title}” in {where}"
    if model == "chatmessage" and room_kind == ChatRoom.Kind.DIRECT:
        return "direct message", f"in a private conversation ({where})"
    if model == "chatmessage":
        return "chat message", f"in {where} / {title}"
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
