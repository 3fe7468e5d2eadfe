"""A member's standing version: replaced by every change to what the member's statement
reads (forum.backends), through whichever write makes it, and only theirs."""

import pytest
from django.core.cache import cache

from forum import engagement, memberships, notify, publishing, standing
from forum.models import Membership, Notification
from moderation import actions
from tests.conftest import make_user, suspend, thread_among

pytestmark = pytest.mark.django_db


def version(user) -> str | None:
    return cache.get(standing.version_key(user.pk))


def test_a_change_replaces_the_version_at_once_and_again_at_the_commit(
    member, django_capture_on_commit_callbacks
):
    before = version(member)
    with django_capture_on_commit_callbacks(execute=True):
        standing.changed(member.pk)
        during = version(member)
        assert during not in (None, before)
    assert version(member) not in (before, during)


def test_nobody_named_replaces_nothing(member):
    before = version(member)
    standing.changed(None)
    standing.changed_many([])
    assert version(member) == before


@pytest.fixture
def scene(settings, public_group, member, other_member, site_moderator):
    thread = thread_among(settings, public_group, other_member, member, title="T", body="Hello")
    return {
        "group": public_group,
        "thread": thread,
        "post": thread.posts.get(),
        "other": other_member,
        "moderator": site_moderator,
    }


def promote(member, group) -> None:
    membership = Membership.objects.get(user=member, group=group)
    membership.role = Membership.Role.MODERATOR
    membership.save()  # as the admin saves it


CHANGES = {
    "follows the thread": lambda m, s: engagement.set_subscription(
        user=m, thread=s["thread"], follow=True
    ),
    "mutes the thread": lambda m, s: engagement.set_thread_mute(
        user=m, thread=s["thread"], muted=True
    ),
    "supports a post": lambda m, s: engagement.toggle_support(user=m, post=s["post"]),
    "blocks a member": lambda m, s: engagement.block_member(user=m, member=s["other"]),
    "leaves the group": lambda m, s: memberships.leave_group(user=m, group=s["group"]),
    "is made a moderator": lambda m, s: promote(m, s["group"]),
    "is suspended": lambda m, s: suspend(m, s["group"], by=s["moderator"]),
    "is told something": lambda m, s: notify.notify(
        recipient=m, kind=Notification.Kind.MODERATION, text="Hello"
    ),
    "is told with others": lambda m, s: notify.notify_many(
        recipient_ids=[m.pk, s["other"].pk], kind=Notification.Kind.MODERATION, text="Hello"
    ),
    "holds a reply": lambda m, s: publishing.hold_reply(
        author=m, thread=s["thread"], body="Later, please"
    ),
    "changes their row": lambda m, s: m.save(),
}


@pytest.mark.parametrize("change", CHANGES)
def test_each_change_to_the_members_standing_replaces_their_version(scene, member, change):
    bystander = make_user("bystander")
    before, theirs = version(member), version(bystander)
    CHANGES[change](member, scene)
    assert version(member) != before
    assert version(bystander) == theirs


def test_reading_every_notification_replaces_the_version(scene, member):
    notify.notify(recipient=member, kind=Notification.Kind.MODERATION, text="Hello")
    before = version(member)
    assert engagement.mark_notifications_read(user=member) == 1
    assert version(member) != before
    # Nothing left to read: nothing changed.
    after = version(member)
    assert engagement.mark_notifications_read(user=member) == 0
    assert version(member) == after


def test_a_lifted_sanction_replaces_the_version(scene, member):
    sanction = suspend(member, scene["group"], by=scene["moderator"])
    before = version(member)
    actions.lift_sanction(actor=scene["moderator"], sanction=sanction, reason="Talked it over")
    assert version(member) != before


def test_a_member_without_a_version_gets_one_and_keeps_it(member):
    cache.delete(standing.version_key(member.pk))  # a new cache, or the key evicted
    standing.ensure(member.pk)
    made = version(member)
    assert made is not None
    standing.ensure(member.pk)
    assert version(member) == made
