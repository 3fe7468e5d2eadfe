"""Pages run a small, constant number of queries whatever the data size."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from forum import publishing
from forum.models import Membership, Post, Thread, User
from forum.models.threads import path_segment
from tests.conftest import join, make_user

# One of them reads the viewer's sanctions in force (may they reply?).
THREAD_PAGE_MAX_QUERIES = 5
GROUP_PAGE_MAX_QUERIES = 6


@pytest.fixture
def unlimited(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0


def grow_tree(thread: Thread, authors, count: int) -> None:
    """Add ``count`` replies in a branching tree, in bulk (the shape, not the write path,
    is what these tests are about)."""
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    parents = [opening]
    made = 0
    while made < count:
        batch = []
        for parent in parents:
            for _ in range(3):
                if made + len(batch) >= count:
                    break
                batch.append(
                    Post(
                        thread=thread,
                        author=authors[(made + len(batch)) % len(authors)],
                        parent=parent,
                        depth=parent.depth + 1,
                        source="hi",
                        html="<p>hi</p>",
                        path="",
                    )
                )
        created = Post.objects.bulk_create(batch)
        for post in created:
            post.path = post.parent.path + path_segment(post.pk)
        Post.objects.bulk_update(created, ["path"])
        made += len(created)
        parents = created
    Thread.objects.filter(pk=thread.pk).update(reply_count=count)


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
@pytest.mark.usefixtures("unlimited")
@pytest.mark.parametrize("logged_in", [False, True])
def test_thread_page_queries_do_not_grow_with_the_thread(client, public_group, member, logged_in):
    join(member, public_group)
    others = [make_user(f"peer{i}") for i in range(3)]
    for other in others:
        join(other, public_group)
    small = publishing.publish_thread(author=member, group=public_group, title="Small", body="a")
    large = publishing.publish_thread(author=member, group=public_group, title="Large", body="b")
    grow_tree(small, others, 10)
    grow_tree(large, others, 1000)
    if logged_in:
        client.force_login(member)
        client.get("/")  # warm the session cache as a returning reader's would be

    small_count = count_queries(client, small.get_absolute_url())
    large_count = count_queries(client, large.get_absolute_url())
    assert small_count == large_count
    assert large_count <= THREAD_PAGE_MAX_QUERIES
    page_two = count_queries(client, large.get_absolute_url() + "?page=2")
    assert page_two <= large_count


@pytest.mark.django_db
@pytest.mark.usefixtures("unlimited")
@pytest.mark.parametrize("logged_in", [False, True])
def test_group_page_queries_do_not_grow_with_threads(client, member, logged_in):
    from tests.conftest import make_group

    quiet, busy = make_group("quiet-room"), make_group("busy-room")
    for group in (quiet, busy):
        join(member, group)
    for i in range(3):
        publishing.publish_thread(author=member, group=quiet, title=f"Q{i}", body=f"q{i}")
    for i in range(60):
        publishing.publish_thread(author=member, group=busy, title=f"B{i}", body=f"b{i}")
    if logged_in:
        client.force_login(member)
        client.get("/")
    assert count_queries(client, "/g/quiet-room/") == count_queries(client, "/g/busy-room/")
    assert count_queries(client, "/g/busy-room/") <= GROUP_PAGE_MAX_QUERIES


@pytest.mark.django_db
@pytest.mark.usefixtures("unlimited")
def test_home_page_queries_do_not_grow_with_threads_or_groups(client, member):
    from tests.conftest import make_group

    client.force_login(member)
    first = make_group("first-home")
    join(member, first)
    publishing.publish_thread(author=member, group=first, title="Hello", body="Day 1.")
    client.get("/")
    few = count_queries(client, "/")
    for i in range(20):
        group = make_group(f"home-{i}")
        join(member, group)
        for n in range(3):
            publishing.publish_thread(author=member, group=group, title=f"T{i}.{n}", body=f"{i}")
    client.get("/")  # joining moved the member's authority epoch (as above)
    page = client.get("/").content.decode()
    assert "T19.2" in page and "Hello" not in page  # the latest ten of all 21 groups
    assert count_queries(client, "/") == few <= GROUP_PAGE_MAX_QUERIES


@pytest.mark.django_db
@pytest.mark.usefixtures("unlimited")
def test_directory_queries_do_not_grow_with_groups(client, member):
    from tests.conftest import make_group

    client.force_login(member)
    client.get("/")
    make_group("first-group")
    few = count_queries(client, "/groups/")
    for i in range(30):
        join(member, make_group(f"group-{i}"))
    # Joining moved the member's authority epoch: the next page re-checks the "Review
    # queue" link once (moderation.navigation); what is counted is the page after that.
    client.get("/groups/")
    assert count_queries(client, "/groups/") == few
    assert few <= GROUP_PAGE_MAX_QUERIES


# The pages bench/pages.py measures, at two sizes of the benchmark community (seed_bench).
BENCH_THREAD_PAGE_MAX_QUERIES = 5
BENCH_OTHER_PAGE_MAX_QUERIES = 6


class Rollback(Exception):
    """Undoes one size of the seeded community before the next is built."""


def bench_page_queries(scale: float) -> dict[str, int]:
    counts = {}
    try:
        with transaction.atomic():
            call_command("seed_bench", scale=scale, stdout=StringIO())
            thread = (
                Thread.objects.filter(
                    reply_count=29, group__visibility="public", hidden_at__isnull=True
                )
                .select_related("group")
                .first()
            )
            member = Membership.objects.filter(group=thread.group, role="member").first().user
            visitor, reader, moderator = Client(), Client(), Client()
            reader.force_login(member)
            moderator.force_login(User.objects.get(handle="bench-moderator-1"))
            pages = {
                "thread, logged out": (visitor, thread.get_absolute_url()),
                "thread, logged in": (reader, thread.get_absolute_url()),
                "group, logged out": (visitor, thread.group.get_absolute_url()),
                "group, logged in": (reader, thread.group.get_absolute_url()),
                "directory, logged out": (visitor, "/groups/"),
                "directory, logged in": (reader, "/groups/"),
                "home, logged out": (visitor, "/"),
                "home, logged in": (reader, "/"),
                "review queue": (moderator, "/moderation/queue/"),
            }
            for name, (client, url) in pages.items():
                client.get(url)  # a returning reader: session and caches warm
                counts[name] = count_queries(client, url)
            raise Rollback
    except Rollback:
        pass
    return counts


@pytest.mark.django_db
def test_benchmarked_pages_run_the_same_queries_at_two_sizes():
    small = bench_page_queries(0.003)
    large = bench_page_queries(0.05)  # 17 times the posts and threads, 8 times the members
    assert small == large
    for name, count in large.items():
        limit = (
            BENCH_THREAD_PAGE_MAX_QUERIES
            if name.startswith("thread")
            else BENCH_OTHER_PAGE_MAX_QUERIES
        )
        assert count <= limit, (name, count)
