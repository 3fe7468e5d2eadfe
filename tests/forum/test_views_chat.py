"""The chat room pages (forum/views/chat.py): the room list with unread counts, the
room page with its server-rendered recent messages, and the leaders' room forms.

Who may open which page, role by role, is in docs/permissions.md and checked by
tests/forum/test_views_permissions.py; these tests are about what the pages do.
"""

import itertools
import re

import pytest
from django.urls import reverse

from forum import engagement, publishing
from forum.models import ChatMessage, ChatRoom, Membership
from moderation import actions
from tests.conftest import join, make_group, make_user
from tests.xss_oracle import assert_no_executable_html

UNLIMITED = 10**9


@pytest.fixture
def circle(db, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (UNLIMITED, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.LEADER)
    general = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group, general, river, meadow, sage


CLIENT_IDS = itertools.count()


def say(room, author, body) -> ChatMessage:
    message, _created = publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=f"client-{next(CLIENT_IDS)}"
    )
    return message


def fresh(message: ChatMessage) -> ChatMessage:
    return ChatMessage.objects.select_related("room__group").get(pk=message.pk)


def unread_badges(html: str) -> dict[str, int]:
    """Room name -> unread count shown in the room list (0 without a badge)."""
    rows = re.findall(r'<li class="room-row[^"]*">(.*?)</li>', html, flags=re.S)
    badges = {}
    for row in rows:
        name = re.search(r"># (.*?)</a>", row).group(1)
        badge = re.search(r'aria-label="(\d+) unread"', row)
        badges[name] = int(badge.group(1)) if badge else 0
    return badges


def messages_fragment(html: str) -> str:
    match = re.search(r'<ol class="chat-messages" id="chat-messages">(.*?)</ol>', html, re.S)
    assert match, "the page has no message list"
    return match.group(1)


def rooms_url(group) -> str:
    return reverse("rooms", kwargs={"slug": group.slug})


def room_new_url(group) -> str:
    return reverse("room_new", kwargs={"slug": group.slug})


def room_url(room) -> str:
    return reverse("room", kwargs={"slug": room.group.slug, "room_slug": room.slug})


def settings_url(room) -> str:
    return reverse("room_settings", kwargs={"slug": room.group.slug, "room_slug": room.slug})


# --- the room list ------------------------------------------------------------------------


def test_the_room_list_counts_unread_messages_after_the_last_read(client, circle):
    group, general, river, meadow, sage = circle
    evening = ChatRoom.objects.create(group=group, name="Evening", slug="evening")
    ChatRoom.objects.create(group=group, name="Quiet", slug="quiet")
    said = [say(general, river, f"Message {n}") for n in range(5)]
    engagement.mark_room_read(user=meadow, room=fresh(said[0]).room, seq=said[1].seq)
    actions.remove_chat_message(actor=sage, message=fresh(said[3]))  # after the read: not counted
    actions.remove_chat_message(actor=sage, message=fresh(said[0]))  # before the read
    say(evening, river, "Anyone around tonight?")
    gone = say(evening, river, "Never mind")
    publishing.withdraw_chat_message(author=river, message=fresh(gone))
    say(evening, meadow, "I am here")  # one's own messages are never unread
    departed = make_user("departed")
    join(departed, group)
    say(evening, departed, "Goodbye, all")
    departed.delete()  # the message stays, without an author

    client.force_login(meadow)
    response = client.get(rooms_url(group))
    assert response.status_code == 200
    # General: messages 3 and 5 (4 was removed). Evening, never read: river's message that
    # is left and the departed member's.
    assert unread_badges(response.content.decode()) == {"General": 2, "Evening": 2, "Quiet": 0}
    client.force_login(river)
    assert unread_badges(client.get(rooms_url(group)).content.decode()) == {
        "General": 0,
        "Evening": 2,
        "Quiet": 0,
    }
    client.force_login(meadow)

    # Reading on moves the count; another member's count is their own.
    engagement.mark_room_read(user=meadow, room=fresh(said[4]).room, seq=said[4].seq)
    response = client.get(rooms_url(group))
    assert unread_badges(response.content.decode())["General"] == 0
    client.force_login(sage)
    assert unread_badges(client.get(rooms_url(group)).content.decode())["General"] == 3


def test_the_room_list_offers_new_rooms_to_leaders_only(client, circle):
    group, _general, river, _meadow, sage = circle
    client.force_login(sage)
    assert room_new_url(group) in client.get(rooms_url(group)).content.decode()
    client.force_login(river)
    assert room_new_url(group) not in client.get(rooms_url(group)).content.decode()


# --- the room page ----------------------------------------------------------------------------


def test_the_room_page_renders_the_recent_messages_sanitised(client, circle):
    _group, general, river, meadow, sage = circle
    early = [say(general, river, f"Early message {n}") for n in range(2)]
    for n in range(46):
        say(general, meadow, f"Filler {n}")
    say(general, river, "Made it through **tonight** <script>alert(1)</script>")
    say(general, river, '[look](javascript:alert(1)) <img src=x onerror="alert(2)">')
    withdrawn = say(general, river, "Withdrawn words, erased")
    removed = say(general, meadow, "Removed words, kept for review")
    edited = say(general, meadow, "Frist draft")
    last = say(general, river, "Last one")
    publishing.withdraw_chat_message(author=river, message=fresh(withdrawn))
    actions.remove_chat_message(actor=sage, message=fresh(removed))
    publishing.edit_chat_message(editor=meadow, message=fresh(edited), body="First draft")

    client.force_login(meadow)
    response = client.get(room_url(general))
    assert response.status_code == 200
    html = response.content.decode()
    fragment = messages_fragment(html)
    assert_no_executable_html(fragment, context="the room page's messages")

    # The latest 50 still there, oldest first; the two earliest are beyond the window.
    shown = [
        int(pk) for pk in re.findall(r'<li class="chat-message[^"]*" id="msg-(\d+)"', fragment)
    ]
    assert early[0].pk not in shown and early[1].pk not in shown
    assert len(shown) == 50  # 54 messages: two withdrawn or removed, two too old
    assert shown == sorted(shown) and shown[-1] == last.pk
    assert withdrawn.pk not in shown and removed.pk not in shown

    assert "<strong>tonight</strong>" in fragment
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert 'href="javascript' not in fragment.lower()
    assert "Withdrawn words" not in html and "Removed words" not in html
    assert "First draft" in fragment and "Frist draft" not in html
    assert f'data-latest-seq="{ChatRoom.objects.get(pk=general.pk).last_seq}"' in html


def test_the_room_page_of_a_private_group_does_not_exist_for_outsiders(client, circle):
    _group, _general, river, _meadow, _sage = circle
    private = make_group("womens-circle", private=True, join_policy="request")
    join(river, private)
    room = ChatRoom.objects.create(group=private, name="General", slug="general")
    say(room, river, "Only for the circle")
    client.force_login(make_user("stranger"))
    for url in (rooms_url(private), room_url(room), room_new_url(private), settings_url(room)):
        response = client.get(url)
        assert response.status_code == 404, url
        body = response.content.decode()
        assert private.name not in body and "Only for the circle" not in body, url
    response = client.post(room_new_url(private), {"name": "Sneaky", "state": "open"})
    assert response.status_code == 404
    assert not ChatRoom.objects.filter(name="Sneaky").exists()


# --- creating and changing rooms -----------------------------------------------------------


def test_a_leader_creates_rooms_and_their_addresses_are_made_from_the_name(client, circle):
    group, _general, _river, _meadow, sage = circle
    client.force_login(sage)
    assert client.get(room_new_url(group)).status_code == 200

    def create(name: str, state: str = "open") -> ChatRoom:
        response = client.post(room_new_url(group), {"name": name, "state": state})
        assert response.status_code == 302, response.content.decode()[:500]
        room = ChatRoom.objects.select_related("group").latest("pk")
        assert room.name == name.strip()
        assert response["Location"] == room_url(room)
        return room

    first = create("Evening check-in")
    assert (first.slug, first.state) == ("evening-check-in", "open")
    assert create("Evening check-in ").slug == "evening-check-in-2"
    # "new" is the address of the form itself, never a room's.
    assert create("New").slug == "new-2"
    assert create("new").slug == "new-3"
    assert create("Café ☕ corner", "read_only").slug == "cafe-corner"
    assert create("☕☕☕").slug == "room"
    assert client.get(room_url(ChatRoom.objects.get(slug="new-2"))).status_code == 200
    assert client.get(room_new_url(group)).status_code == 200  # still the form
    assert not ChatRoom.objects.filter(slug="new").exists()


def test_a_leader_renames_a_room_and_changes_its_state(client, circle):
    _group, general, _river, _meadow, sage = circle
    client.force_login(sage)
    page = client.get(settings_url(general))
    assert page.status_code == 200 and 'value="General"' in page.content.decode()
    for name, state in (("Quiet hours", "read_only"), ("Quiet hours", "archived"),
                        ("General", "open")):  # fmt: skip
        response = client.post(settings_url(general), {"name": name, "state": state})
        assert response.status_code == 302
        room = ChatRoom.objects.get(pk=general.pk)
        assert (room.name, room.state, room.slug) == (name, state, "general")  # address kept
        assert response["Location"] == room_url(general)


def test_members_may_not_create_or_change_rooms(client, circle):
    group, general, river, _meadow, _sage = circle
    client.force_login(river)
    assert client.get(room_new_url(group)).status_code == 403
    assert client.post(room_new_url(group), {"name": "Mine", "state": "open"}).status_code == 403
    assert client.get(settings_url(general)).status_code == 403
    response = client.post(settings_url(general), {"name": "Taken over", "state": "archived"})
    assert response.status_code == 403
    assert list(ChatRoom.objects.values_list("name", "state")) == [("General", "open")]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "state": "open"}, "name", "cannot be empty"),
        ({"name": "   ", "state": "open"}, "name", "cannot be empty"),
        ({"name": "x" * 61, "state": "open"}, "name", "61 characters; the limit is 60"),
        ({"name": "Bell\x07room", "state": "open"}, "name", "control characters"),
        ({"name": "Evening", "state": "closed"}, "state", "valid choice"),
        ({"name": "Evening"}, "state", "required"),
    ],
    ids=["empty", "blank", "61-chars", "control-char", "bad-state", "no-state"],
)
def test_bad_room_input_is_shown_on_the_form_and_nothing_changes(
    client, circle, data, field, message
):
    group, general, _river, _meadow, sage = circle
    client.force_login(sage)
    for url in (room_new_url(group), settings_url(general)):
        response = client.post(url, data)
        assert response.status_code == 200, url
        errors = response.context["form"].errors
        assert list(errors) == [field], (url, errors)
        assert message in " ".join(errors[field]), (url, errors)
        assert 'class="error" role="alert"' in response.content.decode()
    assert list(ChatRoom.objects.values_list("name", "state")) == [("General", "open")]


def test_a_name_of_exactly_60_characters_is_accepted(client, circle):
    group, _general, _river, _meadow, sage = circle
    client.force_login(sage)
    response = client.post(room_new_url(group), {"name": "x" * 60, "state": "open"})
    assert response.status_code == 302
    assert ChatRoom.objects.filter(name="x" * 60).exists()


def test_a_muted_member_reads_why_and_until_when_they_cannot_write(client, circle):
    from datetime import timedelta

    group, general, river, _meadow, sage = circle
    actions.mute_in_chat(actor=sage, member=river, group=group, reason="Off-topic sales talk",
                         duration=timedelta(days=1))  # fmt: skip
    client.force_login(river)
    html = client.get(general.get_absolute_url()).content.decode()
    note = re.search(r'<p class="chat-unavailable[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "You are muted in this group&#x27;s chat until" in note
    assert "Off-topic sales talk" in note
    assert 'data-can-write="false"' in html
    assert 'data-write-refusal="You are muted' in html
    assert re.search(r'<textarea id="chat-input"[^>]*disabled', html)
