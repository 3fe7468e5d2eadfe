"""Blocking a member: their words fold away and stop notifying you; they are not told."""

import pytest
from django.test import Client

from forum import engagement, publishing
from forum.models import Block, Notification
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def circle(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, thorn, meadow = make_user("river"), make_user("thorn"), make_user("meadow")
    for user in (river, thorn, meadow):
        join(user, group)
    thread = publishing.publish_thread(
        author=river, group=group, title="Day three", body="Hard day, still here."
    )
    return group, thread, river, thorn, meadow


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_blocking_from_a_profile_tells_only_the_blocker(circle):
    _group, _thread, river, thorn, _meadow = circle
    client = as_user(river)
    response = client.post(f"/u/{thorn.handle}/block/", follow=True)
    assert "You blocked thorn" in response.content.decode()
    assert Block.objects.filter(blocker=river, blocked=thorn).exists()
    assert not Notification.objects.filter(recipient=thorn).exists()
    profile_for_thorn = as_user(thorn).get(f"/u/{river.handle}/").content.decode()
    assert "blocked" not in profile_for_thorn.lower()
    assert "Unblock" in client.get(f"/u/{thorn.handle}/").content.decode()


def test_a_blocked_members_replies_and_mentions_do_not_notify(circle):
    _group, thread, river, thorn, meadow = circle
    engagement.block_member(user=river, member=thorn)
    publishing.publish_reply(author=thorn, thread=thread, body="Hey @river, read this")
    assert not Notification.objects.filter(recipient=river).exists()
    publishing.publish_reply(author=meadow, thread=thread, body="Thinking of you @river")
    assert Notification.objects.filter(recipient=river, actor=meadow).exists()


def test_a_blocked_members_posts_fold_away_for_the_blocker_only(circle):
    _group, thread, river, thorn, meadow = circle
    publishing.publish_reply(author=thorn, thread=thread, body="Words river chose not to see")
    engagement.block_member(user=river, member=thorn)
    url = thread.get_absolute_url()
    mine = as_user(river).get(url).content.decode()
    assert '<details class="blocked-post"><summary>You blocked thorn' in mine
    assert "Words river chose not to see" in mine  # still there, behind one click
    theirs = as_user(meadow).get(url).content.decode()
    assert "blocked-post" not in theirs and "Words river chose not to see" in theirs
    engagement.unblock_member(user=river, member=thorn)
    assert "blocked-post" not in as_user(river).get(url).content.decode()


def test_nobody_blocks_themselves_and_settings_lists_whom_you_blocked(circle):
    _group, _thread, river, thorn, _meadow = circle
    client = as_user(river)
    assert client.post(f"/u/{river.handle}/block/").status_code == 403
    client.post(f"/u/{thorn.handle}/block/")
    settings_page = client.get("/settings/").content.decode()
    assert f'href="/u/{thorn.handle}/"' in settings_page
    response = client.post(f"/u/{thorn.handle}/block/", {"unblock": "1", "next": "settings"})
    assert response.status_code == 302 and response.url == "/settings/"
    assert not Block.objects.exists()
    assert Client().post(f"/u/{thorn.handle}/block/").status_code == 302  # to the login page
