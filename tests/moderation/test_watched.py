"""Watched phrases end to end: through the forum and chat write paths, the review queue,
and the moderators' pages that keep the lists."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from forum import publishing
from forum.models import ChatMessage, ChatRoom, Membership, Post, Thread, User
from moderation import actions
from moderation.models import (
    WATCHED_PHRASES_VERSION,
    Flag,
    ModerationLogEntry,
    QueueItem,
    WatchedPhrase,
)
from moderation.policy import MASK
from tests.chat_helpers import open_socket, run_async
from tests.conftest import join, make_group, make_user
from tests.forum.test_consumers import settle

Action = ModerationLogEntry.Action
VISIBILITY = User.Visibility.values[0]
ECHO = {"history", "room", "presence", "heartbeat", "typing"}


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def circle(db):
    group = make_group("open-circle")
    member, other, moderator = make_user("river"), make_user("meadow"), make_user("heron")
    join(member, group)
    join(other, group)
    join(moderator, group, Membership.Role.MODERATOR)
    return group, member, other, moderator


def watch(group, pattern, action, match="word", message="", actor=None):
    return WatchedPhrase.objects.create(
        group=group, pattern=pattern, match=match, action=action, message=message
    )


def opening(group, author):
    return publishing.publish_thread(author=author, group=group, title="Checking in", body="Hi.")


# --- the forum path --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_block_refuses_a_reply_with_its_message_and_stores_nothing(circle):
    group, member, _other, _mod = circle
    thread = opening(group, member)
    watch(None, "heroin", "block", message="Please don't name drugs.")
    with pytest.raises(ValidationError) as refused:
        publishing.publish_reply(author=member, thread=thread, body="I miss h3r0in")
    assert refused.value.message_dict == {"body": ["Please don't name drugs."]}
    assert Post.objects.filter(thread=thread).count() == 1
    assert not QueueItem.objects.exists()


@pytest.mark.django_db
def test_a_blocked_thread_title_is_refused_on_its_field(circle):
    group, member, _other, _mod = circle
    watch(group, "heroin", "block")
    with pytest.raises(ValidationError) as refused:
        publishing.publish_thread(author=member, group=group, title="H E R O I N", body="Hi")
    assert list(refused.value.message_dict) == ["title"]
    assert not Thread.objects.exists()


@pytest.mark.django_db
def test_a_group_phrase_applies_only_in_its_group(circle):
    group, member, _other, _mod = circle
    elsewhere = make_group("other-circle")
    join(member, elsewhere)
    watch(elsewhere, "pickles", "block")
    thread = opening(group, member)
    assert publishing.publish_reply(author=member, thread=thread, body="I like pickles")
    with pytest.raises(ValidationError):
        publishing.publish_reply(author=member, thread=opening(elsewhere, member), body="pickles")


@pytest.mark.django_db
def test_censor_stores_masked_source_and_html(circle):
    group, member, _other, _mod = circle
    thread = opening(group, member)
    watch(None, "ass", "censor")
    post = publishing.publish_reply(author=member, thread=thread, body="Don't be an **@ss**, class")
    post.refresh_from_db()
    assert post.source == f"Don't be an **{MASK * 3}**, class"
    assert f"<strong>{MASK * 3}</strong>" in post.html and "@ss" not in post.html
    assert not post.is_hidden and not QueueItem.objects.exists()


@pytest.mark.django_db
def test_censor_applies_to_edits_titles_and_bios(circle):
    group, member, _other, _mod = circle
    watch(None, "ass", "censor")
    thread = publishing.publish_thread(author=member, group=group, title="an ass", body="ok")
    assert thread.title == f"an {MASK * 3}"
    post = thread.posts.get()
    publishing.edit_post(editor=member, post=post, body="ass again")
    post.refresh_from_db()
    assert post.source == f"{MASK * 3} again"
    publishing.update_profile(
        user=member, bio="pain in the ass", recovery_date=None, recovery_date_visibility=VISIBILITY
    )
    member.refresh_from_db()
    assert member.bio_source == f"pain in the {MASK * 3}" and "ass" not in member.bio_html


@pytest.mark.django_db
def test_a_bio_is_screened_by_site_phrases_only(circle):
    group, member, _other, _mod = circle
    watch(group, "pickles", "block")
    watch(None, "heroin", "block", message="Not in a bio.")
    publishing.update_profile(
        user=member, bio="pickles", recovery_date=None, recovery_date_visibility=VISIBILITY
    )
    with pytest.raises(ValidationError) as refused:
        publishing.update_profile(
            user=member, bio="heroin", recovery_date=None, recovery_date_visibility=VISIBILITY
        )
    assert refused.value.message_dict == {"bio": ["Not in a bio."]}


@pytest.mark.django_db
def test_flag_publishes_and_opens_a_queue_item_with_an_automatic_flag(circle):
    group, member, other, moderator = circle
    thread = opening(group, member)
    watch(group, "dm me", "flag")
    post = publishing.publish_reply(author=member, thread=thread, body="DM me for details")
    post.refresh_from_db()
    assert not post.is_hidden
    item = QueueItem.objects.get()
    assert (item.target, item.group, item.member, item.flag_count) == (post, group, member, 1)
    assert not item.hidden_pending_review
    flag = Flag.objects.get()
    assert flag.flagger is None and flag.reason == "other"
    assert "dm me" in flag.details_source
    # Everyone sees it; the author is never told which rule.
    html = as_user(other).get(thread.get_absolute_url()).content.decode()
    assert "DM me for details" in html
    mine = as_user(member).get(thread.get_absolute_url()).content.decode()
    assert "Watched phrase" not in mine
    # The moderator's queue and the item page show the automatic flag.
    mod = as_user(moderator)
    queue = mod.get("/moderation/queue/").content.decode()
    assert "1 flag: A watched phrase (1)" in " ".join(queue.split())
    page = mod.get(f"/moderation/items/{item.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "automatic (a watched phrase)" in text and "dm me" in text


@pytest.mark.django_db
def test_an_automatic_flag_does_not_count_toward_hiding(circle, settings):
    group, member, other, _mod = circle
    settings.KINSHIP_FLAGS_TO_HIDE = 2
    watch(group, "dm me", "flag")
    post = publishing.publish_reply(author=member, thread=opening(group, member), body="dm me")
    actions.flag(flagger=other, obj=post, reason="spam")
    post.refresh_from_db()
    assert not post.is_hidden
    assert QueueItem.objects.get().flag_count == 2


@pytest.mark.django_db
def test_hold_stores_a_reply_hidden_until_a_moderator_dismisses(circle):
    group, member, other, moderator = circle
    thread = opening(group, member)
    watch(None, "dm me", "hold")
    post = publishing.publish_reply(author=member, thread=thread, body="dm me please")
    assert post.held_for_review
    post.refresh_from_db()
    assert post.hidden_pending_review and post.hidden_at is not None
    item = QueueItem.objects.get()
    assert item.hidden_pending_review and item.target == post
    # Others do not see it; its author does, with an honest note.
    assert "dm me please" not in as_user(other).get(thread.get_absolute_url()).content.decode()
    mine = as_user(member).get(thread.get_absolute_url()).content.decode()
    assert "dm me please" in mine and publishing.HOLD_NOTICE in mine
    actions.dismiss_flags(actor=moderator, item=item)
    post.refresh_from_db()
    assert not post.is_hidden
    assert "dm me please" in as_user(other).get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_hold_on_a_new_thread_hides_the_thread(circle):
    group, member, other, moderator = circle
    watch(group, "dm me", "hold")
    thread = publishing.publish_thread(author=member, group=group, title="Hi", body="dm me")
    thread.refresh_from_db()
    assert thread.hidden_pending_review
    assert QueueItem.objects.get().target == thread
    assert as_user(other).get(thread.get_absolute_url()).status_code == 404
    assert as_user(member).get(thread.get_absolute_url()).status_code == 200
    actions.dismiss_flags(actor=moderator, item=QueueItem.objects.get())
    assert as_user(other).get(thread.get_absolute_url()).status_code == 200


@pytest.mark.django_db
def test_an_edit_can_be_held(circle):
    group, member, _other, _mod = circle
    thread = opening(group, member)
    post = publishing.publish_reply(author=member, thread=thread, body="fine words")
    watch(group, "dm me", "hold")
    saved = publishing.edit_post(editor=member, post=post, body="now dm me")
    assert saved.held_for_review
    post.refresh_from_db()
    assert post.hidden_pending_review and post.source == "now dm me"
    assert QueueItem.objects.get().hidden_pending_review


@pytest.mark.django_db
def test_the_views_tell_the_author_honestly(circle):
    group, member, _other, _mod = circle
    thread = opening(group, member)
    client = as_user(member)
    watch(group, "heroin", "block", message="Please say “a substance” instead.")
    refused = client.post(f"{thread.get_absolute_url()}reply/", {"body": "heroin"})
    assert refused.status_code == 200
    assert "Please say “a substance” instead." in refused.content.decode()
    assert Post.objects.filter(thread=thread).count() == 1
    watch(group, "dm me", "hold")
    held = client.post(f"{thread.get_absolute_url()}reply/", {"body": "dm me"}, follow=True)
    assert publishing.HOLD_NOTICE in held.content.decode()


@pytest.mark.django_db
def test_compiled_rules_are_cached_until_a_phrase_changes(circle, django_assert_num_queries):
    group, _member, _other, moderator = circle
    watch(group, "alpha", "flag")
    rules = publishing.watched_rules(group)
    with django_assert_num_queries(0):
        assert publishing.watched_rules(group) is rules
    token = WATCHED_PHRASES_VERSION.current()
    phrase = actions.add_watched_phrase(
        actor=moderator, group=group, pattern="bravo", match="word", action="block"
    )
    # Under pytest's transaction the on_commit hooks do not run; the model signal and the
    # action bump in on_commit, so run them as a commit would.
    from django.db import connection

    for _sids, hook, _robust in connection.run_on_commit:
        hook()
    connection.run_on_commit.clear()
    assert WATCHED_PHRASES_VERSION.current() != token
    fresh = publishing.watched_rules(group)
    assert fresh is not rules and len(fresh.entries) == 2
    # Another worker's process memory is not shared: the cache token is what they compare.
    WATCHED_PHRASES_VERSION.forget()
    assert len(publishing.watched_rules(group).entries) == 2
    assert phrase.pk


@pytest.mark.django_db(transaction=True)
def test_removing_a_phrase_takes_effect_at_once(circle):
    group, member, _other, moderator = circle
    thread = opening(group, member)
    phrase = actions.add_watched_phrase(
        actor=moderator, group=group, pattern="pickles", match="word", action="block"
    )
    with pytest.raises(ValidationError):
        publishing.publish_reply(author=member, thread=thread, body="pickles")
    actions.remove_watched_phrase(actor=moderator, phrase=phrase)
    assert publishing.publish_reply(author=member, thread=thread, body="pickles")


# --- the chat path ---------------------------------------------------------------------------


@pytest.fixture
def room(circle, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1000, 60)}
    group = circle[0]
    return ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)


@pytest.mark.django_db
def test_chat_messages_are_screened_like_posts(circle, room):
    _group, member, _other, _mod = circle
    watch(None, "ass", "censor")
    watch(None, "heroin", "block")
    watch(None, "meth*", "flag", match="wildcard")
    message, _ = publishing.publish_chat_message(
        author=member, room=room, body="ass", client_id="a"
    )
    assert message.source == MASK * 3
    with pytest.raises(ValidationError):
        publishing.publish_chat_message(author=member, room=room, body="h.e.r.o.i.n", client_id="b")
    flagged, _ = publishing.publish_chat_message(
        author=member, room=room, body="methadone", client_id="c"
    )
    assert not flagged.is_removed and QueueItem.objects.get().target == flagged
    # An edit is screened too.
    with pytest.raises(ValidationError):
        publishing.edit_chat_message(editor=member, message=message, body="heroin")
    assert ChatMessage.objects.count() == 2


@pytest.mark.django_db
def test_a_held_chat_edit_is_hidden_for_review(circle, room):
    _group, member, _other, moderator = circle
    message, _ = publishing.publish_chat_message(author=member, room=room, body="hi", client_id="a")
    watch(None, "dm me", "hold")
    publishing.edit_chat_message(editor=member, message=message, body="dm me")
    message.refresh_from_db()
    assert message.removed_by == ChatMessage.RemovedBy.REVIEW
    actions.dismiss_flags(actor=moderator, item=QueueItem.objects.get())
    message.refresh_from_db()
    assert not message.is_removed and message.source == "dm me"


@pytest.mark.django_db(transaction=True)
def test_over_chat_a_block_is_an_invalid_error_and_a_hold_is_acknowledged_as_review(circle, room):
    group, member, other, _mod = circle
    watch(None, "heroin", "block", message="Not that word, please.")
    watch(group, "dm me", "hold")

    async def scenario():
        socket = await open_socket(room, member)
        await settle(socket)
        watcher = await open_socket(room, other)
        await settle(watcher)
        await socket.send({"type": "send", "client_id": "x1", "body": "h3roin"})
        error = await socket.expect("error")
        assert error["code"] == "invalid" and error["client_id"] == "x1"
        assert error["message"] == "Not that word, please."
        await socket.send({"type": "send", "client_id": "x2", "body": "dm me"})
        ack = await socket.expect("ack", client_id="x2", skip=ECHO | {"message"})
        assert ack["removed_by"] == "review" and ack["notice"] == publishing.HOLD_NOTICE
        seen = await watcher.expect("message", skip=ECHO)
        assert seen["message"]["removed"] and seen["message"]["removed_by"] == "review"
        assert seen["message"]["source"] == "" and seen["message"]["html"] == ""
        await socket.disconnect()
        await watcher.disconnect()

    run_async(scenario)
    held = ChatMessage.objects.get()
    assert held.removed_by == ChatMessage.RemovedBy.REVIEW and held.source == "dm me"
    item = QueueItem.objects.get()
    assert item.hidden_pending_review and item.target == held


# --- the moderators' pages -------------------------------------------------------------------


def watched_url(group) -> str:
    return f"/moderation/g/{group.slug}/watched/" if group else "/moderation/watched/"


@pytest.mark.django_db
def test_only_those_who_keep_the_list_see_it(circle):
    group, member, _other, moderator = circle
    leader, outsider, site_mod = (
        make_user("sage"),
        make_user("stranger"),
        make_user("warden", is_site_moderator=True),
    )
    join(leader, group, Membership.Role.LEADER)
    watch(group, "secretword", "flag")
    assert as_user(moderator).get(watched_url(group)).status_code == 200
    assert "secretword" in as_user(site_mod).get(watched_url(group)).content.decode()
    for user in (member, leader, outsider):
        assert as_user(user).get(watched_url(group)).status_code == 403
    assert Client().get(watched_url(group)).status_code == 302  # to sign in
    # The site list: site moderators only.
    assert as_user(site_mod).get(watched_url(None)).status_code == 200
    assert as_user(moderator).get(watched_url(None)).status_code == 403


@pytest.mark.django_db
def test_a_private_group_list_does_not_exist_for_outsiders(db):
    private = make_group("womens-circle", private=True, join_policy="request")
    assert as_user(make_user("stranger")).get(watched_url(private)).status_code == 404


@pytest.mark.django_db
def test_the_rules_page_links_to_the_list_for_moderators_only(circle):
    group, member, _other, moderator = circle
    link = watched_url(group)
    assert link in as_user(moderator).get(f"/moderation/g/{group.slug}/rules/").content.decode()
    assert link not in as_user(member).get(f"/moderation/g/{group.slug}/rules/").content.decode()


@pytest.mark.django_db
def test_adding_and_removing_a_phrase_is_logged_privately(circle):
    group, _member, _other, moderator = circle
    client = as_user(moderator)
    response = client.post(
        watched_url(group),
        {"pattern": "dm me", "match": "word", "action": "hold", "message": ""},
        follow=True,
    )
    assert response.status_code == 200 and "Now watching for" in response.content.decode()
    phrase = WatchedPhrase.objects.get()
    assert (phrase.group, phrase.pattern, phrase.action, phrase.created_by) == (
        group,
        "dm me",
        "hold",
        moderator,
    )
    added = ModerationLogEntry.objects.get(action=Action.WATCHED_ADDED)
    assert added.actor_id == moderator.pk and added.group_id == group.pk
    assert added.after["pattern"] == "dm me"
    response = client.post(f"/moderation/watched/{phrase.pk}/remove/", follow=True)
    assert response.status_code == 200 and not WatchedPhrase.objects.exists()
    removed = ModerationLogEntry.objects.get(action=Action.WATCHED_REMOVED)
    assert removed.before["pattern"] == "dm me"
    assert Action.WATCHED_ADDED not in ModerationLogEntry.PUBLIC_ACTIONS
    assert Action.WATCHED_REMOVED not in ModerationLogEntry.PUBLIC_ACTIONS
    public = as_user(_member).get(f"/moderation/g/{group.slug}/log/").content.decode()
    assert "dm me" not in public


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"pattern": "(unclosed", "match": "regex"}, "pattern", "not a valid regular expression"),
        ({"pattern": "x*", "match": "regex"}, "pattern", "matches empty text"),
        ({"pattern": "!!!", "match": "word"}, "pattern", "at least one letter"),
        ({"pattern": "fine", "match": "word", "message": "Nope"}, "message", "Only a block"),
    ],
)
def test_bad_patterns_are_field_errors_and_lose_nothing(circle, data, field, text):
    group, _member, _other, moderator = circle
    form = {"action": "flag", "message": "", **data}
    response = as_user(moderator).post(watched_url(group), form)
    assert response.status_code == 200
    assert text in response.content.decode()
    assert response.context["form"].errors[field]
    assert data["pattern"] in response.content.decode()  # the input is kept
    assert not WatchedPhrase.objects.exists()
    assert not ModerationLogEntry.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_pattern_is_refused(circle):
    group, _member, _other, moderator = circle
    actions.add_watched_phrase(actor=moderator, group=group, pattern="Alpha", match="word",
                               action="flag")  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        actions.add_watched_phrase(actor=moderator, group=group, pattern="alpha", match="word",
                                   action="block")  # fmt: skip
    assert "already watched" in refused.value.message_dict["pattern"][0]


@pytest.mark.django_db
def test_removing_needs_standing_where_the_phrase_lives(circle):
    group, member, _other, moderator = circle
    site_phrase = watch(None, "alpha", "flag")
    group_phrase = watch(group, "bravo", "flag")
    assert as_user(member).post(f"/moderation/watched/{group_phrase.pk}/remove/").status_code == 403
    assert (
        as_user(moderator).post(f"/moderation/watched/{site_phrase.pk}/remove/").status_code == 403
    )
    assert WatchedPhrase.objects.count() == 2
