"""The member's recovery page: goals, daily check-ins, streaks, milestones, the recovery date
(forum.accountability); and what a mentor may see of their mentee's.

Everything under /me/recovery/ is the member's own: another member's goal is a 404.
"""

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from moderation import permissions

from .. import accountability, selectors
from ..forms import CheckInForm, GoalForm, RecoveryDateForm
from ..models import CheckIn, Goal, Mentorship
from ._util import posted, submit

# One page view after a check-in whose note suggests risk shows crisis resources.
SUPPORT_SESSION_KEY = "kinship_recovery_support"
SUPPORT_MESSAGE = (
    "Your check-in is saved. Some of what you wrote sounds really hard. You don't have to "
    "carry it alone: if you'd like to talk to someone now, support is listed below, any time."
)


def _day_param(value: str | None, today: date) -> date:
    """``?day=`` as a date in the backfill window; anything else is today."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return today
    earliest = today - timedelta(days=accountability.BACKFILL_DAYS)
    return day if earliest <= day <= today else today


def _check_in_goals(owner, check_in: CheckIn | None) -> list[Goal]:
    """The goals to tick: the active ones, and any archived one this day already has."""
    goals = list(Goal.objects.filter(owner=owner, archived_at__isnull=True))
    if check_in is not None:
        goals += [goal for goal in check_in.goals_met.all() if not goal.is_active]
    return goals


def _check_in_form(owner, day: date) -> CheckInForm:
    check_in = CheckIn.objects.filter(owner=owner, day=day).first()
    initial = {"day": day}
    if check_in is not None:
        initial |= {
            "mood": check_in.mood,
            "cravings": check_in.cravings,
            "note": check_in.note,
            "goals_met": [goal.pk for goal in check_in.goals_met.all()],
        }
    form = CheckInForm(initial=initial, goals=_check_in_goals(owner, check_in))
    form.existing = check_in
    return form


def _recovery_date_form(user) -> RecoveryDateForm:
    profile = accountability.recovery_profile(user)
    return RecoveryDateForm(
        initial={
            "recovery_date": user.recovery_date,
            "recovery_date_visibility": user.recovery_date_visibility,
            "celebrate": profile.celebrate,
            "mentor_sees_days": profile.mentor_sees_days,
            "share_check_ins": profile.share_check_ins,
        }
    )


def _recovery_page(request, *, check_in_form=None, date_form=None):
    user = request.user
    today = accountability.member_today(user)
    if check_in_form is None:
        check_in_form = _check_in_form(user, _day_param(request.GET.get("day"), today))
    goals = list(Goal.objects.filter(owner=user).select_related("group"))
    active = [goal for goal in goals if goal.is_active]
    support = None
    if request.session.pop(SUPPORT_SESSION_KEY, False):
        support = selectors.crisis_resources()
    context = {
        "today": today,
        "zone": accountability.member_zone(user).key,
        "progress": accountability.goal_progress(active, today),
        "archived": [goal for goal in goals if not goal.is_active],
        "goals_max": accountability.GOALS_MAX,
        "check_in_form": check_in_form,
        "checked_in_today": CheckIn.objects.filter(owner=user, day=today).exists(),
        "date_form": date_form or _recovery_date_form(user),
        "days": accountability.recovery_days(user.recovery_date, today),
        "support_resources": support,
        # Active mentorships either way: what a mentor sees, and what one's mentees share.
        "mentorships": Mentorship.objects.filter(
            Q(mentor=user) | Q(mentee=user), state=Mentorship.State.ACTIVE
        ).select_related("mentor", "mentee"),
    }
    return render(request, "forum/recovery.html", context)


@login_required
@never_cache
@require_safe
def recovery(request):
    return _recovery_page(request)


@login_required
@require_POST
def check_in(request):
    user = request.user
    day = _day_param(request.POST.get("day"), accountability.member_today(user))
    existing = CheckIn.objects.filter(owner=user, day=day).first()
    form = CheckInForm(request.POST, goals=_check_in_goals(user, existing))
    form.existing = existing
    if form.is_valid():
        data = form.cleaned_data
        saved = submit(
            form,
            lambda: accountability.record_check_in(
                owner=user,
                day=data["day"] or accountability.member_today(user),
                mood=data["mood"],
                cravings=data["cravings"],
                note=data["note"],
                goal_ids=data["goals_met"],
            ),
        )
        if saved is not None:
            when = "today" if saved.day == accountability.member_today(user) else None
            label = when or date_format(saved.day, "l j F")
            messages.success(request, f"Your check-in for {label} is saved.")
            if saved.crisis_categories:
                request.session[SUPPORT_SESSION_KEY] = True
                messages.info(request, SUPPORT_MESSAGE)
                return redirect(f"{reverse('recovery')}#support")
            return redirect("recovery")
    return _recovery_page(request, check_in_form=form)


@login_required
@require_POST
def check_in_delete(request, day: str):
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise Http404("No such check-in.") from None
    if not accountability.delete_check_in(owner=request.user, day=when):
        raise Http404("No such check-in.")
    messages.success(request, f"Your check-in for {date_format(when, 'l j F')} is deleted.")
    return redirect("check_in_history")


@login_required
@require_POST
def recovery_date(request):
    user = request.user
    form = RecoveryDateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        reset = submit(
            form,
            lambda: accountability.set_recovery_date(
                user=user,
                recovery_date=data["recovery_date"],
                visibility=data["recovery_date_visibility"],
                celebrate=data["celebrate"],
                mentor_sees_days=data["mentor_sees_days"],
                share_check_ins=data["share_check_ins"],
            ),
        )
        if reset is not None:
            if reset:
                start = date_format(user.recovery_date, "j F Y")
                messages.success(request, accountability.RESET_MESSAGE.format(start=start))
            else:
                messages.success(request, "Your recovery date and choices are saved.")
            return redirect("recovery")
    return _recovery_page(request, date_form=form)


@login_required
@never_cache
@require_safe
def check_in_history(request):
    today = accountability.member_today(request.user)
    context = {
        "check_ins": accountability.check_ins_of(request.user, today=today),
        "history_days": accountability.HISTORY_DAYS,
        "today": today,
    }
    return render(request, "forum/recovery_history.html", context)


def _goal_form_page(request, goal: Goal | None):
    user = request.user
    initial = {}
    if goal is not None:
        initial = {
            "title": goal.title,
            "cadence": goal.cadence,
            "weekly_target": goal.weekly_target,
            "visibility": goal.visibility,
            "group": str(goal.group_id or ""),
        }
    form = GoalForm(posted(request), initial=initial, owner=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = submit(
            form,
            lambda: accountability.save_goal(
                owner=user,
                goal=goal,
                title=data["title"],
                cadence=data["cadence"],
                weekly_target=data["weekly_target"],
                visibility=data["visibility"],
                group_id=int(data["group"]) if data["group"] else None,
            ),
        )
        if saved is not None:
            messages.success(request, "Your goal is saved." if goal else "Your goal is added.")
            return redirect("recovery")
    return render(request, "forum/goal_form.html", {"form": form, "goal": goal})


@login_required
def goal_new(request):
    return _goal_form_page(request, None)


@login_required
def goal_edit(request, goal_id: int):
    return _goal_form_page(request, accountability.get_own_goal(request.user, goal_id))


@login_required
@require_POST
def goal_archive(request, goal_id: int):
    """Archive a goal, or bring it back (``restore=1``)."""
    goal = accountability.get_own_goal(request.user, goal_id)
    restore = bool(request.POST.get("restore"))
    try:
        accountability.set_goal_archived(owner=request.user, goal=goal, archived=not restore)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("recovery")
    if restore:
        messages.success(request, f"“{goal.title}” is back on your list.")
    else:
        messages.success(request, f"“{goal.title}” is archived. Only you can see it.")
    return redirect("recovery")


@login_required
@never_cache
@require_safe
def mentorship_goals(request, mentorship_id: int):
    """What a mentor sees of their mentee's recovery: goals shared with them, and the day
    count and check-ins if the mentee chose so. The mentee may open it too, to see exactly
    what their mentor sees. Anyone else, or an ended mentorship: 404."""
    mentorship = get_object_or_404(
        Mentorship.objects.select_related("mentor", "mentee"),
        pk=mentorship_id,
        state=Mentorship.State.ACTIVE,
    )
    if request.user.pk not in (mentorship.mentor_id, mentorship.mentee_id):
        raise Http404("No such mentorship.")
    mentor, mentee = mentorship.mentor, mentorship.mentee
    today = accountability.member_today(mentee)
    shares = selectors.shares_a_group(mentor, mentee)
    goals = accountability.visible_goals(mentor, mentee)
    days = None
    if permissions.can_see_days(mentor, mentee, shares_group=shares):
        days = accountability.recovery_days(mentee.recovery_date, today)
    context = {
        "mentorship": mentorship,
        "mentee": mentee,
        "mentor": mentor,
        "is_mentee": request.user.pk == mentee.pk,
        "progress": accountability.goal_progress(goals, today),
        "days": days,
        "mood_rows": accountability.shared_check_ins(mentor, mentee),
        "mood_days": accountability.MENTOR_CHECK_IN_DAYS,
    }
    return render(request, "forum/recovery_mentor.html", context)
