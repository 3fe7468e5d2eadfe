"""Chat room pages; the live part runs over forum.consumers."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from moderation import permissions

from .. import publishing, selectors
from ..forms import RoomForm
from ..models import ChatRoom
from ._util import posted, submit
from .slow_mode import SLOW_MODE_CHOICES


@login_required
def room_list(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_read_rooms(request.user, group)
    return render(
        request,
        "forum/rooms.html",
        {
            "group": group,
            "rooms": selectors.rooms_with_unread(request.user, group),
            "can_manage": permissions.can_manage_rooms(request.user, group),
        },
    )


def chat_panel_context(user, room: ChatRoom) -> dict:
    """What templates/partials/chat_panel.html needs for ``room`` (a group's room or a
    live session's), for a reader already allowed to read it."""
    recent, _more = selectors.room_changes(room.pk, after=None, limit=settings.KINSHIP_CHAT_HISTORY)
    try:
        # The floor and the lock change by the minute: the live console shows them.
        permissions.check_can_write_room(user, room, floor_rules=False)
        write_refusal = ""
    except PermissionDenied as refusal:  # e.g. a mute: say why, and until when
        write_refusal = str(refusal)
    return {
        "group": room.group,
        "room": room,
        "recent": recent,
        "latest_seq": room.last_seq,
        "can_write": not write_refusal,
        "write_refusal": write_refusal,
        "can_moderate": permissions.can_lead_group(user, room.group),
        "blocked_handles": selectors.blocked_handles(user),
    }


@login_required
def room(request, slug: str, room_slug: str):
    room = selectors.get_room_for(request.user, slug=slug, room_slug=room_slug, allow_direct=True)
    if room.kind == ChatRoom.Kind.SESSION:  # a session's room lives on the session's page
        return redirect(room.live_session.get_absolute_url())
    if room.kind == ChatRoom.Kind.DIRECT:  # a participant's (else 404): the conversation page
        return redirect(room.conversation.get_absolute_url())
    permissions.check_can_read_room(request.user, room)
    rooms = selectors.rooms_with_unread(request.user, room.group)
    context = {
        **chat_panel_context(request.user, room),
        "can_manage": permissions.can_manage_rooms(request.user, room.group),
        "can_slow_mode": permissions.can_moderate(request.user, "slow_mode_place", room.group),
        "slow_mode_choices": SLOW_MODE_CHOICES,
        "rooms": rooms,
        "muted": any(r.pk == room.pk and r.viewer_muted for r in rooms),
    }
    return render(request, "forum/room.html", context)


@login_required
def room_new(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_manage_rooms(request.user, group)
    form = RoomForm(posted(request), initial={"state": "open"})
    if request.method == "POST" and form.is_valid():
        room = submit(
            form,
            lambda: publishing.save_room(
                actor=request.user, group=group, room=None,
                name=form.cleaned_data["name"], state=form.cleaned_data["state"],
            ),
        )  # fmt: skip
        if room is not None:
            messages.success(request, f"The room {room.name} is ready.")
            return redirect(room.get_absolute_url())
    return render(request, "forum/room_settings.html", {"group": group, "form": form, "room": None})


@login_required
def room_settings(request, slug: str, room_slug: str):
    room = selectors.get_room_for(request.user, slug=slug, room_slug=room_slug)
    permissions.check_can_manage_rooms(request.user, room.group)
    form = RoomForm(posted(request), initial={"name": room.name, "state": room.state})
    if request.method == "POST" and form.is_valid():
        saved = submit(
            form,
            lambda: publishing.save_room(
                actor=request.user, group=room.group, room=room,
                name=form.cleaned_data["name"], state=form.cleaned_data["state"],
            ),
        )  # fmt: skip
        if saved is not None:
            messages.success(request, "The room is saved.")
            return redirect(saved.get_absolute_url())
    return render(
        request, "forum/room_settings.html", {"group": room.group, "form": form, "room": room}
    )
