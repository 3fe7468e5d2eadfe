"""Your data: download all of it, or delete your account (forum.privacy)."""

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from moderation import ratelimit

from .. import privacy
from ..forms import DeleteAccountForm
from ._util import posted, submit


@login_required
def your_data(request):
    form = DeleteAccountForm(posted(request))
    if request.method == "POST" and form.is_valid():
        tombstone = submit(
            form,
            lambda: privacy.delete_account(
                user=request.user,
                password=form.cleaned_data["password"],
                keep_posts=form.cleaned_data["posts"] == "keep",
            ),
        )
        if tombstone is not None:
            logout(request)
            messages.success(request, "Your account is deleted. Take care of yourself.")
            return redirect("home")
    left_behind = privacy.chat_left_behind(request.user).count()
    return render(request, "forum/your_data.html", {"form": form, "left_behind": left_behind})


@login_required
@require_POST
def withdraw_left_chat(request):
    count = privacy.withdraw_chat_left_behind(user=request.user)
    if count:
        messages.success(request, f"Deleted {count} chat message{'s' if count != 1 else ''}.")
    else:
        messages.info(request, "There were no chat messages left to delete.")
    return redirect("your_data")


@login_required
@require_POST
def export_data(request):
    try:
        ratelimit.hit("export", key=str(request.user.pk))
    except ratelimit.RateLimited as error:
        messages.error(request, str(error))
        return redirect("your_data")
    data = privacy.export_member_data(user=request.user)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    filename = f"kinship-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
