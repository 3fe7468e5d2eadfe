"""The one place that answers "may this user do this here?".

Predicates are ``can_*``; ``check_*`` raise. Where a person may not even know an
object exists (a private group and everything in it) the answer is 404, never
403, so the response does not confirm that it exists. docs/permissions.md holds
the same rules as a table, and tests/moderation/test_permissions.py checks every
cell of that table against these functions and against the views.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from forum.models import ChatMessage, ChatRoom, Membership, Post, SupportGroup, Thread, User

LEADING_ROLES = frozenset({Membership.Role.LEADER, Membership.Role.MODERATOR})

# A group's ``viewer_role`` may be annotated by forum.selectors so that a page
# answers permission questions without another query; this marks "not annotated".
_UNSET = object()


def membership_role(user, group: SupportGroup) -> str | None:
    """The user's role in the group, or None; at most one query per group instance."""
    if not user.is_authenticated or not user.is_active:
        return None
    annotated = getattr(group, "viewer_role", _UNSET)
    if annotated is not _UNSET:
        return annotated
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


def is_site_moderator(user) -> bool:
    return bool(user.is_authenticated and user.is_moderator_sitewide)


def can_view_group(user, group: SupportGroup) -> bool:
    if not group.is_private:
        return True
    return membership_role(user, group) is not None or is_site_moderator(user)


def check_can_view_group(user, group: SupportGroup) -> None:
    if not can_view_group(user, group):
        raise Http404("No such group.")


def can_post_in_group(user, group: SupportGroup) -> bool:
    return membership_role(user, group) is not None


def check_can_post_in_group(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_post_in_group(user, group):
        raise PermissionDenied("Only members of this group can post here. Join it first.")


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


# Chat rooms: only members read and write them (and site moderators read them, to
# moderate). A private group's rooms do not exist for anyone else.


def can_read_rooms(user, group: SupportGroup) -> bool:
    return can_post_in_group(user, group) or is_site_moderator(user)


def check_can_read_rooms(user, group: SupportGroup) -> None:
    check_can_view_group(user, group)
    if not can_read_rooms(user, group):
        raise PermissionDenied("Only members of this group can join its chat.")


def can_read_room(user, room: ChatRoom) -> bool:
    return can_read_rooms(user, room.group)


def check_can_read_room(user, room: ChatRoom) -> None:
    check_can_read_rooms(user, room.group)


def can_write_room(user, room: ChatRoom) -> bool:
    if not can_post_in_group(user, room.group):
        return False
    if room.state == ChatRoom.State.OPEN:
        return True
    return room.state == ChatRoom.State.READ_ONLY and can_lead_group(user, room.group)


def check_can_write_room(user, room: ChatRoom) -> None:
    check_can_read_room(user, room)
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
    return can_lead_group(user, message.room.group)


def can_manage_rooms(user, group: SupportGroup) -> bool:
    return can_lead_group(user, group)


def check_can_manage_rooms(user, group: SupportGroup) -> None:
    check_can_lead_group(user, group)
