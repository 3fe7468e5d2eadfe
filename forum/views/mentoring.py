"""Peer mentoring pages: browse mentors, ask one, answer and end mentorships, offer to
mentor, and the leaders' approvals. Thin adapters over forum.mentoring."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from moderation import permissions
from moderation.ratelimit import RateLimited

from .. import mentoring, selectors
from ..forms import MentorFilterForm, MentorProfileForm, MentorRequestForm
from ..models import MentorApproval, SupportGroup, User
from ._util import posted, submit


def _my_groups(user) -> list[SupportGroup]:
    return list(SupportGroup.objects.filter(memberships__user=user).order_by("name"))


@login_required
def mentors(request):
    """Approved mentors in the member's groups, with filters."""
    groups = _my_groups(request.user)
    filters = MentorFilterForm(request.GET or None, groups=groups)
    approach = language = ""
    group = None
    if filters.is_valid():
        approach = filters.cleaned_data["approach"]
        language = filters.cleaned_data["language"].strip()
        slug = filters.cleaned_data["group"]
        group = next((g for g in groups if g.slug == slug), None)
    cards = mentoring.listed_mentors(
        request.user, approach=approach, language=language, group=group
    )
    return render(
        request,
        "forum/mentors.html",
        {"cards": cards, "filters": filters, "has_groups": bool(groups)},
    )


@login_required
def mentor_request(request, slug: str, handle: str):
    """Ask a listed mentor of the group, with a note only they read."""
    group = selectors.get_group_for(request.user, slug)
    mentor = get_object_or_404(User, handle=handle, is_active=True)
    approval = mentoring.listed_approval(user=request.user, mentor=mentor, group=group)
    permissions.check_can_request_mentor(request.user, mentor, group)
    form = MentorRequestForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            mentorship = submit(
                form,
                lambda: mentoring.request_mentor(
                    mentee=request.user, mentor=mentor, group=group, note=form.cleaned_data["note"]
                ),
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal))
            mentorship = None
        if mentorship is not None:
            messages.success(
                request, f"Your request is on its way to {mentor.handle}. You will be told here."
            )
            if mentorship.crisis_categories:
                messages.info(
                    request,
                    "Some of what you wrote sounds really hard. You don't have to wait for a "
                    "mentor: support is listed on the help page, any time.",
                )
                return redirect("crisis_help")
            return redirect("mentoring")
    return render(
        request,
        "forum/mentor_request.html",
        {"approval": approval, "mentor": mentor, "group": group, "form": form},
    )


@login_required
def mentoring_home(request):
    """The member's mentorships: requests to answer, and each side's."""
    return render(
        request,
        "forum/mentoring.html",
        {
            "rows": mentoring.mentorships_of(request.user),
            "profile": mentoring.profile_of(request.user),
        },
    )


@login_required
def mentorship(request, mentorship_id: int):
    found = mentoring.get_mentorship_for(request.user, mentorship_id)
    other = found.other(request.user)
    return render(
        request,
        "forum/mentorship.html",
        {
            "mentorship": found,
            "other": other,
            "is_mentor": found.mentor_id == request.user.pk,
            "conversation": mentoring.conversation_of(found),
        },
    )


def _answer(request, mentorship_id: int, act, done: str):
    found = mentoring.get_mentorship_for(request.user, mentorship_id)
    try:
        act(found)
    except (ValidationError, PermissionDenied) as error:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, text)
    else:
        messages.success(request, done)
    return redirect("mentoring")


@login_required
@require_POST
def mentorship_accept(request, mentorship_id: int):
    return _answer(
        request,
        mentorship_id,
        lambda m: mentoring.accept(mentor=request.user, mentorship=m),
        "You accepted. Your private conversation is open.",
    )


@login_required
@require_POST
def mentorship_decline(request, mentorship_id: int):
    return _answer(
        request,
        mentorship_id,
        lambda m: mentoring.decline(mentor=request.user, mentorship=m),
        "Request declined. They are told kindly, with no reason given.",
    )


@login_required
def mentorship_end(request, mentorship_id: int):
    """A confirm page, then the end; no reason is asked."""
    if request.method == "POST":
        return _answer(
            request,
            mentorship_id,
            lambda m: mentoring.end(user=request.user, mentorship=m),
            "Ended. Your conversation stays readable, and nobody can write in it.",
        )
    found = mentoring.get_mentorship_for(request.user, mentorship_id)
    if not found.is_open:
        return redirect(found)
    return render(
        request,
        "forum/mentorship_end.html",
        {"mentorship": found, "other": found.other(request.user)},
    )


def _profile_initial(profile) -> dict:
    if profile is None:
        return {"accepting": True}
    return {
        "experience": profile.experience_source,
        "approaches": profile.approaches,
        "availability": profile.availability,
        "languages": profile.languages,
        "accepting": profile.accepting,
    }


@login_required
def mentor_profile(request):
    """Offer to mentor: what is still missing, the profile, and approvals per group."""
    user = request.user
    profile = mentoring.profile_of(user)
    refusals = permissions.mentoring_refusals(user)
    form = MentorProfileForm(posted(request), initial=_profile_initial(profile))
    if request.method == "POST":
        if refusals:
            raise PermissionDenied(" ".join(refusals))
        if form.is_valid():
            data = form.cleaned_data
            saved = submit(
                form,
                lambda: mentoring.save_profile(
                    user=user,
                    experience=data["experience"],
                    approaches=data["approaches"],
                    availability=data["availability"],
                    languages=data["languages"],
                    accepting=data["accepting"],
                ),
            )
            if saved is not None:
                messages.success(request, "Your mentor profile is saved.")
                return redirect("mentor_profile")
    approvals = {a.group_id: a for a in profile.approvals.all()} if profile else {}
    groups = [(group, approvals.get(group.pk)) for group in _my_groups(user)]
    return render(
        request,
        "forum/mentor_profile.html",
        {"form": form, "profile": profile, "refusals": refusals, "groups": groups},
    )


@login_required
@require_POST
def mentor_profile_withdraw(request):
    mentoring.withdraw_profile(user=request.user)
    messages.success(
        request, "You no longer offer to mentor. Mentorships under way continue until ended."
    )
    return redirect("mentor_profile")


@login_required
@require_POST
def mentor_approval_request(request, slug: str):
    """Ask this group's leaders to list the member as a mentor."""
    group = selectors.get_group_for(request.user, slug)
    try:
        mentoring.request_approval(user=request.user, group=group)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except RateLimited as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The leaders of {group.name} will look at your offer.")
    return redirect("mentor_profile")


@login_required
def group_mentors(request, slug: str):
    """Leaders: offers waiting for a decision, and the mentors listed in the group."""
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_approve_mentor(request.user, group)
    return render(
        request,
        "forum/mentor_approvals.html",
        {
            "group": group,
            "pending": mentoring.pending_approvals(group),
            "approved": mentoring.approved_mentors(group),
        },
    )


DECISIONS = {"approve", "decline", "revoke"}


@login_required
@require_POST
def group_mentor_decide(request, slug: str, approval_id: int, decision: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_approve_mentor(request.user, group)
    if decision not in DECISIONS:
        raise Http404("No such decision.")
    approval = get_object_or_404(
        MentorApproval.objects.select_related("profile__user", "group"), pk=approval_id, group=group
    )
    try:
        if decision == "revoke":
            mentoring.revoke_approval(actor=request.user, approval=approval)
        else:
            mentoring.decide_approval(
                actor=request.user, approval=approval, approve=decision == "approve"
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        done = {"approve": "approved", "decline": "declined", "revoke": "no longer listed"}
        messages.success(request, f"{approval.profile.user.handle}: {done[decision]}.")
    return redirect("group_mentors", slug=group.slug)
