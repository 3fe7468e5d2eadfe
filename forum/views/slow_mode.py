"""Slow mode on a thread or a chat room: a thin adapter over moderation.actions.set_slow_mode."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from moderation import actions

from .. import selectors

# What the thread page and the chat panel offer; the action accepts any 10 s to a day.
SLOW_MODE_CHOICES: list[tuple[int, str]] = [
    (0, "Off"),
    (30, "30 seconds"),
    (60, "1 minute"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (3600, "1 hour"),
]


def _apply(request, place) -> None:
    try:
        seconds = int(request.POST.get("seconds", ""))
    except ValueError:
        messages.error(request, "Choose how long members wait between messages.")
        return
    try:
        actions.set_slow_mode(
            actor=request.user, place=place, seconds=seconds, reason=request.POST.get("reason", "")
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return
    if seconds:
        messages.success(request, f"Slow mode on: one message every {seconds} seconds.")
    else:
        messages.success(request, "Slow mode is off.")


@login_required
@require_POST
def thread_slow_mode(request, slug: str, thread_id: int):
    thread = selectors.get_thread_for(request.user, slug=slug, thread_id=thread_id)
    _apply(request, thread)
    return redirect(thread.get_absolute_url())


@login_required
@require_POST
def room_slow_mode(request, slug: str, room_slug: str):
    room = selectors.get_room_for(request.user, slug=slug, room_slug=room_slug)
    _apply(request, room)
    return redirect(room.get_absolute_url())
