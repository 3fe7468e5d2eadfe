"""forum.selectors: reads written by hand answer as the ORM's did."""

import pytest

from forum import selectors
from forum.models import ChatRoom, Membership
from moderation import permissions
from tests.conftest import join, make_group, make_user


@pytest.mark.django_db
def test_room_to_write_reads_the_room_its_group_and_the_member_s_role_at_once(
    django_assert_num_queries,
):
    group, river = make_group("to-write"), make_user("river")
    join(river, group, Membership.Role.MODERATOR)
    room = ChatRoom.objects.create(group=group, name="Late", slug="late", slow_mode_seconds=30)
    with django_assert_num_queries(1):
        read = selectors.room_to_write(river, room.pk)
        assert permissions.membership_role(river, read.group) == Membership.Role.MODERATOR
    assert (read.pk, read.slug, read.slow_mode_seconds, read.state) == (
        room.pk, "late", 30, ChatRoom.State.OPEN,
    )  # fmt: skip
    assert (read.group.pk, read.group.slug, read.group.visibility) == (
        group.pk, group.slug, group.visibility,
    )  # fmt: skip


@pytest.mark.django_db
def test_room_to_write_knows_a_non_member_and_a_missing_room():
    group, stranger = make_group("no-role"), make_user("stranger")
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    read = selectors.room_to_write(stranger, room.pk)
    assert permissions.membership_role(stranger, read.group) is None
    with pytest.raises(ChatRoom.DoesNotExist):
        selectors.room_to_write(stranger, room.pk + 1000)
