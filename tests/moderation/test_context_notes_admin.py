"""The moderators' side of context notes: the library pages, notes on a queue item, and
the log of every attach, by hand or automatic."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from forum import publishing
from forum.models import Membership, Post
from moderation import actions
from moderation.models import (
    ContextNote,
    FlagReason,
    ModerationLogEntry,
    NoteAttachment,
    QueueItem,
)
from tests.conftest import join, make_user

Action = ModerationLogEntry.Action
LIBRARY = "/moderation/notes/"
CLAIM = "It is safe to stop taking benzodiazepines abruptly at home."
MATCHING = "quit benzos cold turkey at home, totally safe"


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def note(db):
    return ContextNote.objects.create(
        claim=CLAIM,
        phrasings="You can quit benzos cold turkey without any medical help.",
        correction_source="Stopping suddenly can cause seizures: taper with a doctor.",
        correction_html="<p>Stopping suddenly can cause seizures: taper with a doctor.</p>",
        sources="https://www.nhs.uk/medicines/diazepam/",
    )


@pytest.fixture
def group_moderator(public_group):
    moderator = make_user("heron")
    join(moderator, public_group, Membership.Role.MODERATOR)
    return moderator


@pytest.fixture
def thread(public_group, member, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    join(member, public_group)
    return publishing.publish_thread(author=member, group=public_group, title="Week 2", body="hi")


def attachments_on(obj):
    ct = ContentType.objects.get_for_model(type(obj))
    return NoteAttachment.objects.filter(content_type=ct, object_id=obj.pk)


def logged(action):
    return ModerationLogEntry.objects.filter(action=action)


def form_data(**overrides):
    return {
        "claim": "Naloxone is useless against fentanyl.",
        "phrasings": "narcan does nothing for fent\nno point carrying narcan",
        "correction": "Naloxone **does** reverse fentanyl overdoses; more doses may be needed.",
        "sources": "https://www.cdc.gov/stop-overdose/\n\nSAMHSA overdose toolkit",
        **overrides,
    }


# --- the library: who may do what -----------------------------------------------------------


@pytest.mark.django_db
def test_site_moderators_add_notes_that_are_logged(site_moderator):
    client = as_user(site_moderator)
    assert "Add the note" in client.get(LIBRARY).content.decode()
    response = client.post(LIBRARY, form_data())
    assert response.status_code == 302
    note = ContextNote.objects.get()
    assert note.created_by == site_moderator and note.is_active
    assert note.correction_html.count("<strong>does</strong>") == 1
    assert note.source_list == ["https://www.cdc.gov/stop-overdose/", "SAMHSA overdose toolkit"]
    assert note.phrasing_list == ["narcan does nothing for fent", "no point carrying narcan"]
    entry = logged(Action.CONTEXT_NOTE_ADDED).get()
    assert entry.actor_id == site_moderator.pk and entry.target_id == note.pk
    assert entry.after["claim"] == note.claim


@pytest.mark.django_db
def test_group_moderators_read_the_library_but_cannot_change_it(group_moderator, note):
    client = as_user(group_moderator)
    page = client.get(LIBRARY)
    assert page.status_code == 200
    body = page.content.decode()
    assert CLAIM in body and "taper with a doctor" in body
    assert "Add the note" not in body and "Retire" not in body
    assert client.post(LIBRARY, form_data()).status_code == 403
    assert client.post(reverse("moderation:note_retire", args=[note.pk])).status_code == 403
    assert client.get(reverse("moderation:note_edit", args=[note.pk])).status_code == 403
    assert ContextNote.objects.count() == 1 and ContextNote.objects.get().is_active
    with pytest.raises(PermissionDenied):
        actions.save_context_note(actor=group_moderator, claim="x", correction="y")


@pytest.mark.django_db
def test_members_and_leaders_may_not_see_the_library(member, public_group, note):
    join(member, public_group, Membership.Role.LEADER)
    client = as_user(member)
    assert client.get(LIBRARY).status_code == 403
    assert client.post(LIBRARY, form_data()).status_code == 403
    assert client.post(reverse("moderation:note_retire", args=[note.pk])).status_code == 403
    assert Client().get(LIBRARY).status_code == 302  # to the login page


@pytest.mark.django_db
def test_bad_input_shows_field_errors_and_keeps_what_was_typed(site_moderator, note):
    client = as_user(site_moderator)
    response = client.post(LIBRARY, form_data(claim="   ", correction=""))
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"claim", "correction"}
    assert "narcan does nothing for fent" in response.content.decode()
    response = client.post(LIBRARY, form_data(claim=CLAIM.upper(), correction="Taper."))
    assert response.status_code == 200
    assert "already has a note" in str(response.context["form"].errors["claim"])
    response = client.post(LIBRARY, form_data(sources="bad\x00source"))
    assert response.status_code == 200 and "sources" in response.context["form"].errors
    assert ContextNote.objects.count() == 1
    assert not logged(Action.CONTEXT_NOTE_ADDED).exists()


@pytest.mark.django_db
def test_the_action_reports_every_problem_at_once(site_moderator):
    with pytest.raises(ValidationError) as error:
        actions.save_context_note(
            actor=site_moderator, claim="", correction="", sources="x" * 3_000
        )
    assert set(error.value.message_dict) == {"claim", "correction", "sources"}


# --- what readers see --------------------------------------------------------------------------


@pytest.mark.django_db
def test_edits_retirement_and_restoring_reach_readers(site_moderator, note, thread, member):
    post = publishing.publish_reply(author=member, thread=thread, body=MATCHING)
    assert attachments_on(post).exists()
    reader, client = Client(), as_user(site_moderator)
    url = thread.get_absolute_url()
    assert "taper with a doctor" in reader.get(url).content.decode()

    edit = reverse("moderation:note_edit", args=[note.pk])
    assert CLAIM in client.get(edit).content.decode()
    response = client.post(edit, form_data(claim=CLAIM, correction="Talk to a doctor first."))
    assert response.status_code == 302
    page = reader.get(url).content.decode()
    assert "Talk to a doctor first." in page and "taper with a doctor" not in page
    assert logged(Action.CONTEXT_NOTE_EDITED).get().before["correction"].startswith("Stopping")

    client.post(reverse("moderation:note_retire", args=[note.pk]))
    note.refresh_from_db()
    assert not note.is_active
    assert "Context from the moderators" not in reader.get(url).content.decode()
    assert logged(Action.CONTEXT_NOTE_RETIRED).get().actor_id == site_moderator.pk
    # A retired note is not matched either.
    later = publishing.publish_reply(author=member, thread=thread, body=MATCHING + " (2)")
    assert not attachments_on(later).exists()

    client.post(reverse("moderation:note_restore", args=[note.pk]))
    assert "Talk to a doctor first." in reader.get(url).content.decode()
    assert logged(Action.CONTEXT_NOTE_RESTORED).exists()


@pytest.mark.django_db
def test_a_retired_note_does_not_hide_another_note_on_the_same_post(
    site_moderator, note, thread, member
):
    post = publishing.publish_reply(author=member, thread=thread, body="90 days today")
    other = actions.save_context_note(
        actor=site_moderator, claim="Naloxone is useless against fentanyl.",
        correction="Naloxone reverses fentanyl overdoses.",
    )  # fmt: skip
    actions.attach_note(actor=site_moderator, note=note, obj=post)
    actions.attach_note(actor=site_moderator, note=other, obj=post)
    actions.retire_context_note(actor=site_moderator, note=note)
    page = Client().get(thread.get_absolute_url()).content.decode()
    assert "Naloxone reverses fentanyl overdoses." in page


# --- on a queue item ---------------------------------------------------------------------------


@pytest.fixture
def flagged_post(thread, member, other_member, public_group):
    join(other_member, public_group)
    post = publishing.publish_reply(author=member, thread=thread, body="A plain reply.")
    actions.flag(flagger=other_member, obj=post, reason=FlagReason.MISINFORMATION)
    return post, QueueItem.objects.get(object_id=post.pk, content_type__model="post")


@pytest.mark.django_db
def test_attach_and_detach_by_hand_from_the_item_page_are_logged(
    group_moderator, note, flagged_post, thread
):
    post, item = flagged_post
    client, url = as_user(group_moderator), reverse("moderation:item", args=[item.pk])
    page = client.get(url).content.decode()
    assert "No note is attached." in page and "Attach the note" in page

    response = client.post(url, {"action": "note_attach", "note_attach-note": note.pk})
    assert response.status_code == 302
    attachment = attachments_on(post).get()
    assert attachment.state == NoteAttachment.State.CONFIRMED
    assert attachment.attached_by == group_moderator
    entry = logged(Action.CONTEXT_ATTACHED).get()
    assert entry.actor_id == group_moderator.pk and entry.target_type == "post"
    assert entry.target_id == post.pk and entry.after["note"] == note.pk
    assert entry.group_id == thread.group_id
    assert "taper with a doctor" in Client().get(thread.get_absolute_url()).content.decode()
    # Attaching it twice is refused on the form, not a 500.
    response = client.post(url, {"action": "note_attach", "note_attach-note": note.pk})
    assert response.status_code == 200 and response.context["context_notes"].attach_form.errors

    response = client.post(url, {"action": "note_detach", "attachment": attachment.pk})
    assert response.status_code == 302
    attachment.refresh_from_db()
    assert attachment.state == NoteAttachment.State.DETACHED
    assert logged(Action.CONTEXT_DETACHED).get().actor_id == group_moderator.pk
    assert (
        "Context from the moderators"
        not in Client().get(thread.get_absolute_url()).content.decode()
    )
    item.refresh_from_db()
    assert item.is_open  # a member's flag still waits for a decision


@pytest.mark.django_db
def test_bad_attachment_ids_and_members_are_refused(
    group_moderator, member, note, flagged_post, other_member
):
    post, item = flagged_post
    url = reverse("moderation:item", args=[item.pk])
    response = as_user(group_moderator).post(url, {"action": "note_detach", "attachment": "999"})
    assert response.status_code == 403
    response = as_user(group_moderator).post(url, {"action": "note_attach"})
    assert response.status_code == 200
    assert "note" in response.context["context_notes"].attach_form.errors
    with pytest.raises(PermissionDenied):
        actions.attach_note(actor=other_member, note=note, obj=post)
    assert not attachments_on(post).exists()
    assert not logged(Action.CONTEXT_ATTACHED).exists()


@pytest.mark.django_db
def test_automatic_attach_is_logged_without_an_actor_and_confirmed_by_hand(
    group_moderator, note, thread, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post = publishing.publish_reply(author=member, thread=thread, body=MATCHING)
    entry = logged(Action.CONTEXT_ATTACHED).get()
    assert entry.actor_id is None and entry.actor_role == "automatic"
    assert entry.target_type == "post" and entry.target_id == post.pk
    assert entry.after["note"] == note.pk and entry.after["score"] > 0
    assert entry.member_id == member.pk

    item = QueueItem.objects.get(object_id=post.pk, content_type__model="post")
    attachment = attachments_on(post).get()
    client, url = as_user(group_moderator), reverse("moderation:item", args=[item.pk])
    page = client.get(url).content.decode()
    assert "automatic (a context note matched)" in page and "Confirm" in page
    response = client.post(url, {"action": "note_confirm", "attachment": attachment.pk})
    assert response.status_code == 302
    attachment.refresh_from_db()
    assert attachment.state == NoteAttachment.State.CONFIRMED
    assert attachment.decided_by == group_moderator
    assert logged(Action.CONTEXT_CONFIRMED).get().actor_id == group_moderator.pk
    item.refresh_from_db()
    assert not item.is_open  # only the matcher had opened it: confirming settles it


@pytest.mark.django_db
def test_a_new_threads_note_is_handled_from_the_threads_item(
    group_moderator, note, public_group, member, django_capture_on_commit_callbacks
):
    join(member, public_group)
    with django_capture_on_commit_callbacks(execute=True):
        thread = publishing.publish_thread(
            author=member,
            group=public_group,
            title="Benzos",
            body="Stopping xanax abruptly is safe.",
        )
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    assert logged(Action.CONTEXT_ATTACHED).get().target_id == opening.pk
    item = QueueItem.objects.get(object_id=thread.pk, content_type__model="thread")
    client, url = as_user(group_moderator), reverse("moderation:item", args=[item.pk])
    assert CLAIM in client.get(url).content.decode()
    attachment = attachments_on(opening).get()
    client.post(url, {"action": "note_detach", "attachment": attachment.pk})
    attachment.refresh_from_db()
    assert attachment.state == NoteAttachment.State.DETACHED
    item.refresh_from_db()
    assert not item.is_open


@pytest.mark.django_db
def test_the_queue_links_to_the_library(group_moderator):
    assert LIBRARY in as_user(group_moderator).get("/moderation/queue/").content.decode()
