"""forum.selectors: reads written by hand answer as the ORM's did."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import backends, engagement, publishing, selectors
from forum.models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Notification,
    Subscription,
    SupportGroup,
    User,
)
from moderation import permissions
from tests.conftest import join, make_group, make_user, thread_among


@pytest.fixture
def late_room(db) -> tuple[User, ChatRoom]:
    """A slow-mode room of a group its member ``river`` moderates."""
    group, river = make_group("to-write"), make_user("river")
    join(river, group, Membership.Role.MODERATOR)
    room = ChatRoom.objects.create(group=group, name="Late", slug="late", slow_mode_seconds=30)
    return river, room


def test_room_to_write_reads_the_room_its_group_and_the_member_s_role_at_once(
    late_room, django_assert_num_queries
):
    river, room = late_room
    group = room.group
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


def test_the_room_read_with_the_member_is_the_room_its_own_statement_reads(
    late_room, django_assert_num_queries
):
    river, room = late_room
    ChatMessage.objects.bulk_create(
        [
            ChatMessage(
                room=room, author=river, client_id="a", source="a", html="", seq=1, version=1
            ),
            ChatMessage(
                room=room, author=river, client_id="b", source="b", html="", seq=2, version=2,
                removed_at=timezone.now(), removed_by=ChatMessage.RemovedBy.MODERATOR,
            ),
        ]
    )  # fmt: skip
    alone = backends.load_member(river.pk)
    own = selectors.room_to_write(alone, room.pk)
    with backends.read_with_member(selectors.room_with_member(river.pk, room.pk)):
        user = backends.load_member(river.pk)
    assert user.handle == "river" and user.moderates_a_group
    with django_assert_num_queries(0):
        read = selectors.room_to_write(user, room.pk)
        assert permissions.membership_role(user, read.group) == Membership.Role.MODERATOR
    for model, ours, theirs in ((ChatRoom, read, own), (SupportGroup, read.group, own.group)):
        fields = [field.attname for field in model._meta.concrete_fields]
        assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    counts = getattr(user, permissions.TRUST_COUNTS_ATTRIBUTE)
    assert counts == getattr(alone, permissions.TRUST_COUNTS_ATTRIBUTE)
    assert (counts[2], counts[3]) == (1, 1)  # one message published, one removed
    with django_assert_num_queries(1):  # used once: a later write reads afresh
        selectors.room_to_write(user, room.pk)


@pytest.mark.django_db
def test_a_missing_room_read_with_the_member_is_refused_and_another_room_read_afresh(
    django_assert_num_queries,
):
    group, river = make_group("elsewhere"), make_user("river")
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    with backends.read_with_member(selectors.room_with_member(river.pk, room.pk + 1000)):
        user = backends.load_member(river.pk)
    assert user is not None  # the member is there, the room is not
    with pytest.raises(ChatRoom.DoesNotExist):
        selectors.room_to_write(user, room.pk + 1000)
    with backends.read_with_member(selectors.room_with_member(river.pk, room.pk + 1000)):
        user = backends.load_member(river.pk)
    with django_assert_num_queries(1):
        assert selectors.room_to_write(user, room.pk).pk == room.pk


@pytest.fixture
def read_thread(settings, public_group, member, other_member):
    """A thread ``member`` follows, mutes, supports a post of and reads as a moderator,
    having blocked ``other_member``."""
    join(member, public_group, role=Membership.Role.MODERATOR)
    thread = thread_among(
        settings, public_group, other_member, member, title="Week one", body="Hello."
    )
    reply = publishing.publish_reply(author=other_member, thread=thread, parent=None, body="Hi.")
    engagement.set_subscription(user=member, thread=thread, follow=True)
    engagement.set_thread_mute(user=member, thread=thread, muted=True)
    engagement.toggle_support(user=member, post=reply)
    engagement.block_member(user=member, member=other_member)
    return thread, reply


def _read(user_id: int, thread, *, ridden: bool):
    if not ridden:
        return selectors.thread_to_read(
            backends.load_member(user_id), slug=thread.group.slug, thread_id=thread.pk
        )
    with backends.read_with_member(selectors.viewer_with_member(thread.pk)):
        user = backends.load_member(user_id)
    with CaptureQueriesContext(connection) as queries:
        read = selectors.thread_to_read(user, slug=thread.group.slug, thread_id=thread.pk)
    assert [q["sql"] for q in queries if "subscription" in q["sql"]] == []
    return read


@pytest.mark.django_db
def test_the_viewers_part_read_with_the_member_is_what_its_own_statement_reads(
    read_thread, member, other_member
):
    thread, reply = read_thread
    ridden = _read(member.pk, thread, ridden=True).viewer
    alone = _read(member.pk, thread, ridden=False).viewer
    assert (
        ridden
        == alone
        == selectors.ThreadViewer(
            role=Membership.Role.MODERATOR,
            follows=True,
            muted=True,
            supports=frozenset({reply.pk}),
            blocked=frozenset({other_member.pk}),
        )
    )
    # A reader with no part in it reads none, both ways.
    nobody = make_user("nobody")
    assert _read(nobody.pk, thread, ridden=True).viewer == selectors.ThreadViewer()
    assert _read(nobody.pk, thread, ridden=False).viewer == selectors.ThreadViewer()


@pytest.mark.django_db
def test_a_members_thread_page_runs_one_statement(client, read_thread, member):
    thread, _ = read_thread
    client.force_login(member)
    client.get(thread.get_absolute_url())  # a returning reader: session and rows kept
    with CaptureQueriesContext(connection) as queries:
        response = client.get(thread.get_absolute_url())
    assert response.status_code == 200
    [statement] = [q["sql"] for q in queries]
    assert Subscription._meta.db_table in statement and Notification._meta.db_table in statement


@pytest.mark.django_db
def test_a_thread_moved_after_its_rows_were_read_is_judged_by_its_own_statement(
    read_thread, member
):
    thread, _ = read_thread
    elsewhere = make_group("elsewhere")  # a new group changes every page's version
    with backends.read_with_member(selectors.viewer_with_member(thread.pk)):
        user = backends.load_member(member.pk)
    kept = selectors.thread_to_read(user, slug=thread.group.slug, thread_id=thread.pk)
    assert kept.viewer.role == Membership.Role.MODERATOR  # as read with the member
    # Moved where the reader has no role, in a write the page's versions missed: the
    # rows kept for the page still name the old group, the rider reads the new one.
    type(thread).objects.filter(pk=thread.pk).update(group=elsewhere)
    with backends.read_with_member(selectors.viewer_with_member(thread.pk)):
        moved = backends.load_member(member.pk)
    assert getattr(moved, selectors.VIEWER_ATTRIBUTE)[2].role is None
    with CaptureQueriesContext(connection) as queries:
        read = selectors.thread_to_read(moved, slug=thread.group.slug, thread_id=thread.pk)
    assert len(queries) == 1  # its own statement, for the group the page shows
    assert read.group == thread.group and read.viewer.role == Membership.Role.MODERATOR
