"""Members' own protections: muting a thread or a chat room (blocking is on profiles)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .. import engagement, selectors


@login_required
@require_POST
def thread_mute(request, slug: str, thread_id: int):
    thread = selectors.get_thread_for(request.user, slug=slug, thread_id=thread_id)
    muted = request.POST.get("mute") == "1"
    engagement.set_thread_mute(user=request.user, thread=thread, muted=muted)
    messages.success(
        request,
        "Muted: this thread no longer notifies you." if muted else "This thread is unmuted.",
    )
    return redirect(thread.get_absolute_url())


@login_required
@require_POST
def room_mute(request, slug: str, room_slug: str):
    room = selectors.get_room_for(request.user, slug=slug, room_slug=room_slug)
    muted = request.POST.get("mute") == "1"
    engagement.set_room_mute(user=request.user, room=room, muted=muted)
    messages.success(
        request,
        "Muted: this room no longer shows unread messages to you."
        if muted
        else "This room is unmuted.",
    )
    return redirect(room.get_absolute_url())
