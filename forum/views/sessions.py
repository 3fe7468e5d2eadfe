"""Live sessions: a group's schedule, a session's page, calendars, and the group's readings.

The writes go through forum.publishing; what happens inside a running session (the
floor, the queue, the end) runs over the session room's WebSocket (forum.live).
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from moderation import permissions

from .. import live, publishing, recurrence, selectors
from ..forms import CancelSessionForm, ScriptForm, SessionForm
from ..models import LiveSession, SessionRSVP, SessionScript, SupportGroup, User
from ._util import posted, submit
from .chat import chat_panel_context
from .slow_mode import SLOW_MODE_CHOICES

Phase = LiveSession.Phase
PAST_LIMIT = 20
UPCOMING_LIMIT = 60
FEED_SALT = "kinship.session-feed"
TRANSCRIPT_NOTICE = {
    LiveSession.Transcript.DELETE: "What is said here is deleted when the session ends.",
    LiveSession.Transcript.KEEP: "What is said here is kept for the group's members to read "
    "after the session.",
}


# --- reading sessions ------------------------------------------------------------------------


def upcoming_sessions(user, group: SupportGroup, *, limit: int) -> list[LiveSession]:
    """The group's next sessions, dressed for a page."""
    now = timezone.now()
    listed = selectors.upcoming_sessions(user, group, limit=limit, now=now)
    return [_dress(session, group, now) for session in listed]


def _dress(session: LiveSession, group: SupportGroup, now: datetime) -> LiveSession:
    """Set what the templates show: its phase and when it is, in its own zone."""
    session.group = group  # the viewer's role is annotated on this instance
    session.current_phase = session.phase(now)
    session.when = when_text(session)
    return session


def when_text(session: LiveSession) -> str:
    """ "Tue 3 Jun 2026, 19:00 to 20:00 (Europe/London)": the session's own zone, which
    static/js/local_time.js rewrites into the reader's."""
    start = recurrence.local(session.starts_at, session.time_zone)
    end = recurrence.local(session.ends_at, session.time_zone)
    day = f"{start:%a} {start.day} {start:%b %Y}"
    if end.date() == start.date():
        return f"{day}, {start:%H:%M} to {end:%H:%M} ({session.time_zone})"
    until = f"{end:%a} {end.day} {end:%b}, {end:%H:%M}"
    return f"{day}, {start:%H:%M} to {until} ({session.time_zone})"


def _clock_text(moment: datetime, zone: str) -> str:
    """ "19:45 on Tue 3 Jun (Europe/London)" """
    local = recurrence.local(moment, zone)
    return f"{local:%H:%M} on {local:%a} {local.day} {local:%b} ({zone})"


def _get_session(user, slug: str, session_id: int) -> LiveSession:
    group = selectors.get_group_for(user, slug)
    session = get_object_or_404(
        LiveSession.objects.select_related(
            "room", "leader", "facilitator", "opening_script", "closing_script", "fellowship_room"
        ),
        pk=session_id,
        group=group,
    )
    return _dress(session, group, timezone.now())


def sessions(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    now = timezone.now()
    past = selectors.past_sessions(request.user, group, limit=PAST_LIMIT, now=now)
    context = {
        "group": group,
        "upcoming": upcoming_sessions(request.user, group, limit=UPCOMING_LIMIT),
        "past": [_dress(session, group, now) for session in past],
        "can_schedule": permissions.can_schedule_sessions(request.user, group),
        "feed_url": feed_url(request, group),
    }
    return render(request, "forum/sessions.html", context)


def transcript_notice(session: LiveSession) -> str:
    if session.transcript == LiveSession.Transcript.KEEP_DAYS:
        days = session.transcript_days
        return (
            f"What is said here is kept for the group's members to read for {days} "
            f"day{'s' if days != 1 else ''} after the session, then deleted."
        )
    return TRANSCRIPT_NOTICE[session.transcript]


def _shows_console(session: LiveSession, phase: str, *, is_facilitator: bool) -> bool:
    """Whether the page holds the session's room (its console and chat) for an attendee:
    while it runs; before it opens only for its leaders (who may open it early); after it
    ends while its transcript is kept."""
    if phase in (Phase.OPEN, Phase.CLOSED):
        return True
    if phase == Phase.SCHEDULED:
        return is_facilitator
    if phase == Phase.ENDED:
        return session.transcript != LiveSession.Transcript.DELETE and not (
            session.transcript_purged_at
        )
    return False


def session(request, slug: str, session_id: int):
    session = _get_session(request.user, slug, session_id)
    group, user, phase = session.group, request.user, session.current_phase
    may_join = permissions.can_read_rooms(user, group)
    is_facilitator = permissions.can_facilitate(user, session)
    attend_refusal = ""
    attending = False
    if may_join:
        try:
            permissions.check_can_attend_session(user, session)
            attending = _shows_console(session, phase, is_facilitator=is_facilitator)
        except PermissionDenied as refusal:  # removed, or full: say which
            attend_refusal = str(refusal)
    rsvps = SessionRSVP.objects.filter(session=session)
    context = {
        "group": group,
        "session": session,
        "phase": phase,
        "transcript_notice": transcript_notice(session),
        "co_leaders": sorted(session.co_leaders.values_list("handle", flat=True), key=str.lower),
        "rsvp_count": rsvps.count(),
        "going": user.is_authenticated and rsvps.filter(user=user).exists(),
        "may_join": may_join,
        "can_rsvp": may_join and phase not in (Phase.ENDED, Phase.CANCELLED),
        "can_schedule": permissions.can_schedule_sessions(user, group),
        "is_facilitator": is_facilitator,
        "attending": attending,
        "attend_refusal": attend_refusal,
        "feed_url": feed_url(request, group),
        "feed_is_personal": group.is_private,
        "server_now": timezone.now(),
        "opens_when": _clock_text(session.opens_at, session.time_zone),
    }
    if attending:
        session.room.group = group  # the instance that knows the viewer's role
        chat = chat_panel_context(user, session.room)  # room, recent, can_write, ...
        context.update(chat)
        context.update(
            {
                "chat": chat,
                "session_state": live.session_payload(session),
                "scripts": {"opening": session.opening_script, "closing": session.closing_script},
                "can_slow_mode": permissions.can_moderate(user, "slow_mode_place", group),
                "slow_mode_choices": SLOW_MODE_CHOICES,
            }
        )
    return render(request, "forum/session.html", context)


@login_required
@require_POST
def session_rsvp(request, slug: str, session_id: int):
    session = _get_session(request.user, slug, session_id)
    try:
        going = publishing.toggle_rsvp(user=request.user, session=session)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            "You're going. The room opens before the start; come as you are."
            if going
            else "You're no longer marked as going.",
        )
    return redirect(session.get_absolute_url())


# --- scheduling --------------------------------------------------------------------------------


def _previous_zone(user: User) -> str:
    """The zone the leader scheduled in last, else their own (quiet hours), else ""."""
    zone = (
        LiveSession.objects.filter(leader=user)
        .order_by("-created_at", "-pk")
        .values_list("time_zone", flat=True)
        .first()
    )
    if not zone and recurrence.is_zone(user.quiet_timezone):
        zone = user.quiet_timezone
    return zone or ""


def _scripts(group: SupportGroup) -> list[SessionScript]:
    return list(SessionScript.objects.filter(group=group).only("pk", "title"))


@login_required
def session_new(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_schedule_sessions(request.user, group)
    zone = _previous_zone(request.user)
    tomorrow = timezone.localdate() + timedelta(days=1)
    initial = {
        "format": LiveSession.Format.OPEN_SHARE,
        "starts_on": tomorrow,
        "start_time": "19:00",
        "end_time": "20:00",
        "time_zone": zone or "UTC",
        "opens_before_minutes": 15,
        "transcript": LiveSession.Transcript.DELETE,
    }
    form = SessionForm(posted(request), initial=initial, scripts=_scripts(group), zone=zone)
    if request.method == "POST" and form.is_valid():
        made = submit(
            form,
            lambda: publishing.schedule_session(
                actor=request.user, group=group, plan=form.session_plan()
            ),
        )
        if made:
            first = made[0]
            if len(made) > 1:
                messages.success(
                    request, f"Scheduled {len(made)} weekly sessions, from {when_text(first)}."
                )
            else:
                messages.success(request, f"Scheduled for {when_text(first)}.")
            return redirect(first.get_absolute_url())
    context = {
        "group": group,
        "form": form,
        "session": None,
        # No earlier choice: the browser's own zone is the better default (js/local_time.js).
        "zone_from_browser": not zone and request.method != "POST",
    }
    return render(request, "forum/session_form.html", context)


def _edit_initial(session: LiveSession, co_leaders: list[str]) -> dict:
    start = recurrence.local(session.starts_at, session.time_zone)
    end = recurrence.local(session.ends_at, session.time_zone)
    return {
        "title": session.title,
        "format": session.format,
        "topic": session.topic_source,
        "starts_on": start.date(),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "time_zone": session.time_zone,
        "capacity": session.capacity,
        "co_leaders": ", ".join(co_leaders),
        "opening_script": session.opening_script_id,
        "closing_script": session.closing_script_id,
        "opens_before_minutes": session.opens_before_minutes,
        # The default welcome shows as an empty field, so it follows any future wording.
        "welcome": ""
        if session.welcome_source == publishing.DEFAULT_WELCOME
        else session.welcome_source,
        "fellowship_after": session.fellowship_after,
        "transcript": session.transcript,
        "transcript_days": session.transcript_days,
    }


@login_required
def session_edit(request, slug: str, session_id: int):
    session = _get_session(request.user, slug, session_id)
    group = session.group
    permissions.check_can_schedule_sessions(request.user, group)
    co_leaders = sorted(session.co_leaders.values_list("handle", flat=True), key=str.lower)
    form = SessionForm(
        posted(request),
        initial=_edit_initial(session, co_leaders),
        scripts=_scripts(group),
        zone=session.time_zone,
        series=False,
    )
    if request.method == "POST" and form.is_valid():
        saved = submit(
            form,
            lambda: publishing.edit_session(
                actor=request.user, session=session, plan=form.session_plan()
            ),
        )
        if saved is not None:
            messages.success(request, "The session is saved.")
            return redirect(saved.get_absolute_url())
    context = {"group": group, "form": form, "session": session, "zone_from_browser": False}
    return render(request, "forum/session_form.html", context)


@login_required
def session_cancel(request, slug: str, session_id: int):
    session = _get_session(request.user, slug, session_id)
    permissions.check_can_schedule_sessions(request.user, session.group)
    form = CancelSessionForm(posted(request), series=session.series is not None)
    if request.method == "POST" and form.is_valid():
        cancelled = submit(
            form,
            lambda: publishing.cancel_session(
                actor=request.user,
                session=session,
                reason=form.cleaned_data["reason"],
                following=form.cleaned_data.get("following", False),
            ),
        )
        if cancelled is not None:
            count = len(cancelled)
            messages.success(
                request,
                "The session is cancelled." if count == 1 else f"{count} sessions are cancelled.",
            )
            return redirect(session.get_absolute_url())
    return render(
        request, "forum/session_cancel.html", {"group": session.group, "session": session,
                                               "form": form}
    )  # fmt: skip


# --- the group's readings ----------------------------------------------------------------------


@login_required
def session_scripts(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_schedule_sessions(request.user, group)
    form = ScriptForm(posted(request))
    if request.method == "POST" and form.is_valid():
        script = submit(
            form,
            lambda: publishing.save_script(
                actor=request.user,
                group=group,
                title=form.cleaned_data["title"],
                text=form.cleaned_data["text"],
            ),
        )
        if script is not None:
            messages.success(request, f"The reading “{script.title}” is saved.")
            return redirect("session_scripts", slug=group.slug)
    context = {
        "group": group,
        "scripts": SessionScript.objects.filter(group=group),
        "form": form,
    }
    return render(request, "forum/scripts.html", context)


@login_required
def session_script_edit(request, slug: str, script_id: int):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_schedule_sessions(request.user, group)
    script = get_object_or_404(SessionScript, pk=script_id, group=group)
    if request.method == "POST" and "delete" in request.POST:
        publishing.delete_script(actor=request.user, script=script)
        messages.success(request, f"The reading “{script.title}” is deleted.")
        return redirect("session_scripts", slug=group.slug)
    form = ScriptForm(posted(request), initial={"title": script.title, "text": script.source})
    if request.method == "POST" and form.is_valid():
        saved = submit(
            form,
            lambda: publishing.save_script(
                actor=request.user,
                group=group,
                script=script,
                title=form.cleaned_data["title"],
                text=form.cleaned_data["text"],
            ),
        )
        if saved is not None:
            messages.success(request, f"The reading “{saved.title}” is saved.")
            return redirect("session_scripts", slug=group.slug)
    return render(
        request, "forum/script_form.html", {"group": group, "script": script, "form": form}
    )


# --- calendars (RFC 5545) ----------------------------------------------------------------------


def _ics_text(value: str) -> str:
    """A TEXT value escaped: backslash, semicolon, comma and newlines."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    for plain, escaped in (("\\", "\\\\"), (";", "\\;"), (",", "\\,"), ("\n", "\\n")):
        value = value.replace(plain, escaped)
    return value


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (CRLF and a space), never inside a character."""
    out, current, size = [], [], 0
    for char in line:
        width = len(char.encode("utf-8"))
        limit = 75 if not out else 74  # continuation lines start with the space
        if size + width > limit:
            out.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    out.append("".join(current))
    return "\r\n ".join(out)


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _vevent(request, session: LiveSession, stamp: datetime) -> list[str]:
    url = request.build_absolute_uri(session.get_absolute_url())
    parts = [f"{session.get_format_display()} in {session.group.name}."]
    if session.topic_source:
        parts.append(session.topic_source)
    parts.append(transcript_notice(session))
    parts.append(f"Join from the session's page: {url}")
    return [
        "BEGIN:VEVENT",
        f"UID:session-{session.pk}@{request.get_host().split(':')[0]}",
        f"DTSTAMP:{_ics_time(stamp)}",
        f"DTSTART:{_ics_time(session.starts_at)}",
        f"DTEND:{_ics_time(session.ends_at)}",
        f"SUMMARY:{_ics_text(session.title)}",
        f"DESCRIPTION:{_ics_text(chr(10).join(parts))}",
        f"URL:{url}",
        f"STATUS:{'CANCELLED' if session.cancelled_at else 'CONFIRMED'}",
        "END:VEVENT",
    ]


def _calendar(request, name: str, sessions: list[LiveSession], filename: str) -> HttpResponse:
    stamp = timezone.now()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Kinship//Live sessions//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ics_text(name)}",
    ]
    for session in sessions:
        lines += _vevent(request, session, stamp)
    lines.append("END:VCALENDAR")
    body = "".join(f"{_fold(line)}\r\n" for line in lines)
    response = HttpResponse(body.encode("utf-8"), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def session_ics(request, slug: str, session_id: int):
    session = _get_session(request.user, slug, session_id)
    return _calendar(request, session.title, [session], f"session-{session.pk}.ics")


def feed_token(user: User, group: SupportGroup) -> str:
    """A member's personal key to a private group's calendar feed."""
    return signing.dumps({"u": user.pk, "g": group.pk}, salt=FEED_SALT, compress=True)


def _feed_reader(token: str, group: SupportGroup) -> User | None:
    """Who the token was given to, while they may still see the group; else None."""
    try:
        data = signing.loads(token, salt=FEED_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("g") != group.pk:
        return None
    reader = User.objects.filter(pk=data.get("u"), is_active=True).first()
    if reader is None or not permissions.can_view_group(reader, group):
        return None
    return reader


def feed_url(request, group: SupportGroup) -> str:
    """The group's calendar feed: public for a public group; for a private one, the
    reader's personal link (empty when they may not see it)."""
    url = request.build_absolute_uri(reverse("group_sessions_feed", kwargs={"slug": group.slug}))
    if not group.is_private:
        return url
    if not permissions.can_view_group(request.user, group):
        return ""
    return f"{url}?{urlencode({'token': feed_token(request.user, group)})}"


def group_sessions_feed(request, slug: str):
    """Calendar apps fetch this without a login: a private group's feed answers only to a
    member's personal token, and 404 (like the group) to anything else."""
    group = SupportGroup.objects.filter(slug=slug).first()
    if group is None:
        raise Http404("No such calendar.")
    if group.is_private:
        reader = _feed_reader(request.GET.get("token", ""), group)
        if reader is None:
            raise Http404("No such calendar.")
    upcoming = selectors.calendar_sessions(group, limit=UPCOMING_LIMIT)
    return _calendar(request, f"{group.name}: sessions", upcoming, f"{group.slug}.ics")
