"""The members' side: flags, a member's own moderation page and appeals, the logs."""

import csv
import json
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from forum import selectors
from forum.models import ChatMessage, Post, SupportGroup, Thread
from forum.views._util import page_number, posted, submit

from .. import actions, permissions
from ..forms_members import AppealForm, FlagForm, LogFilterForm
from ..models import Appeal, Flag, FlagReason, ModerationLogEntry, Sanction

Action = ModerationLogEntry.Action
FLAGGABLE = {"post", "thread", "member"}
LOG_PER_PAGE = 50
T = TypeVar("T")
THANKS = "Thank you. A moderator will look at it. The member will not be told who flagged it."


def _submit_or_refuse(form, write: Callable[[], T]) -> T | None:
    """``submit``, with a refusal (already deleted, already appealed...) shown on the form
    too: the member keeps the page and what they wrote."""
    try:
        return submit(form, write)
    except PermissionDenied as error:
        form.add_error(None, str(error))
        return None


# --- flags -----------------------------------------------------------------------------------


def _flag_target(user, kind: str, pk: int) -> actions.Target:
    """What is being flagged, or 404 where the member may not know it exists."""
    obj = actions.load_target(kind, pk) if kind in FLAGGABLE else None
    if obj is None:
        raise Http404("Nothing to flag here.")
    # The same check actions.flag makes, so a refused flag is never offered a form.
    permissions.check_can_flag(user, obj)
    return actions.target_of(obj)


@login_required
def flag(request, kind: str, pk: int):
    target = _flag_target(request.user, kind, pk)
    form = FlagForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made = _submit_or_refuse(
            form,
            lambda: actions.flag(
                flagger=request.user, obj=target.obj, reason=data["reason"], details=data["details"]
            ),
        )
        if made is not None:
            if made.reason == FlagReason.CRISIS:
                return redirect("moderation:flag_thanks", kind=kind, pk=pk)
            messages.success(request, THANKS)
            return redirect(target.url)
    return render(request, "moderation/flag.html", {"target": target, "form": form, "kind": kind})


@login_required
def flag_thanks(request, kind: str, pk: int):
    """After a crisis concern: thanks, and the resources to pass on or to use oneself."""
    target = _flag_target(request.user, kind, pk)
    flagged = Flag.objects.filter(
        flagger=request.user,
        content_type=target.content_type,
        object_id=target.obj.pk,
        reason=FlagReason.CRISIS,
    )
    if not flagged.exists():
        return redirect(target.url)
    return render(
        request,
        "moderation/flag.html",
        {"target": target, "thanks": THANKS, "resources": selectors.crisis_resources()},
    )


# --- a member's own moderation page ----------------------------------------------------------


def _appeal_id(entry_id: int) -> str:
    # One appeal form per action on the page: each needs its own field ids.
    return f"appeal-{entry_id}-%s"


def _mine_context(user, *, failed: tuple[int, AppealForm] | None = None) -> dict:
    now = timezone.now()
    entries = list(
        ModerationLogEntry.objects.filter(member_id=user.pk, action__in=actions.APPEALABLE)
    )
    appeals = {a.entry_id: a for a in Appeal.objects.filter(entry__in=[e.pk for e in entries])}
    by_target: dict[tuple[str, int], ModerationLogEntry] = {}
    for entry in entries:
        entry.appeal_made = appeals.get(entry.pk)
        entry.form = (
            failed[1]
            if failed and failed[0] == entry.pk
            else AppealForm(auto_id=_appeal_id(entry.pk))
        )
        by_target.setdefault((entry.target_type, entry.target_id), entry)

    def entry_for(kind: str, pk: int) -> ModerationLogEntry | None:
        return by_target.get((kind, pk))

    posts = list(
        Post.objects.filter(author=user, hidden_at__isnull=False)
        .select_related("thread__group")
        .order_by("-hidden_at")
    )
    threads = list(
        Thread.objects.filter(author=user, hidden_at__isnull=False)
        .select_related("group")
        .order_by("-hidden_at")
    )
    chat = list(
        ChatMessage.objects.filter(
            author=user,
            removed_by__in=[ChatMessage.RemovedBy.MODERATOR, ChatMessage.RemovedBy.REVIEW],
        )
        .select_related("room__group")
        .order_by("-removed_at")
    )
    for item, kind in (
        [(p, "post") for p in posts]
        + [(t, "thread") for t in threads]
        + [(m, "chat message") for m in chat]
    ):
        item.entry = entry_for(kind, item.pk)
    sanctions = list(Sanction.objects.filter(member=user).select_related("rule", "group"))
    for sanction in sanctions:
        sanction.in_force = sanction.is_active(now) and sanction.kind != Sanction.Kind.WARNING
        sanction.entry = entry_for("sanction", sanction.pk)
    return {
        "posts": posts,
        "threads": threads,
        "chat_messages": chat,
        "sanctions_in_force": [s for s in sanctions if s.in_force],
        "past_sanctions": [s for s in sanctions if not s.in_force],
        "entries": entries,
        "resources": selectors.crisis_resources() if sanctions else [],
    }


@login_required
def mine(request):
    return render(request, "moderation/mine.html", _mine_context(request.user))


@login_required
@require_POST
def appeal(request, entry_id: int):
    entry = ModerationLogEntry.objects.filter(
        pk=entry_id, member_id=request.user.pk, action__in=actions.APPEALABLE
    ).first()
    if entry is None:
        raise Http404("No such action to appeal.")
    form = AppealForm(request.POST, auto_id=_appeal_id(entry.pk))
    if form.is_valid():
        made = _submit_or_refuse(
            form,
            lambda: actions.appeal(
                member=request.user, entry=entry, text=form.cleaned_data["text"]
            ),
        )
        if made is not None:
            messages.success(
                request, "Your appeal is sent. A moderator who did not take the action decides it."
            )
            return redirect(f"{reverse('moderation:mine')}#entry-{entry.pk}")
    context = _mine_context(request.user, failed=(entry.pk, form))
    return render(request, "moderation/mine.html", context, status=400)


# --- the audit log ---------------------------------------------------------------------------


def _filtered_log(request) -> tuple[QuerySet[ModerationLogEntry], LogFilterForm]:
    ids = permissions.moderated_group_ids(request.user)
    if ids is not None and not ids:
        raise PermissionDenied("Only moderators read the moderation log.")
    entries = ModerationLogEntry.objects.all()
    if ids is not None:
        entries = entries.filter(group_id__in=ids)
    form = LogFilterForm(request.GET or None)
    if form.is_valid():
        data = form.cleaned_data
        if data["group"]:
            group_id = (
                SupportGroup.objects.filter(slug=data["group"].strip())
                .values_list("pk", flat=True)
                .first()
            )
            entries = entries.filter(group_id=group_id) if group_id else entries.none()
        if data["moderator"]:
            entries = entries.filter(actor_handle__iexact=data["moderator"].strip().lstrip("@"))
        if data["member"]:
            entries = entries.filter(member_handle__iexact=data["member"].strip().lstrip("@"))
        if data["action"]:
            entries = entries.filter(action=data["action"])
    elif form.is_bound:
        entries = entries.none()
    return entries, form


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return query.urlencode()


@login_required
def log(request):
    entries, form = _filtered_log(request)
    if request.GET.get("format") == "csv":
        return _csv_response(entries)
    return render(
        request,
        "moderation/log.html",
        {
            "form": form,
            "window": selectors.window_of(entries, page_number(request), LOG_PER_PAGE),
            "query": _query_without_page(request),
        },
    )


CSV_COLUMNS = [
    "time", "moderator", "role", "action", "group", "target", "member", "rule", "reason",
    "before", "after",
]  # fmt: skip


def _cell(value: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; member-written text must not.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(entries: QuerySet[ModerationLogEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in entries.iterator(chunk_size=500):
        row = [
            e.created_at.isoformat(),
            e.actor_handle or ("" if e.actor_id else "automatic"),
            e.actor_role,
            e.action,
            e.group_name,
            f"{e.target_type} {e.target_id or ''}".strip(),
            e.member_handle,
            e.rule_title,
            e.reason,
            json.dumps(e.before, ensure_ascii=False, sort_keys=True),
            json.dumps(e.after, ensure_ascii=False, sort_keys=True),
        ]
        yield writer.writerow([_cell(str(value)) for value in row])


def _csv_response(entries: QuerySet[ModerationLogEntry]) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="moderation-log-{stamp}.csv"'
    return response


# Thread titles of removed threads stay out of the public log.
_REMOVALS = {Action.CONTENT_HIDDEN, Action.HIDDEN_BY_FLAGS}


def group_log(request, slug: str):
    """What moderators did in a group, for everyone who can see the group; who did it stays
    private (every entry reads "a moderator") and removed words are never repeated."""
    group = selectors.get_group_for(request.user, slug)
    entries = ModerationLogEntry.objects.filter(
        group_id=group.pk, action__in=ModerationLogEntry.PUBLIC_ACTIONS
    ).only(
        "action", "target_type", "target_label", "rule_title", "reason", "created_at", "actor_id"
    )
    window = selectors.window_of(entries, page_number(request), LOG_PER_PAGE)
    for entry in window.items:
        # Sanctions and appeals concern a person: the public log does not name them.
        if entry.target_type in {"member", "sanction", "log entry"}:
            entry.public_label = "a member"
        elif entry.target_type == "thread" and entry.action in _REMOVALS:
            entry.public_label = "a thread"
        else:
            entry.public_label = entry.target_label
    return render(
        request, "moderation/group_log.html", {"group": group, "window": window, "query": ""}
    )
