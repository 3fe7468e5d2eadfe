"""Sign-up, profiles and the settings page."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from moderation import permissions

from .. import accounts, publishing, selectors
from ..forms import EmailForm, ProfileForm, SignupForm
from ._util import posted, submit


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(posted(request))
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.handle}. Find a group to join below.")
        return redirect("directory")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def profile(request, handle: str):
    member = selectors.get_member(handle)
    shares = selectors.shares_a_group(request.user, member)
    context = {
        "member": member,
        "show_days": permissions.can_see_recovery_date(request.user, member, shares_group=shares),
        "recent_posts": selectors.recent_posts_by(request.user, member),
    }
    return render(request, "forum/profile.html", context)


@login_required
def settings_page(request):
    user = request.user
    initial = {
        "bio": user.bio_source,
        "recovery_date": user.recovery_date,
        "recovery_date_visibility": user.recovery_date_visibility,
    }
    form = ProfileForm(posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
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
    return render(request, "forum/settings.html", {"form": form, "email_form": EmailForm()})


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
