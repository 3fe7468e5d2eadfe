"""Slow mode on a thread or a chat room: set by its group's leaders and moderators,
logged, enforced by the write path for everyone else, shown and broadcast."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from forum import publishing
from forum.models import ChatMessage, ChatRoom, Membership, Post
from moderation import actions
from moderation.models import ModerationLogEntry
from moderation.ratelimit import RateLimited
from tests.chat_helpers import open_socket, run_async
from tests.conftest import join, make_group, make_user

Action = ModerationLogEntry.Action


@pytest.fixture
def circle(db, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.LEADER)
    thread = publishing.publish_thread(author=meadow, group=group, title="Day three", body="Hi")
    room = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group, thread, room, river, meadow, sage


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def backdate_posts(author, seconds: int) -> None:
    earlier = timezone.now() - timedelta(seconds=seconds)
    Post.objects.filter(author=author).update(created_at=earlier)
    ChatMessage.objects.filter(author=author).update(created_at=earlier)


def test_a_leader_sets_slow_mode_on_a_thread_and_it_is_logged(circle):
    group, thread, _room, _river, _meadow, sage = circle
    actions.set_slow_mode(actor=sage, place=thread, seconds=120, reason="Heated")
    thread.refresh_from_db()
    assert thread.slow_mode_seconds == 120
    entry = ModerationLogEntry.objects.get(action=Action.PLACE_SLOW_MODE_SET)
    assert (entry.actor_handle, entry.group_id, entry.target_type, entry.target_id) == (
        "sage",
        group.pk,
        "thread",
        thread.pk,
    )
    assert (entry.before, entry.after) == ({"slow_mode_seconds": 0}, {"slow_mode_seconds": 120})
    assert entry.created_at is not None and entry.reason == "Heated"
    actions.set_slow_mode(actor=sage, place=thread, seconds=0)
    assert ModerationLogEntry.objects.filter(action=Action.PLACE_SLOW_MODE_OFF).count() == 1


def test_members_cannot_set_slow_mode_and_bad_values_are_refused(circle):
    _group, thread, room, river, _meadow, sage = circle
    with pytest.raises(PermissionDenied):
        actions.set_slow_mode(actor=river, place=room, seconds=60)
    for seconds in (5, 86_401, -1):
        with pytest.raises(ValidationError) as error:
            actions.set_slow_mode(actor=sage, place=thread, seconds=seconds)
        assert "seconds" in error.value.message_dict
    actions.set_slow_mode(actor=sage, place=thread, seconds=60)
    with pytest.raises(ValidationError):  # acting twice changes nothing
        actions.set_slow_mode(actor=sage, place=thread, seconds=60)
    assert not ModerationLogEntry.objects.filter(actor_handle="river").exists()


def test_replies_in_a_slow_thread_wait_but_leaders_do_not(circle):
    _group, thread, _room, river, _meadow, sage = circle
    actions.set_slow_mode(actor=sage, place=thread, seconds=60)
    publishing.publish_reply(author=river, thread=thread, body="First")
    with pytest.raises(RateLimited) as limited:
        publishing.publish_reply(author=river, thread=thread, body="Second")
    assert 55 <= limited.value.retry_after <= 60
    assert "This thread is in slow mode" in str(limited.value)
    # The leader is exempt; another thread of the same group is not slowed.
    publishing.publish_reply(author=sage, thread=thread, body="Leader one")
    publishing.publish_reply(author=sage, thread=thread, body="Leader two")
    other = publishing.publish_thread(author=river, group=thread.group, title="Elsewhere", body="x")
    publishing.publish_reply(author=river, thread=other, body="Not slowed here")
    backdate_posts(river, 61)
    publishing.publish_reply(author=river, thread=thread, body="After the wait")


def test_messages_in_a_slow_room_wait(circle):
    _group, _thread, room, river, _meadow, sage = circle
    actions.set_slow_mode(actor=sage, place=room, seconds=30)
    publishing.publish_chat_message(author=river, room=room, body="Hello", client_id="a")
    with pytest.raises(RateLimited) as limited:
        publishing.publish_chat_message(author=river, room=room, body="Again", client_id="b")
    assert "This room is in slow mode" in str(limited.value)
    publishing.publish_chat_message(author=sage, room=room, body="Lead 1", client_id="c")
    publishing.publish_chat_message(author=sage, room=room, body="Lead 2", client_id="d")
    backdate_posts(river, 31)
    publishing.publish_chat_message(author=river, room=room, body="Later", client_id="e")


def test_the_thread_page_shows_slow_mode_and_the_form_posts_it(circle):
    _group, thread, _room, river, _meadow, sage = circle
    url = f"{thread.get_absolute_url()}slow-mode/"
    assert 'name="seconds"' not in as_user(river).get(thread.get_absolute_url()).content.decode()
    assert as_user(river).post(url, {"seconds": "60"}).status_code == 403
    leader = as_user(sage)
    assert 'name="seconds"' in leader.get(thread.get_absolute_url()).content.decode()
    assert leader.post(url, {"seconds": "300"}).status_code == 302
    page = as_user(river).get(thread.get_absolute_url()).content.decode()
    assert "Slow mode: one message every 300 seconds" in page
    # Bad input is a message, never a 500, and changes nothing.
    response = leader.post(url, {"seconds": "soon"}, follow=True)
    assert "Choose how long" in response.content.decode()
    thread.refresh_from_db()
    assert thread.slow_mode_seconds == 300


def test_a_refused_reply_says_the_thread_is_in_slow_mode(circle):
    _group, thread, _room, river, _meadow, sage = circle
    actions.set_slow_mode(actor=sage, place=thread, seconds=60)
    client = as_user(river)
    reply_url = f"{thread.get_absolute_url()}reply/"
    assert client.post(reply_url, {"body": "One"}).status_code == 302
    response = client.post(reply_url, {"body": "Two"})
    assert "This thread is in slow mode" in response.content.decode()
    assert "Two" in response.content.decode()  # the text is kept


def test_the_room_page_shows_slow_mode(circle):
    _group, _thread, room, river, _meadow, sage = circle
    assert (
        as_user(sage).post(f"{room.get_absolute_url()}slow-mode/", {"seconds": "30"}).status_code
        == 302
    )
    page = as_user(river).get(room.get_absolute_url()).content.decode()
    assert "Slow mode: one message every 30 seconds" in page


@pytest.mark.django_db(transaction=True)
def test_the_room_frame_carries_slow_mode_live(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, sage = make_user("river"), make_user("sage")
    join(river, group)
    join(sage, group, Membership.Role.LEADER)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")

    async def scenario():
        socket = await open_socket(room, river)
        await socket.expect("history", skip=())
        first = await socket.expect("room", skip=())
        assert first["slow_mode"] == 0
        await sync_to_async(actions.set_slow_mode)(actor=sage, place=room, seconds=45)
        frame = await socket.expect("room", skip={"presence", "heartbeat", "typing"})
        assert frame["slow_mode"] == 45
        await socket.send({"type": "send", "client_id": "a", "body": "one"})
        await socket.expect("ack", client_id="a", skip={"presence", "heartbeat", "message"})
        await socket.send({"type": "send", "client_id": "b", "body": "two"})
        error = await socket.expect("error", skip={"presence", "heartbeat", "message"})
        assert error["code"] == "rate_limited" and "This room is in slow mode" in error["message"]
        assert 40 <= error["retry_after"] <= 45
        await socket.disconnect()

    run_async(scenario)
