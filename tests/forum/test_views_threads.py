"""Thread pages through HTTP: posting, the reply tree, edits and bad input."""

import datetime
import re
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forum import fragments, page_cache, publishing, selectors
from forum.models import HeldPost, Notification, Post, Thread
from tests.conftest import join, suspend, thread_among


@pytest.fixture
def thread(settings, public_group, member, other_member) -> Thread:
    return thread_among(
        settings, public_group, member, other_member, title="Thirty days", body="Made it to **30**."
    )


@pytest.mark.django_db
def test_start_a_thread_and_see_it_rendered(client, public_group, member):
    join(member, public_group)
    client.force_login(member)
    response = client.post(
        f"/g/{public_group.slug}/new/",
        {"title": "First <em>night</em>", "body": "Hello **all**\n\n<script>x</script>"},
    )
    thread = Thread.objects.get()
    assert response.status_code == 302
    assert response.url == thread.get_absolute_url()
    page = client.get(response.url).content.decode()
    assert "First &lt;em&gt;night&lt;/em&gt;" in page
    assert "<strong>all</strong>" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>x" not in page


@pytest.mark.django_db
def test_nested_replies_render_as_an_indented_tree(client, thread, member, other_member):
    client.force_login(other_member)
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    url = f"{thread.get_absolute_url()}reply/"
    client.post(url, {"body": "Proud of you", "parent": opening.pk})
    first = Post.objects.latest("pk")
    client.force_login(member)
    client.post(url, {"body": "Thank you", "parent": first.pk})
    second = Post.objects.latest("pk")
    assert (first.depth, second.depth) == (1, 2)
    assert second.path.startswith(first.path)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert f'class="post depth-0" id="post-{first.pk}"' in page
    assert f'class="post depth-1" id="post-{second.pk}"' in page
    assert page.index("Proud of you") < page.index("Thank you")
    assert Notification.objects.filter(recipient=member, kind="reply").count() == 1


@pytest.mark.django_db
def test_a_refused_reply_keeps_the_text(client, thread, other_member):
    client.force_login(other_member)
    long_text = "I hear you. " * 2000
    response = client.post(f"{thread.get_absolute_url()}reply/", {"body": long_text})
    assert response.status_code == 200
    body = response.content.decode()
    assert "the limit is 20,000" in body
    assert "I hear you. I hear you." in body
    assert thread.posts.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "", "body": "text"}, "The title cannot be empty."),
        ({"title": "   ", "body": "text"}, "The title cannot be empty."),
        ({"title": "t", "body": " \n\t "}, "Your post cannot be empty."),
        ({"title": "x" * 201, "body": "text"}, "the limit is 200"),
        ({"title": "t", "body": "x" * 20_001}, "the limit is 20,000"),
        ({"title": "t", "body": "bell\x07"}, "invisible control characters"),
        ({"title": "t\u202eevil", "body": "b"}, "invisible control characters"),
        ({"title": "t", "body": "nul\x00"}, "Null characters are not allowed"),
    ],
)
def test_new_thread_bad_input_shows_field_errors(client, public_group, member, data, message):
    join(member, public_group)
    client.force_login(member)
    response = client.post(f"/g/{public_group.slug}/new/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Thread.objects.exists()


@pytest.mark.django_db
def test_limits_are_inclusive(client, public_group, member):
    join(member, public_group)
    client.force_login(member)
    response = client.post(
        f"/g/{public_group.slug}/new/", {"title": "t" * 200, "body": "b" * 20_000}
    )
    assert response.status_code == 302


@pytest.mark.django_db
def test_rate_limit_is_explained(client, settings, thread, other_member):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "reply": (1, 60)}
    client.force_login(other_member)
    url = f"{thread.get_absolute_url()}reply/"
    assert client.post(url, {"body": "one"}).status_code == 302
    response = client.post(url, {"body": "two"})
    assert response.status_code == 200
    assert "Please wait" in response.content.decode()
    assert thread.posts.count() == 2


@pytest.mark.django_db
def test_duplicate_reply_within_a_minute_is_refused(client, settings, thread, other_member):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
    client.force_login(other_member)
    url = f"{thread.get_absolute_url()}reply/"
    client.post(url, {"body": "Same words"})
    response = client.post(url, {"body": "same   WORDS"})
    assert "same text a moment ago" in response.content.decode()
    assert thread.posts.count() == 2


@pytest.mark.django_db
def test_locked_thread_refuses_replies(client, thread, other_member):
    Thread.objects.filter(pk=thread.pk).update(is_locked=True)
    client.force_login(other_member)
    response = client.post(f"{thread.get_absolute_url()}reply/", {"body": "hello"})
    assert response.status_code == 403
    assert thread.posts.count() == 1
    assert "This thread is locked" in client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_posting_after_leaving_the_group_is_refused(client, thread, other_member):
    client.force_login(other_member)
    client.post(f"/g/{thread.group.slug}/leave/")
    response = client.post(f"{thread.get_absolute_url()}reply/", {"body": "hello"})
    assert response.status_code == 403
    assert thread.posts.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/g/open-circle/t/999999/",
        "/g/no-such-group/t/1/",
        "/posts/999999/edit/",
        "/posts/999999/history/",
        "/g/open-circle/t/999999/p/1/",
    ],
)
def test_unknown_ids_and_slugs_are_404(client, thread, member, url):
    client.force_login(member)
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_reply_parent_from_another_thread_is_404(client, thread, public_group, member):
    other = publishing.publish_thread(author=member, group=public_group, title="Other", body="x")
    foreign = Post.objects.get(thread=other)
    client.force_login(member)
    response = client.post(
        f"{thread.get_absolute_url()}reply/", {"body": "hi", "parent": foreign.pk}
    )
    assert response.status_code == 404
    response = client.post(f"{thread.get_absolute_url()}reply/", {"body": "hi", "parent": "abc"})
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?page=abc", "?page=-3", "?page=99999999999999", "?page=%00"])
def test_malformed_page_numbers_do_not_break_pages(client, thread, query):
    assert client.get(thread.get_absolute_url() + query).status_code == 200
    assert client.get(f"/g/{thread.group.slug}/{query}").status_code == 200


@pytest.mark.django_db
def test_missing_csrf_token_is_refused(thread, other_member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(other_member)
    response = client.post(f"{thread.get_absolute_url()}reply/", {"body": "no token"})
    assert response.status_code == 403
    assert "form has expired" in response.content.decode()
    assert thread.posts.count() == 1


@pytest.mark.django_db
def test_content_warning_keeps_a_post_collapsed(client, thread, other_member):
    client.force_login(other_member)
    client.post(
        f"{thread.get_absolute_url()}reply/",
        {"body": "What happened that night", "content_warning": "relapse details"},
    )
    page = client.get(thread.get_absolute_url()).content.decode()
    summary = page.index("Content warning: relapse details")
    opened = page.rindex('<details class="content-warning">', 0, summary)
    closed = page.index("</details>", summary)
    assert opened < summary < page.index("What happened that night") < closed


@pytest.mark.django_db
def test_deep_replies_continue_on_their_own_page(client, thread, member):
    parent = Post.objects.get(thread=thread, parent__isnull=True)
    chain = []
    for level in range(selectors.VISIBLE_DEPTH + 2):
        parent = publishing.publish_reply(
            author=member, thread=thread, parent=parent, body=f"level {level + 1}"
        )
        chain.append(parent)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "level 6" in page
    assert "level 7" not in page
    link = f"{thread.get_absolute_url()}p/{chain[5].pk}/"
    assert link in page
    deeper = client.get(link).content.decode()
    assert "level 7" in deeper and "level 8" in deeper


@pytest.mark.django_db
def test_long_threads_paginate(client, thread, member):
    for i in range(selectors.POSTS_PER_PAGE + 5):
        publishing.publish_reply(author=member, thread=thread, body=f"reply number {i}")
    first = client.get(thread.get_absolute_url()).content.decode()
    second = client.get(thread.get_absolute_url() + "?page=2").content.decode()
    assert "reply number 0<" in first and "reply number 54<" not in first
    assert "reply number 54<" in second
    assert 'rel="next"' in first


@pytest.mark.django_db
def test_edit_keeps_history_and_marks_the_post(client, thread, member, other_member):
    opening = Post.objects.get(thread=thread)
    client.force_login(member)
    response = client.post(
        f"/posts/{opening.pk}/edit/", {"title": "Thirty-one days", "body": "Now **31**."}
    )
    assert response.status_code == 302
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "Thirty-one days" in page and "edited" in page
    history = client.get(f"/posts/{opening.pk}/history/").content.decode()
    assert "Made it to <strong>30</strong>." in history
    assert "Title: Thirty days" in history
    client.force_login(other_member)
    assert client.get(f"/posts/{opening.pk}/edit/").status_code == 403
    assert client.get(f"/posts/{opening.pk}/history/").status_code == 403


@pytest.mark.django_db
def test_remove_own_post_leaves_a_marker(client, thread, member, other_member):
    reply = publishing.publish_reply(author=other_member, thread=thread, body="regret this")
    publishing.publish_reply(author=member, thread=thread, parent=reply, body="answer stays")
    client.force_login(other_member)
    assert client.post(f"/posts/{reply.pk}/remove/").status_code == 302
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "regret this" not in page
    assert "[removed by author]" in page
    assert "answer stays" in page
    reply.refresh_from_db()
    assert reply.source == "" and reply.html == ""


@pytest.mark.django_db
def test_support_and_follow_buttons(client, thread, member, other_member):
    opening = Post.objects.get(thread=thread)
    client.force_login(other_member)
    client.post(f"/posts/{opening.pk}/support/")
    opening.refresh_from_db()
    assert opening.support_count == 1
    assert 'aria-pressed="true"' in client.get(thread.get_absolute_url()).content.decode()
    client.post(f"/posts/{opening.pk}/support/")
    opening.refresh_from_db()
    assert opening.support_count == 0
    client.post(f"{thread.get_absolute_url()}follow/", {"follow": "1"})
    client.force_login(member)
    client.post(f"/posts/{opening.pk}/support/")  # own post: refused
    assert client.post(f"/posts/{opening.pk}/support/").status_code == 403
    publishing.publish_reply(author=member, thread=thread, body="update for followers")
    assert Notification.objects.filter(recipient=other_member, kind="thread_reply").exists()


@pytest.mark.django_db
def test_mentions_notify_and_the_header_counts_unread(client, thread, member, other_member):
    publishing.publish_reply(author=member, thread=thread, body=f"thanks @{other_member.handle}!")
    client.force_login(other_member)
    header = client.get("/").content.decode()
    assert 'aria-label="1 unread"' in header
    inbox = client.get("/notifications/").content.decode()
    assert "mentioned you" in inbox
    assert 'aria-label="1 unread"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_author_can_remove_a_post_after_leaving_a_private_group(
    client, settings, private_group, member, other_member
):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    join(member, private_group)
    thread = publishing.publish_thread(author=member, group=private_group, title="t", body="mine")
    post = Post.objects.get(thread=thread)
    client.force_login(member)
    client.post(f"/g/{private_group.slug}/leave/")
    assert client.get(thread.get_absolute_url()).status_code == 404
    assert client.get(f"/posts/{post.pk}/edit/").status_code == 404
    assert client.post(f"/posts/{post.pk}/remove/").url == "/groups/mine/"
    post.refresh_from_db()
    assert post.is_removed_by_author and post.source == ""
    client.force_login(other_member)
    assert client.get(f"/posts/{post.pk}/remove/").status_code == 404


# --- moderation state in thread pages (issue 4) ----------------------------------------


@pytest.fixture
def moderator_of(public_group):
    from forum.models import Membership
    from tests.conftest import make_user

    moderator = make_user("tender")
    join(moderator, public_group, Membership.Role.MODERATOR)
    return moderator


@pytest.mark.django_db
def test_a_hidden_post_keeps_its_place_and_its_replies(thread, member, other_member, moderator_of):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation import actions

    hidden = publishing.publish_reply(author=other_member, thread=thread, body="Hidden words")
    below = publishing.publish_reply(
        author=member, thread=thread, parent=hidden, body="A reply below it"
    )
    reader = Client()
    reader.force_login(member)
    reader.get(thread.get_absolute_url())  # the member's standing kept, as after the hiding
    page_cache.thread_changed(thread.pk)  # the thread's rows read afresh, as after the hiding
    with CaptureQueriesContext(connection) as before:
        reader.get(thread.get_absolute_url())
    actions.hide_content(actor=moderator_of, obj=hidden, reason="Not kind")
    with CaptureQueriesContext(connection) as after:
        html = reader.get(thread.get_absolute_url()).content.decode()
    # Hiding costs the page nothing: the state is on the post row.
    assert len(after) == len(before)
    assert html.index(f'id="post-{hidden.pk}"') < html.index(f'id="post-{below.pk}"')
    assert "[removed by a moderator]" in html and "Hidden words" not in html
    assert "A reply below it" in html
    # No support or flag on a removed post, and nothing to reply to.
    assert f"/posts/{hidden.pk}/support/" not in html
    assert f"/moderation/flag/post/{hidden.pk}/" not in html
    assert f'name="parent" value="{hidden.pk}"' not in html


@pytest.mark.django_db
def test_a_hidden_thread_is_404_for_its_replies_and_posts_too(
    thread, member, other_member, moderator_of
):
    from moderation import actions

    reply = publishing.publish_reply(author=other_member, thread=thread, body="Mine")
    actions.hide_content(actor=moderator_of, obj=thread, reason="Off topic")
    client = Client()
    client.force_login(other_member)
    url = thread.get_absolute_url()
    assert client.get(url).status_code == 404
    assert client.get(f"{url}p/{reply.pk}/").status_code == 404
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    assert client.post(f"/posts/{opening.pk}/support/").status_code == 404
    # The author of a post in it still holds their own words.
    assert client.get(f"/posts/{reply.pk}/remove/").status_code == 200
    client.force_login(member)
    assert client.get(url).status_code == 200
    assert client.get(f"{url}p/{reply.pk}/").status_code == 200


# --- crisis words: published as ever, support for the author, an urgent item -----------------

SUPPORT_HEADING = "Support is here if you want it"


@pytest.fixture
def warmline(db):
    from forum.models import CrisisResource

    return CrisisResource.objects.create(
        name="Warmline North", region="Anywhere", contact="555-0199", description="Talk to us."
    )


@pytest.mark.django_db
def test_a_reply_with_crisis_words_is_published_and_its_author_sees_support(
    client, thread, member, other_member, warmline, django_capture_on_commit_callbacks
):
    from moderation.models import QueueItem

    client.force_login(other_member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{thread.get_absolute_url()}reply/", {"body": "I took too many pills last night"}
        )
    assert response.status_code == 302  # redirected as ever: nothing was refused or held
    post = Post.objects.latest("pk")
    assert (post.source, post.is_hidden) == ("I took too many pills last night", False)
    page = client.get(response.url).content.decode()
    assert SUPPORT_HEADING in page and "Warmline North" in page and "555-0199" in page
    assert "Some of what you wrote sounds really hard" in page
    assert f'id="post-{post.pk}"' in page
    # Once: the next view of the thread is the ordinary page.
    assert SUPPORT_HEADING not in client.get(response.url).content.decode()
    # Other readers see the reply as usual, and no support box.
    client.force_login(member)
    other_view = client.get(thread.get_absolute_url()).content.decode()
    assert "I took too many pills last night" in other_view
    assert SUPPORT_HEADING not in other_view
    item = QueueItem.objects.get()
    assert (item.target, item.member, item.is_urgent, item.flag_count) == (
        post,
        other_member,
        True,
        0,
    )
    assert item.auto_reason == "Crisis words: overdose"
    assert not item.hidden_pending_review


@pytest.mark.django_db
def test_an_ordinary_reply_offers_no_support_and_opens_no_item(
    client, thread, other_member, django_capture_on_commit_callbacks
):
    from moderation.models import QueueItem

    client.force_login(other_member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{thread.get_absolute_url()}reply/", {"body": "Traffic is killing me, I'm late"}
        )
    assert response.status_code == 302
    assert SUPPORT_HEADING not in client.get(response.url).content.decode()
    assert not QueueItem.objects.exists()


@pytest.mark.django_db
def test_a_new_thread_with_crisis_words_in_its_title_is_published_with_support(
    client, public_group, member, django_capture_on_commit_callbacks
):
    from moderation.models import QueueItem

    join(member, public_group)
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/g/{public_group.slug}/new/",
            {"title": "I want to die", "body": "Day three and everything hurts."},
        )
    thread = Thread.objects.get()
    assert response.url == thread.get_absolute_url() and not thread.is_hidden
    page = client.get(response.url).content.decode()
    assert SUPPORT_HEADING in page and "Samaritans" in page  # the defaults, none configured
    item = QueueItem.objects.get()
    assert (item.target, item.is_urgent, item.auto_reason) == (
        thread,
        True,
        "Crisis words: suicide",
    )


@pytest.mark.django_db
def test_an_edit_that_adds_crisis_words_offers_support_and_joins_one_item(
    client, thread, member, django_capture_on_commit_callbacks
):
    from moderation.models import QueueItem

    opening = Post.objects.get(thread=thread, parent__isnull=True)
    client.force_login(member)
    url = f"/posts/{opening.pk}/edit/"
    for body in ("Made it to 30. I cut myself again though.", "Made it to 30. I want to die."):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"title": "Thirty days", "body": body})
        assert response.status_code == 302
        assert SUPPORT_HEADING in client.get(response.url).content.decode()
    opening.refresh_from_db()
    assert opening.source == "Made it to 30. I want to die." and not opening.is_hidden
    item = QueueItem.objects.get()  # the second edit joined the open item
    assert item.auto_reason == "Crisis words: self-harm, suicide"


@pytest.mark.django_db
def test_a_failing_alert_never_costs_the_author_their_post(
    client, thread, other_member, monkeypatch, django_capture_on_commit_callbacks
):
    from moderation import actions

    def broken(**kwargs):
        raise RuntimeError("the queue is down")

    monkeypatch.setattr(actions, "raise_crisis_alert", broken)
    client.force_login(other_member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{thread.get_absolute_url()}reply/", {"body": "I want to die"})
    assert response.status_code == 302
    assert Post.objects.filter(source="I want to die").exists()
    assert SUPPORT_HEADING in client.get(response.url).content.decode()


@pytest.mark.django_db
def test_moderators_see_the_automatic_crisis_item_with_no_flags(
    client, thread, other_member, site_moderator, django_capture_on_commit_callbacks
):
    from moderation.models import QueueItem

    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_reply(author=other_member, thread=thread, body="I can't go on")
    item = QueueItem.objects.get()
    client.force_login(site_moderator)
    queue = client.get("/moderation/queue/").content.decode()
    assert f'id="queue-item-{item.pk}"' in queue
    assert "Urgent: support needed" in queue
    assert "Crisis words: suicide: the author's own words suggest" in queue
    assert "0 flags" not in queue
    page = client.get(f"/moderation/items/{item.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Post by meadow: crisis words" in html
    assert "Nothing was hidden or held" in html
    assert "data-sensitive" in html  # blurred until the moderator chooses to look
    assert "A member is worried about this person" not in html


# --- "hold my post for an hour before it goes out" -------------------------------------------

HELD_TEXT = "Proud of you, truly."


def hold_reply_over_http(client, thread) -> HeldPost:
    response = client.post(
        f"{thread.get_absolute_url()}reply/", {"body": HELD_TEXT, "hold_for_hour": "on"}
    )
    held = HeldPost.objects.get()
    assert response.status_code == 302
    assert response.url == f"{thread.get_absolute_url()}#held-{held.pk}"
    return held


@pytest.mark.django_db
def test_a_held_reply_waits_unseen_then_goes_out_for_everyone(client, thread, member, other_member):
    other_member.quiet_timezone = "Asia/Tokyo"
    other_member.save()
    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    local = held.release_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    page = client.get(thread.get_absolute_url()).content.decode()
    assert f"Your reply goes out at {local}" in page  # the message and the reminder
    assert f'id="held-{held.pk}"' in page and HELD_TEXT in page
    assert "Send now" in page and f"/me/held/{held.pk}/edit/" in page and "Discard" in page
    assert HELD_TEXT in client.get("/me/held/").content.decode()

    reader = Client()
    reader.force_login(member)
    assert HELD_TEXT not in reader.get(thread.get_absolute_url()).content.decode()
    assert HELD_TEXT not in Client().get(thread.get_absolute_url()).content.decode()
    assert thread.posts.count() == 1

    assert publishing.release_due_posts(now=timezone.now() + timedelta(minutes=61)) == 1
    assert HELD_TEXT in reader.get(thread.get_absolute_url()).content.decode()
    own_view = client.get(thread.get_absolute_url()).content.decode()
    assert HELD_TEXT in own_view and f'id="held-{held.pk}"' not in own_view
    post = Post.objects.get(source=HELD_TEXT)
    assert post.author == other_member
    assert Notification.objects.filter(recipient=member, post=post).exists()


@pytest.mark.django_db
def test_a_refused_release_tells_the_author_and_keeps_the_words(
    client, thread, other_member, site_moderator
):
    from moderation import actions

    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    actions.lock_thread(actor=site_moderator, thread=thread)
    publishing.release_due_posts(now=timezone.now() + timedelta(minutes=61))
    assert thread.posts.count() == 1

    notices = client.get("/notifications/").content.decode()
    assert "Your held post:" in notices and 'href="/me/held/"' in notices
    assert "Your held reply could not go out: This thread is locked" in notices
    held_page = client.get("/me/held/").content.decode()
    assert "could not go out:" in held_page and "This thread is locked" in held_page
    assert HELD_TEXT in held_page and "Try again now" in held_page
    # Trying again while it is still locked says why, and keeps it.
    response = client.post(f"/me/held/{held.pk}/send/", follow=True)
    assert "It could not go out: This thread is locked" in response.content.decode()
    assert HeldPost.objects.filter(pk=held.pk).exists()


@pytest.mark.django_db
def test_send_now_and_discard_from_the_thread_page(client, thread, other_member):
    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    response = client.post(f"/me/held/{held.pk}/send/", {"next": "thread"})
    post = Post.objects.get(source=HELD_TEXT)
    assert response.status_code == 302 and response.url.endswith(f"#post-{post.pk}")
    assert not HeldPost.objects.exists()
    # Sent twice (a double click): the second one is told, nothing breaks.
    again = client.post(f"/me/held/{held.pk}/send/", follow=True)
    assert "already gone out" in again.content.decode()

    second = client.post(
        f"{thread.get_absolute_url()}reply/", {"body": "Second thoughts", "hold_for_hour": "1"}
    )
    assert second.status_code == 302
    held = HeldPost.objects.get()
    response = client.post(f"/me/held/{held.pk}/discard/", {"next": "thread"})
    assert response.status_code == 302 and response.url == thread.get_absolute_url()
    assert not HeldPost.objects.exists()
    assert not Post.objects.filter(source="Second thoughts").exists()


@pytest.mark.django_db
def test_nobody_else_can_touch_a_held_post(client, thread, member, other_member):
    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    stranger = Client()
    stranger.force_login(member)
    for action in ("send", "discard"):
        response = stranger.post(f"/me/held/{held.pk}/{action}/", follow=True)
        assert "already gone out" in response.content.decode()
    assert (
        "already gone out"
        in stranger.get(f"/me/held/{held.pk}/edit/", follow=True).content.decode()
    )
    assert HELD_TEXT not in stranger.get("/me/held/").content.decode()
    assert HeldPost.objects.filter(pk=held.pk).exists() and thread.posts.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": "  "}, "Your reply cannot be empty."),
        ({"body": "bell\x07"}, "invisible control characters"),
        ({"body": "x" * 20_001}, "the limit is 20,000"),
        ({"body": "ok", "cw_categories": ["nope"]}, "is not a content-warning category"),
    ],
)
def test_holding_bad_input_shows_field_errors_and_holds_nothing(
    client, thread, other_member, data, message
):
    client.force_login(other_member)
    response = client.post(f"{thread.get_absolute_url()}reply/", {**data, "hold_for_hour": "on"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not HeldPost.objects.exists()


@pytest.mark.django_db
def test_a_held_new_thread_waits_on_the_held_page(client, public_group, member, other_member):
    join(member, public_group)
    join(other_member, public_group)
    client.force_login(member)
    assert (
        "Hold this for an hour before it goes out"
        in client.get(f"/g/{public_group.slug}/new/").content.decode()
    )
    assert "Held posts" not in client.get("/settings/").content.decode()
    response = client.post(
        f"/g/{public_group.slug}/new/",
        {"title": "A hard night", "body": "Long story", "hold_for_hour": "on"},
    )
    assert response.status_code == 302 and response.url == "/me/held/"
    page = client.get("/me/held/").content.decode()
    assert "Your new thread goes out at" in page and "A hard night" in page
    assert 'href="/me/held/"' in client.get("/settings/").content.decode()
    assert not Thread.objects.exists()
    reader = Client()
    reader.force_login(other_member)
    assert "A hard night" not in reader.get(f"/g/{public_group.slug}/").content.decode()

    bad = client.post(
        f"/g/{public_group.slug}/new/", {"title": " ", "body": "b", "hold_for_hour": "on"}
    )
    assert bad.status_code == 200 and "The title cannot be empty." in bad.content.decode()
    assert HeldPost.objects.count() == 1


@pytest.mark.django_db
def test_edit_a_held_reply(client, thread, other_member):
    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    url = f"/me/held/{held.pk}/edit/"
    form = client.get(url).content.decode()
    assert HELD_TEXT in form and 'name="title"' not in form
    bad = client.post(url, {"body": ""})
    assert bad.status_code == 200 and "Your reply cannot be empty." in bad.content.decode()
    response = client.post(url, {"body": "Said better", "content_warning": ""})
    assert response.status_code == 302
    assert response.url == f"{thread.get_absolute_url()}#held-{held.pk}"
    held.refresh_from_db()
    assert held.body == "Said better"


@pytest.mark.django_db
def test_editing_a_refused_reply_sends_it_from_the_next_page(
    client, thread, other_member, site_moderator
):
    from moderation import actions

    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    actions.lock_thread(actor=site_moderator, thread=thread)
    publishing.release_due_posts(now=timezone.now() + timedelta(minutes=61))
    actions.lock_thread(actor=site_moderator, thread=thread, locked=False)
    HeldPost.objects.filter(pk=held.pk).update(release_at=timezone.now() - timedelta(minutes=1))
    response = client.post(f"/me/held/{held.pk}/edit/", {"body": "Said better"}, follow=True)
    page = response.content.decode()
    assert "Your reply is saved and goes out now." in page
    post = Post.objects.get(source="Said better")
    assert f'id="post-{post.pk}"' in page and not HeldPost.objects.exists()


@pytest.mark.django_db
def test_the_reply_form_follows_the_hold_setting_and_quiet_hours(client, settings, thread, member):
    # Built once per process for each way it reads (forum.views.threads._blank_reply_form).
    client.force_login(member)
    settings.KINSHIP_HOLD_MINUTES = 30
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "Hold this for 30 minutes before it goes out" in page
    assert f'name="{publishing.QUIET_HOURS_FIELD}"' not in page
    settings.KINSHIP_HOLD_MINUTES = 120
    assert "Hold this for 2 hours before" in client.get(thread.get_absolute_url()).content.decode()
    member.quiet_start, member.quiet_end = datetime.time(22), datetime.time(6)
    member.save()
    page = client.get(thread.get_absolute_url()).content.decode()
    assert f'name="{publishing.QUIET_HOURS_FIELD}"' in page


@pytest.mark.django_db
def test_a_held_reply_due_goes_out_on_its_authors_next_view_of_the_thread(
    client, thread, other_member
):
    client.force_login(other_member)
    held = hold_reply_over_http(client, thread)
    page = client.get(thread.get_absolute_url()).content.decode()  # the posts are cached now
    assert f'id="held-{held.pk}"' in page
    HeldPost.objects.filter(pk=held.pk).update(release_at=timezone.now() - timedelta(minutes=1))
    # Released by this very page (forum.publishing.held_posts_of), and shown on it.
    page = client.get(thread.get_absolute_url()).content.decode()
    assert f'id="held-{held.pk}"' not in page
    post = Post.objects.get(source=HELD_TEXT)
    assert f'id="post-{post.pk}"' in page


@pytest.mark.django_db
def test_the_thread_flag_link_shows_to_whoever_may_flag_it(
    client, thread, member, other_member, moderator_of
):
    """moderation.permissions.can_flag decides: not the author, not a visitor, and once the
    thread is hidden only its moderators."""
    link = f'href="{reverse("moderation:flag", args=["thread", thread.pk])}"'

    def shown(user) -> bool:
        reader = Client()
        if user is not None:
            reader.force_login(user)
        return link in reader.get(thread.get_absolute_url()).content.decode()

    assert [shown(u) for u in (other_member, member, None)] == [True, False, False]
    Thread.objects.filter(pk=thread.pk).update(hidden_at=timezone.now())
    page_cache.thread_changed(thread.pk)
    assert [shown(u) for u in (other_member, moderator_of)] == [False, True]


# --- the member's standing, kept between pages (forum.backends, forum.standing) -----------


@pytest.mark.django_db
def test_a_members_own_change_shows_on_their_next_page(client, thread, other_member):
    client.force_login(other_member)
    assert "Unfollow" not in client.get(thread.get_absolute_url()).content.decode()
    client.get(thread.get_absolute_url())  # kept now
    client.post(f"{thread.get_absolute_url()}follow/", {"follow": "1"})
    assert "Unfollow" in client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_a_suspension_shows_on_the_members_next_page(
    client, thread, public_group, other_member, site_moderator
):
    client.force_login(other_member)
    client.get(thread.get_absolute_url())
    assert "Post reply" in client.get(thread.get_absolute_url()).content.decode()  # kept
    suspend(other_member, public_group, by=site_moderator)
    assert "Post reply" not in client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_a_new_notification_shows_in_the_header_of_the_members_next_page(
    client, thread, member, other_member
):
    client.force_login(other_member)
    client.get(thread.get_absolute_url())
    assert 'aria-label="1 unread"' not in client.get(thread.get_absolute_url()).content.decode()
    publishing.publish_reply(author=member, thread=thread, body=f"thanks @{other_member.handle}!")
    assert 'aria-label="1 unread"' in client.get(thread.get_absolute_url()).content.decode()


@pytest.fixture
def rows_read(monkeypatch):
    """How many times a page worked out its thread (its rows and what the reader may do)."""
    calls = []
    real = selectors.thread_to_read

    def counted(*args, **kwargs):
        calls.append(kwargs["thread_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "thread_to_read", counted)
    return calls


def _without_token(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


@pytest.mark.django_db
def test_a_members_next_page_of_a_thread_is_the_body_they_read(
    client, thread, other_member, rows_read
):
    client.force_login(other_member)
    first = client.get(thread.get_absolute_url()).content.decode()
    again = client.get(thread.get_absolute_url()).content.decode()
    assert rows_read == [thread.pk]  # the second page filled the body the first one showed
    assert _without_token(again) == _without_token(first)
    assert 'name="csrfmiddlewaretoken"' in again
    publishing.publish_reply(author=other_member, thread=thread, body="A second day.")
    assert "A second day." in client.get(thread.get_absolute_url()).content.decode()
    assert rows_read == [thread.pk, thread.pk]


@pytest.mark.django_db
def test_a_kept_page_shows_a_waiting_message_once(client, thread, other_member):
    client.force_login(other_member)
    client.get(thread.get_absolute_url())  # kept now
    client.post(reverse("check_in"), {"mood": "4", "cravings": "", "note": "Steady."})
    assert "is saved." in client.get(thread.get_absolute_url()).content.decode()
    assert "is saved." not in client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_a_kept_page_fills_ago_and_a_fresh_token_each_time(
    client, thread, other_member, rows_read, monkeypatch
):
    client.force_login(other_member)
    first = client.get(thread.get_absolute_url()).content.decode()
    later = timezone.now() + timedelta(hours=3, seconds=10)
    monkeypatch.setattr(fragments.timezone, "now", lambda: later)
    again = client.get(thread.get_absolute_url()).content.decode()
    assert rows_read == [thread.pk]  # kept
    assert "just now" in first and "3\xa0hours ago" in again
    tokens = [
        set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
        for page in (first, again)
    ]
    assert len(tokens[0]) == len(tokens[1]) == 1 and tokens[0] != tokens[1]


@pytest.mark.django_db
def test_a_members_page_is_worked_out_again_after_read_page_seconds(
    client, thread, other_member, rows_read, monkeypatch
):
    from forum import cache as cache_module

    client.force_login(other_member)
    client.get(thread.get_absolute_url())
    now = time.monotonic()
    monkeypatch.setattr(
        cache_module.time, "monotonic", lambda: now + page_cache.MEMBER_PAGE_SECONDS + 1
    )
    client.get(thread.get_absolute_url())
    assert rows_read == [thread.pk, thread.pk]


@pytest.mark.django_db
def test_a_page_with_a_post_waiting_for_review_is_worked_out_each_time(
    client, thread, member, other_member, rows_read
):
    reply = publishing.publish_reply(author=member, thread=thread, body="Call me at 555-0100")
    Post.objects.filter(pk=reply.pk).update(
        hidden_at=timezone.now(), hidden_pending_review=True, hidden_reason="Flags"
    )
    page_cache.thread_changed(thread.pk)
    client.force_login(other_member)
    client.get(thread.get_absolute_url())
    html = client.get(thread.get_absolute_url()).content.decode()
    assert "[hidden while a moderator reviews it]" in html
    assert rows_read == [thread.pk, thread.pk]  # may they approve it? Their trust says, today
