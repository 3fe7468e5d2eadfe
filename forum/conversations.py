"""Direct conversations: one-to-one messages between members, always by request.

A member asks another for a conversation with a short note (``request_conversation``);
the recipient accepts, ignores or blocks. Only then do the two write, in the
conversation's own chat room (``ChatRoom.Kind.DIRECT``) through
forum.publishing.publish_chat_message and the chat socket like any room, so the policy,
the crisis path, flags, history and resume all apply. Nobody but the two may read it
(moderation.permissions, "direct conversations").

The choices, in plain words (docs/permissions.md, "Direct conversations"):

- The note *is* the request: stored on the conversation, shown to the recipient to decide
  on and kept above the messages for both. It is not a chat message, so nothing reaches
  the recipient's conversations before they agree.
- Ignoring is quiet: the starter is not told; their request simply stays "waiting" on their
  side and lapses after 14 days (``REQUEST_LIFETIME``), when they may ask again.
- Blocking (from a request or a conversation) blocks the member as on their profile and
  closes the conversation for both. It leaves the blocker's list; the other keeps its
  history, read-only, and is never told why.
- Either side may close a conversation at any time, without a reason; the history stays.
- A mentorship opens an accepted conversation between mentor and mentee
  (``open_for_mentorship``); ending the mentorship closes it (``close_for_mentorship``).
"""

import secrets
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from moderation import permissions, ratelimit

from . import engagement, publishing, realtime
from .models import (
    Block,
    ChatRoom,
    Conversation,
    Mentorship,
    Notification,
    RoomReadState,
    SupportGroup,
    User,
)
from .models.conversations import REQUEST_LIFETIME
from .notify import notify

ROOM_NAME = "Direct conversation"
State = Conversation.State


def _between(a: User, b: User) -> Q:
    return Q(starter=a, recipient=b) | Q(starter=b, recipient=a)


def open_between(a: User, b: User) -> Conversation | None:
    """The pair's open conversation (a pending request or an accepted one), if any."""
    return (
        Conversation.objects.filter(_between(a, b), state__in=Conversation.OPEN_STATES)
        .select_related("starter", "recipient", "room")
        .first()
    )


def _lapse_expired(a: User, b: User) -> None:
    """Close the pair's request that waited past REQUEST_LIFETIME: it frees their slot."""
    Conversation.objects.filter(
        _between(a, b),
        state__in=[State.REQUESTED, State.IGNORED],
        created_at__lt=timezone.now() - REQUEST_LIFETIME,
    ).update(state=State.CLOSED, closed_at=timezone.now())


def _new_room(group: SupportGroup) -> ChatRoom:
    # A random slug: the address says nothing about who talks, and cannot be guessed.
    return ChatRoom.objects.create(
        group=group, kind=ChatRoom.Kind.DIRECT, name=ROOM_NAME, slug=f"dm-{secrets.token_hex(8)}"
    )


def _set_room_state(room: ChatRoom, state: str) -> None:
    """Open or archive the room, and tell its open sockets (their composer follows)."""
    if room.state == state:
        return
    room.state = state
    room.save(update_fields=["state"])
    realtime.broadcast_on_commit(
        realtime.room_group(room.pk),
        {"type": "chat.event", "frame": {"type": "room", **realtime.room_payload(room)}},
    )


def _locked(conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.select_for_update()
        .select_related("starter", "recipient", "room__group")
        .get(pk=conversation.pk)
    )


# --- requests --------------------------------------------------------------------------------


def request_conversation(*, starter: User, recipient: User, note: str) -> Conversation:
    """Ask ``recipient`` for a conversation; the note (1 to 1,000 characters) goes through
    the write path. Refusals never reveal the recipient's choices (permissions.DM_REFUSAL).
    The conversation carries ``crisis_categories``: words in the note that suggest risk,
    for the view to offer the author support at once."""
    permissions.check_can_start_conversation(starter, recipient)
    _lapse_expired(starter, recipient)
    existing = open_between(starter, recipient)
    if existing is not None:
        raise ValidationError({"note": f"You already have a conversation with {recipient.handle}."})
    group = permissions.shared_groups(starter, recipient)[0]
    ratelimit.hit("dm_request", key=str(starter.pk))
    source, html, crisis_categories = publishing.prepare_request_note(note=note, group=group)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                room=_new_room(group),
                starter=starter,
                recipient=recipient,
                note_source=source,
                note_html=html,
            )
            # No words of the note, nor the group: the bell and any digest say who, not what.
            notify(
                recipient=recipient,
                kind=Notification.Kind.DIRECT_MESSAGE,
                actor=starter,
                text=f"{starter.handle} would like to talk",
                url=reverse("messages"),
            )
    except IntegrityError:  # the other side asked at the same moment
        raise ValidationError(
            {"note": f"You already have a conversation with {recipient.handle}."}
        ) from None
    conversation.crisis_categories = crisis_categories
    return conversation


def accept(*, user: User, conversation: Conversation) -> Conversation:
    """The recipient accepts (also a request they had set aside): both may write now."""
    with transaction.atomic():
        conversation = _locked(conversation)
        permissions.check_can_answer_request(user, conversation)
        conversation.state, conversation.accepted_at = State.ACCEPTED, timezone.now()
        conversation.save(update_fields=["state", "accepted_at"])
        _set_room_state(conversation.room, ChatRoom.State.OPEN)
        notify(
            recipient=conversation.starter,
            kind=Notification.Kind.DIRECT_MESSAGE,
            actor=user,
            text=f"{user.handle} accepted your message request",
            url=conversation.get_absolute_url(),
        )
    return conversation


def ignore(*, user: User, conversation: Conversation) -> Conversation:
    """Set a request aside, quietly: the starter is not told, and it lapses unanswered
    after REQUEST_LIFETIME. The recipient may still accept it until then."""
    with transaction.atomic():
        conversation = _locked(conversation)
        permissions.check_can_answer_request(user, conversation)
        if conversation.state == State.IGNORED:
            raise PermissionDenied("You have already set this request aside.")
        conversation.state = State.IGNORED
        conversation.save(update_fields=["state"])
    return conversation


def block_from(*, user: User, conversation: Conversation) -> Conversation:
    """Block the other participant (forum.engagement.block_member: they are not told) and
    close the conversation for both; it leaves the blocker's list."""
    with transaction.atomic():
        conversation = _locked(conversation)
        permissions.check_can_read_conversation(user, conversation)
        engagement.block_member(user=user, member=conversation.other(user))
        conversation.state, conversation.blocked_by = State.BLOCKED, user
        conversation.closed_at = conversation.closed_at or timezone.now()
        conversation.save(update_fields=["state", "blocked_by", "closed_at"])
        _set_room_state(conversation.room, ChatRoom.State.ARCHIVED)
    return conversation


def close(*, user: User, conversation: Conversation) -> Conversation:
    """Either side ends the conversation, no reason asked; a starter withdraws a request
    the same way. The history stays, read-only, for both."""
    with transaction.atomic():
        conversation = _locked(conversation)
        permissions.check_can_close_conversation(user, conversation)
        _close(conversation)
    return conversation


def _close(conversation: Conversation) -> None:
    conversation.state, conversation.closed_at = State.CLOSED, timezone.now()
    conversation.save(update_fields=["state", "closed_at"])
    _set_room_state(conversation.room, ChatRoom.State.ARCHIVED)


def set_accepts_requests(*, user: User, accepts: bool) -> User:
    """Switch new requests on or off; conversations already open carry on."""
    user.accepts_dm_requests = accepts
    user.save(update_fields=["accepts_dm_requests"])
    return user


# --- mentorships (forum.mentoring calls these) ------------------------------------------------


def open_for_mentorship(*, mentorship: Mentorship) -> Conversation:
    """The private conversation of an accepted mentorship: accepted from the start, in the
    mentorship's group. Returns the one already open (the mentorship's, or the pair's own
    direct conversation, which then becomes the mentorship's; a pending request between
    them counts as accepted). No notification: the mentorship's acceptance is the news."""
    mentor, mentee = mentorship.mentor, mentorship.mentee
    _lapse_expired(mentor, mentee)
    now = timezone.now()
    try:
        with transaction.atomic():
            existing = (
                Conversation.objects.select_for_update()
                .filter(_between(mentor, mentee), state__in=Conversation.OPEN_STATES)
                .select_related("room")
                .first()
            )
            if existing is not None:
                existing.mentorship = mentorship
                if existing.is_pending:
                    existing.state, existing.accepted_at = State.ACCEPTED, now
                existing.save(update_fields=["mentorship", "state", "accepted_at"])
                _set_room_state(existing.room, ChatRoom.State.OPEN)
                return existing
            return Conversation.objects.create(
                room=_new_room(mentorship.group),
                starter=mentee,
                recipient=mentor,
                state=State.ACCEPTED,
                accepted_at=now,
                mentorship=mentorship,
            )
    except IntegrityError:  # opened at the same moment elsewhere: that one is it
        return open_between(mentor, mentee)


def close_for_mentorship(*, mentorship: Mentorship) -> None:
    """The mentorship ended: its conversation closes, its history stays for both."""
    with transaction.atomic():
        for conversation in (
            Conversation.objects.select_for_update()
            .filter(mentorship=mentorship, state__in=Conversation.OPEN_STATES)
            .select_related("room")
        ):
            _close(conversation)


# --- reads -----------------------------------------------------------------------------------


def get_conversation_for(user, pk: int) -> Conversation:
    """The conversation with both members and its room; 404 unless ``user`` takes part."""
    conversation = (
        Conversation.objects.filter(pk=pk)
        .select_related("starter", "recipient", "room__group", "mentorship")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    permissions.check_can_read_conversation(user, conversation)
    return conversation


def _with_unread(conversations: QuerySet[Conversation], user: User) -> QuerySet[Conversation]:
    """``unread``: the other's messages after the member's last read (as for rooms)."""
    read_upto = Subquery(
        RoomReadState.objects.filter(room=OuterRef("room_id"), user=user).values("last_read_seq")[
            :1
        ]
    )
    return conversations.annotate(read_upto=read_upto).annotate(
        unread=Count(
            "room__messages",
            filter=Q(room__messages__removed_at__isnull=True)
            & ~Q(room__messages__author=user)
            & (Q(read_upto__isnull=True) | Q(room__messages__seq__gt=F("read_upto"))),
        )
    )


@dataclass
class Inbox:
    """What /messages/ lists for one member."""

    received: list[Conversation] = field(default_factory=list)  # requests to answer
    set_aside: list[Conversation] = field(default_factory=list)  # requests they ignored
    sent: list[Conversation] = field(default_factory=list)  # their requests, unanswered
    conversations: list[Conversation] = field(default_factory=list)  # accepted, then closed

    @property
    def unread(self) -> int:
        return sum(c.unread for c in self.conversations)


def conversations_of(user: User) -> Inbox:
    """The member's requests and conversations, newest first, with unread counts; a
    conversation they blocked is no longer listed. Two queries."""
    rows = _with_unread(
        Conversation.objects.filter(Q(starter=user) | Q(recipient=user))
        .exclude(blocked_by=user)
        .select_related("starter", "recipient", "room"),
        user,
    ).order_by("-created_at", "-pk")
    blocked = set(Block.objects.filter(blocker=user).values_list("blocked_id", flat=True))
    inbox = Inbox()
    now = timezone.now()
    for conversation in rows:
        conversation.partner = conversation.other(user)
        mine = conversation.starter_id == user.pk
        if conversation.is_pending:
            if mine:
                conversation.lapsed = conversation.is_expired(now)
                inbox.sent.append(conversation)
            elif conversation.is_expired(now) or conversation.starter_id in blocked:
                continue
            elif conversation.state == State.REQUESTED:
                inbox.received.append(conversation)
            else:
                inbox.set_aside.append(conversation)
        elif conversation.accepted_at is not None:
            inbox.conversations.append(conversation)
        elif mine:
            # A request that lapsed, or that the recipient closed or blocked unanswered: to
            # its starter it simply had no answer.
            conversation.lapsed = True
            inbox.sent.append(conversation)
    # Open conversations first, then the closed ones; newest first within each.
    inbox.conversations.sort(key=lambda c: c.state != State.ACCEPTED)
    return inbox
