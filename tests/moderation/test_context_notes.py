"""Context notes through the write path (posts, threads, chat) and on the thread page."""

import pytest
from django.contrib.contenttypes.models import ContentType

from forum import publishing
from forum.models import ChatMessage, ChatRoom, Post
from moderation.models import ContextNote, Flag, FlagReason, NoteAttachment, QueueItem
from tests.chat_helpers import broadcast_frame
from tests.conftest import join
from tests.forum.test_page_queries import THREAD_PAGE_MAX_QUERIES, count_queries


@pytest.fixture
def note(db):
    return ContextNote.objects.create(
        claim="It is safe to stop taking benzodiazepines abruptly at home.",
        phrasings="You can quit benzos cold turkey without any medical help.",
        correction_source="Stopping suddenly can cause seizures: taper with a doctor.",
        correction_html="<p>Stopping suddenly can cause seizures: taper with a doctor.</p>",
        sources="https://www.nhs.uk/medicines/diazepam/",
    )


@pytest.fixture
def thread(public_group, member, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    join(member, public_group)
    return publishing.publish_thread(author=member, group=public_group, title="Week 2", body="hi")


def attachments_on(obj):
    ct = ContentType.objects.get_for_model(type(obj))
    return NoteAttachment.objects.filter(content_type=ct, object_id=obj.pk)


@pytest.mark.django_db
def test_a_reworded_claim_in_a_reply_attaches_the_note_and_queues_it(note, thread, member):
    post = publishing.publish_reply(
        author=member, thread=thread, body="Honestly just quit your xanax overnight, it's fine."
    )
    attachment = attachments_on(post).get()
    assert attachment.note == note and attachment.attached_by is None
    assert attachment.state == NoteAttachment.State.SUGGESTED
    item = QueueItem.objects.get(object_id=post.pk, content_type__model="post")
    flag = Flag.objects.get(item=item)
    assert flag.flagger is None and flag.reason == FlagReason.MISINFORMATION
    assert not post.is_hidden  # the note does not say hold


@pytest.mark.django_db
def test_unrelated_text_and_retired_notes_attach_nothing(note, thread, member):
    post = publishing.publish_reply(author=member, thread=thread, body="90 days today!")
    assert not attachments_on(post).exists()
    note.is_active = False
    note.save()
    post = publishing.publish_reply(
        author=member, thread=thread, body="quit benzos cold turkey at home, totally safe"
    )
    assert not attachments_on(post).exists()


@pytest.mark.django_db
def test_a_note_that_holds_holds_the_content(note, thread, member):
    note.hold_on_match = True
    note.save()
    post = publishing.publish_reply(
        author=member, thread=thread, body="quit benzos cold turkey at home, totally safe"
    )
    post.refresh_from_db()
    assert post.hidden_pending_review and post.held_for_review
    assert attachments_on(post).exists()


@pytest.mark.django_db
def test_a_new_thread_shows_the_note_under_its_opening_post(note, public_group, member, client):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Benzos", body="Stopping xanax abruptly is safe."
    )
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    assert attachments_on(opening).exists()
    assert QueueItem.objects.filter(object_id=thread.pk, content_type__model="thread").exists()
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "Context from the moderators" in page and "taper with a doctor" in page
    assert "https://www.nhs.uk/medicines/diazepam/" in page


@pytest.mark.django_db
def test_a_detached_note_is_no_longer_shown(note, public_group, member, client):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Benzos", body="Stopping xanax abruptly is safe."
    )
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    attachments_on(opening).update(state=NoteAttachment.State.DETACHED)
    assert (
        "Context from the moderators" not in client.get(thread.get_absolute_url()).content.decode()
    )


@pytest.mark.django_db
def test_thread_page_keeps_its_query_budget_with_notes(note, thread, member, client):
    for i in range(5):
        publishing.publish_reply(
            author=member, thread=thread, body=f"quit benzos cold turkey at home, safe ({i})"
        )
    client.force_login(member)
    client.get("/")
    assert count_queries(client, thread.get_absolute_url()) <= THREAD_PAGE_MAX_QUERIES


@pytest.mark.django_db
def test_chat_messages_get_notes_like_posts(note, public_group, member, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    join(member, public_group)
    room = ChatRoom.objects.create(group=public_group, name="Chat", slug="chat")
    message, _ = publishing.publish_chat_message(
        author=member, room=room, body="you can come off valium overnight, it's fine", client_id="a"
    )
    assert attachments_on(message).get().note == note
    assert QueueItem.objects.filter(
        object_id=message.pk, content_type__model="chatmessage"
    ).exists()
    note.hold_on_match = True
    note.save()
    held, _ = publishing.publish_chat_message(
        author=member, room=room, body="stop benzos cold turkey at home, safe", client_id="b"
    )
    assert held.removed_by == ChatMessage.RemovedBy.REVIEW


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Broadcasts as they are asked for (before commit): the frames readers would get."""
    from forum import realtime

    frames: list[dict] = []
    monkeypatch.setattr(
        realtime,
        "broadcast_on_commit",
        lambda group, event: frames.append(
            broadcast_frame(event) if "text" in event else event.get("frame")
        ),
    )
    return frames


@pytest.mark.django_db
def test_chat_readers_see_the_note_live_in_history_and_after_a_moderator_detaches_it(
    note, public_group, member, site_moderator, settings, sent
):
    from forum import selectors
    from moderation import actions

    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    join(member, public_group)
    room = ChatRoom.objects.create(group=public_group, name="Chat", slug="chat")
    message, _ = publishing.publish_chat_message(
        author=member, room=room, body="you can come off valium overnight, it's fine", client_id="a"
    )
    live = [f for f in sent if f and f["type"] == "message"][-1]["message"]
    assert live["context"]["claim"] == note.claim
    assert "seizures" in live["context"]["html"]
    assert live["context"]["sources"] == ["https://www.nhs.uk/medicines/diazepam/"]
    history, _ = selectors.room_changes(room.pk, after=None, limit=50)
    assert history[0]["context"] == live["context"]
    # A moderator takes it off: every open room redraws the message, without the note.
    sent.clear()
    actions.detach_note(
        actor=site_moderator, attachment=attachments_on(message).get(), reason="Fine here"
    )
    redrawn = [f["message"] for f in sent if f and f["type"] == "message_updated"]
    assert len(redrawn) == 1 and "context" not in redrawn[0]
    assert redrawn[0]["version"] > message.version
    history, _ = selectors.room_changes(room.pk, after=message.version, limit=50)
    assert [m["id"] for m in history] == [message.pk] and "context" not in history[0]
    # Put back by hand: shown again.
    sent.clear()
    actions.attach_note(actor=site_moderator, note=note, obj=message)
    redrawn = [f["message"] for f in sent if f and f["type"] == "message_updated"]
    assert redrawn[0]["context"]["claim"] == note.claim


@pytest.mark.django_db
def test_edits_are_matched_once_and_a_detached_note_stays_off(
    note, thread, member, site_moderator, settings, sent
):
    from moderation import actions

    reply = publishing.publish_reply(author=member, thread=thread, body="Day 3, feeling shaky.")
    assert not attachments_on(reply).exists()
    publishing.edit_post(
        editor=member, post=reply, body="Day 3. You can quit benzos cold turkey, no doctor needed."
    )
    assert attachments_on(reply).get().note == note
    # Editing again, still making the claim: no second attachment, no error.
    publishing.edit_post(
        editor=member, post=reply, body="Day 3. Quit benzos cold turkey, no doctor needed at all."
    )
    actions.detach_note(actor=site_moderator, attachment=attachments_on(reply).get(), reason="ok")
    publishing.edit_post(
        editor=member, post=reply, body="Day 3. Really, you can quit benzos cold turkey alone."
    )
    assert [a.state for a in attachments_on(reply)] == [NoteAttachment.State.DETACHED]

    # A chat message keeps its note through an edit: every screen still shows it.
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    room = ChatRoom.objects.create(group=thread.group, name="Chat", slug="chat")
    message, _ = publishing.publish_chat_message(
        author=member, room=room, body="hi all", client_id="c"
    )
    message.room = room
    message = publishing.edit_chat_message(
        editor=member, message=message, body="you can come off valium overnight, it's fine"
    )
    first = [f["message"] for f in sent if f and f["type"] == "message_updated"][-1]
    assert first["context"]["claim"] == note.claim
    publishing.edit_chat_message(
        editor=member, message=message, body="you can come off valium overnight, it's fine!!"
    )
    again = [f["message"] for f in sent if f and f["type"] == "message_updated"][-1]
    assert again["context"]["claim"] == note.claim and attachments_on(message).count() == 1
