"""A member who has left a trace in every table, next to another member who did the same.

The member's own words carry OWN; the other member's carry THEIRS. Tests for export and
erasure (tests/forum/test_privacy.py) search for both.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from forum import conversations, publishing
from forum.models import (
    AttendanceProof,
    Block,
    ChatRoom,
    CheckIn,
    Goal,
    HandRaise,
    JoinRequest,
    LiveSession,
    MentorApproval,
    MentorProfile,
    Mentorship,
    Mute,
    Notification,
    NotificationPreference,
    Post,
    Reaction,
    RecoveryProfile,
    RoomReadState,
    SessionParticipant,
    SessionRSVP,
    Subscription,
    SupportGroup,
    User,
)
from moderation.models import (
    Appeal,
    Flag,
    LinkApproval,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Sanction,
)
from tests.conftest import join, make_group, make_user

OWN = "Ownwordsmarker"
THEIRS = "Theirwordsmarker"
SANCTION_REASON = "Sanctionreasonmarker"


@dataclass
class World:
    member: User
    other: User
    moderator: User
    group: SupportGroup
    room: ChatRoom
    conversation_room: ChatRoom
    session: LiveSession
    own_opening: Post
    own_reply: Post
    other_reply: Post


def _flag(*, flagger: User, target: Post, about: User, details: str) -> Flag:
    content_type = ContentType.objects.get_for_model(Post)
    item, _ = QueueItem.objects.get_or_create(
        content_type=content_type, object_id=target.pk, state="open", kind="flags",
        defaults={"member": about, "group": target.thread.group},
    )  # fmt: skip
    return Flag.objects.create(
        flagger=flagger,
        content_type=content_type,
        object_id=target.pk,
        item=item,
        reason="other",
        details_source=details,
        details_html=f"<p>{details}</p>",
    )


def build(handle: str = "willow-leaving", other_handle: str = "otter-staying") -> World:
    member = make_user(handle, recovery_date=date(2025, 1, 2), bio_source=f"{OWN} bio")
    other = make_user(other_handle, bio_source=f"{THEIRS} bio")
    moderator = make_user("keeper-of-peace", is_site_moderator=True)
    group = make_group("harbour")
    private = make_group("quiet-cove", private=True, join_policy="request")
    for user in (member, other, moderator):
        join(user, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")

    # Forum: threads, replies both ways, an edit, mentions, reactions, follows, mutes.
    own_thread = publishing.publish_thread(
        author=member, group=group, title=f"{OWN} title", body=f"{OWN} opening"
    )
    own_opening = own_thread.posts.get(parent__isnull=True)
    other_thread = publishing.publish_thread(
        author=other, group=group, title=f"{THEIRS} for @{handle}", body=f"{THEIRS} hi @{handle}"
    )
    own_reply = publishing.publish_reply(author=member, thread=other_thread, body=f"{OWN} reply")
    publishing.edit_post(editor=member, post=own_reply, body=f"{OWN} reply, edited")
    other_reply = publishing.publish_reply(
        author=other, thread=own_thread, body=f"{THEIRS} answer to @{handle}"
    )
    Reaction.objects.create(post=other_reply, user=member)
    Reaction.objects.create(post=own_opening, user=other)
    Subscription.objects.get_or_create(thread=other_thread, user=member)
    Mute.objects.create(user=member, thread=other_thread)
    publishing.hold_reply(author=member, thread=other_thread, body=f"{OWN} held back")

    # Chat, and a direct conversation with the other member.
    publishing.publish_chat_message(author=member, room=room, body=f"{OWN} chat", client_id="m")
    publishing.publish_chat_message(
        author=other, room=room, body=f"{THEIRS} chat to @{handle}", client_id="o"
    )
    RoomReadState.objects.create(room=room, user=member, last_read_seq=1)
    conversation = conversations.request_conversation(
        starter=member, recipient=other, note=f"{OWN} may we talk"
    )
    conversations.accept(user=other, conversation=conversation)
    conversation_room = ChatRoom.objects.get(pk=conversation.room_id)
    publishing.publish_chat_message(
        author=member, room=conversation_room, body=f"{OWN} direct", client_id="dm"
    )
    publishing.publish_chat_message(
        author=other, room=conversation_room, body=f"{THEIRS} direct", client_id="do"
    )

    # Moderation: flags both ways, a sanction with its log entry and an appeal, a note.
    _flag(flagger=member, target=other_reply, about=other, details=f"{OWN} flag details")
    _flag(flagger=other, target=own_reply, about=member, details=f"{THEIRS} flag on @{handle}")
    Sanction.objects.create(
        member=member,
        group=group,
        kind=Sanction.Kind.WARNING,
        reason_source=SANCTION_REASON,
        reason_html=f"<p>{SANCTION_REASON}</p>",
        created_by=moderator,
    )
    entry = ModerationLogEntry.objects.create(
        actor_id=moderator.pk,
        actor_handle=moderator.handle,
        actor_role="site moderator",
        action=ModerationLogEntry.Action.WARNING,
        group_id=group.pk,
        group_name=group.name,
        target_type="member",
        target_id=member.pk,
        target_label=f"@{handle}",
        member_id=member.pk,
        member_handle=handle,
        reason=f"{handle} was rude to @{other_handle}",
    )
    ModerationLogEntry.objects.create(
        actor_id=member.pk,
        actor_handle=handle,
        action=ModerationLogEntry.Action.CONTENT_HIDDEN,
        target_type="post",
        target_id=other_reply.pk,
        target_label="a post",
        member_id=other.pk,
        member_handle=other_handle,
    )
    Appeal.objects.create(entry=entry, appellant=member, source=f"{OWN} appeal", html="")
    ModeratorNote.objects.create(member=member, author=moderator, source="careful", html="")
    ModeratorNote.objects.create(member=other, author=moderator, source=f"see @{handle}", html="")
    LinkApproval.objects.create(member=member, group=group, approved_by=moderator)
    JoinRequest.objects.create(user=member, group=private)
    LogEntry.objects.create(
        user=moderator,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(member.pk),
        object_repr=str(member),
        action_flag=CHANGE,
        change_message="[]",
    )

    # A live session: RSVP, attendance, a raised hand, co-leading, a proof.
    now = timezone.now()
    session_room = ChatRoom.objects.create(
        group=group, name="Session", slug="session-1", kind=ChatRoom.Kind.SESSION
    )
    session = LiveSession.objects.create(
        group=group,
        room=session_room,
        title="Evening share",
        starts_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
        leader=moderator,
        floor_holder=member,
    )
    session.co_leaders.add(member)
    SessionRSVP.objects.create(session=session, user=member)
    SessionParticipant.objects.create(session=session, user=member, seconds_attended=1800)
    HandRaise.objects.create(session=session, user=member)
    AttendanceProof.objects.create(
        user=member,
        date_from=date(2026, 1, 1),
        date_to=date(2026, 12, 31),
        shows_handle=True,
        entries=[{"handle": handle, "minutes": 30}],
    )

    # Accountability, mentoring, preferences, blocks.
    goal = Goal.objects.create(owner=member, title=f"{OWN} goal")
    check_in = CheckIn.objects.create(owner=member, day=date(2026, 11, 1), mood=3, note=f"{OWN} ok")
    check_in.goals_met.add(goal)
    RecoveryProfile.objects.create(user=member, share_check_ins=True)
    NotificationPreference.objects.create(user=member, replies_in_digest=False)
    profile = MentorProfile.objects.create(
        user=member, experience_source=f"{OWN} experience", experience_html=""
    )
    MentorApproval.objects.create(profile=profile, group=group, decided_by=moderator)
    Mentorship.objects.create(
        mentor=other, mentee=member, group=group, state="active", note_source=f"{OWN} note"
    )
    Mentorship.objects.create(
        mentor=member, mentee=moderator, group=group, state="ended", ended_by=moderator
    )
    Notification.objects.create(
        recipient=member, kind=Notification.Kind.MODERATION, text="A moderator warned you."
    )
    Block.objects.create(blocker=member, blocked=moderator)
    Block.objects.create(blocker=other, blocked=member)

    # Signed in twice (two devices), and the other member once.
    for user in (member, member, other):
        Client().force_login(user)

    return World(
        member=member,
        other=other,
        moderator=moderator,
        group=group,
        room=room,
        conversation_room=conversation_room,
        session=session,
        own_opening=own_opening,
        own_reply=own_reply,
        other_reply=other_reply,
    )
