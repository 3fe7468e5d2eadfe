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
    LiveSession,
    Membership,
    Notification,
    Post,
    Reaction,
    SessionScript,
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
            LiveSession,
            SessionScript,
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


@pytest.mark.django_db
def test_the_demo_group_has_readings_a_weekly_series_and_a_session_open_now(seeded, settings):
    from datetime import timedelta

    from django.utils import timezone

    from forum import recurrence
    from forum.management.commands.seed_demo import LIVE_TITLE, SERIES_TITLE, SESSION_GROUP

    group = SupportGroup.objects.get(slug=SESSION_GROUP)
    leader = User.objects.get(handle="demo-leader")
    preamble = SessionScript.objects.get(group=group, title="Preamble")
    closing = SessionScript.objects.get(group=group, title="Closing")
    assert "<strong>" in preamble.html and 'href="/help/"' in closing.html

    series = LiveSession.objects.filter(group=group, title=SERIES_TITLE).order_by("starts_at")
    assert series.count() == settings.KINSHIP_SESSION_SERIES_WEEKS
    assert len({session.series for session in series}) == 1
    first = series.first()
    assert recurrence.local(first.starts_at, "Europe/London").date() == (
        timezone.localdate() + timedelta(days=1)
    )
    for session in series:
        assert session.time_zone == "Europe/London"
        assert recurrence.local(session.starts_at, "Europe/London").strftime("%H:%M") == "19:00"
        assert session.leader == leader and session.facilitator == leader
        assert (session.opening_script, session.closing_script) == (preamble, closing)
        assert session.phase() == LiveSession.Phase.SCHEDULED
        assert session.room.kind == ChatRoom.Kind.SESSION

    [live_now] = LiveSession.objects.filter(group=group, title=LIVE_TITLE)
    now = timezone.now()
    assert live_now.phase() == LiveSession.Phase.OPEN
    assert timedelta(minutes=9) < now - live_now.starts_at < timedelta(minutes=11)
    assert timedelta(minutes=49) < live_now.ends_at - now < timedelta(minutes=51)
    said = list(live_now.room.messages.order_by("seq").values_list("source", flat=True))
    assert said[0] == preamble.source and "Welcome, everyone" in said[1]
    # Session rooms stay off the group's room list.
    assert not group.rooms.filter(kind=ChatRoom.Kind.GROUP, name=LIVE_TITLE).exists()


@pytest.mark.django_db
def test_a_later_run_opens_a_new_live_session_only_when_the_last_is_over(seeded):
    from datetime import timedelta

    from django.utils import timezone

    from forum.management.commands.seed_demo import LIVE_TITLE

    before = LiveSession.objects.count()
    seed()
    assert LiveSession.objects.count() == before
    long_ago = timezone.now() - timedelta(days=2)
    LiveSession.objects.filter(title=LIVE_TITLE).update(
        starts_at=long_ago, ends_at=long_ago + timedelta(hours=1)
    )
    seed()
    assert LiveSession.objects.count() == before + 1
    assert [s.phase() for s in LiveSession.objects.filter(title=LIVE_TITLE)].count("open") == 1


@pytest.mark.django_db
def test_a_visitor_finds_a_mentor_a_private_conversation_and_goals(seeded, client):
    from forum.models import Conversation, Goal, Mentorship

    pairing = Mentorship.objects.get()
    assert (pairing.mentor.handle, pairing.mentee.handle) == ("demo-member2", "demo-member")
    assert pairing.state == Mentorship.State.ACTIVE
    conversation = Conversation.objects.get(mentorship=pairing)
    assert conversation.room.messages.filter(removed_at__isnull=True).count() == 3
    member = User.objects.get(handle="demo-member")
    assert Goal.objects.filter(owner=member).count() == 2
    client.force_login(member)
    assert "demo-member2" in client.get("/mentors/").text
    assert "Call someone every day" in client.get("/me/recovery/").text
    # Nobody else reads the pair's conversation, not even the site's moderator.
    client.force_login(User.objects.get(handle="demo-moderator"))
    assert client.get(f"/messages/{conversation.pk}/").status_code == 404
