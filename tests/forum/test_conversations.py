"""Direct conversations: requests and their refusals, answers, and the write path inside.

The services are forum.conversations; the rules are moderation.permissions ("direct
conversations"). Private: everyone but the two participants gets a 404.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from forum import conversations, engagement, publishing, selectors
from forum.models import (
    Block,
    ChatMessage,
    ChatRoom,
    Conversation,
    Membership,
    Mentorship,
    Notification,
    RoomReadState,
)
from moderation import permissions
from moderation.models import QueueItem, Sanction, WatchedPhrase
from moderation.ratelimit import RateLimited
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def circle():
    """river and meadow share a group; stranger belongs to another."""
    group = make_group("open-circle")
    river, meadow = make_user("river"), make_user("meadow")
    join(river, group)
    join(meadow, group)
    return group, river, meadow


def ask(starter, recipient, note="Hi, I liked your share about mornings. Talk?"):
    return conversations.request_conversation(starter=starter, recipient=recipient, note=note)


def accepted(starter, recipient) -> Conversation:
    conversation = ask(starter, recipient)
    return conversations.accept(user=recipient, conversation=conversation)


def say(author, conversation, body="Hello there", client_id="c1"):
    room = ChatRoom.objects.select_related("group").get(pk=conversation.room_id)
    return publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=client_id
    )[0]


def errors_of(call) -> dict:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


# --- requests ----------------------------------------------------------------------------------


def test_a_request_makes_a_private_room_and_tells_the_recipient_who_not_what(circle):
    group, river, meadow = circle
    conversation = ask(river, meadow, note="Hi <script>x()</script> **meadow**")
    assert conversation.state == Conversation.State.REQUESTED
    assert conversation.room.kind == ChatRoom.Kind.DIRECT
    assert conversation.room.group == group
    assert conversation.room.slug.startswith("dm-")
    assert "<script>" not in conversation.note_html
    assert "<strong>meadow</strong>" in conversation.note_html
    [note] = Notification.objects.filter(recipient=meadow)
    assert note.kind == Notification.Kind.DIRECT_MESSAGE
    assert note.text == "river would like to talk"
    assert note.actor == river and note.group is None
    # The note is the request, not a message: the room is empty until they agree.
    assert not ChatMessage.objects.filter(room=conversation.room).exists()


def test_the_group_rooms_list_leaves_direct_rooms_out(circle):
    group, river, meadow = circle
    ask(river, meadow)
    assert all(
        room.kind == ChatRoom.Kind.GROUP for room in selectors.rooms_with_unread(river, group)
    )


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("", "Your note cannot be empty."),
        ("   ", "Your note cannot be empty."),
        ("x" * 1001, "Your note is 1,001 characters; the limit is 1,000."),
        ("bad\x00byte", "NUL"),
    ],
)
def test_a_bad_note_is_a_field_error(circle, note, message):
    _group, river, meadow = circle
    errors = errors_of(lambda: ask(river, meadow, note=note))
    assert message in errors["note"][0]
    assert not Conversation.objects.exists()


def test_watched_phrases_apply_to_the_note(circle):
    group, river, meadow = circle
    WatchedPhrase.objects.create(group=group, pattern="cheap pills", action="block", message="No.")
    assert errors_of(lambda: ask(river, meadow, note="Want cheap pills?")) == {"note": ["No."]}
    WatchedPhrase.objects.create(group=group, pattern="my place", action="hold")
    errors = errors_of(lambda: ask(river, meadow, note="Come to my place"))
    assert errors == {"note": ["Please say this in other words."]}


def test_crisis_words_in_the_note_are_noticed_for_the_author(circle):
    _group, river, meadow = circle
    conversation = ask(river, meadow, note="I want to end it all, can we talk")
    assert conversation.crisis_categories


def test_not_to_yourself(circle):
    _group, river, _meadow = circle
    assert permissions.conversation_request_refusal(river, river) == (
        "You can't send yourself a message request."
    )
    with pytest.raises(PermissionDenied):
        ask(river, river)


def test_only_members_who_share_a_group(circle):
    _group, river, _meadow = circle
    stranger = make_user("stranger")
    join(stranger, make_group("elsewhere"))
    with pytest.raises(PermissionDenied, match="a group you both take part in"):
        ask(river, stranger)


def test_a_group_where_either_is_suspended_does_not_count(circle):
    group, river, meadow = circle
    Sanction.objects.create(member=meadow, group=group, kind=Sanction.Kind.SUSPENSION)
    with pytest.raises(PermissionDenied, match="a group you both take part in"):
        ask(river, meadow)


def test_a_banned_member_sends_no_requests(circle):
    _group, river, meadow = circle
    Sanction.objects.create(member=river, kind=Sanction.Kind.BAN)
    with pytest.raises(PermissionDenied, match="banned"):
        ask(river, meadow)


def test_requests_switched_off_and_a_block_read_the_same(circle):
    """The starter cannot tell "requests off" from "they blocked me" from a closed account."""
    _group, river, meadow = circle
    conversations.set_accepts_requests(user=meadow, accepts=False)
    off = permissions.conversation_request_refusal(river, meadow)
    conversations.set_accepts_requests(user=meadow, accepts=True)
    engagement.block_member(user=meadow, member=river)
    blocked = permissions.conversation_request_refusal(river, meadow)
    Block.objects.all().delete()
    meadow.is_active = False
    meadow.save()
    closed = permissions.conversation_request_refusal(river, meadow)
    assert (
        off
        == blocked
        == closed
        == permissions.DM_REFUSAL
        == "You can't send this member a request."
    )
    assert "block" not in off.lower()


def test_the_starters_own_block_is_named(circle):
    _group, river, meadow = circle
    engagement.block_member(user=river, member=meadow)
    with pytest.raises(PermissionDenied, match="You blocked this member"):
        ask(river, meadow)


def test_trust_keeps_new_members_from_sending_requests(circle, settings):
    group, river, meadow = circle
    settings.KINSHIP_TRUST_RULES = True
    with pytest.raises(PermissionDenied, match="Direct messages open up"):
        ask(river, meadow)
    # A member who has earned the level may: two days here and three published posts.
    river.date_joined = timezone.now() - timedelta(days=3)
    river.save()
    settings.KINSHIP_TRUST_RULES = False
    thread = publishing.publish_thread(author=river, group=group, title="Hi", body="First")
    for n in range(2):
        publishing.publish_reply(author=river, thread=thread, body=f"More {n}")
    settings.KINSHIP_TRUST_RULES = True
    assert ask(river, meadow).state == Conversation.State.REQUESTED


def test_a_leader_of_the_shared_group_is_trusted_to_ask(circle, settings):
    group, _river, meadow = circle
    settings.KINSHIP_TRUST_RULES = True
    leader = make_user("leader")
    join(leader, group, Membership.Role.LEADER)
    assert ask(leader, meadow).state == Conversation.State.REQUESTED


def test_one_open_conversation_per_pair_either_way(circle):
    _group, river, meadow = circle
    ask(river, meadow)
    assert "already have a conversation" in errors_of(lambda: ask(river, meadow))["note"][0]
    assert "already have a conversation" in errors_of(lambda: ask(meadow, river))["note"][0]
    assert Conversation.objects.count() == 1


def test_the_database_holds_one_open_conversation_per_pair(circle):
    from django.db import IntegrityError, transaction

    group, river, meadow = circle
    first = ask(river, meadow)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(
            room=conversations._new_room(group), starter=meadow, recipient=river
        )
    conversations.close(user=river, conversation=first)
    assert ask(meadow, river).state == Conversation.State.REQUESTED


def test_requests_are_rate_limited(circle, settings):
    group, river, _meadow = circle
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "dm_request": (2, 3600)}
    others = [make_user(f"friend{n}") for n in range(3)]
    for other in others:
        join(other, group)
    ask(river, others[0])
    ask(river, others[1])
    with pytest.raises(RateLimited):
        ask(river, others[2])


def test_an_unanswered_request_lapses_after_fourteen_days(circle):
    _group, river, meadow = circle
    old = ask(river, meadow)
    conversations.ignore(user=meadow, conversation=old)
    Conversation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=15))
    inbox = conversations.conversations_of(river)
    assert [c.lapsed for c in inbox.sent] == [True]
    assert conversations.conversations_of(meadow).set_aside == []
    again = ask(river, meadow)
    old.refresh_from_db()
    assert old.state == Conversation.State.CLOSED
    assert again.state == Conversation.State.REQUESTED


# --- answers -----------------------------------------------------------------------------------


def test_accepting_opens_the_room_and_tells_the_starter(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    assert conversation.state == Conversation.State.ACCEPTED
    assert conversation.accepted_at is not None
    note = Notification.objects.get(recipient=river)
    assert note.text == "meadow accepted your message request"
    assert note.url == conversation.get_absolute_url()
    assert say(river, conversation).pk
    assert say(meadow, conversation, client_id="c2").pk


def test_only_the_recipient_answers(circle):
    _group, river, meadow = circle
    conversation = ask(river, meadow)
    with pytest.raises(PermissionDenied, match="Only the member you asked"):
        conversations.accept(user=river, conversation=conversation)
    with pytest.raises(PermissionDenied):
        conversations.ignore(user=river, conversation=conversation)
    stranger = make_user("stranger")
    with pytest.raises(Http404):
        conversations.accept(user=stranger, conversation=conversation)
    conversations.accept(user=meadow, conversation=conversation)
    with pytest.raises(PermissionDenied, match="already been answered"):
        conversations.accept(user=meadow, conversation=conversation)


def test_ignoring_is_quiet_and_can_still_be_accepted(circle):
    _group, river, meadow = circle
    conversation = ask(river, meadow)
    conversations.ignore(user=meadow, conversation=conversation)
    assert not Notification.objects.filter(recipient=river).exists()
    # To the starter it is simply still waiting.
    assert permissions.conversation_write_refusal(river, conversation) == (
        "Waiting for meadow to accept your request."
    )
    assert [c.pk for c in conversations.conversations_of(river).sent] == [conversation.pk]
    assert [c.pk for c in conversations.conversations_of(meadow).set_aside] == [conversation.pk]
    assert conversations.conversations_of(meadow).received == []
    conversations.accept(user=meadow, conversation=conversation)
    assert Conversation.objects.get(pk=conversation.pk).state == Conversation.State.ACCEPTED


def test_blocking_from_a_request_blocks_and_hides_it_from_the_blocker(circle):
    _group, river, meadow = circle
    conversation = ask(river, meadow)
    conversations.block_from(user=meadow, conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.BLOCKED
    assert conversation.blocked_by == meadow
    assert Block.objects.filter(blocker=meadow, blocked=river).exists()
    assert conversations.conversations_of(meadow) == conversations.Inbox()
    # The starter is not told: to them the request just had no answer.
    [sent] = conversations.conversations_of(river).sent
    assert sent.lapsed
    assert not Notification.objects.filter(recipient=river).exists()
    with pytest.raises(PermissionDenied, match=permissions.DM_REFUSAL):
        ask(river, meadow)


def test_blocking_an_accepted_conversation_makes_it_read_only_for_both(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    message = say(river, conversation, body="Earlier words")
    conversations.block_from(user=meadow, conversation=conversation)
    room = ChatRoom.objects.get(pk=conversation.room_id)
    assert room.state == ChatRoom.State.ARCHIVED
    for user in (river, meadow):
        assert permissions.can_read_room(user, room)
        with pytest.raises(PermissionDenied, match="closed"):
            say(user, conversation, client_id=f"late-{user.pk}")
    # The blocked member keeps the history, as a closed conversation.
    [kept] = conversations.conversations_of(river).conversations
    assert kept.pk == conversation.pk and kept.state == Conversation.State.BLOCKED
    assert ChatMessage.objects.filter(pk=message.pk).exists()


def test_a_block_from_a_profile_stops_an_open_conversation_too(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    engagement.block_member(user=meadow, member=river)
    with pytest.raises(PermissionDenied, match="closed"):
        say(river, conversation)


def test_either_side_closes_without_a_reason(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    say(river, conversation)
    conversations.close(user=meadow, conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.CLOSED and conversation.closed_at
    with pytest.raises(PermissionDenied, match="closed"):
        say(river, conversation, client_id="c2")
    with pytest.raises(PermissionDenied, match="already closed"):
        conversations.close(user=river, conversation=conversation)
    assert [c.pk for c in conversations.conversations_of(river).conversations] == [conversation.pk]


def test_a_starter_withdraws_a_request(circle):
    _group, river, meadow = circle
    conversation = ask(river, meadow)
    conversations.close(user=river, conversation=conversation)
    assert conversations.conversations_of(meadow).received == []


# --- the write path in the room ----------------------------------------------------------------


def test_only_participants_write_and_only_once_accepted(circle, site_moderator, admin_user):
    group, river, meadow = circle
    conversation = ask(river, meadow)
    with pytest.raises(PermissionDenied, match="Waiting for meadow"):
        say(river, conversation)
    with pytest.raises(PermissionDenied, match="Accept the request"):
        say(meadow, conversation)
    conversations.accept(user=meadow, conversation=conversation)
    group_moderator = make_user("groupmod")
    join(group_moderator, group, Membership.Role.MODERATOR)
    for outsider in (make_user("stranger"), group_moderator, site_moderator, admin_user):
        with pytest.raises(Http404):
            say(outsider, conversation, client_id=f"x{outsider.pk}")
        assert not permissions.can_read_room(outsider, conversation.room)


def test_policy_and_the_crisis_path_apply_inside(circle):
    group, river, meadow = circle
    conversation = accepted(river, meadow)
    WatchedPhrase.objects.create(group=group, pattern="cheap pills", action="block", message="No.")
    assert errors_of(lambda: say(river, conversation, body="cheap pills here")) == {"body": ["No."]}
    message = say(river, conversation, body="I want to end it all", client_id="c2")
    assert message.crisis_categories
    WatchedPhrase.objects.create(group=group, pattern="meet me", action="hold")
    held = say(river, conversation, body="meet me tonight", client_id="c3")
    assert held.removed_by == ChatMessage.RemovedBy.REVIEW
    assert QueueItem.objects.filter(object_id=held.pk, group=group).exists()


def test_a_participant_who_leads_the_group_removes_only_their_own_messages(circle):
    group, river, meadow = circle
    Membership.objects.filter(user=meadow, group=group).update(role=Membership.Role.LEADER)
    conversation = accepted(river, meadow)
    message = say(river, conversation)
    message.room = conversation.room
    assert not permissions.can_delete_chat_message(meadow, message)
    assert permissions.can_delete_chat_message(river, message)


def test_held_direct_messages_are_approved_by_the_groups_moderators_only(circle, settings):
    group, river, meadow = circle
    conversation = accepted(river, meadow)
    WatchedPhrase.objects.create(group=group, pattern="meet me", action="hold")
    held = say(river, conversation, body="meet me tonight")
    group_moderator = make_user("groupmod")
    join(group_moderator, group, Membership.Role.MODERATOR)
    permissions.check_can_approve_held(group_moderator, held)
    trusted = make_user("elder")
    join(trusted, group, Membership.Role.LEADER)  # trusted, but not a moderator
    with pytest.raises(Http404):
        permissions.check_can_approve_held(trusted, held)
    with pytest.raises(PermissionDenied):
        permissions.check_can_approve_held(river, held)


def test_unread_counts_are_the_others_messages_since_the_last_read(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    say(river, conversation, client_id="a")
    message = say(river, conversation, client_id="b")
    say(meadow, conversation, client_id="c")
    [row] = conversations.conversations_of(meadow).conversations
    assert row.unread == 2
    assert conversations.conversations_of(meadow).unread == 2
    room = ChatRoom.objects.get(pk=conversation.room_id)
    engagement.mark_room_read(user=meadow, room=room, seq=message.seq)
    [row] = conversations.conversations_of(meadow).conversations
    assert row.unread == 0
    assert RoomReadState.objects.filter(user=meadow).exists()


def test_get_conversation_for_is_404_for_everyone_else(circle, site_moderator, admin_user):
    _group, river, meadow = circle
    conversation = ask(river, meadow)
    assert conversations.get_conversation_for(river, conversation.pk) == conversation
    assert conversations.get_conversation_for(meadow, conversation.pk) == conversation
    for outsider in (make_user("stranger"), site_moderator, admin_user):
        with pytest.raises(Http404):
            conversations.get_conversation_for(outsider, conversation.pk)
    with pytest.raises(Http404):
        conversations.get_conversation_for(river, conversation.pk + 1000)


def test_deleting_an_account_deletes_its_conversations_and_their_rooms(circle):
    _group, river, meadow = circle
    conversation = accepted(river, meadow)
    say(river, conversation)
    say(meadow, conversation, client_id="c2")
    room_id = conversation.room_id
    river.delete()
    assert not Conversation.objects.exists()
    assert not ChatRoom.objects.filter(pk=room_id).exists()
    assert not ChatMessage.objects.filter(room_id=room_id).exists()


# --- mentorships -------------------------------------------------------------------------------


def mentorship_of(mentor, mentee, group) -> Mentorship:
    return Mentorship.objects.create(
        mentor=mentor, mentee=mentee, group=group, state=Mentorship.State.ACTIVE
    )


def test_a_mentorship_opens_an_accepted_conversation_once(circle):
    group, river, meadow = circle
    mentorship = mentorship_of(meadow, river, group)
    conversation = conversations.open_for_mentorship(mentorship=mentorship)
    assert conversation.state == Conversation.State.ACCEPTED
    assert conversation.mentorship == mentorship
    assert conversation.room.group == group
    assert (conversation.starter, conversation.recipient) == (river, meadow)
    assert conversations.open_for_mentorship(mentorship=mentorship).pk == conversation.pk
    assert say(river, conversation).pk
    conversations.close_for_mentorship(mentorship=mentorship)
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.CLOSED
    assert ChatRoom.objects.get(pk=conversation.room_id).state == ChatRoom.State.ARCHIVED


def test_a_mentorship_takes_over_the_pairs_pending_request(circle):
    group, river, meadow = circle
    request = ask(river, meadow)
    mentorship = mentorship_of(meadow, river, group)
    conversation = conversations.open_for_mentorship(mentorship=mentorship)
    assert conversation.pk == request.pk
    assert conversation.state == Conversation.State.ACCEPTED
    assert conversation.mentorship == mentorship
    assert Conversation.objects.count() == 1


def test_a_newcomers_first_words_in_a_conversation_do_not_wait_for_the_groups_moderators(
    circle, settings
):
    group, _river, meadow = circle
    leader = make_user("leader")
    join(leader, group, Membership.Role.LEADER)
    settings.KINSHIP_TRUST_RULES = True  # meadow is minutes old: a new member
    conversation = ask(leader, meadow)
    conversations.accept(user=meadow, conversation=conversation)
    first = say(meadow, conversation, "Thank you for reaching out")
    assert not first.is_removed  # no first-post hold in a private conversation
    # A new member's phone number is still held, as anywhere.
    held = say(meadow, conversation, "call me on 07700 900123", client_id="c2")
    assert held.removed_by == ChatMessage.RemovedBy.REVIEW
