"""The review side: the queue, actions on content and members, moderator notes.

Views are thin adapters over moderation.actions: they pick the forms this user may
use (permissions.MODERATION_TABLE), hand the input to one action, and show its
refusals as form errors (ValidationError) or as a message on the same page
(PermissionDenied). Flaggers' handles are shown to moderators only, and nobody
reviews flags, notes or sanctions about themselves.
"""

from collections import defaultdict
from datetime import timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone

from forum.models import Post, SupportGroup, Thread, User
from forum.views._util import page_number, posted, submit

from .. import actions, permissions, selectors
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
from ..models import Flag, QueueItem, Sanction
from .notes import ItemNotes

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


def _wait_label(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return "waiting over an hour" if hours == 1 else f"waiting over {hours} hours"
    return f"waiting over {minutes} minutes"


def _sent_by(request, name: str):
    """The POST data if the form ``name`` sent it (its hidden "action" field), else None:
    a page holds several forms and each binds only to its own submission."""
    data = posted(request)
    return data if data is not None and data.get("action") == name else None


def _query_without_page(request) -> str:
    """The queue's filters, for the pagination links (the live refresh keeps its own URL)."""
    query = request.GET.copy()
    for key in ("page", "fragment"):
        query.pop(key, None)
    return query.urlencode()


# --- the queue -------------------------------------------------------------------------------

APPROVAL_DAYS = 30


def recent_approvals(ids: list[int] | None) -> QuerySet:
    """The waits of the latest 1,000 approvals of the last APPROVAL_DAYS days, in seconds,
    in the groups ``ids`` (None: all); read through the queueitem_approvals index."""
    since = timezone.now() - timedelta(days=APPROVAL_DAYS)
    items = QueueItem.objects.filter(approval_seconds__isnull=False, resolved_at__gte=since)
    if ids is not None:
        items = items.filter(group_id__in=ids)
    return items.order_by("-resolved_at").values_list("approval_seconds", flat=True)[:1000]


def _approval_median(ids: list[int] | None) -> str:
    """How long held posts waited for approval (the median, last APPROVAL_DAYS days), in
    words; "" when nothing was approved."""
    waits = list(recent_approvals(ids))
    if not waits:
        return ""
    seconds = int(median(waits))
    if seconds < 120:
        return f"{seconds} second{pluralize(seconds)}"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


@login_required
def queue(request):
    user = request.user
    ids = permissions.moderated_group_ids(user)  # None: every group
    if ids is not None and not ids:
        raise PermissionDenied("Only moderators review the queue.")
    group_filter = request.GET.get("group", "")
    window, waiting = selectors.queue_page(
        user, ids, group_filter=group_filter, page=page_number(request)
    )
    context = {
        "window": window,
        "waiting": waiting,
        "groups": selectors.queue_groups(ids),
        "group_filter": group_filter,
        "query": _query_without_page(request),
        "site_wide": ids is None,
        "wait_label": _wait_label(settings.KINSHIP_QUEUE_WAIT_MINUTES),
        "approval_median": _approval_median(ids),
    }
    # The live queue (static/js/queue.js) fetches only the list, for the page it shows.
    fragment = request.GET.get("fragment") == "1" or (
        request.headers.get("X-Requested-With") == "fetch"
    )
    template = "moderation/partials/queue_list.html" if fragment else "moderation/queue.html"
    return render(request, template, context)


# --- one item --------------------------------------------------------------------------------


def _thread_of(target: actions.Target) -> Thread | None:
    """The thread that lock, pin and move act on: the thread itself, or a post's thread."""
    if target.kind == "thread":
        return target.obj
    if target.kind == "post":
        return target.obj.thread
    return None


def _item_forms(request, item: QueueItem, target: actions.Target | None) -> dict[str, Any]:
    """The action forms this user may use on this item, bound to the POST for the one sent."""
    user = request.user

    def bound(name: str, form_class, **kwargs):
        return form_class(_sent_by(request, name), prefix=name, **kwargs)

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
    # Content the flags hid pending review can still be removed for good (as hide_content says).
    hidden_by_review = target.is_hidden and target.is_hidden_by_review
    if can["hide_content"] and (not target.is_hidden or hidden_by_review):
        forms["hide"] = bound("hide", HideForm, group=target.group)
    if can["restore_content"] and target.is_hidden:
        forms["restore"] = bound("restore", ReasonForm)
    if target.kind == "post" and can["edit_content"]:
        forms["edit"] = bound("edit", EditForm, initial={"body": target.obj.source})
    if target.kind in {"post", "thread"} and can["set_content_warning"]:
        opening = target.obj
        if target.kind == "thread":  # a thread's categories are on its opening post
            opening = Post.objects.filter(thread=target.obj, parent__isnull=True).first()
        forms["warning"] = bound(
            "warning",
            ContentWarningForm,
            initial={
                "warning": target.obj.content_warning,
                "categories": opening.cw_categories if opening else [],
            },
        )
    # A thread, or a post's thread: the table's thread rights are those of the same group.
    thread = _thread_of(target)
    if thread is not None:
        if can["lock_thread"]:
            name = "unlock" if thread.is_locked else "lock"
            forms[name] = bound(name, ReasonForm)
        if can["pin_thread"]:
            name = "unpin" if thread.is_pinned else "pin"
            forms[name] = bound(name, ReasonForm)
        move_to = selectors.move_destinations(user, thread) if can["move_thread"] else None
        if move_to is not None and move_to.exists():
            forms["move"] = bound("move", MoveForm, groups=move_to)
    return forms


def _run_item_action(request, item: QueueItem, target, name: str, form) -> Any:
    """Hand one valid form to its action; None if it was refused (errors are on the form)."""
    user, data = request.user, form.cleaned_data
    obj = target.obj if target is not None else None
    thread = _thread_of(target) if target is not None else None
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
            actor=user, obj=obj, warning=data["warning"], categories=data["categories"]
        ),
        "lock": lambda: actions.lock_thread(actor=user, thread=thread, reason=data["reason"]),
        "unlock": lambda: actions.lock_thread(
            actor=user, thread=thread, locked=False, reason=data["reason"]
        ),
        "pin": lambda: actions.pin_thread(actor=user, thread=thread, reason=data["reason"]),
        "unpin": lambda: actions.pin_thread(
            actor=user, thread=thread, pinned=False, reason=data["reason"]
        ),
        "move": lambda: actions.move_thread(
            actor=user, thread=thread, to_group=data["group"], reason=data["reason"]
        ),
        "decide": lambda: actions.decide_appeal(
            actor=user, appeal=item.appeal, grant=data["decision"] == "reverse", note=data["note"]
        ),
    }
    return submit(form, calls[name])


APPROVED = "Approved: everyone can see it now."
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
    item = selectors.get_item_for(user, item_id)
    target = selectors.item_target(item)
    member = item.appeal.appellant if item.appeal else item.member
    forms = _item_forms(request, item, target)
    can_note = member is not None and permissions.can_moderate(user, "moderator_notes", item.group)
    note_form = NoteForm(_sent_by(request, "note"), prefix="note")
    context_notes = ItemNotes(request, target) if item.kind == QueueItem.Kind.FLAGS else None
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
            elif context_notes is not None and context_notes.handles(name):
                if done := context_notes.run(name):
                    messages.success(request, done)
                    return redirect("moderation:item", item_id=item.pk)
            elif name in forms:
                form = forms[name]
                done = form.is_valid() and _run_item_action(request, item, target, name, form)
                if done:
                    approved = isinstance(done, QueueItem) and done.resolution == "Approved"
                    messages.success(request, APPROVED if approved else DONE[name])
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
        "distressing": selectors.is_distressing(flags, target),
        "forms": forms,
        "note_form": note_form if can_note else None,
        "context_notes": context_notes if context_notes and context_notes.enabled else None,
        "member": member,
        "history": selectors.member_history(user, member, item=item),
        "can_ban": member is not None and permissions.can_moderate(user, Sanction.Kind.BAN, None),
        "refusal": refusal,
        "own_action": bool(item.appeal and item.appeal.entry.actor_id == user.pk),
        **selectors.content_context(target),
    }
    return render(request, "moderation/item.html", context, status=status)


def _reason_counts(flags: list[Flag]) -> list[tuple[str, int]]:
    counts: dict[str, int] = defaultdict(int)
    for flag in flags:
        counts[flag.get_reason_display()] += 1
    return sorted(counts.items(), key=lambda pair: -pair[1])


# --- a member --------------------------------------------------------------------------------


def _ladder_forms(request, actor, member: User, groups: list[SupportGroup]) -> dict[str, Any]:
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
            _sent_by(request, kind), prefix=kind, kind=kind, groups=allowed, initial=initial
        )
    return forms


@login_required
def member_detail(request, handle: str):
    actor = request.user
    member = get_object_or_404(User, handle=handle)
    groups = selectors.member_groups_for(actor, member)
    permissions.check_can_moderate_member(actor, member, groups)
    forms = _ladder_forms(request, actor, member, groups)
    note_groups = [g.pk for g in groups if permissions.can_moderate(actor, "moderator_notes", g)]
    site_wide = permissions.can_moderate(actor, "moderator_notes", None)
    can_note = site_wide or bool(note_groups)
    note_form = NoteForm(
        _sent_by(request, "note"),
        prefix="note",
        groups=SupportGroup.objects.filter(pk__in=note_groups).order_by("name"),
        site_wide=site_wide,
    )
    lift_form = LiftForm(_sent_by(request, "lift"), prefix="lift")
    status, refusal = 200, ""
    sent = request.POST.get("action", "") if request.method == "POST" else None
    if sent is not None:
        try:
            done = _run_member_action(
                request, member, sent, forms, note_form if can_note else None, lift_form
            )
            if done:
                messages.success(request, done)
                return redirect("moderation:member", handle=member.handle)
        except PermissionDenied as error:
            status, refusal = 403, str(error) or "You cannot do this here."
        if sent == "lift" and lift_form.errors:  # the lift buttons show no fields of their own
            refusal = " ".join(str(e) for errors in lift_form.errors.values() for e in errors)
    now = timezone.now()
    history = selectors.member_history(actor, member)
    in_force = [s for s in history["sanctions"] if s.is_active(now) and s.kind != "warning"]
    liftable = {s.pk for s in in_force if permissions.can_lift_sanction(actor, s)}
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
