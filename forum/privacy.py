"""A member's data stays theirs: they can take all of it with them, erase their account,
and what Kinship keeps about visits (sessions) expires on its own.

Export (``export_member_data``) gathers everything the member wrote or chose, and nothing
anyone else wrote: another member appears at most as "another member" or a bare id.

Erasure (``delete_account``) keeps the account's row as an anonymous tombstone (a random
``former-member-…`` handle, no e-mail, no password, inactive) rather than deleting it, so
that what others still need keeps its shape: threads keep every reply, conversations stay
with the other participant, and the append-only moderation log keeps every action, now
pointing at the tombstone. Every relation to the account is named in ``ERASURE`` with what
happens to it; a new foreign key to the user that nobody placed there fails the test suite.
The member's own words follow their choice: removed (a "[removed by author]" placeholder
keeps each post's place) or kept under "a former member". Their handle and e-mail leave
every table, the cache and every session.
"""

import re
import secrets
import time
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.cache import cache, caches
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from moderation import permissions, ratelimit
from moderation.models import Appeal, Flag, ModerationLogEntry, ModeratorNote, Sanction

from . import live, page_cache, publishing, realtime
from .models import (
    AttendanceProof,
    ChatMessage,
    ChatRoom,
    CheckIn,
    Conversation,
    Goal,
    HeldPost,
    Membership,
    Mentorship,
    Mute,
    Notification,
    Post,
    PostRevision,
    Reaction,
    SessionParticipant,
    SessionRSVP,
    SupportGroup,
    Thread,
    User,
)
from .models.accounts import TOMBSTONE_PREFIX

EXPORT_FORMAT = "kinship-export/1"
ANOTHER_MEMBER = "another member"


class Erase(models.TextChoices):
    """What deleting an account does to one relation that points at it."""

    DELETE = "delete", "the rows are the member's own: deleted"
    KEEP = "keep", "kept, pointing at the anonymous tombstone"
    UNLINK = "unlink", "the link is cleared"
    CONTENT = "content", "the member's words, removed or kept as they chose, then unlinked"


# Every foreign key to the user, by "app.Model.field" (many-to-many through tables too).
ERASURE: dict[str, Erase] = {
    "admin.LogEntry.user": Erase.KEEP,
    "forum.Membership.user": Erase.DELETE,
    "forum.JoinRequest.user": Erase.DELETE,
    "forum.JoinRequest.decided_by": Erase.KEEP,
    "forum.Goal.owner": Erase.DELETE,
    "forum.CheckIn.owner": Erase.DELETE,
    "forum.RecoveryProfile.user": Erase.DELETE,
    "forum.User_groups.user": Erase.DELETE,
    "forum.User_user_permissions.user": Erase.DELETE,
    "forum.Block.blocker": Erase.DELETE,
    "forum.Block.blocked": Erase.DELETE,
    "forum.ChatMessage.author": Erase.CONTENT,
    "forum.RoomReadState.user": Erase.DELETE,
    # The other participant keeps the conversation (closed) and their own messages.
    "forum.Conversation.starter": Erase.KEEP,
    "forum.Conversation.recipient": Erase.KEEP,
    "forum.Conversation.blocked_by": Erase.KEEP,
    "forum.Thread.author": Erase.CONTENT,
    "forum.Thread.last_poster": Erase.UNLINK,
    "forum.Post.author": Erase.CONTENT,
    "forum.Reaction.user": Erase.DELETE,
    "forum.Subscription.user": Erase.DELETE,
    "forum.Notification.recipient": Erase.DELETE,
    "forum.Notification.actor": Erase.UNLINK,
    "forum.Mute.user": Erase.DELETE,
    "forum.HeldPost.author": Erase.DELETE,
    "forum.MentorProfile.user": Erase.DELETE,
    "forum.MentorApproval.decided_by": Erase.KEEP,
    "forum.Mentorship.mentor": Erase.DELETE,
    "forum.Mentorship.mentee": Erase.DELETE,
    "forum.Mentorship.ended_by": Erase.KEEP,
    "forum.NotificationPreference.user": Erase.DELETE,
    "forum.LiveSession_co_leaders.user": Erase.DELETE,
    "forum.LiveSession.leader": Erase.KEEP,
    "forum.LiveSession.facilitator": Erase.KEEP,
    "forum.LiveSession.floor_holder": Erase.UNLINK,
    "forum.SessionRSVP.user": Erase.DELETE,
    "forum.HandRaise.user": Erase.DELETE,
    "forum.SessionParticipant.user": Erase.DELETE,
    "forum.AttendanceProof.user": Erase.DELETE,
    # Moderation keeps its records; the member in them is the tombstone now.
    "moderation.QueueItem.member": Erase.KEEP,
    "moderation.QueueItem.resolved_by": Erase.KEEP,
    # Flags and appeals stay with the tombstone; their words follow the member's choice.
    "moderation.Flag.flagger": Erase.KEEP,
    "moderation.Sanction.member": Erase.DELETE,
    "moderation.Sanction.created_by": Erase.KEEP,
    "moderation.Sanction.lifted_by": Erase.KEEP,
    "moderation.ModeratorNote.member": Erase.DELETE,
    "moderation.ModeratorNote.author": Erase.KEEP,
    "moderation.Appeal.appellant": Erase.KEEP,
    "moderation.Appeal.decided_by": Erase.KEEP,
    "moderation.WatchedPhrase.created_by": Erase.KEEP,
    "moderation.ContextNote.created_by": Erase.KEEP,
    "moderation.NoteAttachment.attached_by": Erase.KEEP,
    "moderation.NoteAttachment.decided_by": Erase.KEEP,
    "moderation.DomainRule.created_by": Erase.KEEP,
    "moderation.LinkApproval.member": Erase.DELETE,
    "moderation.LinkApproval.approved_by": Erase.KEEP,
}


def user_relations() -> dict[str, models.ForeignKey]:
    """Every foreign key to the user model, by "app.Model.field"."""
    found = {}
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.get_fields():
            if (
                getattr(field, "concrete", False)
                and (field.many_to_one or field.one_to_one)
                and field.related_model is User
            ):
                found[f"{model._meta.label}.{field.name}"] = field
    return found


# --- export ----------------------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _other(user: User, user_id: int | None) -> str | None:
    """Another member never appears by handle: only "you" or "another member"."""
    if user_id is None:
        return None
    return "you" if user_id == user.pk else ANOTHER_MEMBER


def export_member_data(*, user: User) -> dict[str, Any]:
    """Everything that is the member's own, as plain JSON-ready data."""
    preference = getattr(user, "notification_preference", None)
    recovery = getattr(user, "recovery_profile", None)
    mentor_profile = getattr(user, "mentor_profile", None)
    own_threads = Thread.objects.filter(author=user).select_related("group")
    posts = (
        Post.objects.filter(author=user)
        .select_related("thread__group")
        .prefetch_related("revisions")
        .order_by("created_at", "pk")
    )
    messages = (
        ChatMessage.objects.filter(author=user)
        .exclude(room__kind=ChatRoom.Kind.DIRECT)
        .select_related("room__group")
        .order_by("created_at", "pk")
    )
    conversations = Conversation.objects.filter(Q(starter=user) | Q(recipient=user)).select_related(
        "room"
    )
    entries = {
        entry.pk: entry
        for entry in ModerationLogEntry.objects.filter(
            pk__in=Appeal.objects.filter(appellant=user).values("entry_id")
        )
    }
    return {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "handle": user.handle,
            "email": user.email,
            "bio": user.bio_source,
            "recovery_date": user.recovery_date.isoformat() if user.recovery_date else None,
            "recovery_date_visible_to": user.recovery_date_visibility,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
            "is_site_moderator": user.is_site_moderator,
        },
        "settings": {
            "quiet_hours": {
                "start": user.quiet_start.isoformat() if user.quiet_start else None,
                "end": user.quiet_end.isoformat() if user.quiet_end else None,
                "time_zone": user.quiet_timezone,
            },
            "content_warnings": user.cw_preferences,
            "accepts_direct_message_requests": user.accepts_dm_requests,
            "notifications": _preference_fields(preference),
            "recovery": {
                "milestone_badge": recovery.celebrate,
                "mentor_sees_days": recovery.mentor_sees_days,
                "mentor_sees_check_ins": recovery.share_check_ins,
            }
            if recovery
            else None,
        },
        "memberships": [
            {"group": m.group.name, "role": m.role, "joined_at": _when(m.joined_at)}
            for m in user.memberships.select_related("group").order_by("joined_at")
        ],
        "join_requests": [
            {"group": r.group.name, "status": r.status, "created_at": _when(r.created_at)}
            for r in user.join_requests.select_related("group")
        ],
        "threads": [
            {
                "id": t.pk,
                "group": t.group.name,
                "title": t.title,
                "content_warning": t.content_warning,
                "created_at": _when(t.created_at),
            }
            for t in own_threads.order_by("created_at", "pk")
        ],
        "posts": [
            {
                "id": p.pk,
                "thread_id": p.thread_id,
                "group": p.thread.group.name,
                "in_reply_to_post": p.parent_id,
                "source": p.source,
                "content_warning": p.content_warning,
                "created_at": _when(p.created_at),
                "edited_at": _when(p.edited_at),
                "removed_by_you": p.is_removed_by_author,
                "earlier_versions": [
                    {"source": r.source, "title": r.title, "published_at": _when(r.created_at)}
                    for r in p.revisions.all()
                ],
            }
            for p in posts
        ],
        "held_posts": [
            {
                "kind": h.kind,
                "group": h.group.name,
                "title": h.title,
                "body": h.body,
                "release_at": _when(h.release_at),
                "refusal": h.refusal,
            }
            for h in HeldPost.objects.filter(author=user).select_related("group")
        ],
        "reactions": [
            {"post_id": r.post_id, "created_at": _when(r.created_at)} for r in user.reactions.all()
        ],
        "followed_threads": list(user.subscriptions.values_list("thread_id", flat=True)),
        "muted": [
            {"thread_id": m.thread_id, "room": m.room.name if m.room_id else None}
            for m in Mute.objects.filter(user=user).select_related("room")
        ],
        "chat_messages": [
            {
                "id": m.pk,
                "group": m.room.group.name,
                "room": m.room.name,
                "source": m.source,
                "created_at": _when(m.created_at),
                "edited_at": _when(m.edited_at),
                "removed": m.is_removed,
            }
            for m in messages
        ],
        "conversations": [_conversation(user, c) for c in conversations],
        "blocked_members": [
            {"member_id": b.blocked_id, "created_at": _when(b.created_at)}
            for b in user.blocks_made.all()
        ],
        "flags_filed": [
            {
                "reason": f.reason,
                "target": f.content_type.model,
                "target_id": f.object_id,
                "details": f.details_source,
                "created_at": _when(f.created_at),
            }
            for f in Flag.objects.filter(flagger=user).select_related("content_type")
        ],
        "appeals": [
            {
                "against": entries[a.entry_id].get_action_display()
                if a.entry_id in entries
                else None,
                "text": a.source,
                "state": a.state,
                "created_at": _when(a.created_at),
                "decided_at": _when(a.decided_at),
                "decision": a.decision_source,
            }
            for a in Appeal.objects.filter(appellant=user)
        ],
        "sanctions": [
            {
                "kind": s.kind,
                "group": s.group.name if s.group_id else None,
                "rule": s.rule.title if s.rule_id else None,
                "reason": s.reason_source,
                "message": s.message_source,
                "created_at": _when(s.created_at),
                "ends_at": _when(s.ends_at),
                "lifted_at": _when(s.lifted_at),
            }
            for s in Sanction.objects.filter(member=user).select_related("group", "rule")
        ],
        "session_rsvps": [
            {
                "session_id": r.session_id,
                "session": r.session.title,
                "starts_at": _when(r.session.starts_at),
                "created_at": _when(r.created_at),
            }
            for r in SessionRSVP.objects.filter(user=user).select_related("session")
        ],
        "attendance": [
            {
                "session_id": p.session_id,
                "group": p.session.group.name,
                "session": p.session.title,
                "first_joined_at": _when(p.first_joined_at),
                "minutes": live.attended_minutes(p),
            }
            for p in SessionParticipant.objects.filter(user=user).select_related("session__group")
        ],
        "attendance_proofs": [
            {
                "from": p.date_from.isoformat(),
                "to": p.date_to.isoformat(),
                "link": p.get_absolute_url(),
                "entries": p.entries,
                "created_at": _when(p.created_at),
            }
            for p in AttendanceProof.objects.filter(user=user)
        ],
        "goals": [
            {
                "id": g.pk,
                "title": g.title,
                "cadence": g.cadence,
                "days_a_week": g.weekly_target if g.is_weekly else None,
                "visible_to": g.visibility,
                "group": g.group.name if g.group_id else None,
                "archived_at": _when(g.archived_at),
                "created_at": _when(g.created_at),
            }
            for g in Goal.objects.filter(owner=user).select_related("group")
        ],
        "check_ins": [
            {
                "day": c.day.isoformat(),
                "mood": c.mood,
                "cravings": c.cravings,
                "note": c.note,
                "goals_met": [g.pk for g in c.goals_met.all()],
            }
            for c in CheckIn.objects.filter(owner=user).prefetch_related("goals_met")
        ],
        "mentor_profile": {
            "experience": mentor_profile.experience_source,
            "approaches": mentor_profile.approaches,
            "availability": mentor_profile.availability,
            "languages": mentor_profile.languages,
            "accepting": mentor_profile.accepting,
            "listed_in": [
                {"group": a.group.name, "state": a.state}
                for a in mentor_profile.approvals.select_related("group")
            ],
        }
        if mentor_profile
        else None,
        "mentorships": [_mentorship(user, m) for m in _mentorships(user)],
        "notifications": [_notification(user, n) for n in user.notifications.all()],
    }


def _preference_fields(preference) -> dict[str, Any] | None:
    if preference is None:
        return None
    skip = {"id", "user", "last_digest_at", "updated_at"}
    return {
        field.name: getattr(preference, field.name)
        for field in preference._meta.concrete_fields
        if field.name not in skip
    }


def _conversation(user: User, conversation: Conversation) -> dict[str, Any]:
    mine = ChatMessage.objects.filter(room_id=conversation.room_id, author=user).order_by("seq")
    return {
        "id": conversation.pk,
        "started_by": _other(user, conversation.starter_id),
        "with": ANOTHER_MEMBER,
        "state": conversation.state,
        "created_at": _when(conversation.created_at),
        # The request note is the starter's words: only theirs to take.
        "your_request_note": conversation.note_source
        if conversation.starter_id == user.pk
        else None,
        "your_messages": [
            {
                "source": m.source,
                "created_at": _when(m.created_at),
                "edited_at": _when(m.edited_at),
                "removed": m.is_removed,
            }
            for m in mine
        ],
    }


def _mentorships(user: User):
    return Mentorship.objects.filter(Q(mentor=user) | Q(mentee=user)).select_related("group")


def _mentorship(user: User, mentorship: Mentorship) -> dict[str, Any]:
    return {
        "id": mentorship.pk,
        "your_role": "mentor" if mentorship.mentor_id == user.pk else "mentee",
        "group": mentorship.group.name,
        "state": mentorship.state,
        "your_request_note": mentorship.note_source if mentorship.mentee_id == user.pk else None,
        "created_at": _when(mentorship.created_at),
        "accepted_at": _when(mentorship.accepted_at),
        "ended_at": _when(mentorship.ended_at),
        "ended_by": _other(user, mentorship.ended_by_id),
    }


def _notification(user: User, notification: Notification) -> dict[str, Any]:
    # A notice another member caused may carry their handle in its text or link.
    from_member = notification.actor_id is not None and notification.actor_id != user.pk
    return {
        "kind": notification.kind,
        "from": _other(user, notification.actor_id),
        "text": "" if from_member else notification.text,
        "link": "" if from_member else notification.url,
        "created_at": _when(notification.created_at),
        "read_at": _when(notification.read_at),
    }


# --- chat left behind ------------------------------------------------------------------------


def chat_left_behind(user: User) -> models.QuerySet[ChatMessage]:
    """The member's chat messages still shown in group rooms they can no longer open (a
    group they left or were removed from). The room's socket, where messages are deleted,
    refuses them, so this is where they take those words back."""
    own = ChatMessage.objects.filter(author=user, removed_at__isnull=True).exclude(
        room__kind=ChatRoom.Kind.DIRECT
    )
    groups = SupportGroup.objects.filter(pk__in=own.values("room__group_id"))
    shut = [group.pk for group in groups if not permissions.can_read_rooms(user, group)]
    return own.filter(room__group_id__in=shut)


def withdraw_chat_left_behind(*, user: User) -> int:
    """Withdraw each of them as the author would over the socket: erased, and gone from every
    screen. Returns how many."""
    left = list(chat_left_behind(user).select_related("room"))
    for message in left:
        publishing.withdraw_chat_message(author=user, message=message)
    return len(left)


# --- erasure ---------------------------------------------------------------------------------


def check_password_confirms(*, user: User, password: str) -> None:
    if not user.is_authenticated or not user.check_password(password or ""):
        raise ValidationError({"password": "That is not your current password."})


def delete_account(*, user: User, password: str, keep_posts: bool) -> User:
    """Erase the member's account; returns the anonymous tombstone their row became.

    ``keep_posts``: their posts, messages and other words stay, under "a former member";
    otherwise each is removed, leaving its placeholder so the threads keep their shape.
    """
    ratelimit.hit("account_delete", key=str(user.pk))
    check_password_confirms(user=user, password=password)
    old_handle = user.handle
    session_keys = sessions_of(user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        now = timezone.now()
        _erase_words(user, keep=keep_posts, now=now)
        _close_conversations(user, now=now)
        _drop_counted_rows(user)
        for label, field in user_relations().items():
            action = ERASURE[label]
            rows = field.model._default_manager.filter(**{field.name: user})
            if action == Erase.DELETE:
                rows.delete()
            elif action in (Erase.UNLINK, Erase.CONTENT):
                rows.update(**{field.name: None})
        tombstone = _make_tombstone(user, now=now)
        _rename_in_others_words(old_handle, tombstone.handle)
        _redact_moderation_log(user.pk, old_handle=old_handle, new_handle=tombstone.handle)
        _rename_in_admin_log(user.pk, tombstone.handle)
        end_sessions(session_keys)
        transaction.on_commit(lambda: _forget_cache(user.pk))
        # Their words and handle leave pages everywhere: no visitor copy may keep them.
        page_cache.site_changed()
    return tombstone


def _erase_words(user: User, *, keep: bool, now: datetime) -> None:
    """Posts, chat and conversation messages, flag details and appeals the member wrote."""
    for message in ChatMessage.objects.filter(author=user).only("pk", "room_id", "removed_at"):
        fields: dict[str, Any] = {"author": None, "version": ChatRoom.take_seq(message.room_id)}
        if not keep and message.removed_at is None:
            fields.update(
                source="", html="", removed_at=now, removed_by=ChatMessage.RemovedBy.AUTHOR
            )
        # A new version: clients resuming or seeing the heartbeat's sequence refill it.
        ChatMessage.objects.filter(pk=message.pk).update(**fields)
    if keep:
        return
    posts = Post.objects.filter(author=user)
    PostRevision.objects.filter(post__in=posts).delete()
    Reaction.objects.filter(post__in=posts).delete()
    Thread.objects.filter(pk__in=posts.filter(parent__isnull=True).values("thread_id")).update(
        title=publishing.REMOVED_TITLE, content_warning=""
    )
    posts.filter(removed_by_author_at__isnull=True).update(
        source="", html="", content_warning="", cw_categories=[], support_count=0,
        removed_by_author_at=now,
    )  # fmt: skip
    Flag.objects.filter(flagger=user).update(details_source="", details_html="")
    Appeal.objects.filter(appellant=user).update(source="", html="")
    Conversation.objects.filter(starter=user).update(note_source="", note_html="")


def _close_conversations(user: User, *, now: datetime) -> None:
    open_ones = Conversation.objects.filter(
        Q(starter=user) | Q(recipient=user), state__in=Conversation.OPEN_STATES
    )
    room_ids = list(open_ones.values_list("room_id", flat=True))
    open_ones.update(state=Conversation.State.CLOSED, closed_at=now)
    ChatRoom.objects.filter(pk__in=room_ids).update(state=ChatRoom.State.READ_ONLY)


def _drop_counted_rows(user: User) -> None:
    """Rows whose removal changes a count shown to others: keep the counts true."""
    for group_id in Membership.objects.filter(user=user).values_list("group_id", flat=True):
        SupportGroup.objects.filter(pk=group_id).update(member_count=F("member_count") - 1)
    for post_id in Reaction.objects.filter(user=user).values_list("post_id", flat=True):
        Post.objects.filter(pk=post_id, support_count__gt=0).update(
            support_count=F("support_count") - 1
        )


def _make_tombstone(user: User, *, now: datetime) -> User:
    handle = new_tombstone_handle()
    user.handle = handle
    # Unique like every address, and undeliverable by definition (RFC 2606).
    user.email = f"{handle}@erased.invalid"
    user.set_unusable_password()
    user.bio_source = user.bio_html = ""
    user.recovery_date = None
    user.recovery_date_visibility = User.Visibility.ONLY_ME
    user.is_active = user.is_staff = user.is_superuser = user.is_site_moderator = False
    user.date_joined = now
    user.last_login = None
    user.quiet_start = user.quiet_end = None
    user.quiet_timezone = ""
    user.cw_preferences = {}
    user.accepts_dm_requests = False
    user.save()
    return user


def new_tombstone_handle() -> str:
    while True:
        handle = f"{TOMBSTONE_PREFIX}{secrets.token_hex(4)}"
        if not User.objects.filter(handle__iexact=handle).exists():
            return handle


def _handle_pattern(handle: str, *, prefixes: str) -> re.Pattern:
    return re.compile(
        rf"(?<![A-Za-z0-9_-])({prefixes}){re.escape(handle)}(?![A-Za-z0-9_-])", re.IGNORECASE
    )


# Where members write to and about each other: an @mention of an erased member there is
# renamed. Only @mentions and profile links: a bare word may be anyone's ordinary word.
MENTIONABLE: tuple[tuple[type[models.Model], tuple[str, ...]], ...] = (
    (Thread, ("title",)),
    (Post, ("source", "html")),
    (PostRevision, ("title", "source", "html")),
    (ChatMessage, ("source", "html")),
    (HeldPost, ("title", "body")),
    (Conversation, ("note_source", "note_html")),
    (Mentorship, ("note_source", "note_html")),
    (Flag, ("details_source", "details_html")),
    (Appeal, ("source", "html", "decision_source", "decision_html")),
    (ModeratorNote, ("source", "html")),
    (Sanction, ("reason_source", "reason_html", "message_source", "message_html")),
)


def _rename_in_others_words(old: str, new: str) -> None:
    """Others' @mentions of the member (and their links) now name the tombstone, and
    notices the member caused name no one."""
    mention = _handle_pattern(old, prefixes="@|/u/")
    for model, fields in MENTIONABLE:
        found = Q()
        for name in fields:
            found |= Q(**{f"{name}__icontains": old})
        for row in model.objects.filter(found):
            changed: dict[str, Any] = {
                name: mention.sub(rf"\g<1>{new}", getattr(row, name)) for name in fields
            }
            if model is ChatMessage:
                # A new version, so open chat screens refill the message.
                changed["version"] = ChatRoom.take_seq(row.room_id)
            model.objects.filter(pk=row.pk).update(**changed)
    named = _handle_pattern(old, prefixes="@?")
    profile = reverse("profile", kwargs={"handle": old})
    for notification in Notification.objects.filter(Q(text__icontains=old) | Q(url=profile)):
        Notification.objects.filter(pk=notification.pk).update(
            text=named.sub("a former member", notification.text),
            url="" if notification.url == profile else notification.url,
        )


def _redact_moderation_log(user_id: int, *, old_handle: str, new_handle: str) -> None:
    """The log keeps every action; the member in it becomes the tombstone.

    The one change the append-only log allows (moderation migration
    0012_privacy_log_redaction): with ``kinship.erasing_identity`` set for this transaction,
    PostgreSQL lets an UPDATE through that touches only the handle, label and reason
    columns. Raw SQL: the model itself refuses every change."""
    table = ModerationLogEntry._meta.db_table
    named = _handle_pattern(old_handle, prefixes="@?")
    renamed = rf"\g<1>{new_handle}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('kinship.erasing_identity', 'on', true)")
        cursor.execute(
            f"UPDATE {table} SET actor_handle = %s WHERE actor_id = %s",  # noqa: S608
            [new_handle, user_id],
        )
        cursor.execute(
            f"UPDATE {table} SET member_handle = %s WHERE member_id = %s",  # noqa: S608
            [new_handle, user_id],
        )
        mentioning = ModerationLogEntry.objects.filter(
            Q(target_label__icontains=old_handle) | Q(reason__icontains=old_handle)
        ).values_list("pk", "target_label", "reason")
        for pk, label, reason in mentioning:
            cursor.execute(
                f"UPDATE {table} SET target_label = %s, reason = %s WHERE id = %s",  # noqa: S608
                [
                    named.sub(renamed, label),
                    named.sub(renamed, reason),
                    pk,
                ],
            )
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('kinship.erasing_identity', 'off', true)")


def _rename_in_admin_log(user_id: int, handle: str) -> None:
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(User), object_id=str(user_id)
    ).update(object_repr=handle)


# --- sessions and the cache ------------------------------------------------------------------


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def sessions_of(user: User) -> list[str]:
    """The keys of every stored session signed in as ``user``, expired ones included."""
    wanted = str(user.pk)
    return [
        session.session_key
        for session in Session.objects.iterator()
        if session.get_decoded().get("_auth_user_id") == wanted
    ]


def end_sessions(session_keys: list[str]) -> int:
    """Delete sessions from the database and from the cache in front of it."""
    deleted, _ = Session.objects.filter(session_key__in=session_keys).delete()
    prefix = getattr(_session_store(), "cache_key_prefix", None)
    if prefix and session_keys:
        caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in session_keys])
    return deleted


def _forget_cache(user_id: int) -> None:
    """Drop the cache entries keyed by the member's id, and close their open sockets."""
    now = time.time()
    keys = []
    for name, (_, window) in settings.KINSHIP_RATE_LIMITS.items():
        action = name.split(".")[0]
        # Counters live one window and a second: the current window and the one before.
        for window_start in {int(now // window) * window, int(now // window - 1) * window}:
            for key in (str(user_id), f"goal:{user_id}", f"check-in:{user_id}"):
                keys.append(f"rl:{action}:{key}:{window_start}")
    cache.delete_many(keys)
    # Every open socket re-checks now and finds the account gone (presence entries go with
    # the sockets, and expire by themselves within presence.TTL_SECONDS in any case).
    realtime.bump_authority(user_id)


# --- retention -------------------------------------------------------------------------------


def purge_expired_data(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what Kinship keeps only for a while: sessions past their expiry or unused for
    KINSHIP_RETENTION_DAYS, and notifications older than that. Returns counts by kind.

    Kinship stores no IP addresses or user agents; the only addresses it handles are in
    rate-limit and login-throttle counters, which the cache expires by itself."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.KINSHIP_RETENTION_DAYS)
    # A session's expiry is set when it is saved: SESSION_COOKIE_AGE after its last use.
    unused_since = cutoff + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    stale = Session.objects.filter(expire_date__lte=max(now, unused_since))
    sessions = end_sessions(list(stale.values_list("session_key", flat=True)))
    notifications, _ = Notification.objects.filter(created_at__lt=cutoff).delete()
    return {"sessions": sessions, "notifications": notifications}


# The chores loop (forum/asgi.py) comes round every KINSHIP_CHORES_SECONDS; once an hour
# per worker is plenty for what is kept for days.
PURGE_INTERVAL_SECONDS = 3600
_next_purge = 0.0


def purge_expired_data_when_due() -> None:
    global _next_purge
    if time.monotonic() < _next_purge:
        return
    _next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
    purge_expired_data()
