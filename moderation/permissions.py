"""The one place that answers "may this user do this here?".

Predicates are ``can_*``; ``check_*`` raise. Where a person may not even know an
object exists (a private group and everything in it) the answer is 404, never
403, so the response does not confirm that it exists. docs/permissions.md holds
the same rules as a table, and tests/moderation/test_permissions.py checks every
cell of that table against these functions and against the views.
"""

import functools
import math
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from forum.models import (
    Block,
    ChatMessage,
    ChatRoom,
    Conversation,
    Goal,
    LiveSession,
    Membership,
    Mentorship,
    Post,
    RecoveryProfile,
    SessionParticipant,
    SupportGroup,
    Thread,
    User,
)
from forum.sql import names

from . import trust
from .models import Sanction

LEADING_ROLES = frozenset({Membership.Role.LEADER, Membership.Role.MODERATOR})

# A group's ``viewer_role`` may be annotated by forum.selectors so that a page
# answers permission questions without another query; this marks "not annotated".
_UNSET = object()


def membership_role(user, group: SupportGroup) -> str | None:
    """The user's role in the group, or None; at most one query per group instance."""
    if not user.is_authenticated or not user.is_active:
        return None
    annotated = getattr(group, "viewer_role", _UNSET)
    if annotated is not _UNSET and getattr(group, "viewer_pk", None) == user.pk:
        return annotated  # the page's viewer's role, annotated by forum.selectors
    cache = group.__dict__.setdefault("_roles_by_user", {})
    if user.pk not in cache:
        cache[user.pk] = (
            Membership.objects.filter(user=user, group=group).values_list("role", flat=True).first()
        )
    return cache[user.pk]


def forget_roles(group: SupportGroup) -> None:
    """Drop what this group instance remembers about roles, after membership changes."""
    group.__dict__.pop("_roles_by_user", None)
    group.__dict__.pop("viewer_role", None)
    group.__dict__.pop("viewer_pk", None)


def is_site_moderator(user) -> bool:
    return bool(user.is_authenticated and user.is_moderator_sitewide)


# --- sanctions in force ------------------------------------------------------------------


SANCTIONS_ATTRIBUTE = "_sanctions_in_force"


def sanctions_in_force(user) -> list[Sanction]:
    """The member's sanctions that are neither lifted nor over; one query per user
    instance. Expired sanctions simply stop matching: nothing has to run at the end."""
    if not user.is_authenticated:
        return []
    # getattr, not the instance's __dict__: request.user is a lazy proxy of the member.
    cached = getattr(user, SANCTIONS_ATTRIBUTE, None)
    if cached is None:
        now = timezone.now()
        cached = list(
            Sanction.objects.filter(member=user, lifted_at__isnull=True)
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
            .exclude(kind=Sanction.Kind.WARNING)
            .select_related("rule")
            .order_by("ends_at")
        )
        setattr(user, SANCTIONS_ATTRIBUTE, cached)
    return cached


def remember_no_sanctions(user) -> None:
    """The member was loaded knowing that no sanction is in force (forum.backends): this
    request needs no query for them."""
    setattr(user, SANCTIONS_ATTRIBUTE, [])


def forget_sanctions(user) -> None:
    if hasattr(user, SANCTIONS_ATTRIBUTE):
        delattr(user, SANCTIONS_ATTRIBUTE)


def sanction_in_force(user, kind: str, group: SupportGroup | None = None) -> Sanction | None:
    """The member's sanction of this kind that applies in ``group`` (a site-wide one
    applies everywhere); the longest-lasting if there are several."""
    found = [
        s
        for s in sanctions_in_force(user)
        if s.kind == kind and (s.group_id is None or (group is not None and s.group_id == group.pk))
    ]
    if not found:
        return None
    return max(found, key=lambda s: (s.ends_at is None, s.ends_at))


def barred_by(user, group: SupportGroup) -> Sanction | None:
    """A site ban or a suspension from this group: the member may not take part."""
    return sanction_in_force(user, Sanction.Kind.BAN) or sanction_in_force(
        user, Sanction.Kind.SUSPENSION, group
    )


def sanction_refusal(sanction: Sanction) -> str:
    """What a member is told when a sanction stops them: what, why and until when."""
    what = {
        Sanction.Kind.BAN: "Your account is banned from posting on this site",
        Sanction.Kind.SUSPENSION: "You are suspended from this group",
        Sanction.Kind.CHAT_MUTE: "You are muted in this group's chat",
        Sanction.Kind.SLOW_MODE: "You are in slow mode in this group",
    }[sanction.kind]
    until = (
        f" until {timezone.localtime(sanction.ends_at):%d %b %Y, %H:%M %Z}"
        if sanction.ends_at
        else ""
    )
    reason = sanction.rule.title if sanction.rule else ""
    if sanction.reason_source:
        reason = f"{reason}: {sanction.reason_source}" if reason else sanction.reason_source
    because = f" ({reason.rstrip('.')})" if reason else ""
    return f"{what}{until}{because}. You can read why and appeal on your moderation page."


def can_view_group(user, group: SupportGroup) -> bool:
    if not group.is_private:
        return True
    return membership_role(user, group) is not None or is_site_moderator(user)


def check_can_view_group(user, group: SupportGroup) -> None:
    if not can_view_group(user, group):
        raise Http404("No such group.")


def can_post_in_group(user, group: SupportGroup) -> bool:
    return membership_role(user, group) is not None and barred_by(user, group) is None


def check_can_post_in_group(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if membership_role(user, group) is None:
        raise PermissionDenied("Only members of this group can post here. Join it first.")
    barred = barred_by(user, group)
    if barred is not None:
        raise PermissionDenied(sanction_refusal(barred))


def can_lead_group(user, group: SupportGroup) -> bool:
    """Leaders and moderators of the group, and site moderators and admins."""
    return membership_role(user, group) in LEADING_ROLES or is_site_moderator(user)


def check_can_lead_group(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_lead_group(user, group):
        raise PermissionDenied("Only the group's leaders and moderators can do this.")


def can_join_group(user, group: SupportGroup, *, invited: bool = False) -> bool:
    """A signed-in non-member; a private group needs its invitation."""
    if not user.is_authenticated or not user.is_active:
        return False
    if membership_role(user, group) is not None:
        return False
    return not group.is_private or invited


def can_leave_group(user, group: SupportGroup) -> bool:
    return membership_role(user, group) is not None


def can_create_group(user) -> bool:
    return is_site_moderator(user)


def check_can_create_group(user) -> None:
    if not can_create_group(user):
        raise PermissionDenied("Only site moderators and admins create groups.")


def can_view_thread(user, thread: Thread) -> bool:
    """A thread moderators hid exists only for its author and the group's moderators."""
    if not can_view_group(user, thread.group):
        return False
    if not thread.is_hidden:
        return True
    if user.is_authenticated and thread.author_id == user.pk:
        return True
    return can_moderate(user, "hide_content", thread.group)


def check_can_view_thread(user, thread: Thread) -> None:
    if not can_view_thread(user, thread):
        raise Http404("No such thread.")


def can_reply(user, thread: Thread) -> bool:
    if not can_post_in_group(user, thread.group):
        return False
    return not thread.is_locked or can_lead_group(user, thread.group)


def check_can_reply(user, thread: Thread) -> None:
    check_can_post_in_group(user, thread.group)
    if not can_reply(user, thread):
        raise PermissionDenied("This thread is locked: no new replies.")


def _is_author(user, post: Post) -> bool:
    return user.is_authenticated and post.author_id == user.pk


def can_edit_post(user, post: Post) -> bool:
    return (
        _is_author(user, post)
        and not post.is_removed_by_author
        and can_post_in_group(user, post.thread.group)
    )


def check_can_edit_post(user, post: Post) -> None:
    check_can_view_group(user, post.thread.group)
    if not can_edit_post(user, post):
        raise PermissionDenied("You can only edit your own posts in groups you belong to.")


def can_remove_own_post(user, post: Post) -> bool:
    # Members may always take back their own words, even after leaving the group.
    return _is_author(user, post) and not post.is_removed_by_author


def check_can_remove_own_post(user, post: Post) -> None:
    if can_remove_own_post(user, post):
        return
    check_can_view_group(user, post.thread.group)
    raise PermissionDenied("You can only remove your own posts.")


def can_view_history(user, post: Post) -> bool:
    """Edit history: the author and the people who moderate the group."""
    return _is_author(user, post) or can_lead_group(user, post.thread.group)


def check_can_view_history(user, post: Post) -> None:
    check_can_view_group(user, post.thread.group)
    if not can_view_history(user, post):
        raise PermissionDenied("Only the author and moderators see a post's earlier versions.")


def can_support(user, post: Post) -> bool:
    return (
        can_post_in_group(user, post.thread.group)
        and not _is_author(user, post)
        and not post.is_removed_by_author
    )


def check_can_support(user, post: Post) -> None:
    check_can_view_group(user, post.thread.group)
    if not can_support(user, post):
        raise PermissionDenied("Members can support other members' posts in their groups.")


def can_subscribe(user, thread: Thread) -> bool:
    return user.is_authenticated and can_view_group(user, thread.group)


def can_block(user, member: User) -> bool:
    return user.is_authenticated and user.is_active and member.is_active and member.pk != user.pk


def check_can_block(user, member: User) -> None:
    if not can_block(user, member):
        raise PermissionDenied("You can block other members, not yourself.")


def can_view_profile(viewer, member: User) -> bool:
    # Profiles carry bios about recovery: visible to signed-in members only.
    return viewer.is_authenticated and member.is_active


def can_see_recovery_date(viewer, member: User, *, shares_group: bool) -> bool:
    if member.recovery_date is None:
        return False
    if viewer.is_authenticated and viewer.pk == member.pk:
        return True
    visibility = member.recovery_date_visibility
    if visibility == User.Visibility.EVERYONE:
        return True
    return visibility == User.Visibility.MY_GROUPS and shares_group


# Accountability (forum.accountability): a member's goals, mood and day count. A check-in's
# note has no rule here because nobody but its author ever sees it.


def is_mentor_of(viewer, member: User) -> bool:
    """``viewer`` mentors ``member`` in an active mentorship."""
    if not viewer.is_authenticated or not viewer.is_active or viewer.pk == member.pk:
        return False
    return Mentorship.objects.filter(
        mentor=viewer, mentee=member, state=Mentorship.State.ACTIVE
    ).exists()


def goals_visible_to(viewer, owner: User, goals: QuerySet[Goal]) -> QuerySet[Goal]:
    """The owner's ``goals`` that ``viewer`` may see: all for the owner; "a group" goals for
    members of that group while the owner is one too; "my mentor" goals for active mentors."""
    if not viewer.is_authenticated or not viewer.is_active:
        return goals.none()
    if viewer.pk == owner.pk:
        return goals
    shared = Membership.objects.filter(user=owner, group__memberships__user=viewer)
    shown = goals.filter(visibility=Goal.Visibility.GROUP, group__in=shared.values("group"))
    if is_mentor_of(viewer, owner):
        shown = shown | goals.filter(visibility=Goal.Visibility.MENTOR)
    return shown


def can_see_days(viewer, member: User, *, shares_group: bool) -> bool:
    """The day count: the member's choice on their profile, or their active mentor when
    the member lets mentors see it."""
    if can_see_recovery_date(viewer, member, shares_group=shares_group):
        return True
    return (
        member.recovery_date is not None
        and RecoveryProfile.objects.filter(user=member, mentor_sees_days=True).exists()
        and is_mentor_of(viewer, member)
    )


def can_see_check_ins(viewer, owner: User) -> bool:
    """Mood and cravings (never the note): the owner's active mentors, if the owner shares."""
    return RecoveryProfile.objects.filter(
        user=owner, share_check_ins=True
    ).exists() and is_mentor_of(viewer, owner)


# Chat rooms: only members read and write them (and site moderators read them, to
# moderate). A private group's rooms do not exist for anyone else.


def can_read_rooms(user, group: SupportGroup) -> bool:
    return can_post_in_group(user, group) or is_site_moderator(user)


def check_can_read_rooms(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_read_rooms(user, group):
        barred = barred_by(user, group) if user.is_authenticated else None
        if barred is not None:
            raise PermissionDenied(sanction_refusal(barred))
        raise PermissionDenied("Only members of this group can join its chat.")


def can_read_room(user, room: ChatRoom) -> bool:
    if room.kind == ChatRoom.Kind.DIRECT:
        return can_read_conversation(user, room.conversation)
    return can_read_rooms(user, room.group)


def check_can_read_room(user, room: ChatRoom) -> None:
    if room.kind == ChatRoom.Kind.DIRECT:
        check_can_read_conversation(user, room.conversation)
        return
    check_can_read_rooms(user, room.group)


def can_write_room(user, room: ChatRoom) -> bool:
    if room.kind == ChatRoom.Kind.DIRECT:
        return conversation_write_refusal(user, room.conversation) is None
    if not can_post_in_group(user, room.group):
        return False
    if sanction_in_force(user, Sanction.Kind.CHAT_MUTE, room.group) is not None:
        return False
    if room.kind == ChatRoom.Kind.SESSION:
        return session_write_refusal(user, room.live_session) is None
    if room.state == ChatRoom.State.OPEN:
        return True
    return room.state == ChatRoom.State.READ_ONLY and can_lead_group(user, room.group)


def check_can_write_room(user, room: ChatRoom, *, floor_rules: bool = True) -> None:
    """``floor_rules=False``: a session room's page, where the lock and the floor are left
    to the live console and the server's refusal (see session_write_refusal)."""
    check_can_read_room(user, room)
    if room.kind == ChatRoom.Kind.DIRECT:
        refusal = conversation_write_refusal(user, room.conversation)
        if refusal is not None:
            raise PermissionDenied(refusal)
        return
    muted = sanction_in_force(user, Sanction.Kind.CHAT_MUTE, room.group)
    if muted is not None:
        raise PermissionDenied(sanction_refusal(muted))
    if room.kind == ChatRoom.Kind.SESSION:
        refusal = session_write_refusal(user, room.live_session, floor_rules=floor_rules)
        if refusal is None and not can_post_in_group(user, room.group):
            # As in every room: a site moderator steps in to facilitate but writes as a member.
            refusal = "Only members of this group write in its chat."
        if refusal is not None:
            raise PermissionDenied(refusal)
        return
    if not can_write_room(user, room):
        if room.state == ChatRoom.State.ARCHIVED:
            raise PermissionDenied("This room is archived: it keeps its history, no new messages.")
        raise PermissionDenied("This room is read-only: only leaders and moderators write here.")


def can_edit_chat_message(user, message: ChatMessage) -> bool:
    return (
        user.is_authenticated
        and message.author_id == user.pk
        and not message.is_removed
        and can_write_room(user, message.room)
    )


def can_delete_chat_message(user, message: ChatMessage) -> bool:
    """Authors take back their own messages; leaders and moderators remove any."""
    if message.is_removed or not user.is_authenticated:
        return False
    if message.author_id == user.pk:
        return True
    if message.room.kind == ChatRoom.Kind.DIRECT:
        return False  # moderators act on a direct message only through its report
    return can_lead_group(user, message.room.group)


def can_manage_rooms(user, group: SupportGroup) -> bool:
    return can_lead_group(user, group)


def check_can_manage_rooms(user, group: SupportGroup) -> None:
    check_can_lead_group(user, group)


# --- moderation ----------------------------------------------------------------------------
# Who may take which moderation action, by standing in the group. docs/permissions.md
# has the same table; tests/moderation/test_permissions.py checks one against the other.

LEADER, GROUP_MODERATOR, SITE_MODERATOR = "leader", "group moderator", "site moderator"

MODERATION_TABLE: dict[str, frozenset[str]] = {
    # on content
    "hide_content": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "restore_content": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "lock_thread": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "pin_thread": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "set_content_warning": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "slow_mode_place": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "edit_content": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "move_thread": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    # the queue
    "review_queue": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "dismiss_flags": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "decide_appeal": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "read_full_log": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "moderator_notes": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "manage_rules": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    # let a member below the link threshold post links in the group
    "allow_links": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    # on members
    "chat_mute": frozenset({LEADER, GROUP_MODERATOR, SITE_MODERATOR}),
    "warning": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "slow_mode": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "suspension": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "lift_sanction": frozenset({GROUP_MODERATOR, SITE_MODERATOR}),
    "ban": frozenset({SITE_MODERATOR}),
}


def moderation_standing(user, group: SupportGroup | None) -> str | None:
    """The standing a user moderates ``group`` with (site-wide when ``group`` is None)."""
    if is_site_moderator(user):
        return SITE_MODERATOR
    if group is None:
        return None
    role = membership_role(user, group)
    if role == Membership.Role.MODERATOR:
        return GROUP_MODERATOR
    if role == Membership.Role.LEADER:
        return LEADER
    return None


def can_moderate(user, action: str, group: SupportGroup | None) -> bool:
    return moderation_standing(user, group) in MODERATION_TABLE[action]


def check_can_moderate(user, action: str, group: SupportGroup | None) -> None:
    if group is not None:
        check_can_view_group(user, group)  # a private group stays unknown: 404
    if not can_moderate(user, action, group):
        raise PermissionDenied(
            "You cannot do this here: it needs "
            + " or ".join(sorted(MODERATION_TABLE[action]))
            + " standing in this group."
        )


def moderated_group_ids(user) -> list[int] | None:
    """The groups whose queue and log this user reviews; None means every group."""
    if is_site_moderator(user):
        return None
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user, role=Membership.Role.MODERATOR).values_list(
            "group_id", flat=True
        )
    )


# Whether the member moderates a group, when read with them (forum.backends).
MODERATES_ATTRIBUTE = "_moderates_a_group"


def remember_moderates(user, moderates: bool) -> None:
    setattr(user, MODERATES_ATTRIBUTE, moderates)


def can_review(user) -> bool:
    """Whether the user reviews any queue (the navigation's "Review queue" link)."""
    if is_site_moderator(user):
        return True
    known = getattr(user, MODERATES_ATTRIBUTE, None)
    if known is not None:
        return known
    return bool(moderated_group_ids(user))


_RANKS = {None: 0, LEADER: 1, GROUP_MODERATOR: 2, SITE_MODERATOR: 3}


def _check_outranks(actor, member: User, group: SupportGroup | None) -> None:
    """Refuse acting on a member whose standing equals or passes the actor's; admins
    act on anyone, and only admins on an admin."""
    if member.is_superuser and not actor.is_superuser:
        raise PermissionDenied("Only an admin can do this to an admin.")
    theirs = _RANKS[moderation_standing(member, group)]
    mine = _RANKS[moderation_standing(actor, group)]
    if theirs >= mine and not actor.is_superuser:
        raise PermissionDenied(
            f"{member.handle} moderates here too: ask a site moderator or an admin."
        )


def check_can_sanction(actor, member: User, group: SupportGroup | None) -> None:
    """Refuse sanctions on yourself, on someone outside the group, or on a member whose
    standing equals or passes yours."""
    if member.pk == actor.pk:
        raise PermissionDenied("You cannot sanction yourself.")
    if not member.is_active:
        raise PermissionDenied(f"{member.handle}'s account is closed.")
    if group is not None and membership_role(member, group) is None:
        raise PermissionDenied(f"{member.handle} is not a member of {group.name}.")
    _check_outranks(actor, member, group)


def check_can_lift_sanction(actor, sanction: Sanction) -> None:
    """The standing to lift, and the same ranks as placing it: a group moderator does
    not lift what a site moderator put on a fellow group moderator. A member who has
    since left the group (or closed their account) may still be freed."""
    check_can_moderate(actor, "lift_sanction", sanction.group)
    if sanction.member_id == actor.pk:  # a moderator sanctioned by a site moderator, say
        raise PermissionDenied("Another moderator lifts a sanction on you.")
    _check_outranks(actor, sanction.member, sanction.group)


def can_lift_sanction(actor, sanction: Sanction) -> bool:
    try:
        check_can_lift_sanction(actor, sanction)
    except (PermissionDenied, Http404):
        return False
    return True


def check_can_flag(user, obj) -> None:
    """A signed-in member may flag what they can see, except themselves, their own words,
    what is already deleted, and (unless they moderate it) what is already hidden."""
    if not user.is_authenticated:
        raise PermissionDenied("Log in to flag.")
    if isinstance(obj, User):
        if not can_view_profile(user, obj):
            raise Http404("No such member.")
        if obj.pk == user.pk:
            raise PermissionDenied("You cannot flag yourself or your own words.")
        return
    if isinstance(obj, ChatMessage):
        check_can_read_room(user, obj.room)
        group, hidden = obj.room.group, obj.is_removed
        deleted = obj.removed_by == ChatMessage.RemovedBy.AUTHOR
    else:
        thread = obj if isinstance(obj, Thread) else obj.thread
        check_can_view_thread(user, thread)
        group, hidden = thread.group, obj.is_hidden
        deleted = isinstance(obj, Post) and obj.is_removed_by_author
    if obj.author_id == user.pk:
        raise PermissionDenied("You cannot flag yourself or your own words.")
    if deleted:
        raise PermissionDenied("This has already been deleted.")
    if hidden and not can_moderate(user, "hide_content", group):
        raise PermissionDenied("This is hidden already; moderators are looking at it.")


def can_flag(user, obj) -> bool:
    try:
        check_can_flag(user, obj)
    except (PermissionDenied, Http404):
        return False
    return True


def check_can_review_item(user, item) -> None:
    """A queue item is for the moderators of its group (site moderators for items with
    none), and never for the member it is about. 404 keeps a private group unknown."""
    if not can_moderate(user, "review_queue", item.group):
        if item.group is not None:
            check_can_view_group(user, item.group)
        raise PermissionDenied("Only this group's moderators review its queue.")
    if item.member_id == user.pk:
        raise PermissionDenied("This is about you: another moderator reviews it.")


def check_can_moderate_member(actor, member: User, groups: list[SupportGroup]) -> None:
    """A member's moderation page: for site moderators, and for whoever leads or moderates
    one of ``groups`` (the member's groups); never about oneself."""
    if member.pk == actor.pk:
        raise PermissionDenied("Another moderator looks after your own standing.")
    if is_site_moderator(actor):
        return
    if not any(moderation_standing(actor, group) for group in groups):
        raise PermissionDenied("Only moderators of this member's groups can see this page.")


# --- trust (moderation.trust decides; these gather the facts) ---------------------------------


# A member's trust counts read in the statement that loaded them for this write
# (forum.selectors.room_to_write), so trust_standing needs no statement of its own.
TRUST_COUNTS_ATTRIBUTE = "trust_counts"
TRUST_COUNTS = 5  # the values trust_counts_columns gives


@functools.cache
def _trust_counts_sql() -> str:
    return f"SELECT {trust_counts_columns()}"


@functools.cache
def trust_counts_columns() -> str:
    """The five counts of trust_standing as the columns of a SELECT, with the named
    parameters of trust_counts_params: a statement that reads the member for a chat write
    reads them too (every message asks for its author's trust)."""
    post, p_author, p_thread, p_parent, p_removed, p_hidden, p_pending = names(
        Post,
        "author",
        "thread",
        "parent",
        "removed_by_author_at",
        "hidden_at",
        "hidden_pending_review",
    )
    thread, t_id, t_author, t_hidden, t_pending = names(
        Thread, "id", "author", "hidden_at", "hidden_pending_review"
    )
    message, m_author, m_removed_at, m_removed_by = names(
        ChatMessage, "author", "removed_at", "removed_by"
    )
    sanction, s_member, s_created = names(Sanction, "member", "created_at")
    taken_down = f"p.{p_hidden} IS NOT NULL AND NOT p.{p_pending}"
    # The model's constant, written into the statement: a prepared statement's generic plan
    # uses the partial index only for a predicate it can see. As a parameter, it counted by
    # reading every message of the member (0.7 ms of PostgreSQL's CPU for 4,000 of them).
    by_moderator = f"'{ChatMessage.RemovedBy.MODERATOR.value}'"
    # Published is counted up to a cap (no threshold asks for more) and removed in full,
    # through partial indexes of what was taken down: a member's thousandth message costs
    # what their tenth did.
    return f"""
            (SELECT COUNT(*) FROM (
                SELECT 1 FROM {post} p JOIN {thread} t ON t.{t_id} = p.{p_thread}
                WHERE p.{p_author} = %(member)s AND p.{p_removed} IS NULL
                    AND p.{p_hidden} IS NULL AND t.{t_hidden} IS NULL
                LIMIT %(cap)s
            ) published_posts),
            (SELECT COUNT(*) FROM {post} p
                WHERE p.{p_author} = %(member)s AND p.{p_removed} IS NULL AND {taken_down})
            + (SELECT COUNT(*) FROM {thread} t JOIN {post} p
                    ON p.{p_thread} = t.{t_id} AND p.{p_parent} IS NULL
                WHERE t.{t_author} = %(member)s AND t.{t_hidden} IS NOT NULL
                    AND NOT t.{t_pending} AND p.{p_author} = %(member)s
                    AND p.{p_removed} IS NULL AND NOT ({taken_down})),
            (SELECT COUNT(*) FROM (
                SELECT 1 FROM {message} WHERE {m_author} = %(member)s AND {m_removed_at} IS NULL
                LIMIT %(cap)s
            ) published_messages),
            (SELECT COUNT(*) FROM {message}
                WHERE {m_author} = %(member)s AND {m_removed_by} = {by_moderator}),
            (SELECT COUNT(*) FROM {sanction}
                WHERE {s_member} = %(member)s AND {s_created} >= %(since)s)
    """  # noqa: S608 (names and a constant come from the models, values are parameters)


def trust_standing(user, group: SupportGroup | None = None) -> trust.Standing:
    """The facts a member's trust is earned from, counted in one statement (written by
    hand, forum.sql: every chat message asks, and the ORM spent more building the
    counting queries than the database spent running them).

    Published: their posts and messages that nobody took down (nor their thread), counted
    up to the most any threshold asks (KINSHIP_TRUST_LEVELS, KINSHIP_NEW_MEMBER_HOLDS);
    removed: those a moderator removed (not merely held for review); recent sanctions:
    within KINSHIP_TRUST_SANCTION_DAYS."""
    counts = getattr(user, TRUST_COUNTS_ATTRIBUTE, None)
    if counts is None:
        with connection.cursor() as cursor:
            cursor.execute(_trust_counts_sql(), trust_counts_params(user.pk))
            counts = cursor.fetchone()
    posts_published, posts_removed, chat_published, chat_removed, sanctions = counts
    return trust.Standing(
        days=(timezone.now() - user.date_joined).total_seconds() / 86400,
        published=posts_published + chat_published,
        removed=posts_removed + chat_removed,
        recent_sanctions=sanctions,
        moderates=moderation_standing(user, group) is not None,
    )


def trust_counts_params(member_id: int) -> dict[str, object]:
    """The parameters of trust_counts_columns for the member ``member_id``, now."""
    since = timezone.now() - timedelta(days=settings.KINSHIP_TRUST_SANCTION_DAYS)
    return {
        "member": member_id,
        "cap": _published_cap(),
        "since": connection.ops.adapt_datetimefield_value(since),
    }


def _published_cap() -> int:
    """The most published posts and messages any rule asks of a member."""
    thresholds = [need.get("posts", 0) for need in settings.KINSHIP_TRUST_LEVELS.values()]
    return max([*thresholds, settings.KINSHIP_NEW_MEMBER_HOLDS, 1])


def trust_level(user, group: SupportGroup | None = None) -> trust.Level:
    """0 new, 1 member, 2 regular, 3 trusted; leaders and moderators are trusted where
    they lead or moderate. Not memoised: a member earns trust while a socket stays open."""
    if not user.is_authenticated:
        return trust.Level.NEW
    if moderation_standing(user, group) is not None:
        return trust.Level.TRUSTED
    return trust.level_of(trust_standing(user, group), settings.KINSHIP_TRUST_LEVELS)


def check_can_approve_held(user, obj) -> None:
    """What the write path held (a new member's first posts, a link, a watched phrase) may
    be approved by the group's moderators, or by a trusted member of the group who is not
    its author. 404 where the viewer may not know the group exists."""
    if not user.is_authenticated:
        raise PermissionDenied("Log in to approve posts.")
    if isinstance(obj, ChatMessage) and obj.room.kind == ChatRoom.Kind.DIRECT:
        # A private conversation is not the group's to read: moderators of the group (who
        # see the held message alone, in the queue) approve it; nobody else knows of it.
        if obj.author_id == user.pk:
            raise PermissionDenied("Someone else approves your own posts.")
        if can_moderate(user, "dismiss_flags", obj.room.group):
            return
        raise Http404("No such message.")
    if isinstance(obj, ChatMessage):
        check_can_read_room(user, obj.room)
        group = obj.room.group
    else:
        # The group, not the thread: a held thread is hidden from the very members who
        # may approve it.
        group = (obj if isinstance(obj, Thread) else obj.thread).group
        check_can_view_group(user, group)
    if obj.author_id == user.pk:
        raise PermissionDenied("Someone else approves your own posts.")
    if can_moderate(user, "dismiss_flags", group):
        return
    if membership_role(user, group) is None or barred_by(user, group) is not None:
        raise PermissionDenied("Only this group's members and moderators approve its posts.")
    if not is_trusted(user, group):
        raise PermissionDenied("Trusted members and moderators approve held posts.")


def is_trusted(user, group: SupportGroup) -> bool:
    """Trusted in ``group`` (moderation.trust): they may approve its held posts, which pages
    offer them (check_can_approve_held decides each approval)."""
    return trust_level(user, group) >= trust.Level.TRUSTED


def can_approve_held(user, obj) -> bool:
    try:
        check_can_approve_held(user, obj)
    except (PermissionDenied, Http404):
        return False
    return True


# --- live sessions ---------------------------------------------------------------------------
# A session's facilitators are its leader, whoever holds facilitation now, its co-leaders,
# and anyone who leads the group (leaders and moderators can always step in). Muting a
# participant and slow mode stay moderation actions (MODERATION_TABLE): a co-leader who
# is a plain member of the group runs the floor but does not sanction.


def can_schedule_sessions(user, group: SupportGroup) -> bool:
    return can_lead_group(user, group)


def check_can_schedule_sessions(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_schedule_sessions(user, group):
        raise PermissionDenied("Only the group's leaders and moderators schedule sessions.")


def can_facilitate(user, session: LiveSession) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.pk in (session.leader_id, session.facilitator_id):
        return can_read_rooms(user, session.group)
    if can_lead_group(user, session.group):
        return True
    cache = session.__dict__.setdefault("_co_leader_ids", None)
    if cache is None:
        cache = set(session.co_leaders.values_list("pk", flat=True))
        session.__dict__["_co_leader_ids"] = cache
    return user.pk in cache and can_read_rooms(user, session.group)


def check_can_facilitate(user, session: LiveSession) -> None:
    check_can_view_group(user, session.group)
    if not can_facilitate(user, session):
        raise PermissionDenied("Only the session's leaders can do this.")


def removed_from_session(user, session: LiveSession) -> bool:
    return SessionParticipant.objects.filter(
        session=session, user_id=user.pk, removed_at__isnull=False
    ).exists()


def can_stay_in_session(user, room: ChatRoom) -> bool:
    """An open socket in a session's room: not removed from the session."""
    return not removed_from_session(user, room.live_session)


def check_can_attend_session(user, session: LiveSession) -> None:
    """Joining the session's room: its group's chat, not removed, and room below capacity."""
    check_can_read_rooms(user, session.group)
    if removed_from_session(user, session):
        raise PermissionDenied("A leader removed you from this session.")
    if session.capacity and not can_facilitate(user, session):
        present = SessionParticipant.objects.filter(
            session=session, sockets__gt=0, removed_at__isnull=True
        ).exclude(user_id=user.pk)
        if present.count() >= session.capacity:
            raise PermissionDenied(
                f"This session is full ({session.capacity} people): try again when someone leaves."
            )


def session_write_refusal(
    user, session: LiveSession, now=None, *, floor_rules: bool = True
) -> str | None:
    """Why ``user`` may not post in the session's room now, or None if they may.

    ``floor_rules=False`` leaves out the lock and the floor, which change from minute to
    minute: the page keeps the composer on and the server refuses with the reason.
    """
    phase = session.phase(now)
    if phase == LiveSession.Phase.SCHEDULED:
        return "The session's room is not open yet."
    if phase == LiveSession.Phase.CLOSED:
        return "A leader has closed the room for now."
    if phase in (LiveSession.Phase.ENDED, LiveSession.Phase.CANCELLED):
        return "This session is over: its room is read-only."
    if removed_from_session(user, session):
        return "A leader removed you from this session."
    if not floor_rules or can_facilitate(user, session):
        return None
    if session.chat_locked:
        return "A leader has locked the chat: only the leaders speak for now."
    if session.floor_holder_id and session.floor_holder_id != user.pk:
        holder = session.floor_holder.handle if session.floor_holder else "Someone"
        return (
            f"{holder} has the floor: only they and the leaders post until they pass it back. "
            "Raise your hand to share next."
        )
    return None


# --- direct conversations --------------------------------------------------------------------
# Only its two participants read or write a conversation's room; for everyone else, group and
# site moderators and admins included, it does not exist (404). Moderators see a direct
# message only when a participant reports it or the write path holds it: the queue item
# shows that message alone (moderation.selectors.content_context).

# Every refusal that would reveal the recipient's choices (requests switched off, a block)
# reads the same.
DM_REFUSAL = "You can't send this member a request."


def can_read_conversation(user, conversation: Conversation) -> bool:
    return bool(user.is_authenticated and user.is_active and conversation.has_participant(user))


def check_can_read_conversation(user, conversation: Conversation) -> None:
    if not can_read_conversation(user, conversation):
        raise Http404("No such conversation.")


def blocked_between(a: User, b: User) -> bool:
    """Either member blocked the other."""
    return Block.objects.filter(Q(blocker=a, blocked=b) | Q(blocker=b, blocked=a)).exists()


def conversation_write_refusal(user, conversation: Conversation) -> str | None:
    """Why ``user`` may not write in the conversation now, or None if they may."""
    if not can_read_conversation(user, conversation):
        return "No such conversation."
    other = conversation.other(user)
    if conversation.is_pending:
        # An ignored request looks pending to its starter: nobody is told "ignored".
        if user.pk == conversation.starter_id:
            return f"Waiting for {other.handle} to accept your request."
        return "Accept the request to reply."
    if conversation.state != Conversation.State.ACCEPTED:
        return "This conversation is closed: it keeps its history, and nobody can write in it."
    if not other.is_active:
        return f"{other.handle}'s account is closed."
    banned = sanction_in_force(user, Sanction.Kind.BAN)
    if banned is not None:
        return sanction_refusal(banned)
    if blocked_between(user, other):
        return "This conversation is closed: it keeps its history, and nobody can write in it."
    return None


def shared_groups(a: User, b: User) -> list[SupportGroup]:
    """The groups both members belong to and take part in (neither suspended nor banned)."""
    groups = SupportGroup.objects.filter(memberships__user=a).filter(memberships__user=b)
    return [
        group
        for group in groups.order_by("pk").distinct()
        if barred_by(a, group) is None and barred_by(b, group) is None
    ]


def may_send_direct_messages(user, groups: list[SupportGroup]) -> bool:
    """Trust allows it: KINSHIP_TRUST_DM_LEVEL site-wide, or leading one of ``groups``."""
    if not settings.KINSHIP_TRUST_RULES:
        return True
    if any(moderation_standing(user, group) is not None for group in groups):
        return True
    return trust_level(user) >= settings.KINSHIP_TRUST_DM_LEVEL


def conversation_request_refusal(starter, recipient: User) -> str | None:
    """Why ``starter`` may not ask ``recipient`` for a conversation, or None if they may.
    An open conversation between them is not a refusal here: forum.conversations links
    to it; the rate limit is counted there too."""
    if not starter.is_authenticated or not starter.is_active:
        return "Log in to send a message request."
    if starter.pk == recipient.pk:
        return "You can't send yourself a message request."
    banned = sanction_in_force(starter, Sanction.Kind.BAN)
    if banned is not None:
        return sanction_refusal(banned)
    if not recipient.is_active:
        return DM_REFUSAL
    if Block.objects.filter(blocker=starter, blocked=recipient).exists():
        return "You blocked this member. Unblock them first if you want to talk."
    groups = shared_groups(starter, recipient)
    if not groups:
        return "You can send message requests to members of a group you both take part in."
    if not may_send_direct_messages(starter, groups):
        level = trust.Level(settings.KINSHIP_TRUST_DM_LEVEL).label
        return (
            "Direct messages open up once you have taken part here for a little while "
            f"(as a {level}). Until then, talk with members in your groups."
        )
    if not recipient.accepts_dm_requests:
        return DM_REFUSAL
    if Block.objects.filter(blocker=recipient, blocked=starter).exists():
        return DM_REFUSAL
    return None


def can_start_conversation(starter, recipient: User) -> bool:
    return conversation_request_refusal(starter, recipient) is None


def check_can_start_conversation(starter, recipient: User) -> None:
    refusal = conversation_request_refusal(starter, recipient)
    if refusal is not None:
        raise PermissionDenied(refusal)


def check_can_answer_request(user, conversation: Conversation) -> None:
    """Accept, ignore: the recipient of a pending request."""
    check_can_read_conversation(user, conversation)
    if user.pk != conversation.recipient_id:
        raise PermissionDenied("Only the member you asked can answer your request.")
    if not conversation.is_pending:
        raise PermissionDenied("This request has already been answered.")


def check_can_close_conversation(user, conversation: Conversation) -> None:
    check_can_read_conversation(user, conversation)
    if not conversation.is_open:
        raise PermissionDenied("This conversation is already closed.")


# --- mentoring -------------------------------------------------------------------------------
# Members with time in recovery and good standing offer to mentor; a group's leaders decide
# who is listed there; a member asks a listed mentor of a group they both belong to. A
# mentorship is the pair's alone: everyone else, moderators included, gets a 404. A block
# either way is never revealed: the asker is told the mentor is not taking requests, as when
# the mentor is full or paused.

MENTOR_UNAVAILABLE = "This mentor is not taking requests right now."


def mentoring_gaps(
    *,
    days_since_joining: float,
    best_trust_level: int,
    sanctioned: bool,
    days_in_recovery: int | None,
) -> list[str]:
    """Pure: what stands between a member and offering to mentor (empty: nothing), each
    said kindly. An unrecorded recovery date is not asked for."""
    gaps = []
    min_days = settings.KINSHIP_MENTOR_MIN_DAYS
    if days_since_joining < min_days:
        gaps.append(
            f"Mentors have been part of Kinship for at least {min_days} days; "
            f"you will be able to offer in {math.ceil(min_days - days_since_joining)} days."
        )
    if best_trust_level < trust.Level.REGULAR:
        gaps.append(
            "Mentors are regulars in at least one of their groups: keep taking part "
            "and it will come."
        )
    if sanctioned:
        gaps.append("Mentoring opens again once the moderation measure on your account ends.")
    min_recovery = settings.KINSHIP_MENTOR_MIN_RECOVERY_DAYS
    if days_in_recovery is not None and days_in_recovery < min_recovery:
        gaps.append(
            f"Mentors have at least {min_recovery} days since their recovery date; "
            "there is no rush, and every day counts."
        )
    return gaps


def mentoring_refusals(user) -> list[str]:
    """Why ``user`` may not offer to mentor now (empty: they may)."""
    if not user.is_authenticated or not user.is_active:
        return ["Log in to offer to mentor."]
    groups = list(SupportGroup.objects.filter(memberships__user=user))
    leads = any(membership_role(user, group) in LEADING_ROLES for group in groups)
    if leads or is_site_moderator(user):
        level = trust.Level.TRUSTED
    elif groups:
        # Trust is earned site-wide; only leading a group changes it per group.
        level = trust_level(user)
    else:
        level = trust.Level.NEW
    return mentoring_gaps(
        days_since_joining=(timezone.now() - user.date_joined).total_seconds() / 86400,
        best_trust_level=level,
        sanctioned=bool(sanctions_in_force(user)),
        # The date lives on the user (accountability's RecoveryProfile keeps it there too).
        days_in_recovery=user.days_in_recovery(),
    )


def can_offer_mentoring(user) -> bool:
    return not mentoring_refusals(user)


def check_can_offer_mentoring(user) -> None:
    refusals = mentoring_refusals(user)
    if refusals:
        raise PermissionDenied(" ".join(refusals))


def can_approve_mentor(user, group: SupportGroup) -> bool:
    """The group's leaders and moderators, and site moderators."""
    return can_lead_group(user, group)


def check_can_approve_mentor(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_approve_mentor(user, group):
        raise PermissionDenied("Only the group's leaders and moderators approve its mentors.")


def can_request_mentor(user, mentor: User, group: SupportGroup) -> bool:
    try:
        check_can_request_mentor(user, mentor, group)
    except (PermissionDenied, Http404):
        return False
    return True


def check_can_request_mentor(user, mentor: User, group: SupportGroup) -> None:
    """Asking ``mentor`` through ``group``: both members of it, the asker not barred there,
    and no block either way (refused like a full mentor, so the block stays unknown)."""
    check_can_view_group(user, group)
    if membership_role(user, group) is None:
        raise PermissionDenied("Join this group to ask its mentors.")
    barred = barred_by(user, group)
    if barred is not None:
        raise PermissionDenied(sanction_refusal(barred))
    if user.pk == mentor.pk:
        raise PermissionDenied("You cannot ask yourself to be your mentor.")
    if not mentor.is_active or blocked_between(user, mentor):
        raise PermissionDenied(MENTOR_UNAVAILABLE)


def can_view_mentorship(user, mentorship: Mentorship) -> bool:
    return user.is_authenticated and user.pk in (mentorship.mentor_id, mentorship.mentee_id)


def check_can_view_mentorship(user, mentorship: Mentorship) -> None:
    if not can_view_mentorship(user, mentorship):
        raise Http404("No such mentorship.")
