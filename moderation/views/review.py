"""The review side: the queue, actions on content and members, moderator notes.

Views are thin adapters over moderation.actions: they pick the forms this user may
use (permissions.MODERATION_TABLE), hand the input to one action, and show its
refusals as form errors (ValidationError) or as a message on the same page
(PermissionDenied). Flaggers' handles are shown to moderators only, and nobody
reviews flags, notes or sanctions about themselves.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.prefetch import GenericPrefetch
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from forum.models import ChatMessage, Membership, Post, SupportGroup, Thread, User
from forum.views._util import posted, submit

from .. import actions, navigation, permissions
from ..forms import (
    ContentWarningForm,
    DecideAppealForm,
    DismissForm,
    EditForm,
    HideForm,
    LiftForm,
    MoveForm,
    NoteForm,
    ReasonForm,
    SanctionForm,
)
from ..models import Flag, FlagReason, ModeratorNote, QueueItem, Sanction

QUEUE_LIMIT = 200
# Reasons whose content is blurred until the moderator chooses to look.
DISTRESSING = frozenset({FlagReason.TRIGGERING, FlagReason.CRISIS})
CHAT_CONTEXT = timedelta(minutes=5)
LADDER = [
    Sanction.Kind.WARNING,
    Sanction.Kind.CHAT_MUTE,
    Sanction.Kind.SLOW_MODE,
    Sanction.Kind.SUSPENSION,
    Sanction.Kind.BAN,
]
LADDER_TITLES = {
    Sanction.Kind.WARNING: ("Warn", "Warn"),
    Sanction.Kind.CHAT_MUTE: ("Mute in chat", "Mute"),
    Sanction.Kind.SLOW_MODE: ("Slow mode", "Put in slow mode"),
    Sanction.Kind.SUSPENSION: ("Suspend from a group", "Suspend"),
    Sanction.Kind.BAN: ("Ban from the site", "Ban"),
}
LADDER_HELP = {
    Sanction.Kind.WARNING: "A formal warning: recorded, nothing is blocked.",
    Sanction.Kind.CHAT_MUTE: "They can read the group's chat but not write in it.",
    Sanction.Kind.SLOW_MODE: "They can post, with a wait between posts and messages.",
    Sanction.Kind.SUSPENSION: "They cannot post or chat in the group for a while.",
    Sanction.Kind.BAN: "They cannot post anywhere on the site.",
}


# --- who reviews what ------------------------------------------------------------------------


def _check_reviewer(request) -> list[int] | None:
    """The groups whose queue the user reviews (None: all); 403 for everyone else.
    Keeps the navigation's "Review queue" link up to date on the way."""
    ids = permissions.moderated_group_ids(request.user)
    reviews = ids is None or bool(ids)
    navigation.remember_can_review(request, reviews)
    if not reviews:
        raise PermissionDenied("Only moderators review the queue.")
    return ids


def _visible_to(ids: list[int] | None) -> Q:
    """Sanctions and notes a reviewer sees: their groups' and the site-wide ones."""
    if ids is None:
        return Q()
    return Q(group__isnull=True) | Q(group_id__in=ids)


def _wait_label(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return "waiting over an hour" if hours == 1 else f"waiting over {hours} hours"
    return f"waiting over {minutes} minutes"


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


def _open_items(user, ids: list[int] | None, group_filter: str) -> QuerySet[QueueItem]:
    items = QueueItem.objects.filter(state=QueueItem.State.OPEN).exclude(member_id=user.pk)
    if ids is not None:
        items = items.filter(group_id__in=ids)
    if group_filter == "site":
        items = items.filter(group__isnull=True)
    elif group_filter:
        items = items.filter(group__slug=group_filter)
    return items


def _rows(items: list[QueueItem]) -> list[Row]:
    counts: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for entry in (
        Flag.objects.filter(item__in=[item.pk for item in items])
        .values("item_id", "reason")
        .annotate(n=Count("pk"))
        .order_by("item_id", "-n", "reason")
    ):
        counts[entry["item_id"]].append((entry["reason"], entry["n"]))
    cutoff = timezone.now() - timedelta(minutes=settings.KINSHIP_QUEUE_WAIT_MINUTES)
    rows = []
    for item in items:
        kind, where = _describe(item)
        reasons = [(FlagReason(reason).label, n) for reason, n in counts[item.pk]]
        rows.append(
            Row(
                item=item,
                kind=kind,
                where=where,
                reasons=reasons,
                is_crisis=any(reason == FlagReason.CRISIS for reason, _ in counts[item.pk]),
                waiting_long=item.opened_at < cutoff,
            )
        )
    return rows


def _describe(item: QueueItem) -> tuple[str, str]:
    """What the item is and where, from prefetched rows only."""
    if item.kind == QueueItem.Kind.APPEAL:
        entry = item.appeal.entry if item.appeal else None
        if entry is None:
            return "appeal", ""
        where = f"against “{entry.get_action_display()}” {entry.target_label}"
        return "appeal", where + (f" in {entry.group_name}" if entry.group_name else "")
    obj = item.target
    if obj is None:
        return "deleted content", item.group.name if item.group else ""
    if isinstance(obj, Post):
        return "post", f"in “{obj.thread.title}”, {obj.thread.group.name}"
    if isinstance(obj, Thread):
        return "thread", f"“{obj.title}” in {obj.group.name}"
    if isinstance(obj, ChatMessage):
        return "chat message", f"in {obj.room.group.name} / {obj.room.name}"
    if isinstance(obj, User):
        return "member", f"@{obj.handle}"
    return "item", ""


def queue_rows(user, ids: list[int] | None, group_filter: str = "") -> list[Row]:
    """The open items this user reviews, most pressing first; constant queries."""
    items = list(
        _open_items(user, ids, group_filter)
        .select_related("group", "member", "appeal__entry")
        .prefetch_related(
            GenericPrefetch(
                "target",
                [
                    Post.objects.select_related("thread__group"),
                    Thread.objects.select_related("group"),
                    ChatMessage.objects.select_related("room__group"),
                    User.objects.all(),
                ],
            )
        )
        .order_by("-is_urgent", "-weight", "opened_at", "pk")[:QUEUE_LIMIT]
    )
    return _rows(items)


@login_required
def queue(request):
    user = request.user
    ids = _check_reviewer(request)
    groups = SupportGroup.objects.order_by("name").only("name", "slug")
    if ids is not None:
        groups = groups.filter(pk__in=ids)
    else:
        open_items = QueueItem.objects.filter(state=QueueItem.State.OPEN)
        groups = groups.filter(pk__in=open_items.values("group_id"))
    group_filter = request.GET.get("group", "")
    context = {
        "rows": queue_rows(user, ids, group_filter),
        "groups": list(groups),
        "group_filter": group_filter,
        "site_wide": ids is None,
        "wait_label": _wait_label(settings.KINSHIP_QUEUE_WAIT_MINUTES),
        "limit": QUEUE_LIMIT,
    }
    # The live queue (static/js/queue.js) fetches only the list.
    fragment = request.GET.get("fragment") == "1" or (
        request.headers.get("X-Requested-With") == "fetch"
    )
    template = "moderation/partials/queue_list.html" if fragment else "moderation/queue.html"
    return render(request, template, context)


# --- one item --------------------------------------------------------------------------------


def _item_for(user, item_id: int) -> QueueItem:
    item = get_object_or_404(
        QueueItem.objects.select_related(
            "group", "member", "content_type", "appeal__entry", "appeal__appellant", "resolved_by"
        ),
        pk=item_id,
    )
    ids = permissions.moderated_group_ids(user)
    if ids is None or (item.group_id is not None and item.group_id in ids):
        if item.member_id == user.pk:
            raise PermissionDenied("This is about you: another moderator reviews it.")
        return item
    if item.group is not None:
        permissions.check_can_view_group(user, item.group)  # a private group stays unknown
    raise PermissionDenied("Only this group's moderators review its queue.")


def _target_of_item(item: QueueItem) -> Any:
    """The content or member an item is about (for an appeal: what the action touched)."""
    if item.kind == QueueItem.Kind.APPEAL:
        entry = item.appeal.entry if item.appeal else None
        if entry is None or entry.target_type in {"sanction", "log entry"}:
            return None
        return actions.load_target(entry.target_type, entry.target_id)
    return actions.load_target(
        {"post": "post", "thread": "thread", "chatmessage": "chat message", "user": "member"}.get(
            item.content_type.model, ""
        ),
        item.object_id,
    )


def _content_context(target: actions.Target | None) -> dict[str, Any]:
    """The flagged content in its surroundings."""
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


def _is_distressing(flags: list[Flag], target: actions.Target | None) -> bool:
    if any(flag.reason in DISTRESSING for flag in flags):
        return True
    if target is None:
        return False
    warning = getattr(target.obj, "content_warning", "")
    if target.kind == "post":
        warning = warning or target.obj.thread.content_warning
    return bool(warning)


def _history(user, member: User | None, item: QueueItem | None = None) -> dict[str, Any]:
    """What moderators know of a member: flags on their words, sanctions, shared notes."""
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
            .select_related("rule", "group")
        ),
        "notes": list(
            ModeratorNote.objects.filter(member=member)
            .filter(_visible_to(ids))
            .select_related("author", "group")
        ),
    }


def _move_groups(user, target: actions.Target) -> QuerySet[SupportGroup]:
    ids = permissions.moderated_group_ids(user)
    groups = SupportGroup.objects.exclude(pk=target.group.pk).order_by("name")
    return groups if ids is None else groups.filter(pk__in=ids)


def _item_forms(request, item: QueueItem, target: actions.Target | None) -> dict[str, Any]:
    """The action forms this user may use on this item, bound to the POST for the one sent."""
    user = request.user
    data = posted(request)
    sent = request.POST.get("action") if data is not None else None

    def bound(name: str, form_class, **kwargs):
        return form_class(data if sent == name else None, prefix=name, **kwargs)

    forms: dict[str, Any] = {}
    group = item.group
    if item.kind == QueueItem.Kind.APPEAL:
        appeal = item.appeal
        if (
            appeal is not None
            and appeal.state == appeal.State.PENDING
            and appeal.entry.actor_id != user.pk
            and permissions.can_moderate(user, "decide_appeal", group)
        ):
            forms["decide"] = bound("decide", DecideAppealForm)
        return forms
    if item.is_open and permissions.can_moderate(user, "dismiss_flags", group):
        forms["dismiss"] = bound("dismiss", DismissForm)
    if target is None or target.kind == "member" or target.is_gone:
        return forms
    can = {
        action: permissions.can_moderate(user, action, target.group)
        for action in permissions.MODERATION_TABLE
    }
    hidden_by_review = target.is_hidden and (
        target.obj.removed_by == ChatMessage.RemovedBy.REVIEW
        if target.kind == "chat message"
        else target.obj.hidden_pending_review
    )
    if can["hide_content"] and (not target.is_hidden or hidden_by_review):
        forms["hide"] = bound("hide", HideForm, group=target.group)
    if can["restore_content"] and target.is_hidden:
        forms["restore"] = bound("restore", ReasonForm)
    if target.kind == "post" and can["edit_content"]:
        forms["edit"] = bound("edit", EditForm, initial={"body": target.obj.source})
    if target.kind in {"post", "thread"} and can["set_content_warning"]:
        forms["warning"] = bound(
            "warning", ContentWarningForm, initial={"warning": target.obj.content_warning}
        )
    if target.kind == "thread":
        thread = target.obj
        if can["lock_thread"]:
            name = "unlock" if thread.is_locked else "lock"
            forms[name] = bound(name, ReasonForm)
        if can["pin_thread"]:
            name = "unpin" if thread.is_pinned else "pin"
            forms[name] = bound(name, ReasonForm)
        move_to = _move_groups(user, target) if can["move_thread"] else None
        if move_to is not None and move_to.exists():
            forms["move"] = bound("move", MoveForm, groups=move_to)
    return forms


def _run_item_action(request, item: QueueItem, target, name: str, form) -> Any:
    """Hand one valid form to its action; None if it was refused (errors are on the form)."""
    user, data = request.user, form.cleaned_data
    obj = target.obj if target is not None else None
    calls = {
        "dismiss": lambda: actions.dismiss_flags(actor=user, item=item, note=data["note"]),
        "hide": lambda: actions.hide_content(
            actor=user, obj=obj, reason=data["reason"], rule=data["rule"]
        ),
        "restore": lambda: actions.restore_content(actor=user, obj=obj, reason=data["reason"]),
        "edit": lambda: actions.edit_content(
            actor=user, post=obj, body=data["body"], note=data["note"]
        ),
        "warning": lambda: actions.set_content_warning(
            actor=user, obj=obj, warning=data["warning"]
        ),
        "lock": lambda: actions.lock_thread(actor=user, thread=obj, reason=data["reason"]),
        "unlock": lambda: actions.lock_thread(
            actor=user, thread=obj, locked=False, reason=data["reason"]
        ),
        "pin": lambda: actions.pin_thread(actor=user, thread=obj, reason=data["reason"]),
        "unpin": lambda: actions.pin_thread(
            actor=user, thread=obj, pinned=False, reason=data["reason"]
        ),
        "move": lambda: actions.move_thread(
            actor=user, thread=obj, to_group=data["group"], reason=data["reason"]
        ),
        "decide": lambda: actions.decide_appeal(
            actor=user, appeal=item.appeal, grant=data["decision"] == "reverse", note=data["note"]
        ),
    }
    return submit(form, calls[name])


DONE = {
    "dismiss": "Flags dismissed.",
    "hide": "Removed, with your reason sent to its author.",
    "restore": "Restored.",
    "edit": "Edited; readers see your note.",
    "warning": "Content warning saved.",
    "lock": "Thread locked.",
    "unlock": "Thread unlocked.",
    "pin": "Thread pinned.",
    "unpin": "Thread unpinned.",
    "move": "Thread moved.",
    "decide": "Appeal decided; the member has been told.",
}


@login_required
def item_detail(request, item_id: int):
    user = request.user
    item = _item_for(user, item_id)
    obj = _target_of_item(item)
    target = actions.target_of(obj) if obj is not None else None
    member = item.appeal.appellant if item.appeal else item.member
    forms = _item_forms(request, item, target)
    can_note = member is not None and permissions.can_moderate(user, "moderator_notes", item.group)
    note_form = NoteForm(
        posted(request) if request.POST.get("action") == "note" else None, prefix="note"
    )
    status, refusal = 200, ""
    if request.method == "POST":
        name = request.POST.get("action", "")
        try:
            if name == "note" and can_note:
                if note_form.is_valid() and submit(
                    note_form,
                    lambda: actions.add_note(
                        actor=user,
                        member=member,
                        group=item.group,
                        text=note_form.cleaned_data["text"],
                    ),
                ):
                    messages.success(request, "Note added.")
                    return redirect("moderation:item", item_id=item.pk)
            elif name in forms:
                form = forms[name]
                if form.is_valid() and _run_item_action(request, item, target, name, form):
                    messages.success(request, DONE[name])
                    return redirect("moderation:queue")
            else:
                raise PermissionDenied("That action is not available to you on this item.")
        except PermissionDenied as error:
            status, refusal = 403, str(error) or "You cannot do this here."
    flags = list(item.flags.select_related("flagger")) if item.kind == QueueItem.Kind.FLAGS else []
    context = {
        "item": item,
        "target": target,
        "flags": flags,
        "reason_counts": _reason_counts(flags),
        "distressing": _is_distressing(flags, target),
        "forms": forms,
        "note_form": note_form if can_note else None,
        "member": member,
        "history": _history(user, member, item),
        "refusal": refusal,
        "own_action": bool(item.appeal and item.appeal.entry.actor_id == user.pk),
        **_content_context(target),
    }
    return render(request, "moderation/item.html", context, status=status)


def _reason_counts(flags: list[Flag]) -> list[tuple[str, int]]:
    counts: dict[str, int] = defaultdict(int)
    for flag in flags:
        counts[flag.get_reason_display()] += 1
    return sorted(counts.items(), key=lambda pair: -pair[1])


# --- a member --------------------------------------------------------------------------------


def _actor_groups(actor, member: User) -> list[SupportGroup]:
    """The member's groups where the actor leads or moderates (site moderators: all of
    them), annotated with the actor's role so permission checks need no more queries."""
    groups = SupportGroup.objects.filter(memberships__user=member).order_by("name")
    if not permissions.is_site_moderator(actor):
        groups = groups.filter(
            memberships__user=member,
            pk__in=Membership.objects.filter(user=actor, role__in=permissions.LEADING_ROLES).values(
                "group_id"
            ),
        )
    role = Membership.objects.filter(user=actor, group=OuterRef("pk")).values("role")[:1]
    return list(groups.annotate(viewer_role=Subquery(role)).distinct())


def _ladder_forms(request, actor, member: User, groups: list[SupportGroup]) -> dict[str, Any]:
    data = posted(request)
    sent = request.POST.get("action") if data is not None else None
    forms: dict[str, Any] = {}
    for kind in LADDER:
        if kind == Sanction.Kind.BAN:
            if not permissions.can_moderate(actor, kind, None):
                continue
            ids, allowed = [], None
        else:
            ids = [g.pk for g in groups if permissions.can_moderate(actor, kind, g)]
            if not ids:
                continue
            allowed = SupportGroup.objects.filter(pk__in=ids).order_by("name")
        # One group to choose from: choose it already.
        initial = {"group": ids[0]} if allowed is not None and len(ids) == 1 else {}
        forms[kind] = SanctionForm(
            data if sent == kind else None, prefix=kind, kind=kind, groups=allowed, initial=initial
        )
    return forms


@login_required
def member_detail(request, handle: str):
    actor = request.user
    member = get_object_or_404(User, handle=handle)
    if member.pk == actor.pk:
        raise PermissionDenied("Another moderator looks after your own standing.")
    groups = _actor_groups(actor, member)
    if not groups and not permissions.is_site_moderator(actor):
        raise PermissionDenied("Only moderators of this member's groups can see this page.")
    forms = _ladder_forms(request, actor, member, groups)
    note_groups = [g.pk for g in groups if permissions.can_moderate(actor, "moderator_notes", g)]
    site_wide = permissions.can_moderate(actor, "moderator_notes", None)
    can_note = site_wide or bool(note_groups)
    data = posted(request)
    sent = request.POST.get("action") if data is not None else None
    note_form = NoteForm(
        data if sent == "note" else None,
        prefix="note",
        groups=SupportGroup.objects.filter(pk__in=note_groups).order_by("name"),
        site_wide=site_wide,
    )
    lift_form = LiftForm(data if sent == "lift" else None, prefix="lift")
    status, refusal = 200, ""
    if data is not None:
        try:
            done = _run_member_action(
                request, member, sent or "", forms, note_form if can_note else None, lift_form
            )
            if done:
                messages.success(request, done)
                return redirect("moderation:member", handle=member.handle)
        except PermissionDenied as error:
            status, refusal = 403, str(error) or "You cannot do this here."
        if sent == "lift" and lift_form.errors:  # the lift buttons show no fields of their own
            refusal = " ".join(str(e) for errors in lift_form.errors.values() for e in errors)
    now = timezone.now()
    history = _history(actor, member)
    in_force = [s for s in history["sanctions"] if s.is_active(now) and s.kind != "warning"]
    liftable = {s.pk for s in in_force if permissions.can_moderate(actor, "lift_sanction", s.group)}
    context = {
        "member": member,
        "groups": groups,
        "ladder": [
            {
                "kind": kind,
                "title": LADDER_TITLES[kind][0],
                "button": LADDER_TITLES[kind][1],
                "help": LADDER_HELP[kind],
                "form": f,
            }
            for kind, f in forms.items()
        ],
        "note_form": note_form if can_note else None,
        "lift_form": lift_form,
        "history": history,
        "in_force": in_force,
        "liftable": liftable,
        "refusal": refusal,
        "now": now,
    }
    return render(request, "moderation/member.html", context, status=status)


def _run_member_action(request, member: User, name: str, forms, note_form, lift_form) -> str:
    """Run the sent form's action; the success message, or "" if it was refused."""
    actor = request.user
    if name in forms:
        form = forms[name]
        if not form.is_valid():
            return ""
        data = form.cleaned_data
        made = submit(
            form,
            lambda: actions.sanction_member(
                actor=actor,
                member=member,
                kind=name,
                group=data.get("group"),
                reason=data["reason"],
                rule=data.get("rule"),
                message=data.get("message", ""),
                duration=form.duration_value(),
                slow_mode_seconds=data.get("slow_mode_seconds"),
            ),
        )
        return (
            f"{made.get_kind_display()}: done, and {member.handle} has been told." if made else ""
        )
    if name == "note" and note_form is not None:
        if note_form.is_valid() and submit(
            note_form,
            lambda: actions.add_note(
                actor=actor,
                member=member,
                group=note_form.cleaned_data.get("group"),
                text=note_form.cleaned_data["text"],
            ),
        ):
            return "Note added."
        return ""
    if name == "lift":
        if not lift_form.is_valid():
            raise PermissionDenied("Choose a sanction to lift.")
        sanction = (
            Sanction.objects.filter(pk=lift_form.cleaned_data["sanction"], member=member)
            .select_related("group", "member")
            .first()
        )
        if sanction is None:
            raise PermissionDenied("No such sanction on this member.")
        if submit(
            lift_form,
            lambda: actions.lift_sanction(
                actor=actor, sanction=sanction, reason=lift_form.cleaned_data["reason"]
            ),
        ):
            return f"Lifted: {sanction.get_kind_display()}."
        return ""
    raise PermissionDenied("That action is not available to you here.")


def member_url(member: User) -> str:
    return reverse("moderation:member", kwargs={"handle": member.handle})
