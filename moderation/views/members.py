"""The members' side: flags, a member's own moderation page and appeals, the logs."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def mine(request):
    return render(request, "moderation/mine.html", {})
