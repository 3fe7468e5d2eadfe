"""Muting a thread or a chat room: it stops calling for your attention."""

import pytest
from django.test import Client

from forum import publishing
from forum.models import ChatRoom, Mute, Notification
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def circle(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, meadow = make_user("river"), make_user("meadow")
    join(river, group)
    join(meadow, group)
    thread = publishing.publish_thread(author=river, group=group, title="Day three", body="Hi")
    room = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group, thread, room, river, meadow


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_muted_thread_no_longer_notifies(circle):
    _group, thread, _room, river, meadow = circle
    client = as_user(river)
    mute_url = f"{thread.get_absolute_url()}mute/"
    assert client.post(mute_url, {"mute": "1"}).status_code == 302
    assert "Unmute" in client.get(thread.get_absolute_url()).content.decode()
    publishing.publish_reply(author=meadow, thread=thread, body="Thinking of you @river")
    assert not Notification.objects.filter(recipient=river).exists()
    client.post(mute_url, {"mute": "0"})
    publishing.publish_reply(author=meadow, thread=thread, body="Still here for you")
    assert Notification.objects.filter(recipient=river, actor=meadow).exists()


def test_a_muted_room_shows_no_unread_count(circle):
    _group, _thread, room, river, meadow = circle
    publishing.publish_chat_message(author=meadow, room=room, body="Anyone up?", client_id="c1")
    client = as_user(river)
    rooms_page = f"/g/{room.group.slug}/chat/"
    assert 'aria-label="1 unread"' in client.get(rooms_page).content.decode()
    assert client.post(f"{room.get_absolute_url()}mute/", {"mute": "1"}).status_code == 302
    html = client.get(rooms_page).content.decode()
    assert 'aria-label="1 unread"' not in html and "Muted" in html
    assert "Unmute room" in client.get(room.get_absolute_url()).content.decode()


def test_outsiders_cannot_mute_what_they_cannot_see(circle):
    private = make_group("quiet-room", private=True)
    insider = make_user("insider")
    join(insider, private)
    thread = publishing.publish_thread(author=insider, group=private, title="Ours", body="Hi")
    outsider = as_user(make_user("outsider"))
    assert outsider.post(f"{thread.get_absolute_url()}mute/", {"mute": "1"}).status_code == 404
    assert not Mute.objects.exists()
