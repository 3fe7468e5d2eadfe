"""The benchmark seed: a large community built in bulk, consistent with the write path."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Max, Sum

from forum import publishing, sanitize
from forum.management.commands.seed_bench import MARKDOWN_SOURCES
from forum.models import ChatMessage, ChatRoom, Membership, Post, SupportGroup, Thread, User
from forum.models.threads import path_segment
from moderation.models import FLAG_WEIGHTS, Flag, FlagReason, ModerationLogEntry, QueueItem

SCALE = 0.004


def seed(scale: float = SCALE) -> str:
    out = StringIO()
    call_command("seed_bench", scale=scale, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return seed()


def test_sizes_follow_the_scale(seeded):
    assert User.objects.count() == 30  # 5,000 x 0.004 = 20: the floor of 30 applies
    assert Thread.objects.count() == 40
    assert Post.objects.count() == 1_200
    assert SupportGroup.objects.count() == 3
    assert ChatMessage.objects.count() == 240
    assert ModerationLogEntry.objects.count() == 40
    assert "1200 posts" in seeded


def test_trees_and_counters_are_what_publishing_would_have_stored(seeded):
    posts = {post.pk: post for post in Post.objects.all()}
    children = Post.objects.values("parent_id").annotate(n=Count("pk"))
    replies_to = {row["parent_id"]: row["n"] for row in children}
    for post in posts.values():
        parent = posts.get(post.parent_id)
        prefix = parent.path if parent else ""
        assert post.path == prefix + path_segment(post.pk)
        assert post.depth == (parent.depth + 1 if parent else 0)
        assert post.reply_count == replies_to.get(post.pk, 0)
        assert parent is None or parent.thread_id == post.thread_id
    assert max(post.depth for post in posts.values()) > 6  # "continue this thread" exists
    for thread in Thread.objects.all():
        rows = sorted(
            (post for post in posts.values() if post.thread_id == thread.pk),
            key=lambda post: post.created_at,
        )
        assert sum(1 for post in rows if post.parent_id is None) == 1
        assert thread.reply_count == len(rows) - 1
        assert thread.last_activity_at == rows[-1].created_at
        assert thread.last_poster_id == rows[-1].author_id
    # The benchmark's thread page: threads of exactly 30 posts exist.
    assert Thread.objects.filter(reply_count=29).count() >= 10


def test_html_is_the_sanitiser_s_rendering_of_the_source(seeded):
    rendered = {source: sanitize.render_markdown(source) for source in MARKDOWN_SOURCES}
    for source, html in Post.objects.values_list("source", "html").distinct():
        assert html == rendered[source]


def test_members_chat_and_moderation_counters_agree(seeded):
    for group in SupportGroup.objects.annotate(n=Count("memberships")):
        assert group.member_count == group.n > 0
        assert Membership.objects.filter(group=group, role="leader").exists()
    for room in ChatRoom.objects.annotate(top=Max("messages__seq"), n=Count("messages")):
        assert room.last_seq == (room.top or 0) == room.n
    kinds = set()
    for item in QueueItem.objects.annotate(n=Count("flags")):
        flags = Flag.objects.filter(item=item)
        assert item.flag_count == item.n > 0
        assert item.weight == sum(FLAG_WEIGHTS[FlagReason(flag.reason)] for flag in flags)
        assert item.is_urgent == flags.filter(reason=FlagReason.CRISIS).exists()
        assert not flags.filter(flagger_id=item.member_id).exists()
        assert all(
            (flag.content_type_id, flag.object_id) == (item.content_type_id, item.object_id)
            for flag in flags
        )
        if item.state == "open":
            kinds.add(item.content_type.model)
    assert kinds == {"post", "thread", "chatmessage", "user"}
    assert Post.objects.aggregate(s=Sum("support_count"))["s"] > 0


def test_the_site_writes_after_the_seed_without_colliding(seeded, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    thread = Thread.objects.filter(is_locked=False, hidden_at__isnull=True).first()
    author = Membership.objects.filter(group=thread.group).first().user
    post = publishing.publish_reply(author=author, thread=thread, body="Still here, day 41.")
    assert post.pk > Post.objects.exclude(pk=post.pk).aggregate(m=Max("pk"))["m"]
    assert post.path.endswith(path_segment(post.pk))


def test_refuses_a_database_that_is_not_empty(seeded):
    with pytest.raises(CommandError, match="not empty"):
        seed()
    assert Thread.objects.count() == 40


@pytest.mark.django_db
@pytest.mark.parametrize("scale", [0, -1, 11])
def test_refuses_a_scale_out_of_range(scale):
    with pytest.raises(CommandError, match="--scale"):
        seed(scale)
    assert not User.objects.exists()
