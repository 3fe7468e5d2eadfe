"""The demo seed: idempotent, usable accounts, content that went through the write path."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import Max

from forum.management.commands.seed_demo import ACCOUNTS, DEMO_PASSWORD, THREADS
from forum.models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Notification,
    Post,
    Reaction,
    SupportGroup,
    Thread,
    User,
)

HANDLES = (
    "demo-member",
    "demo-member2",
    "demo-leader",
    "demo-moderator",
    "demo-admin",
    "fresh-start-deals",
)


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            SupportGroup,
            Membership,
            Thread,
            Post,
            Notification,
            Reaction,
            ChatRoom,
            ChatMessage,
        )
    }


@pytest.fixture
def seeded(settings) -> str:
    settings.DEBUG = True  # the seed refuses to run without it
    settings.KINSHIP_TRUST_RULES = True  # as `make run` has it
    return seed()


@pytest.mark.django_db
def test_second_run_creates_nothing(seeded):
    first = counts()
    assert all(
        first[name] > 0
        for name in ("User", "SupportGroup", "Thread", "Post", "ChatRoom", "ChatMessage")
    )

    output = seed()

    assert counts() == first
    assert f"Threads: 0 created (with 0 replies), {len(THREADS)} already present." in output


@pytest.mark.django_db
def test_demo_accounts_sign_in_with_the_demo_password(seeded):
    assert {spec.handle for spec in ACCOUNTS} == set(HANDLES)
    for handle in HANDLES:
        assert authenticate(username=handle, password=DEMO_PASSWORD) is not None, handle
    moderator = User.objects.get(handle="demo-moderator")
    admin = User.objects.get(handle="demo-admin")
    assert moderator.is_site_moderator
    assert not moderator.memberships.exists()
    assert admin.is_staff
    assert admin.is_superuser


@pytest.mark.django_db
def test_every_group_is_led_by_demo_leader_and_the_private_one_excludes_member2(seeded):
    leader = User.objects.get(handle="demo-leader")
    for group in SupportGroup.objects.all():
        assert Membership.objects.get(group=group, user=leader).role == Membership.Role.LEADER
        assert group.member_count == group.memberships.count()
    private = SupportGroup.objects.get(visibility=SupportGroup.Visibility.PRIVATE)
    members = set(private.memberships.values_list("user__handle", flat=True))
    assert "demo-member" in members
    assert "demo-member2" not in members


@pytest.mark.django_db
def test_posts_are_nested_sanitised_and_in_time_order(seeded):
    assert Post.objects.filter(depth__gte=2).exists()
    assert Thread.objects.exclude(content_warning="").exists()
    assert Post.objects.filter(html__contains='class="mention"').exists()
    assert not Post.objects.filter(html__icontains="<script").exists()
    for post in Post.objects.select_related("parent"):
        if post.parent is not None:
            assert post.created_at > post.parent.created_at, post.pk
    for thread in Thread.objects.annotate(latest=Max("posts__created_at")):
        assert thread.last_activity_at == thread.latest, thread.title
        assert thread.created_at == thread.posts.get(parent__isnull=True).created_at


@pytest.mark.django_db
def test_refuses_to_run_without_debug(settings):
    settings.DEBUG = False
    err = StringIO()
    call_command("seed_demo", stdout=StringIO(), stderr=err)
    assert "skipped" in err.getvalue()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_community_is_visible_and_the_newcomers_spam_waits_in_the_queue(seeded):
    from forum.models import ChatMessage, Post
    from moderation.models import QueueItem

    held = Post.objects.filter(hidden_at__isnull=False)
    assert list(held.values_list("author__handle", flat=True)) == ["fresh-start-deals"]
    assert not ChatMessage.objects.filter(removed_at__isnull=False).exists()
    item = QueueItem.objects.get(state=QueueItem.State.OPEN)
    assert item.member.handle == "fresh-start-deals"
    assert item.held_by_policy and item.hidden_pending_review


@pytest.mark.django_db
def test_with_trust_rules_off_two_members_flag_the_spam(settings):
    from moderation.models import QueueItem

    settings.DEBUG = True
    settings.KINSHIP_TRUST_RULES = False
    seed()
    item = QueueItem.objects.get(state=QueueItem.State.OPEN)
    assert item.member.handle == "fresh-start-deals"
    assert sorted(item.flags.values_list("reason", flat=True)) == ["misinformation", "spam"]
    assert not item.hidden_pending_review  # two flags: below the three that hide
