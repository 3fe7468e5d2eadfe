"""Direct conversations as members meet them: pages, the socket, reports, and privacy.

Everyone but the two participants gets a 404 (4404 on the socket), moderators and admins
included; a reported message reaches the review queue alone.
"""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from forum import conversations, engagement, publishing, selectors
from forum.models import ChatRoom, Conversation, Membership
from moderation import actions, permissions
from moderation.models import FlagReason, QueueItem
from tests.chat_helpers import ChatSocket, db, login_session, room_path, run_async
from tests.conftest import join, make_group, make_user
from tests.permissions_world import TABLES

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("womens-circle", private=True, join_policy="request")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.MODERATOR)
    return group, river, meadow, sage


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def talking(river, meadow) -> Conversation:
    conversation = conversations.request_conversation(
        starter=river, recipient=meadow, note="Hi meadow, your share on Tuesday helped me."
    )
    return conversations.accept(user=meadow, conversation=conversation)


def say(author, conversation, body, client_id):
    room = ChatRoom.objects.select_related("group").get(pk=conversation.room_id)
    return publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=client_id
    )[0]


def outsiders(group) -> list:
    """Everyone who must not know a conversation exists: a fellow member, the group's
    moderator, a site moderator, an admin."""
    fellow = make_user("fellow")
    join(fellow, group)
    moderator = make_user("groupmod")
    join(moderator, group, Membership.Role.MODERATOR)
    return [
        fellow,
        moderator,
        make_user("warden", is_site_moderator=True),
        make_user("keeper", is_staff=True, is_superuser=True),
    ]


# --- the "Direct conversation actions" table ---------------------------------------------------

COLUMNS = (
    "starter",
    "recipient",
    "other member of the group",
    "group moderator",
    "site moderator",
    "admin",
)


def _actors(world) -> dict:
    group, river, meadow, sage = world
    fellow = make_user("fellow")
    join(fellow, group)
    return {
        "starter": river,
        "recipient": meadow,
        "other member of the group": fellow,
        "group moderator": sage,
        "site moderator": make_user("warden", is_site_moderator=True),
        "admin": make_user("keeper", is_staff=True, is_superuser=True),
    }


def _pending(world):
    _group, river, meadow, _sage = world
    return conversations.request_conversation(starter=river, recipient=meadow, note="Hello")


def _accepted(world):
    _group, river, meadow, _sage = world
    return talking(river, meadow)


def _reported_item(world):
    _group, river, meadow, _sage = world
    conversation = talking(river, meadow)
    message = say(river, conversation, "Unkind words", "u1")
    actions.flag(flagger=meadow, obj=message, reason=FlagReason.HARASSMENT)
    return QueueItem.objects.get(object_id=message.pk)


def _yes(call) -> bool:
    try:
        call()
    except Exception:
        return False
    return True


def _write(user, conversation) -> bool:
    room = ChatRoom.objects.select_related("group").get(pk=conversation.room_id)
    return permissions.can_write_room(user, room) and _yes(
        lambda: publishing.publish_chat_message(
            author=user, room=room, body="Hi", client_id=f"t{user.pk}"
        )
    )


def _closed(world):
    conversation = _accepted(world)
    return conversations.close(user=world[1], conversation=conversation)


ACTION_ROWS = {
    "read a pending request": (
        _pending,
        lambda user, c: (
            permissions.can_read_room(user, c.room)
            and _yes(lambda: conversations.get_conversation_for(user, c.pk))
        ),
    ),
    "write while the request is pending": (_pending, _write),
    "accept or ignore the request": (
        _pending,
        lambda user, c: _yes(lambda: permissions.check_can_answer_request(user, c)),
    ),
    "read an accepted conversation": (
        _accepted,
        lambda user, c: (
            permissions.can_read_room(user, c.room)
            and _yes(lambda: conversations.get_conversation_for(user, c.pk))
        ),
    ),
    "write in an accepted conversation": (_accepted, _write),
    "remove the other participant's message": (
        _accepted,
        lambda user, c: any(
            permissions.can_delete_chat_message(user, m)
            for m in [
                say(c.starter, c, "from the starter", f"s{user.pk}"),
                say(c.recipient, c, "from the recipient", f"r{user.pk}"),
            ]
            if m.author_id != user.pk
        ),
    ),
    "close the conversation": (
        _accepted,
        lambda user, c: _yes(lambda: permissions.check_can_close_conversation(user, c)),
    ),
    "write in a closed conversation": (_closed, _write),
    "review a reported message of the conversation (by the starter)": (
        _reported_item,
        lambda user, item: _yes(lambda: permissions.check_can_review_item(user, item)),
    ),
}


def test_the_action_table_has_its_columns_and_every_row_a_check():
    table = TABLES["Direct conversation actions"]
    assert table.columns == ("Action", *COLUMNS)
    assert set(table.rows) == set(ACTION_ROWS)


@pytest.mark.parametrize("row", list(ACTION_ROWS))
def test_direct_conversation_actions_match_the_table(world, row):
    make, check = ACTION_ROWS[row]
    actors = _actors(world)
    subject = make(world)
    for column in COLUMNS:
        expected = TABLES["Direct conversation actions"].rows[row][column] == "yes"
        got = bool(check(actors[column], subject))
        assert got is expected, f"{row} for the {column}: the table says {expected}"
        if isinstance(subject, Conversation):
            subject = Conversation.objects.get(pk=subject.pk)


# --- pages -------------------------------------------------------------------------------------


def test_a_request_from_the_profile_to_the_recipients_messages(world):
    _group, river, meadow, _sage = world
    profile = as_user(river).get(f"/u/{meadow.handle}/").content.decode()
    assert reverse("conversation_new", kwargs={"handle": "meadow"}) in profile
    response = as_user(river).post(
        reverse("conversation_new", kwargs={"handle": "meadow"}),
        {"note": "Hi, your share **helped**."},
    )
    conversation = Conversation.objects.get()
    assert response.status_code == 302 and response["Location"] == conversation.get_absolute_url()
    waiting = as_user(river).get(conversation.get_absolute_url()).content.decode()
    assert "Waiting for meadow to accept" in waiting
    inbox = as_user(meadow).get(reverse("messages")).content.decode()
    assert "river</strong> would like to talk" in inbox
    assert "<strong>helped</strong>" in inbox
    assert reverse("conversation_accept", kwargs={"pk": conversation.pk}) in inbox
    # The profile now leads to the conversation instead of a second request.
    profile = as_user(river).get(f"/u/{meadow.handle}/").content.decode()
    assert conversation.get_absolute_url() in profile


def test_bad_notes_are_field_errors_not_500s(world):
    _group, river, _meadow, _sage = world
    url = reverse("conversation_new", kwargs={"handle": "meadow"})
    for note, error in (
        ("", "Write a short note with your request."),
        ("x" * 1001, "at most 1000 characters"),
        ("bad\x00", "Null characters are not allowed."),
    ):
        response = as_user(river).post(url, {"note": note})
        assert response.status_code == 200
        assert error in response.content.decode(), note
    assert not Conversation.objects.exists()


def test_accepting_shows_the_chat_panel_to_both(world):
    group, river, meadow, _sage = world
    conversation = talking(river, meadow)
    say(river, conversation, "First words between us", "c1")
    for user in (river, meadow):
        page = as_user(user).get(conversation.get_absolute_url()).content.decode()
        assert f'data-ws-path="/ws/g/{group.slug}/chat/{conversation.room.slug}/"' in page
        assert "First words between us" in page
        assert 'data-can-write="true"' in page
        assert 'data-can-moderate="false"' in page


def test_ignore_block_and_close_from_the_pages(world):
    _group, river, meadow, _sage = world
    conversation = conversations.request_conversation(starter=river, recipient=meadow, note="Hi")
    meadow_client = as_user(meadow)
    meadow_client.post(reverse("conversation_ignore", kwargs={"pk": conversation.pk}))
    assert Conversation.objects.get().state == Conversation.State.IGNORED
    assert (
        "Waiting for meadow" in as_user(river).get(conversation.get_absolute_url()).content.decode()
    )
    meadow_client.post(reverse("conversation_accept", kwargs={"pk": conversation.pk}))
    response = as_user(river).post(reverse("conversation_close", kwargs={"pk": conversation.pk}))
    assert response.status_code == 302
    page = meadow_client.get(conversation.get_absolute_url()).content.decode()
    assert "This conversation is closed" in page
    again = as_user(river).post(reverse("conversation_close", kwargs={"pk": conversation.pk}))
    assert again.status_code == 302  # refused with a message, never a 500
    response = meadow_client.post(reverse("conversation_block", kwargs={"pk": conversation.pk}))
    assert response["Location"] == reverse("messages")
    assert (
        conversation.get_absolute_url()
        not in meadow_client.get(reverse("messages")).content.decode()
    )


def test_switching_requests_off_hides_the_button_without_a_reason(world):
    _group, river, meadow, _sage = world
    response = as_user(meadow).post(reverse("message_settings"), {})
    assert response.status_code == 302
    meadow.refresh_from_db()
    assert not meadow.accepts_dm_requests
    profile = as_user(river).get(f"/u/{meadow.handle}/").content.decode()
    assert reverse("conversation_new", kwargs={"handle": "meadow"}) not in profile
    assert escape(permissions.DM_REFUSAL) not in profile
    settings_page = as_user(meadow).get(reverse("settings")).content.decode()
    assert 'name="accepts_dm_requests">' in settings_page  # unchecked
    as_user(meadow).post(reverse("message_settings"), {"accepts_dm_requests": "on"})
    meadow.refresh_from_db()
    assert meadow.accepts_dm_requests


def test_a_block_is_not_revealed_on_the_profile_or_the_form(world):
    _group, river, meadow, _sage = world
    engagement.block_member(user=meadow, member=river)
    profile = as_user(river).get(f"/u/{meadow.handle}/").content.decode()
    assert "blocked" not in profile.lower()
    assert reverse("conversation_new", kwargs={"handle": "meadow"}) not in profile
    assert escape(permissions.DM_REFUSAL) not in profile
    form = as_user(river).get(reverse("conversation_new", kwargs={"handle": "meadow"}))
    assert escape(permissions.DM_REFUSAL) in form.content.decode()
    posted = as_user(river).post(
        reverse("conversation_new", kwargs={"handle": "meadow"}), {"note": "Hi"}
    )
    assert posted.status_code == 403


# --- nobody else -------------------------------------------------------------------------------


def test_non_participants_get_404_everywhere(world):
    group, river, meadow, _sage = world
    conversation = talking(river, meadow)
    say(river, conversation, "Private words", "c1")
    room_url = reverse("room", kwargs={"slug": group.slug, "room_slug": conversation.room.slug})
    for user in outsiders(group):
        client = as_user(user)
        for name in ("conversation", "conversation_report"):
            url = reverse(name, kwargs={"pk": conversation.pk})
            assert client.get(url).status_code == 404, (user, name)
        for name in ("conversation_accept", "conversation_block", "conversation_close"):
            url = reverse(name, kwargs={"pk": conversation.pk})
            assert client.post(url).status_code == 404, (user, name)
        response = client.get(room_url)
        assert response.status_code == 404, user
        assert "Private words" not in response.content.decode()
        for name in ("room_settings", "room_mute", "room_slow_mode"):
            url = reverse(name, kwargs={"slug": group.slug, "room_slug": conversation.room.slug})
            assert client.post(url).status_code == 404, (user, name)
    # The participants are sent on to the conversation's own page.
    assert as_user(river).get(room_url)["Location"] == conversation.get_absolute_url()


def test_participants_cannot_reach_room_settings_mutes_or_slow_mode(world):
    group, _river, meadow, sage = world
    conversation = conversations.request_conversation(starter=sage, recipient=meadow, note="Hi")
    for name in ("room_settings", "room_mute", "room_slow_mode"):
        url = reverse(name, kwargs={"slug": group.slug, "room_slug": conversation.room.slug})
        assert as_user(sage).post(url, {"name": "Renamed", "state": "open"}).status_code == 404


@pytest.mark.django_db(transaction=True)  # sockets write and broadcast on commit
def test_the_socket_refuses_non_participants_with_4404(world):
    group, river, meadow, _sage = world
    conversation = talking(river, meadow)
    room = ChatRoom.objects.select_related("group").get(pk=conversation.room_id)
    strangers = outsiders(group)

    async def scenario():
        for user in strangers:
            key = await db(login_session, user)
            socket = ChatSocket(room_path(room), session_key=key)
            assert await socket.connect() == (False, 4404), user
        key = await db(login_session, meadow)
        socket = ChatSocket(room_path(room), session_key=key)
        connected, _ = await socket.connect()
        assert connected
        await socket.expect("history", skip=())
        await socket.send({"type": "send", "client_id": "w1", "body": "Hello river"})
        ack = await socket.expect("ack", skip={"presence", "heartbeat", "typing", "room"})
        assert ack["client_id"] == "w1"
        await socket.disconnect()

    run_async(scenario)


def test_an_open_socket_is_rechecked_with_4404(world):
    group, river, meadow, _sage = world
    conversation = talking(river, meadow)
    stranger = outsiders(group)[1]
    for user, expected in ((meadow, None), (stranger, 4404)):
        code = selectors.socket_refusal(
            user_id=user.pk,
            session_key=login_session(user),
            session_hash=user.get_session_auth_hash(),
            room_id=conversation.room_id,
        )
        assert code == expected


# --- reports -----------------------------------------------------------------------------------


def test_the_queue_item_shows_the_reported_message_alone(world):
    group, river, meadow, sage = world
    conversation = talking(river, meadow)
    say(river, conversation, "An earlier private word", "c1")
    reported = say(river, conversation, "The unkind message", "c2")
    say(meadow, conversation, "A later private reply", "c3")
    actions.flag(flagger=meadow, obj=reported, reason=FlagReason.HARASSMENT)
    item = QueueItem.objects.get(object_id=reported.pk)
    assert item.group == group
    page = as_user(sage).get(reverse("moderation:item", kwargs={"item_id": item.pk}))
    body = page.content.decode()
    assert page.status_code == 200
    assert "The unkind message" in body
    assert "An earlier private word" not in body
    assert "A later private reply" not in body
    assert conversation.get_absolute_url() not in body  # no link they could not open
    queue = as_user(sage).get(reverse("moderation:queue")).content.decode()
    assert "Direct message" in queue and "An earlier private word" not in queue
    # The moderator's action works as for any chat message.
    actions.hide_content(actor=sage, obj=reported, reason="Please be kind.")
    reported.refresh_from_db()
    assert reported.removed_by == "moderator"


def test_reporting_the_other_member_sends_the_request_note_and_blocks(world):
    _group, river, meadow, _sage = world
    conversation = conversations.request_conversation(
        starter=river, recipient=meadow, note="Send me your number"
    )
    url = reverse("conversation_report", kwargs={"pk": conversation.pk})
    bad = as_user(meadow).post(url, {"reason": "other", "details": ""})
    assert bad.status_code == 200 and "Tell the moderators what is wrong" in bad.content.decode()
    response = as_user(meadow).post(url, {"reason": "harassment", "block": "on"})
    assert response.status_code == 302
    item = QueueItem.objects.get(object_id=river.pk)
    assert "Send me your number" in item.flags.get().details_source
    assert Conversation.objects.get().state == Conversation.State.BLOCKED
