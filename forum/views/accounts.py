"""Sign-up, profiles and the settings page."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from moderation import permissions

from .. import (
    accountability,
    accounts,
    content_warnings,
    engagement,
    login_throttle,
    notify,
    publishing,
    quiet_hours,
    selectors,
)
from ..forms import (
    ContentWarningSettingsForm,
    EmailForm,
    NotificationSettingsForm,
    ProfileForm,
    QuietHoursForm,
    ResetRequestForm,
    SignupForm,
)
from ._util import posted, submit
from .conversations import profile_message_context


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(posted(request), address=login_throttle.client_address(request))
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="forum.backends.MemberBackend")
        messages.success(request, f"Welcome, {user.handle}. Find a group to join below.")
        return redirect("directory")
    return render(request, "registration/signup.html", {"form": form})


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, with the requests limited (forms.ResetRequestForm)."""

    form_class = ResetRequestForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "address": login_throttle.client_address(self.request)}


@login_required
def profile(request, handle: str):
    member = selectors.get_member(handle)
    shares = selectors.shares_a_group(request.user, member)
    context = {
        "member": member,
        # The day count, a milestone badge and goals, as the member chose (forum.accountability).
        "show_days": permissions.can_see_days(request.user, member, shares_group=shares),
        "milestone": accountability.milestone_badge(request.user, member, shares_group=shares),
        "shared_goals": accountability.shared_goal_progress(request.user, member),
        "recent_posts": selectors.recent_posts_by(request.user, member),
        "can_block": permissions.can_block(request.user, member),
        "has_blocked": member.pk in engagement.blocked_ids(request.user),
        **profile_message_context(request.user, member),
    }
    return render(request, "forum/profile.html", context)


@login_required
@require_POST
def block(request, handle: str):
    """Block or unblock (``unblock=1``) a member; they are not told either way."""
    member = selectors.get_member(handle)
    if request.POST.get("unblock"):
        engagement.unblock_member(user=request.user, member=member)
        messages.success(request, f"You unblocked {member.handle}.")
    else:
        engagement.block_member(user=request.user, member=member)
        messages.success(
            request,
            f"You blocked {member.handle}. Their posts and messages are folded away for you, "
            "and their replies and mentions no longer notify you. They are not told.",
        )
    if request.POST.get("next") == "settings":
        return redirect("settings")
    return redirect("profile", handle=member.handle)


@login_required
def settings_page(request):
    user = request.user
    initial = {
        "bio": user.bio_source,
        "recovery_date": user.recovery_date,
        "recovery_date_visibility": user.recovery_date_visibility,
    }
    # Two forms post here; a hidden "section" says which (quiet hours or the profile).
    quiet_posted = request.method == "POST" and request.POST.get("section") == "quiet"
    quiet_form = QuietHoursForm(
        request.POST if quiet_posted else None,
        initial={
            "quiet_start": user.quiet_start,
            "quiet_end": user.quiet_end,
            "quiet_timezone": user.quiet_timezone or "UTC",
        },
    )
    if quiet_posted and quiet_form.is_valid():
        data = quiet_form.cleaned_data
        saved = submit(
            quiet_form,
            lambda: accounts.set_quiet_hours(
                user=user,
                start=data["quiet_start"],
                end=data["quiet_end"],
                timezone=data["quiet_timezone"].strip(),
            ),
        )
        if saved is not None:
            messages.success(request, "Your quiet hours are saved.")
            return redirect("settings")
    # Content-warning categories: show, collapse or hide each (forum.content_warnings).
    cw_posted = request.method == "POST" and request.POST.get("section") == "content_warnings"
    cw_form = ContentWarningSettingsForm(
        request.POST if cw_posted else None,
        initial={f"cw_{code}": mode for code, mode in content_warnings.preferences(user).items()},
    )
    if cw_posted and cw_form.is_valid():
        saved = submit(
            cw_form,
            lambda: content_warnings.set_preferences(user=user, choices=cw_form.choices()),
        )
        if saved is not None:
            messages.success(request, "Your content-warning choices are saved.")
            return redirect("settings")
    # Notifications: per kind in the app and in the e-mail digest (forum.notify).
    notify_posted = request.method == "POST" and request.POST.get("section") == "notifications"
    notify_form = NotificationSettingsForm(
        request.POST if notify_posted else None, initial=notify.preference_initial(user)
    )
    if notify_posted and notify_form.is_valid():
        saved = submit(
            notify_form,
            lambda: notify.set_preferences(
                user=user,
                choices=notify_form.choices(),
                digest_frequency=notify_form.cleaned_data["digest_frequency"],
            ),
        )
        if saved is not None:
            messages.success(request, "Your notification choices are saved.")
            return redirect(reverse("settings") + "#notification-settings")
    other_section = quiet_posted or cw_posted or notify_posted
    form = ProfileForm(None if other_section else posted(request), initial=initial)
    if request.method == "POST" and not other_section and form.is_valid():
        saved = submit(
            form,
            lambda: publishing.update_profile(
                user=user,
                bio=form.cleaned_data["bio"],
                recovery_date=form.cleaned_data["recovery_date"],
                recovery_date_visibility=form.cleaned_data["recovery_date_visibility"],
            ),
        )
        if saved is not None:
            messages.success(request, "Your profile is saved.")
            return redirect("settings")
    context = {
        "form": form,
        "email_form": EmailForm(),
        "blocked": selectors.blocked_by(user),
        "quiet_form": quiet_form,
        "cw_form": cw_form,
        "notify_form": notify_form,
        "cw_new_member": content_warnings.is_new_member(user),
        "cw_new_member_days": content_warnings.NEW_MEMBER_DAYS,
        "timezones": quiet_hours.timezone_names(),
    }
    return render(request, "forum/settings.html", context)


@login_required
def change_email(request):
    form = EmailForm(posted(request))
    if request.method == "POST" and form.is_valid():
        saved = submit(
            form,
            lambda: accounts.change_email(
                user=request.user,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            ),
        )
        if saved is not None:
            messages.success(request, "Your e-mail address is changed.")
            return redirect("settings")
    return render(request, "forum/change_email.html", {"form": form})
