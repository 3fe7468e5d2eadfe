"""The write path (forum.publishing) and the services beside it: engagement, memberships.

Service level only: no HTTP. Each refusal is checked for its exception, the field it
names and that nothing was saved.
"""

from contextlib import contextmanager
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from forum import engagement, memberships, publishing
from forum.models import (
    JoinRequest,
    Membership,
    Notification,
    Post,
    PostRevision,
    Reaction,
    Subscription,
    SupportGroup,
    Thread,
    User,
)
from forum.models.threads import MAX_TREE_DEPTH, PATH_STEP, path_segment
from moderation import ratelimit
from moderation.ratelimit import RateLimited
from tests.conftest import join, make_group, make_user

ROOMY_LIMITS = {
    "thread": (1000, 600),
    "reply": (1000, 60),
    "edit": (1000, 60),
    "profile": (1000, 60),
}


@pytest.fixture
def roomy(settings):
    """Limits high enough that only the behaviour under test can refuse."""
    settings.KINSHIP_RATE_LIMITS = dict(ROOMY_LIMITS)
    return settings


@pytest.fixture
def thread(public_group, member, other_member, roomy) -> Thread:
    join(member, public_group)
    join(other_member, public_group)
    return publishing.publish_thread(
        author=member, group=public_group, title="First week", body="Day one of trying again."
    )


def opening_post(thread: Thread) -> Post:
    return Post.objects.get(thread=thread, parent__isnull=True)


COUNTED = (
    Thread,
    Post,
    PostRevision,
    Notification,
    Subscription,
    Reaction,
    Membership,
    JoinRequest,
    SupportGroup,
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


@contextmanager
def nothing_saved():
    before = _counts()
    yield
    assert _counts() == before


def field_errors(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- validation of text --------------------------------------------------------------


@pytest.mark.parametrize("title", ["", "   ", "\n\t  \n"])
def test_thread_title_cannot_be_empty(public_group, member, title, roomy):
    join(member, public_group)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title=title, body="Hello")
    assert field_errors(excinfo) == {"title": ["The title cannot be empty."]}


@pytest.mark.parametrize(
    "title",
    ["\u200b", " \u200b \u2060\ufeff "],
    ids=["zero-width-space", "zero-width-mix"],
)
def test_invisible_only_title_counts_as_empty(public_group, member, title, roomy):
    # KNOWN BUG (forum/publishing.py, clean_text): zero-width characters (Unicode
    # category Cf) are neither stripped nor refused, so a title that shows nothing at
    # all is published and lists as an empty link.
    join(member, public_group)
    try:
        thread = publishing.publish_thread(
            author=member, group=public_group, title=title, body="Hello"
        )
    except ValidationError as error:
        assert list(error.message_dict) == ["title"]
    else:
        pytest.fail(
            f"publish_thread accepted the invisible title {title!r} (stored as "
            f"{Thread.objects.get(pk=thread.pk).title!r}); expected ValidationError on 'title'"
        )


@pytest.mark.parametrize("body", ["", "   ", "\n\n\t\n"])
def test_thread_body_cannot_be_empty(public_group, member, body, roomy):
    join(member, public_group)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title="Hi", body=body)
    assert field_errors(excinfo) == {"body": ["Your post cannot be empty."]}


@pytest.mark.parametrize("body", ["", " \n "])
def test_reply_body_cannot_be_empty(thread, other_member, body):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_reply(author=other_member, thread=thread, body=body)
    assert field_errors(excinfo) == {"body": ["Your reply cannot be empty."]}


def test_title_length_limit_is_200(public_group, member, roomy):
    join(member, public_group)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title="t" * 201, body="b")
    assert field_errors(excinfo) == {"title": ["The title is 201 characters; the limit is 200."]}
    thread = publishing.publish_thread(author=member, group=public_group, title="t" * 200, body="b")
    assert Thread.objects.get(pk=thread.pk).title == "t" * 200


def test_title_length_counts_after_trimming_and_normalising(public_group, member, roomy):
    join(member, public_group)
    # 200 composed characters written as 400 code points, padded with spaces.
    title = "  " + "e\u0301" * 200 + "  "
    thread = publishing.publish_thread(author=member, group=public_group, title=title, body="b")
    assert Thread.objects.get(pk=thread.pk).title == "\u00e9" * 200


def test_post_length_limit_is_20000(public_group, member, other_member, roomy):
    join(member, public_group)
    join(other_member, public_group)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title="T", body="b" * 20_001)
    assert field_errors(excinfo) == {
        "body": ["Your post is 20,001 characters; the limit is 20,000."]
    }
    thread = publishing.publish_thread(
        author=member, group=public_group, title="T", body="b" * 20_000
    )
    assert len(opening_post(thread).source) == 20_000

    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_reply(author=other_member, thread=thread, body="r" * 20_001)
    assert field_errors(excinfo) == {
        "body": ["Your reply is 20,001 characters; the limit is 20,000."]
    }
    reply = publishing.publish_reply(author=other_member, thread=thread, body="r" * 20_000)
    assert len(Post.objects.get(pk=reply.pk).source) == 20_000


@pytest.mark.parametrize("where", ["title", "body"])
def test_nul_byte_is_rejected_with_a_clear_message(public_group, member, where, roomy):
    join(member, public_group)
    text = {"title": "Hello", "body": "Hello"}
    text[where] = "bad\x00text"
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, **text)
    [message] = field_errors(excinfo)[where]
    assert "NUL character" in message


@pytest.mark.parametrize(
    "char",
    ["\x07", "\x1b", "\x0b", "\x7f", "\x85", "\u202e", "\u202a", "\u2066", "\u2069"],
    ids=["bell", "escape", "vtab", "delete", "nel", "rlo", "lre", "lri", "pdi"],
)
def test_control_characters_are_rejected_with_a_clear_message(thread, other_member, char):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_reply(author=other_member, thread=thread, body=f"look{char}here")
    assert field_errors(excinfo) == {
        "body": ["Your reply contains invisible control characters. Please remove them."]
    }


def test_control_character_in_title_is_rejected(public_group, member, roomy):
    join(member, public_group)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(
            author=member, group=public_group, title="evil\u202etxt.exe", body="b"
        )
    assert "control characters" in field_errors(excinfo)["title"][0]


def test_tabs_and_newlines_are_allowed_and_crlf_is_normalised(thread, other_member):
    reply = publishing.publish_reply(
        author=other_member, thread=thread, body="line one\r\nline\ttwo\rline three\r\n"
    )
    stored = Post.objects.get(pk=reply.pk)
    assert stored.source == "line one\nline\ttwo\nline three"
    assert "\r" not in stored.html
    assert stored.html.count("<br>") == 2


def test_title_whitespace_collapses_to_single_spaces(public_group, member, roomy):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="  one\r\n two\t\tthree  ", body="b"
    )
    assert Thread.objects.get(pk=thread.pk).title == "one two three"


def test_body_is_stored_as_source_and_sanitised_html(public_group, member, roomy):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="T", body="**hi** <script>x</script>"
    )
    post = opening_post(thread)
    assert post.source == "**hi** <script>x</script>"
    assert post.html == "<p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"


def test_content_warning_is_validated_and_stored(thread, other_member):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_reply(
            author=other_member, thread=thread, body="b", content_warning="w" * 101
        )
    assert list(field_errors(excinfo)) == ["content_warning"]
    reply = publishing.publish_reply(
        author=other_member, thread=thread, body="b", content_warning="  relapse  talk "
    )
    assert Post.objects.get(pk=reply.pk).content_warning == "relapse talk"


# --- access --------------------------------------------------------------------------


def test_non_member_cannot_start_a_thread_in_a_public_group(public_group, outsider, roomy):
    with nothing_saved(), pytest.raises(PermissionDenied):
        publishing.publish_thread(author=outsider, group=public_group, title="T", body="b")


def test_non_member_cannot_reply_in_a_public_group(thread, outsider):
    with nothing_saved(), pytest.raises(PermissionDenied):
        publishing.publish_reply(author=outsider, thread=thread, body="hello")


def test_non_member_gets_404_in_a_private_group(private_group, member, outsider, roomy):
    join(member, private_group)
    thread = publishing.publish_thread(author=member, group=private_group, title="T", body="b")
    with nothing_saved():
        with pytest.raises(Http404):
            publishing.publish_thread(author=outsider, group=private_group, title="T", body="b")
        with pytest.raises(Http404):
            publishing.publish_reply(author=outsider, thread=thread, body="hello")


def test_locked_thread_refuses_members_but_not_leaders(thread, public_group, other_member):
    leader = make_user("guide")
    join(leader, public_group, role=Membership.Role.LEADER)
    Thread.objects.filter(pk=thread.pk).update(is_locked=True)
    thread.refresh_from_db()
    with nothing_saved(), pytest.raises(PermissionDenied, match="locked"):
        publishing.publish_reply(author=other_member, thread=thread, body="can I still?")
    reply = publishing.publish_reply(author=leader, thread=thread, body="Closing note.")
    assert reply.pk is not None
    assert Post.objects.filter(thread=thread, author=leader).count() == 1


def test_parent_from_another_thread_is_refused(thread, public_group, member, other_member):
    elsewhere = publishing.publish_thread(
        author=other_member, group=public_group, title="Other", body="Another thread."
    )
    foreign_parent = opening_post(elsewhere)
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_reply(
            author=member, thread=thread, parent=foreign_parent, body="Misplaced reply"
        )
    assert field_errors(excinfo) == {"parent": ["That post is not in this thread."]}


# --- duplicates and rate limits ------------------------------------------------------


def test_duplicate_reply_within_the_window_is_refused(thread, other_member, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
    first = publishing.publish_reply(author=other_member, thread=thread, body="Thank you all")
    for again in ("Thank you all", "  thank   YOU all\n", "THANK YOU ALL"):
        with nothing_saved(), pytest.raises(ValidationError) as excinfo:
            publishing.publish_reply(author=other_member, thread=thread, body=again)
        assert list(field_errors(excinfo)) == ["body"]
        assert "same text" in field_errors(excinfo)["body"][0]
    # A different text is fine.
    publishing.publish_reply(author=other_member, thread=thread, body="Thank you all again")

    # Once the first one is older than the window, the same words are welcome again.
    Post.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    again = publishing.publish_reply(author=other_member, thread=thread, body="Thank you all")
    assert again.pk != first.pk


def test_duplicate_window_zero_allows_repeats(thread, other_member, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    publishing.publish_reply(author=other_member, thread=thread, body="Same")
    publishing.publish_reply(author=other_member, thread=thread, body="Same")
    assert Post.objects.filter(author=other_member, source="Same").count() == 2


def test_duplicate_is_per_author(thread, member, other_member, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
    publishing.publish_reply(author=other_member, thread=thread, body="Welcome!")
    publishing.publish_reply(author=member, thread=thread, body="Welcome!")
    assert Post.objects.filter(source="Welcome!").count() == 2


def test_duplicate_thread_body_is_refused(public_group, member, settings):
    settings.KINSHIP_RATE_LIMITS = dict(ROOMY_LIMITS)
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
    join(member, public_group)
    publishing.publish_thread(author=member, group=public_group, title="A", body="Same story")
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title="B", body="same STORY")
    assert list(field_errors(excinfo)) == ["body"]


@pytest.fixture
def frozen_clock(monkeypatch):
    """Rate-limit windows are aligned to the clock; freeze it inside one window so a
    test never straddles a boundary."""
    # 1_800_000_000 is a multiple of 60 and of 600: the clock is 10 s into a window.
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_010.0))


def test_third_reply_in_a_minute_is_rate_limited(thread, other_member, settings, frozen_clock):
    settings.KINSHIP_RATE_LIMITS = {**ROOMY_LIMITS, "reply": (2, 60)}
    publishing.publish_reply(author=other_member, thread=thread, body="one")
    publishing.publish_reply(author=other_member, thread=thread, body="two")
    with nothing_saved(), pytest.raises(RateLimited) as excinfo:
        publishing.publish_reply(author=other_member, thread=thread, body="three")
    assert excinfo.value.action == "reply"
    assert excinfo.value.retry_after > 0
    assert excinfo.value.retry_after == 50  # the window ends 50 s after the frozen clock
    assert "50 seconds" in str(excinfo.value)


def test_rate_limit_is_per_member(thread, member, other_member, settings, frozen_clock):
    settings.KINSHIP_RATE_LIMITS = {**ROOMY_LIMITS, "reply": (1, 60)}
    publishing.publish_reply(author=other_member, thread=thread, body="one")
    publishing.publish_reply(author=member, thread=thread, body="mine")
    with pytest.raises(RateLimited):
        publishing.publish_reply(author=other_member, thread=thread, body="two")


def test_thread_rate_limit(public_group, member, settings, frozen_clock):
    settings.KINSHIP_RATE_LIMITS = {**ROOMY_LIMITS, "thread": (1, 600)}
    join(member, public_group)
    publishing.publish_thread(author=member, group=public_group, title="A", body="a")
    with nothing_saved(), pytest.raises(RateLimited) as excinfo:
        publishing.publish_thread(author=member, group=public_group, title="B", body="b")
    assert excinfo.value.action == "thread"
    assert excinfo.value.retry_after > 0


# --- the tree ------------------------------------------------------------------------


def test_opening_post_and_nested_replies_build_paths_depths_and_counts(
    thread, member, other_member
):
    root = opening_post(thread)
    assert root.depth == 0
    assert root.path == path_segment(root.pk)
    assert len(root.path) == PATH_STEP

    a = publishing.publish_reply(author=other_member, thread=thread, body="a")
    b = publishing.publish_reply(author=member, thread=thread, parent=a, body="b")
    c = publishing.publish_reply(author=other_member, thread=thread, parent=b, body="c")
    d = publishing.publish_reply(author=other_member, thread=thread, body="d")

    posts = {p.pk: p for p in Post.objects.filter(thread=thread)}
    root, a, b, c, d = (posts[x.pk] for x in (root, a, b, c, d))
    assert (a.parent_id, a.depth, a.path) == (root.pk, 1, root.path + path_segment(a.pk))
    assert (b.parent_id, b.depth, b.path) == (a.pk, 2, a.path + path_segment(b.pk))
    assert (c.parent_id, c.depth, c.path) == (b.pk, 3, b.path + path_segment(c.pk))
    assert (d.parent_id, d.depth) == (root.pk, 1)
    assert [root.reply_count, a.reply_count, b.reply_count, c.reply_count] == [2, 1, 1, 0]
    thread.refresh_from_db()
    assert thread.reply_count == 4
    assert thread.last_poster == other_member
    assert thread.last_activity_at == d.created_at
    # Depth-first order by path.
    ordered = list(Post.objects.filter(thread=thread).order_by("path").values_list("pk", flat=True))
    assert ordered == [root.pk, a.pk, b.pk, c.pk, d.pk]


def test_replies_beyond_the_maximum_depth_attach_beside_their_parent(thread, other_member):
    parent = opening_post(thread)
    for level in range(1, MAX_TREE_DEPTH + 1):
        parent = publishing.publish_reply(
            author=other_member, thread=thread, parent=parent, body=f"level {level}"
        )
    deepest = Post.objects.get(pk=parent.pk)
    assert deepest.depth == MAX_TREE_DEPTH
    assert len(deepest.path) == PATH_STEP * (MAX_TREE_DEPTH + 1)

    beside = publishing.publish_reply(
        author=other_member, thread=thread, parent=deepest, body="one more"
    )
    beside = Post.objects.get(pk=beside.pk)
    assert beside.parent_id == deepest.parent_id
    assert beside.depth == MAX_TREE_DEPTH
    assert len(beside.path) == PATH_STEP * (MAX_TREE_DEPTH + 1)
    assert Post.objects.get(pk=deepest.parent_id).reply_count == 2
    assert Post.objects.get(pk=deepest.pk).reply_count == 0


# --- editing and removing ------------------------------------------------------------


def test_edit_keeps_a_revision_and_marks_the_post_edited(thread, other_member):
    reply = publishing.publish_reply(author=other_member, thread=thread, body="Frist!")
    original_html = reply.html
    publishing.edit_post(editor=other_member, post=reply, body="First, *properly*.")
    reply = Post.objects.get(pk=reply.pk)
    assert reply.source == "First, *properly*."
    assert reply.html == "<p>First, <em>properly</em>.</p>\n"
    assert reply.edited_at is not None
    [revision] = reply.revisions.all()
    assert (revision.source, revision.html, revision.title) == ("Frist!", original_html, "")
    assert revision.created_at == reply.created_at

    edited_at = reply.edited_at
    publishing.edit_post(editor=other_member, post=reply, body="Third version")
    assert reply.revisions.count() == 2
    assert reply.revisions.first().created_at == edited_at  # newest revision first


def test_edit_without_changes_keeps_no_revision(thread, member):
    post = opening_post(thread)
    publishing.edit_post(
        editor=member, post=post, body="  Day one of trying again.\r\n", title="First week"
    )
    post.refresh_from_db()
    assert post.revisions.count() == 0
    assert post.edited_at is None


def test_edit_of_the_opening_post_can_change_the_title(thread, member):
    post = opening_post(thread)
    publishing.edit_post(editor=member, post=post, body=post.source, title="  Week one  ")
    thread.refresh_from_db()
    assert thread.title == "Week one"
    [revision] = PostRevision.objects.filter(post=post)
    assert revision.title == "First week"
    assert revision.source == "Day one of trying again."


def test_edit_of_a_reply_ignores_a_title(thread, other_member):
    reply = publishing.publish_reply(author=other_member, thread=thread, body="reply")
    publishing.edit_post(editor=other_member, post=reply, body="reply, edited", title="Hijack")
    thread.refresh_from_db()
    assert thread.title == "First week"


def test_edit_validates_like_publishing(thread, member):
    post = opening_post(thread)
    with nothing_saved():
        with pytest.raises(ValidationError) as excinfo:
            publishing.edit_post(editor=member, post=post, body="  ")
        assert list(field_errors(excinfo)) == ["body"]
        with pytest.raises(ValidationError) as excinfo:
            publishing.edit_post(editor=member, post=post, body="ok", title="")
        assert list(field_errors(excinfo)) == ["title"]
        with pytest.raises(ValidationError):
            publishing.edit_post(editor=member, post=post, body="bad\x00")
    post.refresh_from_db()
    assert post.source == "Day one of trying again."


def test_only_the_author_edits(thread, other_member, site_moderator):
    post = opening_post(thread)
    for someone in (other_member, site_moderator):
        with nothing_saved(), pytest.raises(PermissionDenied):
            publishing.edit_post(editor=someone, post=post, body="rewritten")
    post.refresh_from_db()
    assert post.source == "Day one of trying again."


def test_remove_own_post_blanks_it_but_keeps_the_tree(thread, member, other_member):
    post = publishing.publish_reply(author=member, thread=thread, body="Something I regret")
    publishing.edit_post(editor=member, post=post, body="Something I regret, edited")
    child = publishing.publish_reply(author=other_member, thread=thread, parent=post, body="Hug")
    engagement.toggle_support(user=other_member, post=post)
    assert PostRevision.objects.filter(post=post).count() == 1
    assert Reaction.objects.filter(post=post).count() == 1

    publishing.remove_own_post(actor=member, post=post)

    post = Post.objects.get(pk=post.pk)
    assert (post.source, post.html, post.content_warning) == ("", "", "")
    assert post.support_count == 0
    assert post.removed_by_author_at is not None
    assert post.is_removed_by_author
    assert PostRevision.objects.filter(post=post).count() == 0
    assert Reaction.objects.filter(post=post).count() == 0
    child = Post.objects.get(pk=child.pk)
    assert child.parent_id == post.pk
    assert child.source == "Hug"
    assert post.reply_count == 1


def test_only_the_author_removes_and_only_once(thread, member, other_member):
    post = publishing.publish_reply(author=member, thread=thread, body="mine")
    with pytest.raises(PermissionDenied):
        publishing.remove_own_post(actor=other_member, post=post)
    assert Post.objects.get(pk=post.pk).source == "mine"
    publishing.remove_own_post(actor=member, post=post)
    with pytest.raises(PermissionDenied):
        publishing.remove_own_post(actor=member, post=Post.objects.get(pk=post.pk))
    with pytest.raises(PermissionDenied):
        publishing.edit_post(editor=member, post=Post.objects.get(pk=post.pk), body="back")


# --- notifications -------------------------------------------------------------------


def notifications(user: User) -> list[tuple[str, int | None]]:
    return list(
        Notification.objects.filter(recipient=user).order_by("pk").values_list("kind", "post_id")
    )


def test_reply_notifies_the_parent_author_once(thread, member, other_member):
    # member started the thread, so also follows it: still exactly one notification.
    reply = publishing.publish_reply(
        author=other_member, thread=thread, body="Hang in there @river"
    )
    assert notifications(member) == [("reply", reply.pk)]
    assert notifications(other_member) == []


def test_replying_to_yourself_notifies_nobody(thread, member):
    publishing.publish_reply(author=member, thread=thread, body="Update: day two.")
    assert Notification.objects.count() == 0


def test_followers_get_thread_reply(thread, public_group, member, other_member):
    follower = make_user("willow")
    join(follower, public_group)
    engagement.set_subscription(user=follower, thread=thread, follow=True)
    reply = publishing.publish_reply(author=other_member, thread=thread, body="Me too.")
    nested = publishing.publish_reply(author=member, thread=thread, parent=reply, body="Thanks")
    assert notifications(follower) == [("thread_reply", reply.pk), ("thread_reply", nested.pk)]
    # other_member follows by having replied, and is the parent's author: one "reply".
    assert notifications(other_member) == [("reply", nested.pk)]
    assert notifications(member) == [("reply", reply.pk)]


def test_unfollowing_stops_thread_reply(thread, public_group, other_member):
    follower = make_user("willow")
    join(follower, public_group)
    engagement.set_subscription(user=follower, thread=thread, follow=True)
    engagement.set_subscription(user=follower, thread=thread, follow=False)
    publishing.publish_reply(author=other_member, thread=thread, body="Me too.")
    assert notifications(follower) == []


def test_mention_notifies_a_member_who_can_read_it(thread, public_group, other_member):
    friend = make_user("willow")
    join(friend, public_group)
    reply = publishing.publish_reply(author=other_member, thread=thread, body="cc @Willow")
    assert notifications(friend) == [("mention", reply.pk)]
    assert '<a href="/u/Willow/" class="mention"' in reply.html


def test_mention_outside_a_private_group_creates_no_notification(
    private_group, member, other_member, roomy
):
    join(member, private_group)
    # other_member exists but is not in the private group.
    thread = publishing.publish_thread(
        author=member, group=private_group, title="Private", body="Is @meadow here?"
    )
    publishing.publish_reply(author=member, thread=thread, body="@meadow are you?")
    assert notifications(other_member) == []


def test_former_member_following_a_private_thread_is_not_told(
    private_group, member, other_member, roomy
):
    join(member, private_group)
    join(other_member, private_group)
    thread = publishing.publish_thread(author=member, group=private_group, title="P", body="b")
    engagement.set_subscription(user=other_member, thread=thread, follow=True)
    memberships.leave_group(user=other_member, group=private_group)
    publishing.publish_reply(author=member, thread=thread, body="news")
    assert notifications(other_member) == []


def test_mention_in_a_new_thread_notifies(public_group, member, other_member, roomy):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Hi", body="Welcome @meadow and @nobody"
    )
    assert notifications(other_member) == [("mention", opening_post(thread).pk)]
    assert Notification.objects.count() == 1


# --- support -------------------------------------------------------------------------


def test_toggle_support_adds_then_removes(thread, other_member):
    post = opening_post(thread)
    assert engagement.toggle_support(user=other_member, post=post) is True
    assert Post.objects.get(pk=post.pk).support_count == 1
    assert Reaction.objects.filter(post=post, user=other_member).count() == 1
    assert engagement.toggle_support(user=other_member, post=post) is False
    assert Post.objects.get(pk=post.pk).support_count == 0
    assert Reaction.objects.filter(post=post).count() == 0


def test_cannot_support_own_post(thread, member):
    with nothing_saved(), pytest.raises(PermissionDenied):
        engagement.toggle_support(user=member, post=opening_post(thread))
    assert Post.objects.get(pk=opening_post(thread).pk).support_count == 0


def test_non_member_cannot_support(thread, outsider):
    with nothing_saved(), pytest.raises(PermissionDenied):
        engagement.toggle_support(user=outsider, post=opening_post(thread))


# --- joining and leaving -------------------------------------------------------------


def test_join_open_group_makes_a_member(public_group, outsider):
    membership = memberships.join_group(user=outsider, group=public_group, accepted_guidelines=True)
    assert isinstance(membership, Membership)
    assert (membership.user, membership.group, membership.role) == (
        outsider,
        public_group,
        "member",
    )
    assert SupportGroup.objects.get(pk=public_group.pk).member_count == 1


def test_join_request_group_creates_a_pending_request(outsider, db):
    group = make_group("ask-first", join_policy="request")
    request = memberships.join_group(user=outsider, group=group, accepted_guidelines=True)
    assert isinstance(request, JoinRequest)
    assert request.status == JoinRequest.Status.PENDING
    assert not Membership.objects.filter(user=outsider, group=group).exists()
    with nothing_saved(), pytest.raises(ValidationError):
        memberships.join_group(user=outsider, group=group, accepted_guidelines=True)


def test_joining_needs_the_guidelines_accepted(public_group, outsider):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        memberships.join_group(user=outsider, group=public_group, accepted_guidelines=False)
    assert list(field_errors(excinfo)) == ["accept_guidelines"]


def test_joining_twice_is_refused(public_group, member):
    join(member, public_group)
    with nothing_saved(), pytest.raises(ValidationError, match="already a member"):
        memberships.join_group(user=member, group=public_group, accepted_guidelines=True)


def test_private_group_needs_an_invitation(private_group, outsider):
    with nothing_saved(), pytest.raises(Http404):
        memberships.join_group(user=outsider, group=private_group, accepted_guidelines=True)
    request = memberships.join_group(
        user=outsider, group=private_group, accepted_guidelines=True, invited=True
    )
    assert isinstance(request, JoinRequest)


def test_leave_group(public_group, member):
    join(member, public_group)
    memberships.leave_group(user=member, group=public_group)
    assert not Membership.objects.filter(user=member, group=public_group).exists()
    assert SupportGroup.objects.get(pk=public_group.pk).member_count == 0
    with nothing_saved(), pytest.raises(ValidationError, match="not a member"):
        memberships.leave_group(user=member, group=public_group)


@pytest.fixture
def pending(outsider, db):
    group = make_group("ask-first", join_policy="request")
    leader = make_user("guide")
    join(leader, group, role=Membership.Role.LEADER)
    request = memberships.join_group(user=outsider, group=group, accepted_guidelines=True)
    return SimpleNamespace(group=group, leader=leader, request=request, user=outsider)


def test_approving_a_request_creates_membership_and_notification(pending):
    decided = memberships.decide_join_request(
        actor=pending.leader, request=pending.request, approve=True
    )
    assert decided.status == JoinRequest.Status.APPROVED
    stored = JoinRequest.objects.get(pk=pending.request.pk)
    assert (stored.status, stored.decided_by) == ("approved", pending.leader)
    assert stored.decided_at is not None
    assert Membership.objects.get(user=pending.user, group=pending.group).role == "member"
    assert list(
        Notification.objects.filter(recipient=pending.user).values_list("kind", "actor", "group")
    ) == [("join_approved", pending.leader.pk, pending.group.pk)]


def test_declining_a_request_adds_no_member(pending):
    memberships.decide_join_request(actor=pending.leader, request=pending.request, approve=False)
    assert JoinRequest.objects.get(pk=pending.request.pk).status == "declined"
    assert not Membership.objects.filter(user=pending.user, group=pending.group).exists()
    assert Notification.objects.filter(recipient=pending.user).count() == 0


def test_non_leader_cannot_decide(pending, member):
    join(member, pending.group)
    with nothing_saved(), pytest.raises(PermissionDenied):
        memberships.decide_join_request(actor=member, request=pending.request, approve=True)
    assert JoinRequest.objects.get(pk=pending.request.pk).status == "pending"


def test_deciding_twice_is_refused(pending):
    memberships.decide_join_request(actor=pending.leader, request=pending.request, approve=False)
    request = JoinRequest.objects.get(pk=pending.request.pk)
    with nothing_saved(), pytest.raises(ValidationError, match="already decided"):
        memberships.decide_join_request(actor=pending.leader, request=request, approve=True)
    assert not Membership.objects.filter(user=pending.user, group=pending.group).exists()


# --- group settings ------------------------------------------------------------------

GROUP_FIELDS = dict(
    name="Evening Circle",
    slug="evening-circle",
    kind="smart",
    description="We meet **every** evening.",
    guidelines="Be kind. No cross-talk.",
    visibility="public",
    join_policy="open",
)


def test_site_moderator_creates_a_group_and_leads_it(site_moderator):
    group = publishing.save_group(actor=site_moderator, group=None, **GROUP_FIELDS)
    group = SupportGroup.objects.get(pk=group.pk)
    assert (group.name, group.slug, group.kind) == ("Evening Circle", "evening-circle", "smart")
    assert group.description_html == "<p>We meet <strong>every</strong> evening.</p>\n"
    assert group.guidelines_source == "Be kind. No cross-talk."
    assert Membership.objects.get(user=site_moderator, group=group).role == "leader"
    assert group.member_count == 1


def test_plain_member_cannot_create_or_change_a_group(public_group, member):
    join(member, public_group)
    with nothing_saved():
        with pytest.raises(PermissionDenied):
            publishing.save_group(actor=member, group=None, **GROUP_FIELDS)
        with pytest.raises(PermissionDenied):
            publishing.save_group(actor=member, group=public_group, **GROUP_FIELDS)
    assert SupportGroup.objects.get(pk=public_group.pk).name == "Open Circle"


def test_group_leader_changes_settings(public_group, member):
    join(member, public_group, role=Membership.Role.LEADER)
    publishing.save_group(
        actor=member, group=public_group, **{**GROUP_FIELDS, "slug": "open-circle"}
    )
    group = SupportGroup.objects.get(pk=public_group.pk)
    assert (group.name, group.slug) == ("Evening Circle", "open-circle")


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "Evening",
        "evening circle",
        "evening--circle",
        "-evening",
        "evening-",
        "é-club",
        "a" * 61,
        "evening_circle",
    ],
)
def test_bad_slug_is_refused(site_moderator, slug):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.save_group(actor=site_moderator, group=None, **{**GROUP_FIELDS, "slug": slug})
    assert field_errors(excinfo) == {
        "slug": ["Use lower-case letters, digits and single hyphens (at most 60)."]
    }


def test_slug_of_60_characters_is_fine(site_moderator):
    group = publishing.save_group(
        actor=site_moderator, group=None, **{**GROUP_FIELDS, "slug": "a" * 60}
    )
    assert SupportGroup.objects.get(pk=group.pk).slug == "a" * 60


def test_slug_must_be_unique(site_moderator, public_group):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.save_group(
            actor=site_moderator, group=None, **{**GROUP_FIELDS, "slug": public_group.slug}
        )
    assert field_errors(excinfo) == {"slug": ["Another group already uses this address."]}


def test_bad_choices_are_all_reported(site_moderator):
    with nothing_saved(), pytest.raises(ValidationError) as excinfo:
        publishing.save_group(
            actor=site_moderator,
            group=None,
            **{**GROUP_FIELDS, "kind": "cult", "visibility": "secret", "join_policy": "bribe"},
        )
    assert set(field_errors(excinfo)) == {"kind", "visibility", "join_policy"}


# --- profiles ------------------------------------------------------------------------


def test_update_profile_stores_bio_and_date(member, roomy):
    today = timezone.localdate()
    publishing.update_profile(
        user=member,
        bio="Sober *since* spring.\r\n",
        recovery_date=today,
        recovery_date_visibility="groups",
    )
    user = User.objects.get(pk=member.pk)
    assert user.bio_source == "Sober *since* spring."
    assert user.bio_html == "<p>Sober <em>since</em> spring.</p>\n"
    assert (user.recovery_date, user.recovery_date_visibility) == (today, "groups")


def test_update_profile_rejects_a_future_recovery_date(member, roomy):
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(ValidationError) as excinfo:
        publishing.update_profile(
            user=member, bio="", recovery_date=tomorrow, recovery_date_visibility="only_me"
        )
    assert list(field_errors(excinfo)) == ["recovery_date"]
    with pytest.raises(ValidationError):
        publishing.update_profile(
            user=member,
            bio="",
            recovery_date=date(1899, 12, 31),
            recovery_date_visibility="only_me",
        )
    assert User.objects.get(pk=member.pk).recovery_date is None


def test_update_profile_rejects_an_unknown_visibility(member, roomy):
    with pytest.raises(ValidationError) as excinfo:
        publishing.update_profile(
            user=member, bio="hi", recovery_date=None, recovery_date_visibility="public"
        )
    assert list(field_errors(excinfo)) == ["recovery_date_visibility"]
    user = User.objects.get(pk=member.pk)
    assert (user.bio_source, user.recovery_date_visibility) == ("", "only_me")


def test_update_profile_rejects_a_long_or_controlled_bio(member, roomy):
    with pytest.raises(ValidationError) as excinfo:
        publishing.update_profile(
            user=member, bio="b" * 1001, recovery_date=None, recovery_date_visibility="only_me"
        )
    assert list(field_errors(excinfo)) == ["bio"]
    with pytest.raises(ValidationError):
        publishing.update_profile(
            user=member, bio="a\u202eb", recovery_date=None, recovery_date_visibility="only_me"
        )
    assert User.objects.get(pk=member.pk).bio_source == ""


@pytest.mark.django_db
def test_only_rendered_mentions_notify_and_real_ones_are_not_crowded_out(
    settings, public_group, member, other_member
):
    from forum.models import Notification

    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    join(member, public_group)
    join(other_member, public_group)
    code_only = publishing.publish_thread(
        author=member,
        group=public_group,
        title="code",
        body="`@meadow` and [@meadow](https://x.example)",
    )
    assert not Notification.objects.filter(recipient=other_member).exists()
    noise = " ".join(f"@aaa{i:02d}" for i in range(15))
    publishing.publish_reply(author=member, thread=code_only, body=f"{noise} @meadow")
    assert Notification.objects.filter(recipient=other_member, kind="mention").count() == 1


@pytest.mark.django_db
def test_removing_an_opening_post_removes_the_title(settings, public_group, member):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member,
        group=public_group,
        title="My name is on this",
        body="text",
        content_warning="cw",
    )
    post = thread.posts.get()
    publishing.remove_own_post(actor=member, post=post)
    thread.refresh_from_db()
    assert thread.title == publishing.REMOVED_TITLE
    assert thread.content_warning == ""
