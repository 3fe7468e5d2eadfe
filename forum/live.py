"""Facilitating a live session: the room, the share queue, the floor, attendance.

Every control runs check -> mutate -> (log) -> broadcast. A change to the session's
state takes the room's next sequence number (``LiveSession.state_seq``) inside the
same transaction and broadcasts the whole state after commit, so a member who missed a
frame sees the gap like a missed message, resumes, and is sent the current state
(forum.consumers). State lives in the database: a worker restart loses nothing.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from moderation import actions, permissions
from moderation.models import ModerationLogEntry

from . import realtime
from .models import (
    ChatMessage,
    ChatRoom,
    HandRaise,
    LiveSession,
    SessionParticipant,
    SessionScript,
    User,
)

Phase = LiveSession.Phase
Action = ModerationLogEntry.Action
SHARE_SECONDS_MAX = 60 * 60
MUTE_MINUTES_MAX = 24 * 60


# --- the state clients see -------------------------------------------------------------------


def session_payload(session: LiveSession, *, now: datetime | None = None) -> dict[str, Any]:
    """The whole facilitation state, as every participant's screen shows it."""
    now = now or timezone.now()
    hands = list(
        HandRaise.objects.filter(session=session)
        .select_related("user")
        .values_list("user__handle", flat=True)
    )
    handles = dict(
        User.objects.filter(
            pk__in=[pk for pk in (session.facilitator_id, session.floor_holder_id) if pk]
        ).values_list("pk", "handle")
    )
    co_leaders = sorted(session.co_leaders.values_list("handle", flat=True))
    floor = None
    if session.floor_holder_id:
        floor = {
            "handle": handles.get(session.floor_holder_id),
            "since": session.floor_since.isoformat() if session.floor_since else None,
            "ends_at": (
                (session.floor_since + timedelta(seconds=session.share_seconds)).isoformat()
                if session.share_seconds and session.floor_since
                else None
            ),
        }
    pinned = None
    if session.pinned_id:
        message = ChatMessage.objects.filter(pk=session.pinned_id).select_related("author").first()
        if message is not None and not message.is_removed:
            pinned = realtime.message_payload(message)
    present = SessionParticipant.objects.filter(
        session=session, sockets__gt=0, removed_at__isnull=True
    ).count()
    return {
        "id": session.pk,
        "version": session.state_seq,
        "phase": session.phase(now),
        "title": session.title,
        "starts_at": session.starts_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
        "opens_at": session.opens_at.isoformat(),
        "locked": session.chat_locked,
        "facilitator": handles.get(session.facilitator_id),
        "co_leaders": co_leaders,
        "queue": hands,
        "floor": floor,
        "share_seconds": session.share_seconds,
        "pinned": pinned,
        "present": present,
        "capacity": session.capacity,
        "has_opening": session.opening_script_id is not None,
        "has_closing": session.closing_script_id is not None,
        "transcript": session.get_transcript_display()
        if session.transcript != LiveSession.Transcript.KEEP_DAYS
        else f"Kept for members for {session.transcript_days} days",
        # The group chose to erase what was said: screens drop the messages they show.
        "transcript_purged": session.transcript_purged_at is not None,
        "fellowship_url": session.fellowship_room.get_absolute_url()
        if session.fellowship_room_id
        else None,
        "server_time": now.isoformat(),
    }


def _changed(session: LiveSession) -> None:
    """Take the room's next sequence number for this change and broadcast on commit."""
    session.state_seq = ChatRoom.take_seq(session.room_id)
    LiveSession.objects.filter(pk=session.pk).update(state_seq=session.state_seq)
    payload = session_payload(session)
    realtime.broadcast_on_commit(
        realtime.room_group(session.room_id),
        {"type": "chat.event", "frame": {"type": "session", "session": payload}},
    )


def _locked(session: LiveSession) -> LiveSession:
    """The session's row, locked for this transaction and fresh."""
    fresh = (
        LiveSession.objects.select_for_update(of=("self",))
        .select_related("group", "room", "floor_holder", "fellowship_room")
        .get(pk=session.pk)
    )
    fresh.__dict__.pop("_co_leader_ids", None)
    return fresh


def _target(session: LiveSession) -> actions.Target:
    return actions.Target(
        session,
        "live session",
        session.group,
        None,
        f"the session “{session.title}”",
        session.get_absolute_url(),
    )


def _log(session: LiveSession, *, actor: User, action: str, member=None, reason="", **after):
    actions.log_action(
        actor=actor,
        action=action,
        target=_target(session),
        member=member,
        reason=reason,
        after=after,
    )


def _check_running(session: LiveSession, *, control: str) -> None:
    phase = session.phase()
    if phase in (Phase.ENDED, Phase.CANCELLED):
        raise ValidationError({"session": f"This session is over: you cannot {control} now."})


def _check_open(session: LiveSession, *, control: str) -> None:
    _check_running(session, control=control)
    if session.phase() != Phase.OPEN:
        raise ValidationError({"session": f"Open the room first to {control}."})


def _member(session: LiveSession, handle: str) -> User:
    """A participant of the session by handle; ValidationError when they are not here."""
    user = User.objects.filter(handle__iexact=handle.strip().lstrip("@")).first()
    participant = (
        SessionParticipant.objects.filter(session=session, user=user).first() if user else None
    )
    if participant is None or participant.sockets == 0 or participant.removed_at:
        raise ValidationError({"handle": f"{handle} is not in the session now."})
    return user


# --- attendance ------------------------------------------------------------------------------


def join_session(*, user: User, session: LiveSession) -> SessionParticipant | None:
    """A socket of ``user`` entered the room (before, during or after the meeting).

    Returns the participant when this is their first session in the group and they just
    arrived, so the consumer can send them the welcome; otherwise None. Time before the
    room opened is not counted (``_close_span``).
    """
    if session.phase() in (Phase.ENDED, Phase.CANCELLED):
        return None
    now = timezone.now()
    with transaction.atomic():
        # The session's row first, as every control takes it: one lock order, no deadlock,
        # and two sockets of one member arriving at once cannot both create their row.
        session = _locked(session)
        participant = (
            SessionParticipant.objects.select_for_update()
            .filter(session=session, user=user)
            .first()
        )
        created = participant is None
        if created:
            earlier = SessionParticipant.objects.filter(
                user=user, session__group_id=session.group_id
            ).exists()
            participant = SessionParticipant.objects.create(
                session=session, user=user, first_joined_at=now, first_session=not earlier
            )
        if participant.removed_at:
            return None
        if participant.sockets == 0:
            participant.present_since = now
        participant.sockets += 1
        participant.save(update_fields=["present_since", "sockets"])
        _changed(session)  # the head count moved
    return participant if created and participant.first_session else None


def leave_session(*, user: User, session: LiveSession) -> None:
    """A socket of ``user`` left: when it was their last, add the span they were here."""
    with transaction.atomic():
        locked = _locked(session)
        participant = (
            SessionParticipant.objects.select_for_update()
            .filter(session=session, user=user)
            .first()
        )
        if participant is None or participant.sockets == 0:
            return
        participant.sockets -= 1
        if participant.sockets == 0:
            _close_span(participant, locked, until=timezone.now())
        participant.save(update_fields=["sockets", "present_since", "seconds_attended"])
        if locked.phase() not in (Phase.ENDED, Phase.CANCELLED):
            _changed(locked)


def _close_span(participant: SessionParticipant, session: LiveSession, *, until: datetime) -> None:
    """Add the time present, counted only while the room was open."""
    if participant.present_since is not None:
        participant.seconds_attended += _span_seconds(participant, session, until=until)
        participant.present_since = None


def _span_seconds(participant: SessionParticipant, session: LiveSession, *, until: datetime) -> int:
    """The open span's seconds from the room's opening to the session's end at the latest
    (a tab left open after an unended session's grace adds nothing)."""
    opened = min(session.opened_at or session.opens_at, session.opens_at)
    start = max(participant.present_since, opened)
    end = min(until, session.ended_at or session.auto_ends_at)
    return max(0, int((end - start).total_seconds()))


# --- the room --------------------------------------------------------------------------------


def open_room(*, actor: User, session: LiveSession) -> LiveSession:
    """Open the room now (before its time, or again after closing it)."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_running(session, control="open the room")
        if session.phase() == Phase.OPEN:
            raise ValidationError({"session": "The room is already open."})
        session.opened_at, session.closed_at = timezone.now(), None
        session.save(update_fields=["opened_at", "closed_at"])
        _log(session, actor=actor, action=Action.SESSION_OPENED)
        _changed(session)
    return session


def close_room(*, actor: User, session: LiveSession) -> LiveSession:
    """Close the room for now (nobody posts); the session can be reopened or ended."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_open(session, control="close the room")
        session.closed_at = timezone.now()
        session.floor_holder, session.floor_since = None, None
        session.save(update_fields=["closed_at", "floor_holder", "floor_since"])
        _log(session, actor=actor, action=Action.SESSION_CLOSED)
        _changed(session)
    return session


def set_lock(*, actor: User, session: LiveSession, locked: bool) -> LiveSession:
    """Lock the chat so that only the leaders speak, or unlock it."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_open(session, control="lock or unlock the chat")
        if session.chat_locked == locked:
            raise ValidationError(
                {"locked": "The chat is already locked." if locked else "The chat is not locked."}
            )
        session.chat_locked = locked
        session.save(update_fields=["chat_locked"])
        _log(
            session,
            actor=actor,
            action=Action.SESSION_LOCKED if locked else Action.SESSION_UNLOCKED,
        )
        _changed(session)
    return session


def pin_message(*, actor: User, session: LiveSession, message_id: int | None) -> LiveSession:
    """Pin a message of the room above the chat (None unpins)."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_running(session, control="pin a message")
        message = None
        if message_id is not None:
            message = ChatMessage.objects.filter(
                pk=message_id, room_id=session.room_id, removed_at__isnull=True
            ).first()
            if message is None:
                raise ValidationError({"id": "No such message in this session to pin."})
        elif session.pinned_id is None:
            raise ValidationError({"id": "Nothing is pinned."})
        session.pinned = message
        session.save(update_fields=["pinned"])
        _changed(session)
    return session


def post_reading(*, actor: User, session: LiveSession, which: str) -> ChatMessage:
    """Post the session's opening or closing reading as the actor's message."""
    permissions.check_can_facilitate(actor, session)
    if which not in ("opening", "closing"):
        raise ValidationError({"which": "Choose the opening or the closing reading."})
    with transaction.atomic():
        session = _locked(session)
        _check_open(session, control="post a reading")
        script_id = session.opening_script_id if which == "opening" else session.closing_script_id
        script = SessionScript.objects.filter(pk=script_id).first() if script_id else None
        if script is None:
            raise ValidationError({"which": f"This session has no {which} reading."})
        seq = ChatRoom.take_seq(session.room_id)
        # The script went through the write path when it was saved: its HTML is safe.
        message = ChatMessage.objects.create(
            room_id=session.room_id,
            author=actor,
            client_id=f"reading-{which}-{seq}",
            source=script.source,
            html=script.html,
            seq=seq,
            version=seq,
        )
        realtime.broadcast_room_change(room=session.room, kind="message", message=message)
    return message


# --- the share queue and the floor -----------------------------------------------------------


def _check_can_share(user: User, session: LiveSession) -> None:
    permissions.check_can_read_rooms(user, session.group)
    if permissions.removed_from_session(user, session):
        raise PermissionDenied("A leader removed you from this session.")
    muted = permissions.sanction_in_force(user, permissions.Sanction.Kind.CHAT_MUTE, session.group)
    if muted is not None:
        raise PermissionDenied(permissions.sanction_refusal(muted))


def raise_hand(*, actor: User, session: LiveSession) -> LiveSession:
    """Join the end of the share queue."""
    _check_can_share(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_open(session, control="raise your hand")
        if session.floor_holder_id == actor.pk:
            raise ValidationError({"hand": "You have the floor now."})
        _, created = HandRaise.objects.get_or_create(session=session, user=actor)
        if not created:
            raise ValidationError({"hand": "Your hand is already up."})
        _changed(session)
    return session


def lower_hand(*, actor: User, session: LiveSession, handle: str | None = None) -> LiveSession:
    """Leave the queue; a leader may take anyone's hand down."""
    permissions.check_can_read_rooms(actor, session.group)
    with transaction.atomic():
        session = _locked(session)
        member = actor
        if handle is not None and handle.lstrip("@").lower() != actor.handle.lower():
            permissions.check_can_facilitate(actor, session)
            member = User.objects.filter(handle__iexact=handle.lstrip("@")).first()
        deleted = (
            HandRaise.objects.filter(session=session, user=member).delete()[0] if member else 0
        )
        if not deleted:
            raise ValidationError(
                {"hand": "Your hand is not up." if member == actor else f"{handle} has no hand up."}
            )
        _changed(session)
    return session


def give_floor(*, actor: User, session: LiveSession, handle: str | None = None) -> LiveSession:
    """Give the floor to ``handle``, or to the first raised hand of someone still here."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_open(session, control="give the floor")
        if handle is not None:
            member = _member(session, handle)
        else:
            present = SessionParticipant.objects.filter(
                session=session, sockets__gt=0, removed_at__isnull=True
            ).values("user_id")
            hand = HandRaise.objects.filter(session=session, user_id__in=present).first()
            if hand is None:
                raise ValidationError({"handle": "Nobody here has a hand up."})
            member = hand.user
        HandRaise.objects.filter(session=session, user=member).delete()
        session.floor_holder, session.floor_since = member, timezone.now()
        session.save(update_fields=["floor_holder", "floor_since"])
        _changed(session)
    return session


def pass_floor(*, actor: User, session: LiveSession) -> LiveSession:
    """The sharer passes the floor back (or a leader takes it back)."""
    with transaction.atomic():
        session = _locked(session)
        if session.floor_holder_id is None:
            raise ValidationError({"floor": "Nobody has the floor."})
        if session.floor_holder_id != actor.pk:
            permissions.check_can_facilitate(actor, session)
        session.floor_holder, session.floor_since = None, None
        session.save(update_fields=["floor_holder", "floor_since"])
        _changed(session)
    return session


def set_share_timer(*, actor: User, session: LiveSession, seconds: int) -> LiveSession:
    """How long each share lasts (0: no timer); the sharer sees the time left."""
    permissions.check_can_facilitate(actor, session)
    if not 0 <= seconds <= SHARE_SECONDS_MAX:
        raise ValidationError({"seconds": "A share lasts up to an hour (0 turns the timer off)."})
    with transaction.atomic():
        session = _locked(session)
        _check_running(session, control="set the share timer")
        session.share_seconds = seconds
        session.save(update_fields=["share_seconds"])
        _changed(session)
    return session


# --- people ----------------------------------------------------------------------------------


def hand_over(*, actor: User, session: LiveSession, handle: str) -> LiveSession:
    """Hand facilitation to a co-leader (or a leader of the group)."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        _check_running(session, control="hand over facilitation")
        member = User.objects.filter(handle__iexact=handle.strip().lstrip("@")).first()
        if member is None or not permissions.can_facilitate(member, session):
            raise ValidationError({"handle": f"{handle} is not a co-leader of this session."})
        if member.pk == session.facilitator_id:
            raise ValidationError({"handle": f"{member.handle} already facilitates."})
        session.facilitator = member
        session.save(update_fields=["facilitator"])
        _log(session, actor=actor, action=Action.FACILITATION_HANDED, member=member)
        _changed(session)
    return session


def remove_participant(
    *, actor: User, session: LiveSession, handle: str, reason: str
) -> SessionParticipant:
    """Remove someone from the session: their socket closes and they cannot rejoin it."""
    permissions.check_can_facilitate(actor, session)
    reason = actions.clean_reason(reason)
    member = User.objects.filter(handle__iexact=handle.strip().lstrip("@")).first()
    participant = (
        SessionParticipant.objects.filter(session=session, user=member).first() if member else None
    )
    if participant is None or participant.removed_at:
        raise ValidationError({"handle": f"{handle} is not in this session."})
    if permissions.can_facilitate(member, session):
        raise PermissionDenied(f"{member.handle} leads this session: hand over or ask a moderator.")
    with transaction.atomic():
        session = _locked(session)
        participant = SessionParticipant.objects.select_for_update().get(pk=participant.pk)
        participant.removed_at = timezone.now()
        participant.sockets = 0
        _close_span(participant, session, until=participant.removed_at)
        participant.save(
            update_fields=["removed_at", "sockets", "present_since", "seconds_attended"]
        )
        HandRaise.objects.filter(session=session, user=member).delete()
        if session.floor_holder_id == member.pk:
            session.floor_holder, session.floor_since = None, None
            session.save(update_fields=["floor_holder", "floor_since"])
        _log(session, actor=actor, action=Action.PARTICIPANT_REMOVED, member=member, reason=reason)
        actions.notify_member(
            member,
            f"You were removed from the session “{session.title}”: {reason}",
            group=session.group,
        )
        _changed(session)
        transaction.on_commit(lambda: realtime.bump_authority(member.pk))
    return participant


def mute_participant(*, actor: User, session: LiveSession, handle: str, minutes: int, reason: str):
    """A chat mute in the session's group (the moderation ladder's step, logged there)."""
    member = _member(session, handle)
    if not 1 <= minutes <= MUTE_MINUTES_MAX:
        raise ValidationError({"minutes": "A mute lasts from a minute to a day."})
    with transaction.atomic():
        sanction = actions.mute_in_chat(
            actor=actor,
            member=member,
            group=session.group,
            reason=reason,
            duration=timedelta(minutes=minutes),
        )
        # A muted member cannot share: their hand goes down and the floor comes back.
        session = _locked(session)
        HandRaise.objects.filter(session=session, user=member).delete()
        if session.floor_holder_id == member.pk:
            session.floor_holder, session.floor_since = None, None
            session.save(update_fields=["floor_holder", "floor_since"])
        _changed(session)
    return sanction


# --- the end ---------------------------------------------------------------------------------


def end_session(*, actor: User, session: LiveSession) -> LiveSession:
    """End the session: the room turns read-only, attendance is closed, the transcript
    follows the group's choice, and the fellowship room opens if the session has one."""
    permissions.check_can_facilitate(actor, session)
    with transaction.atomic():
        session = _locked(session)
        if session.ended_at or session.cancelled_at:
            raise ValidationError({"session": "This session has already ended."})
        if session.phase() == Phase.SCHEDULED:
            raise ValidationError({"session": "The session has not started: cancel it instead."})
        _finish(session, at=timezone.now())
        _log(session, actor=actor, action=Action.SESSION_ENDED)
        _changed(session)
    return session


def _finish(session: LiveSession, *, at: datetime) -> None:
    session.ended_at = at
    session.floor_holder, session.floor_since, session.chat_locked = None, None, False
    HandRaise.objects.filter(session=session).delete()
    for participant in SessionParticipant.objects.select_for_update().filter(
        session=session, present_since__isnull=False
    ):
        _close_span(participant, session, until=at)
        participant.sockets = 0
        participant.save(update_fields=["sockets", "present_since", "seconds_attended"])
    room = session.room
    room.state = ChatRoom.State.ARCHIVED
    room.save(update_fields=["state"])
    realtime.broadcast_on_commit(
        realtime.room_group(room.pk),
        {"type": "chat.event", "frame": {"type": "room", **realtime.room_payload(room)}},
    )
    if session.fellowship_after and session.fellowship_room_id is None:
        session.fellowship_room = _fellowship_room(session)
    session.save(
        update_fields=["ended_at", "floor_holder", "floor_since", "chat_locked", "fellowship_room"]
    )
    if session.transcript == LiveSession.Transcript.DELETE:
        _purge_transcript(session, at=at)


def _fellowship_room(session: LiveSession) -> ChatRoom:
    base = f"fellowship-{session.pk}"
    room, _ = ChatRoom.objects.get_or_create(
        group=session.group,
        slug=base,
        defaults={"name": f"Fellowship after {session.title}"[:60]},
    )
    return room


def _purge_transcript(session: LiveSession, *, at: datetime) -> None:
    """Erase the session's messages for good (the group's transcript choice)."""
    session.pinned = None
    ChatMessage.objects.filter(room_id=session.room_id).delete()
    session.transcript_purged_at = at
    session.save(update_fields=["pinned", "transcript_purged_at"])


def sweep_sessions(*, now: datetime | None = None) -> int:
    """Finish sessions nobody ended and erase transcripts whose time has come; returns
    how many sessions changed. Run by ``manage.py sweep_sessions`` and the ASGI worker."""
    now = now or timezone.now()
    grace = timedelta(minutes=settings.KINSHIP_SESSION_GRACE_MINUTES)
    changed = 0
    overdue = LiveSession.objects.filter(
        ended_at__isnull=True, cancelled_at__isnull=True, ends_at__lte=now - grace
    ).values_list("pk", flat=True)
    for pk in overdue:
        with transaction.atomic():
            session = _locked(LiveSession(pk=pk))
            if session.ended_at is None:
                _finish(session, at=session.auto_ends_at)
                _changed(session)
                changed += 1
    keeping = LiveSession.objects.filter(
        transcript=LiveSession.Transcript.KEEP_DAYS,
        transcript_purged_at__isnull=True,
        ended_at__isnull=False,
    )
    for session in keeping.select_related("room"):
        due = session.purge_due_at()
        if due is not None and due <= now:
            with transaction.atomic():
                _purge_transcript(_locked(session), at=now)
                changed += 1
    return changed


def attended_minutes(participant: SessionParticipant, *, now: datetime | None = None) -> int:
    """Minutes attended so far, counting a span still open (while the room was open)."""
    seconds = participant.seconds_attended
    if participant.present_since is not None:
        until = now or timezone.now()
        seconds += _span_seconds(participant, participant.session, until=until)
    return seconds // 60
