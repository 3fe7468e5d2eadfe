"""forum.selectors: reads written by hand answer as the ORM's did."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import JSONField, OuterRef, Q, Subquery
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import backends, engagement, publishing, selectors
from forum.models import (
    ChatMessage,
    ChatRoom,
    LiveSession,
    Membership,
    Notification,
    Post,
    SessionRSVP,
    Subscription,
    SupportGroup,
    Thread,
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
def test_a_members_thread_page_runs_one_statement_and_none_while_their_standing_holds(
    client, read_thread, member
):
    thread, _ = read_thread
    client.force_login(member)
    client.get(thread.get_absolute_url())  # a returning reader: session and rows kept
    with CaptureQueriesContext(connection) as queries:
        assert client.get(thread.get_absolute_url()).status_code == 200
    assert queries.captured_queries == []  # the member's statement answered as kept
    engagement.set_thread_mute(user=member, thread=thread, muted=False)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(thread.get_absolute_url()).status_code == 200
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


def _listing_by_orm(group, user, *, page: int) -> list[tuple]:
    """What the group listing answered through the ORM before it was written by hand."""
    opening = Post.objects.filter(thread=OuterRef("pk"), parent__isnull=True)
    threads = Thread.objects.filter(group=group).annotate(
        cw_categories=Subquery(opening.values("cw_categories")[:1], output_field=JSONField())
    )
    if user is None or not permissions.can_moderate(user, "hide_content", group):
        mine = Q(author=user) if user is not None and user.is_authenticated else Q(pk__in=[])
        threads = threads.filter(Q(hidden_at__isnull=True) | mine)
    threads = threads.select_related("author", "last_poster").order_by(
        "-is_pinned", "-last_activity_at", "-pk"
    )
    start = (page - 1) * selectors.THREADS_PER_PAGE
    return [_listed(t) for t in threads[start : start + selectors.THREADS_PER_PAGE]]


def _listed(thread) -> tuple:
    fields = tuple(getattr(thread, f.attname) for f in Thread._meta.concrete_fields)
    handles = tuple(m.handle if m else None for m in (thread.author, thread.last_poster))
    return (*fields, thread.cw_categories, *handles)


@pytest.mark.django_db
def test_group_listing_answers_as_the_orm_did(settings, public_group, member, other_member):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    moderator = make_user("heron")
    join(moderator, public_group, Membership.Role.MODERATOR)
    threads = [
        thread_among(settings, public_group, author, title=f"Thread {n}", body=f"Day {n}.")
        for n, author in enumerate([member, other_member] * 14)
    ]
    publishing.publish_reply(author=other_member, thread=threads[3], parent=None, body="Same.")
    Thread.objects.filter(pk=threads[5].pk).update(is_pinned=True)
    Post.objects.filter(thread=threads[6], parent=None).update(cw_categories=["relapse"])
    Thread.objects.filter(pk__in=[threads[7].pk, threads[8].pk]).update(hidden_at=timezone.now())
    User.objects.filter(pk=other_member.pk).update(handle="meadow-renamed")
    for user in (AnonymousUser(), None, member, other_member, moderator):
        for page in (1, 2, 3):
            window = selectors.group_threads(public_group, page=page, user=user)
            expected = _listing_by_orm(public_group, user, page=page)
            assert [_listed(t) for t in window.items] == expected
            assert window.has_next == (page == 1)
    visible = selectors.group_threads(public_group, page=1, user=member).items
    assert visible[0].pk == threads[5].pk  # pinned first
    assert threads[8].pk in {t.pk for t in visible}  # their own hidden thread
    assert threads[7].pk not in {t.pk for t in visible}  # another's


@pytest.mark.django_db
def test_group_listing_reads_its_members_for_their_handles_only(settings, public_group, member):
    thread_among(settings, public_group, member, title="Morning check-in", body="Day 12.")
    [thread] = selectors.group_threads(public_group, page=1, user=member).items
    assert (thread.author.handle, thread.last_poster.handle) == (member.handle, member.handle)
    for who in (thread.author, thread.last_poster):
        assert {"password", "email", "bio_html", "cw_preferences"} <= who.get_deferred_fields()
    assert not thread.get_deferred_fields()  # the thread itself is whole


def _session_at(group, leader, starts, **extra):
    number = LiveSession.objects.count() + 1
    room = ChatRoom.objects.create(
        group=group, name=f"Session {number}", slug=f"session-{number}", kind=ChatRoom.Kind.SESSION
    )
    return LiveSession.objects.create(
        group=group,
        room=room,
        title=f"Share {number}",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        leader=leader,
        **extra,
    )


@pytest.mark.django_db
def test_upcoming_sessions_answer_as_the_orm_did(settings, public_group, member, other_member):
    settings.KINSHIP_SESSION_GRACE_MINUTES = 60
    now = timezone.now()
    hour = timedelta(hours=1)
    listed = [
        _session_at(public_group, member, now - hour / 2),  # running
        _session_at(public_group, member, now + hour),
        _session_at(public_group, member, now + 2 * hour, cancelled_at=now),  # still marked
        _session_at(public_group, member, now + 3 * hour),
        _session_at(public_group, member, now - hour * 1.5),  # over, within the grace
    ]
    _session_at(public_group, member, now - 3 * hour)  # past the grace
    _session_at(public_group, member, now - hour / 2, ended_at=now)  # ended by its leader
    _session_at(public_group, member, now - hour / 2, cancelled_at=now)  # cancelled, begun
    _session_at(make_group("elsewhere"), member, now + hour)
    for session in listed[1:3]:
        SessionRSVP.objects.create(session=session, user=other_member)
    SessionRSVP.objects.create(session=listed[1], user=member)

    def by_orm(user, limit):
        upcoming = selectors._listed_sessions(user, public_group).filter(
            selectors._session_not_over(now), Q(cancelled_at__isnull=True) | Q(starts_at__gt=now)
        )
        rows = upcoming.order_by("starts_at", "pk")[:limit]
        going = lambda s: getattr(s, "going", False)  # noqa: E731 (not asked of visitors)
        return [(s.pk, s.title, s.starts_at, s.rsvp_count, going(s)) for s in rows]

    for user in (member, other_member, AnonymousUser()):
        for limit in (2, 10):
            found = selectors.upcoming_sessions(user, public_group, limit=limit, now=now)
            answered = [(s.pk, s.title, s.starts_at, s.rsvp_count, s.going) for s in found]
            assert answered == by_orm(user, limit)
    found = selectors.upcoming_sessions(member, public_group, limit=10, now=now)
    assert [s.pk for s in found] == [listed[i].pk for i in (4, 0, 1, 2, 3)]
    assert [(s.rsvp_count, s.going) for s in found][2] == (2, True)


@pytest.mark.django_db
def test_a_group_read_with_the_member_is_their_own_statements_answer(
    django_assert_num_queries, private_group, member, outsider
):
    join(member, private_group, Membership.Role.LEADER)
    own = selectors.get_group_for(backends.load_member(member.pk), private_group.slug)
    with backends.read_with_member(selectors.group_with_member(private_group.slug)):
        user = backends.load_member(member.pk)
    with django_assert_num_queries(0):
        read = selectors.get_group_for(user, private_group.slug)
        assert permissions.membership_role(user, read) == Membership.Role.LEADER
    fields = [field.attname for field in SupportGroup._meta.concrete_fields]
    assert [getattr(read, f) for f in fields] == [getattr(own, f) for f in fields]
    with django_assert_num_queries(1):  # used once: a later read reads afresh
        selectors.get_group_for(user, private_group.slug)
    # Nobody else's role, and the same refusal as ever for a private group.
    with backends.read_with_member(selectors.group_with_member(private_group.slug)):
        stranger = backends.load_member(outsider.pk)
    with pytest.raises(Http404):
        selectors.get_group_for(stranger, private_group.slug)
    with pytest.raises(Http404):
        selectors.get_group_for(AnonymousUser(), private_group.slug)


@pytest.mark.django_db
def test_a_missing_group_read_with_the_member_is_not_found_and_another_read_afresh(
    django_assert_num_queries, public_group, member
):
    with backends.read_with_member(selectors.group_with_member("no-such-group")):
        user = backends.load_member(member.pk)
    assert user is not None  # the member is there, the group is not
    with pytest.raises(Http404):
        selectors.get_group_for(user, "no-such-group")
    with backends.read_with_member(selectors.group_with_member("no-such-group")):
        user = backends.load_member(member.pk)
    with django_assert_num_queries(1):
        group = selectors.get_group_for(user, public_group.slug)
    assert group.pk == public_group.pk and group.viewer_role is None


def _threads_at(group: SupportGroup, author: User, minutes_ago: list[int]) -> list[Thread]:
    """Threads of ``group`` last active that many minutes ago (in bulk: the order is what
    is under test)."""
    now = timezone.now()
    return Thread.objects.bulk_create(
        Thread(
            group=group,
            author=author,
            title=f"{group.slug} {m}",
            last_activity_at=now - timedelta(minutes=m),
        )
        for m in minutes_ago
    )


@pytest.mark.django_db
def test_recent_threads_are_the_latest_across_the_groups_given(settings, member, other_member):
    busy, quiet, elsewhere = make_group("busy"), make_group("quiet"), make_group("elsewhere")
    groups = [busy, quiet]
    busy_threads = _threads_at(busy, other_member, list(range(1, 25, 2)))  # 12, the newest
    quiet_threads = _threads_at(quiet, other_member, [2, 90])
    _threads_at(elsewhere, other_member, [0])  # not one of theirs
    opening = thread_among(
        settings, quiet, member, title="Mine", body="Day 3.", cw_categories=["use"]
    )
    Thread.objects.filter(pk=opening.pk).update(last_activity_at=timezone.now())

    recent = selectors.recent_threads_in(member, groups, limit=10)

    expected = [opening.pk, busy_threads[0].pk, quiet_threads[0].pk]
    expected += [thread.pk for thread in busy_threads[1:8]]
    assert [thread.pk for thread in recent] == expected
    assert recent[0].cw_categories == ["use"] and recent[1].cw_categories is None
    assert recent[0].group is quiet and recent[1].group is busy  # the groups given, no query
    assert len(selectors.recent_threads_in(member, [busy], limit=10)) == 10  # all from one


@pytest.mark.django_db
def test_recent_threads_leave_out_hidden_threads_but_the_viewer_s_own(member, other_member):
    group = make_group("hidden-ones")
    theirs, mine, shown = _threads_at(group, other_member, [1, 2, 3])
    Thread.objects.filter(pk=mine.pk).update(author=member)
    Thread.objects.filter(pk__in=[theirs.pk, mine.pk]).update(hidden_at=timezone.now())

    assert [t.pk for t in selectors.recent_threads_in(member, [group])] == [mine.pk, shown.pk]
    assert [t.pk for t in selectors.recent_threads_in(other_member, [group])] == [
        theirs.pk,
        shown.pk,
    ]
    assert [t.pk for t in selectors.recent_threads_in(AnonymousUser(), [group])] == [shown.pk]
    assert selectors.recent_threads_in(member, []) == []


@pytest.mark.django_db
def test_recent_threads_of_many_groups_are_read_a_statement_per_batch(monkeypatch, member):
    groups = [make_group(f"batch-{n}") for n in range(5)]
    for n, group in enumerate(groups):
        _threads_at(group, member, [n, 10 + n])
    everything = [t.pk for t in selectors.recent_threads_in(member, groups, limit=7)]
    monkeypatch.setattr(selectors, "RECENT_GROUPS_PER_STATEMENT", 2)

    with CaptureQueriesContext(connection) as queries:
        batched = [t.pk for t in selectors.recent_threads_in(member, groups, limit=7)]

    assert batched == everything
    assert len(everything) == 7 and len(queries) == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.django_db
def test_recent_threads_read_only_the_head_of_each_group(member):
    """A group's older threads are never read: reading them all and sorting grew with the
    group (bench/README.md)."""
    groups = [make_group("long-history"), make_group("longer-history")]
    for group in groups:
        _threads_at(group, member, list(range(60)))
    statement = selectors._recent_threads_sql(2)
    params = [value for group in groups for value in (group.pk, member.pk, 5)] + [5]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE forum_thread")  # as autovacuum would have, after all these
        cursor.execute("SET LOCAL enable_seqscan = off")  # these few rows, as if many
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
        plan = cursor.fetchone()[0]
    scans = [node for node in _plan_nodes(plan[0]["Plan"]) if node.get("Alias", "").startswith("r")]
    assert len(scans) == 2, plan
    assert [node.get("Index Name") for node in scans] == ["thread_recent"] * 2, scans
    assert [node["Actual Rows"] <= 5 for node in scans] == [True] * 2, scans


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
