"""The group directory, group pages, joining and leaving, and leaders' tools."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from moderation import permissions

from .. import memberships, publishing, selectors
from ..backends import read_with_member
from ..forms import DirectoryFilterForm, GroupForm, JoinForm
from ..models import JoinRequest, SupportGroup
from . import sessions
from ._util import page_number, posted, submit


def directory(request):
    filters = DirectoryFilterForm(request.GET or None)
    query = kind = ""
    if filters.is_valid():
        query, kind = filters.cleaned_data["q"].strip(), filters.cleaned_data["kind"]
    groups = selectors.group_directory(request.user, query=query, kind=kind)
    return render(
        request,
        "forum/directory.html",
        {
            "groups": groups,
            "filters": filters,
            "query": query,
            "can_create": permissions.can_create_group(request.user),
        },
    )


@login_required
def my_groups(request):
    return render(request, "forum/my_groups.html", {"groups": selectors.groups_of(request.user)})


def group_detail(request, slug: str):
    # A member's group and role come in the statement that loads them (forum.backends).
    with read_with_member(selectors.group_with_member(slug)):
        group = selectors.get_group_for(request.user, slug)
    window = selectors.group_threads(group, page=page_number(request), user=request.user)
    context = {
        "group": group,
        "window": window,
        "role": permissions.membership_role(request.user, group),
        "can_post": permissions.can_post_in_group(request.user, group),
        "can_lead": permissions.can_lead_group(request.user, group),
        "can_join": permissions.can_join_group(request.user, group),
        "upcoming_sessions": sessions.upcoming_sessions(request.user, group, limit=3),
    }
    return render(request, "forum/group.html", context)


def _join_page(request, group: SupportGroup, *, invited: bool):
    form = JoinForm(posted(request))
    pending = memberships.pending_request(user=request.user, group=group)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        if form.is_valid():
            result = submit(
                form,
                lambda: memberships.join_group(
                    user=request.user,
                    group=group,
                    accepted_guidelines=form.cleaned_data["accept_guidelines"],
                    invited=invited,
                ),
            )
            if isinstance(result, JoinRequest):
                messages.success(request, "Your request is sent. A leader will look at it soon.")
                return redirect("my_groups" if group.is_private else group.get_absolute_url())
            if result is not None:
                messages.success(request, f"Welcome to {group.name}.")
                return redirect(group.get_absolute_url())
    context = {
        "group": group,
        "form": form,
        "pending": pending,
        "invited": invited,
        "is_member": permissions.membership_role(request.user, group) is not None,
    }
    return render(request, "forum/join.html", context)


def group_join(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    return _join_page(request, group, invited=False)


def invite(request, code: str):
    group = SupportGroup.objects.filter(invite_code=code).first()
    if group is None:
        raise Http404("This invitation link is not valid any more.")
    return _join_page(request, group, invited=True)


@login_required
def group_leave(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    form = JoinForm(posted(request))
    if request.method == "POST":
        done = submit(form, lambda: memberships.leave_group(user=request.user, group=group) or True)
        if done:
            messages.success(request, f"You have left {group.name}. You are welcome back any time.")
            return redirect("directory")
    return render(request, "forum/leave.html", {"group": group, "form": form})


@login_required
def join_requests(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_lead_group(request.user, group)
    return render(
        request,
        "forum/join_requests.html",
        {"group": group, "requests": selectors.pending_join_requests(group)},
    )


@login_required
@require_POST
def decide_join_request(request, slug: str, request_id: int, decision: str):
    group = selectors.get_group_for(request.user, slug)
    join_request = get_object_or_404(JoinRequest, pk=request_id, group=group)
    if decision not in {"approve", "decline"}:
        raise Http404("No such decision.")
    try:
        memberships.decide_join_request(
            actor=request.user, request=join_request, approve=decision == "approve"
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Request from {join_request.user.handle}: {decision}d.")
    return redirect("join_requests", slug=group.slug)


def _group_form_values(group: SupportGroup) -> dict:
    return {
        "name": group.name,
        "slug": group.slug,
        "kind": group.kind,
        "description": group.description_source,
        "guidelines": group.guidelines_source,
        "visibility": group.visibility,
        "join_policy": group.join_policy,
    }


def _save_group(request, group: SupportGroup | None, form: GroupForm):
    data = form.cleaned_data
    return submit(
        form,
        lambda: publishing.save_group(
            actor=request.user,
            group=group,
            name=data["name"],
            slug=data["slug"].strip(),
            kind=data["kind"],
            description=data["description"],
            guidelines=data["guidelines"],
            visibility=data["visibility"],
            join_policy=data["join_policy"],
        ),
    )


@login_required
def group_settings(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_lead_group(request.user, group)
    form = GroupForm(posted(request), initial=_group_form_values(group))
    if request.method == "POST" and form.is_valid():
        saved = _save_group(request, group, form)
        if saved is not None:
            messages.success(request, "The group's settings are saved.")
            return redirect(saved.get_absolute_url())
    invite_url = request.build_absolute_uri(f"/invite/{group.invite_code}/")
    return render(
        request,
        "forum/group_settings.html",
        {"group": group, "form": form, "invite_url": invite_url},
    )


@login_required
@require_POST
def renew_invite(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    memberships.renew_invite_code(actor=request.user, group=group)
    messages.success(request, "A new invitation link is ready; the old one no longer works.")
    return redirect("group_settings", slug=group.slug)


@login_required
def group_create(request):
    permissions.check_can_create_group(request.user)
    form = GroupForm(
        posted(request),
        initial={"visibility": "public", "join_policy": "open", "kind": "mutual_aid"},
    )
    if request.method == "POST" and form.is_valid():
        group = _save_group(request, None, form)
        if group is not None:
            messages.success(request, f"{group.name} is open. You lead it.")
            return redirect(group.get_absolute_url())
    return render(request, "forum/group_settings.html", {"form": form, "group": None})
