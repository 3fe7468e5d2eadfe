"""Appeals: a member appeals one action taken on them or their words, once; another
moderator decides, once; granting reverses the action; both steps are logged."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from forum import publishing
from forum.models import Membership, User
from moderation import actions, permissions
from moderation.models import Appeal, ModerationLogEntry, QueueItem, Sanction
from moderation.ratelimit import RateLimited
from tests.conftest import make_user
from tests.moderation.test_actions import (
    assert_entry,
    content,
    fresh,
    is_hidden,
    log_mark,
    notices,
    one_entry,
    queue_changed,
    quiet_scene,
    recording_layer,
    run_committing,
)

Action = ModerationLogEntry.Action


@pytest.fixture
def scene(db, settings):
    return quiet_scene(settings)


@pytest.fixture
def layer(monkeypatch):
    return recording_layer(monkeypatch)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return run_committing(django_capture_on_commit_callbacks)


def entry_of(action: str) -> ModerationLogEntry:
    return ModerationLogEntry.objects.filter(action=action).latest("pk")


def hidden_post_entry(scene) -> ModerationLogEntry:
    actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="Off topic.")
    return entry_of(Action.CONTENT_HIDDEN)


def mute_entry(scene) -> ModerationLogEntry:
    actions.mute_in_chat(
        actor=scene.heron,
        member=scene.river,
        group=scene.group,
        reason="Flooding.",
        duration=timedelta(hours=1),
    )
    return entry_of(Action.CHAT_MUTE)


def test_an_appeal_opens_a_queue_item_and_tells_the_queue(scene, layer, committed):
    entry = hidden_post_entry(scene)
    layer.sent.clear()
    made = committed(actions.appeal, member=scene.river, entry=entry, text="It was *on topic*.")
    assert (made.entry, made.appellant, made.state) == (entry, scene.river, "pending")
    assert "<em>on topic</em>" in made.html
    item = QueueItem.objects.get(kind=QueueItem.Kind.APPEAL)
    assert (item.appeal, item.group_id, item.member, item.state) == (
        made,
        scene.group.pk,
        scene.river,
        "open",
    )
    assert queue_changed(layer, scene.group)


def test_an_action_is_appealed_once(scene):
    entry = hidden_post_entry(scene)
    actions.appeal(member=scene.river, entry=entry, text="Please look again.")
    with pytest.raises(ValidationError, match="already appealed"):
        actions.appeal(member=scene.river, entry=entry, text="Please, again.")
    assert Appeal.objects.count() == 1
    assert QueueItem.objects.filter(kind=QueueItem.Kind.APPEAL).count() == 1


def test_only_the_member_concerned_appeals_and_only_appealable_actions(scene):
    entry = hidden_post_entry(scene)
    with pytest.raises(PermissionDenied):
        actions.appeal(member=scene.peers[0], entry=entry, text="On their behalf.")
    actions.lock_thread(actor=scene.heron, thread=content(scene, "thread"))
    with pytest.raises(PermissionDenied):  # locking is not done to a member
        actions.appeal(member=scene.river, entry=entry_of(Action.THREAD_LOCKED), text="Unlock.")
    with pytest.raises(ValidationError) as error:
        actions.appeal(member=scene.river, entry=entry, text=" ")
    assert "text" in error.value.message_dict
    assert Appeal.objects.count() == 0


def test_appeals_are_rate_limited(scene, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "appeal": (1, 3600)}
    actions.appeal(member=scene.river, entry=hidden_post_entry(scene), text="One.")
    with pytest.raises(RateLimited):
        actions.appeal(member=scene.river, entry=mute_entry(scene), text="Two.")


def test_the_moderator_who_acted_does_not_decide(scene):
    made = actions.appeal(member=scene.river, entry=hidden_post_entry(scene), text="Look again.")
    with pytest.raises(PermissionDenied, match="Another moderator"):
        actions.decide_appeal(actor=scene.heron, appeal=made, grant=True, note="I was wrong.")
    assert Appeal.objects.get().state == "pending" and is_hidden(scene.post)


def test_the_appellant_never_decides_their_own_appeal(scene):
    # river moderates a group of their own and is muted there by a site moderator.
    Membership.objects.filter(user=scene.river, group=scene.private).update(
        role=Membership.Role.MODERATOR
    )
    actions.mute_in_chat(
        actor=scene.warden,
        member=scene.river,
        group=scene.private,
        reason="Flooding.",
        duration=timedelta(hours=1),
    )
    made = actions.appeal(member=scene.river, entry=entry_of(Action.CHAT_MUTE), text="Unfair.")
    river = User.objects.get(pk=scene.river.pk)
    with pytest.raises(PermissionDenied):
        actions.decide_appeal(actor=river, appeal=made, grant=True, note="Granted by me.")
    assert Appeal.objects.get().state == "pending"


def test_granting_an_appeal_against_a_removal_restores_the_content(scene):
    entry = hidden_post_entry(scene)
    made = actions.appeal(member=scene.river, entry=entry, text="It was on topic.")
    mark = log_mark()
    decided = actions.decide_appeal(
        actor=scene.warden, appeal=made, grant=True, note="You are right."
    )
    assert not is_hidden(scene.post)
    assert (decided.state, decided.decided_by, decided.decision_source) == (
        "granted",
        scene.warden,
        "You are right.",
    )
    log = one_entry(mark)
    assert_entry(
        log,
        actor=scene.warden,
        action=Action.APPEAL_GRANTED,
        target=("log entry", entry.pk),
        member=scene.river,
        reason="You are right.",
        group_id=scene.group.pk,
    )
    assert log.before == {"entry": entry.pk, "action": Action.CONTENT_HIDDEN}
    assert log.after == {"state": "granted"}
    item = QueueItem.objects.get(kind=QueueItem.Kind.APPEAL)
    assert (item.state, item.resolved_by) == ("resolved", scene.warden)
    notice = notices(scene.river)[0]
    assert "reversed" in notice.text and "warden" not in notice.text


def test_granting_an_appeal_against_a_chat_removal_restores_the_message(scene):
    actions.remove_chat_message(actor=scene.sage, message=content(scene, "chat message"))
    made = actions.appeal(member=scene.river, entry=entry_of(Action.CONTENT_HIDDEN), text="Why?")
    actions.decide_appeal(actor=scene.heron, appeal=made, grant=True, note="Fine.")
    assert not is_hidden(scene.message)


def test_granting_an_appeal_against_a_sanction_lifts_it(scene):
    made = actions.appeal(member=scene.river, entry=mute_entry(scene), text="I was not flooding.")
    assert not permissions.can_write_room(User.objects.get(pk=scene.river.pk), fresh(scene.room))
    actions.decide_appeal(actor=scene.warden, appeal=made, grant=True, note="Agreed.")
    sanction = Sanction.objects.get()
    assert sanction.lifted_at is not None and sanction.lifted_by == scene.warden
    publishing.publish_chat_message(
        author=User.objects.get(pk=scene.river.pk),
        room=fresh(scene.room),
        body="Thanks.",
        client_id="t",
    )


def test_granting_an_appeal_against_an_edit_puts_the_words_back(scene):
    actions.edit_content(
        actor=scene.heron, post=content(scene, "post"), body="[removed]", note="Phone number."
    )
    made = actions.appeal(
        member=scene.river, entry=entry_of(Action.CONTENT_EDITED), text="It is a helpline."
    )
    actions.decide_appeal(actor=scene.warden, appeal=made, grant=True, note="It is.")
    post = fresh(scene.post)
    assert post.source == "Call me at 555-0100." and post.moderator_note == ""


def test_upholding_keeps_the_action_and_is_logged(scene, layer, committed):
    entry = mute_entry(scene)
    made = actions.appeal(member=scene.river, entry=entry, text="Unfair.")
    mark = log_mark()
    committed(
        actions.decide_appeal, actor=scene.warden, appeal=made, grant=False, note="It stands."
    )
    assert queue_changed(layer, scene.group)
    assert Sanction.objects.get().is_active()
    log = one_entry(mark)
    assert_entry(
        log,
        actor=scene.warden,
        action=Action.APPEAL_UPHELD,
        target=("log entry", entry.pk),
        member=scene.river,
    )
    assert "upheld" in notices(scene.river)[0].text


def test_a_decision_is_final(scene):
    made = actions.appeal(member=scene.river, entry=hidden_post_entry(scene), text="Look again.")
    actions.decide_appeal(actor=scene.warden, appeal=made, grant=False, note="It stands.")
    mark = log_mark()
    for grant in (True, False):
        with pytest.raises(PermissionDenied, match="already been decided"):
            actions.decide_appeal(actor=scene.keeper, appeal=made, grant=grant, note="Change.")
    assert Appeal.objects.get().state == "upheld" and is_hidden(scene.post)
    assert log_mark() == mark


def test_a_decision_needs_a_note(scene):
    made = actions.appeal(member=scene.river, entry=hidden_post_entry(scene), text="Look again.")
    with pytest.raises(ValidationError) as error:
        actions.decide_appeal(actor=scene.warden, appeal=made, grant=True, note="")
    assert "note" in error.value.message_dict
    assert Appeal.objects.get().state == "pending"


def test_a_ban_appeal_is_for_site_moderators(scene):
    actions.ban_member(actor=scene.warden, member=scene.river, reason="Threats.")
    made = actions.appeal(member=scene.river, entry=entry_of(Action.BAN), text="Not me.")
    with pytest.raises(PermissionDenied):
        actions.decide_appeal(actor=scene.heron, appeal=made, grant=True, note="Hm.")
    other = make_user("ranger", is_site_moderator=True)
    actions.decide_appeal(actor=other, appeal=made, grant=True, note="Account was hacked.")
    assert not Sanction.objects.get().is_active()
