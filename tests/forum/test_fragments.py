"""Cached posts on thread pages (forum.fragments): shared where they may be, never stale.

The check that matters: after any change, the page served from a warm cache is the page
rendered with no cache at all. A key that misses an input fails it.
"""

import re
from datetime import timedelta

import pytest
from django.core.cache.backends.dummy import DummyCache
from django.db import connection
from django.test import Client
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forum import (
    content_warnings,
    engagement,
    fragments,
    frames,
    memberships,
    page_cache,
    privacy,
    publishing,
)
from forum.models import Membership, Notification, Post, Thread
from forum.templatetags import chrome
from forum.templatetags.kinship import ago_hole
from moderation import actions
from moderation.models import ContextNote, Sanction
from tests.conftest import join, make_user, thread_among

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def thread(settings, public_group, member, other_member) -> Thread:
    thread = thread_among(
        settings,
        public_group,
        member,
        other_member,
        title="Ninety days",
        body="Ninety days **today**.",
    )
    opening = thread.posts.get()
    for n in range(3):
        publishing.publish_reply(
            author=other_member, thread=thread, parent=opening, body=f"Well done, reply {n}."
        )
    return thread


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _page(client: Client, thread: Thread) -> str:
    response = client.get(thread.get_absolute_url())
    assert response.status_code == 200
    # Each form's token is masked anew per page; the secret behind it is what counts.
    return TOKEN.sub('name="csrfmiddlewaretoken" value="…"', response.content.decode())


def _uncached(client: Client, thread: Thread, monkeypatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(fragments, "cache", DummyCache("none", {}))
        patch.setattr(fragments, "bodies", DummyCache("none", {}))
        patch.setattr(frames, "page", lambda *args, **kwargs: None)  # base.html in full
        patch.setattr(page_cache, "cache", DummyCache("none", {}))
        chrome.forget()
        return _page(client, thread)


class PostRenders:
    """Counts renders of a template (the post's unless named) while it is active."""

    def __init__(self, name: str = fragments.TEMPLATE):
        self.name, self.count = name, 0

    def __call__(self, sender, template, context, **kwargs):
        if template.name == self.name:
            self.count += 1

    def __enter__(self):
        template_rendered.connect(self)
        return self

    def __exit__(self, *exc):
        template_rendered.disconnect(self)


def _reply(thread: Thread) -> Post:
    return thread.posts.filter(parent__isnull=False).order_by("pk").first()


def _edit(thread, member, other_member, moderator):
    publishing.edit_post(editor=other_member, post=_reply(thread), body="Edited: so proud.")


def _hide(thread, member, other_member, moderator):
    actions.hide_content(actor=moderator, obj=_reply(thread), reason="Off topic")


def _remove_own(thread, member, other_member, moderator):
    publishing.remove_own_post(actor=other_member, post=_reply(thread))


def _support(thread, member, other_member, moderator):
    engagement.toggle_support(user=member, post=_reply(thread))


def _block(thread, member, other_member, moderator):
    engagement.block_member(user=member, member=other_member)


def _cw_preference(thread, member, other_member, moderator):
    actions.set_content_warning(actor=moderator, obj=_reply(thread), warning="", categories=["use"])
    content_warnings.set_preferences(user=member, choices={"use": "hide"})


def _content_warning(thread, member, other_member, moderator):
    actions.set_content_warning(actor=moderator, obj=_reply(thread), warning="Detox talk")


def _context_note(thread, member, other_member, moderator):
    note = actions.save_context_note(
        actor=moderator, claim="Cold turkey is safe", correction="Ask a doctor first."
    )
    actions.attach_note(actor=moderator, note=note, obj=_reply(thread))


def _note_edited(thread, member, other_member, moderator):
    _context_note(thread, member, other_member, moderator)
    note = ContextNote.objects.get()
    actions.save_context_note(
        actor=moderator, note=note, claim=note.claim, correction="Talk to a doctor first."
    )


def _words_rewritten(thread, member, other_member, moderator):
    # As erasing a member renames them in others' words (forum.privacy): the words alone.
    Post.objects.filter(pk=_reply(thread).pk).update(html="<p>Well done, former member.</p>")
    page_cache.site_changed()


def _lock(thread, member, other_member, moderator):
    actions.lock_thread(actor=moderator, thread=thread)


def _new_reply(thread, member, other_member, moderator):
    publishing.publish_reply(
        author=other_member, thread=thread, parent=_reply(thread), body="Nested answer."
    )


def _author_leaves(thread, member, other_member, moderator):
    privacy.delete_account(user=other_member, password="pw", keep_posts=True)


def _leaves_group(thread, member, other_member, moderator):
    memberships.leave_group(user=member, group=thread.group)


# What the page's chrome shows (forum/templatetags/chrome.py): the navigation, the
# thread's title and tools, the reply box.
def _retitle(thread, member, other_member, moderator):
    opening = thread.posts.get(parent__isnull=True)
    publishing.edit_post(editor=member, post=opening, body=opening.source, title="Ninety-one days")


def _unfollow(thread, member, other_member, moderator):
    engagement.set_subscription(user=member, thread=thread, follow=False)


def _mute(thread, member, other_member, moderator):
    engagement.set_thread_mute(user=member, thread=thread, muted=True)


def _notified(thread, member, other_member, moderator):
    Notification.objects.create(recipient=member, kind=Notification.Kind.MENTION, thread=thread)


def _made_moderator(thread, member, other_member, moderator):
    membership = Membership.objects.get(user=member, group=thread.group)
    membership.role = Membership.Role.MODERATOR
    membership.save()


def _suspended(thread, member, other_member, moderator):
    actions.sanction_member(
        actor=moderator,
        member=member,
        kind=Sanction.Kind.SUSPENSION,
        group=thread.group,
        reason="Cooling off",
        duration=timedelta(days=1),
    )


CHANGES = [
    _edit,
    _hide,
    _remove_own,
    _support,
    _block,
    _cw_preference,
    _content_warning,
    _context_note,
    _note_edited,
    _words_rewritten,
    _lock,
    _new_reply,
    _author_leaves,
    _leaves_group,
    _retitle,
    _unfollow,
    _mute,
    _notified,
    _made_moderator,
    _suspended,
]


# What a change leaves unchanged for this viewer (their page must still equal a fresh one).
NO_VISIBLE_CHANGE = {
    (_block, "visitor"),
    (_block, "moderator"),
    (_leaves_group, "visitor"),
    (_leaves_group, "moderator"),
    *(
        (change, viewer)
        for change in (_unfollow, _mute, _notified, _made_moderator, _suspended)
        for viewer in ("visitor", "moderator")
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.strip("_"))
@pytest.mark.parametrize("viewer", ["visitor", "member", "moderator"])
def test_after_a_change_the_cached_page_is_the_fresh_page(
    change, viewer, thread, member, other_member, site_moderator, monkeypatch
):
    other_member.set_password("pw")
    other_member.save()
    user = {"visitor": None, "member": member, "moderator": site_moderator}[viewer]
    before = _page(_client(user), thread)
    change(thread, member, other_member, site_moderator)
    client = _client(user)
    cached = _page(client, thread)
    assert cached == _uncached(client, thread, monkeypatch)
    assert cached != before or (change, viewer) in NO_VISIBLE_CHANGE


@pytest.mark.django_db
def test_readers_in_the_same_position_share_rendered_posts(thread, member, site_moderator):
    third = join_new_member(thread)
    _page(_client(member), thread)
    with PostRenders() as renders:
        first_view = _page(_client(third), thread)
    assert renders.count == 1  # the opening post reads differently for its author only
    with PostRenders() as renders:
        again = _page(_client(third), thread)
    assert renders.count == 0
    assert again == first_view
    with PostRenders() as renders:
        _page(_client(site_moderator), thread)
    assert renders.count == thread.posts.count()  # moderators see controls members don't


def join_new_member(thread: Thread, handle: str = "third-reader"):
    user = make_user(handle)
    join(user, thread.group)
    return user


@pytest.mark.django_db
def test_members_in_different_positions_never_share_a_body(
    settings, thread, member, other_member, monkeypatch
):
    """A member's page body is shared with members who read it alike (forum.fragments):
    each reader below differs from the first in one way only, and must get their own."""
    settings.KINSHIP_NEW_MEMBER_HOLDS = 0
    settings.KINSHIP_TRUST_LEVELS = {1: {"posts": 0}, 3: {"posts": 2}}  # two posts: trusted
    replies = list(thread.posts.filter(parent__isnull=False).order_by("pk"))
    plain, supporter, trusted, writer = (
        join_new_member(thread, handle) for handle in ("plain", "supporter", "trusted", "writer")
    )
    engagement.toggle_support(user=supporter, post=replies[1])
    for title in ("Mine", "Mine too"):
        publishing.publish_thread(author=trusted, group=thread.group, title=title, body="Here.")
    publishing.publish_reply(author=writer, thread=thread, parent=replies[2], body="Me too.")
    engagement.set_subscription(user=writer, thread=thread, follow=False)  # as plain, but a writer
    Post.objects.filter(pk=replies[0].pk).update(
        hidden_at=timezone.now(), hidden_pending_review=True, hidden_reason="Flags"
    )
    page_cache.thread_changed(thread.pk)

    first = _page(_client(plain), thread)
    assert "Review and approve" not in first and 'aria-pressed="true"' not in first
    pages = {}
    for reader in (supporter, trusted, writer):
        client = _client(reader)
        pages[reader.handle] = _page(client, thread)
        assert pages[reader.handle] == _uncached(client, thread, monkeypatch), reader.handle
        assert pages[reader.handle] != first, reader.handle
    assert 'aria-pressed="true"' in pages["supporter"]
    assert "Review and approve" in pages["trusted"]
    mine = thread.posts.get(author=writer)
    assert f'href="/posts/{mine.pk}/edit/"' in pages["writer"]
    assert f'href="/posts/{mine.pk}/edit/"' not in first


@pytest.mark.django_db
def test_a_members_content_warning_choices_change_their_page(
    thread, member, site_moderator, monkeypatch
):
    reply = _reply(thread)
    actions.set_content_warning(actor=site_moderator, obj=reply, warning="", categories=["use"])
    client = _client(member)
    hidden = _page(client, thread)  # new members' default for "use"
    content_warnings.set_preferences(user=member, choices={"use": "show"})
    shown = _page(client, thread)
    assert "Hidden by your content settings" in hidden
    assert "Hidden by your content settings" not in shown
    assert shown == _uncached(client, thread, monkeypatch)


@pytest.mark.django_db
def test_members_reading_alike_share_one_body(thread, member):
    first, second = join_new_member(thread, "first"), join_new_member(thread, "second")
    _page(_client(first), thread)
    client = _client(second)
    body = PostRenders(fragments.BODY_TEMPLATES[0])
    with body, PostRenders() as posts, CaptureQueriesContext(connection) as queries:
        page = _page(client, thread)
    assert body.count == posts.count == 0
    assert "<summary>second</summary>" in page  # their own navigation around it
    assert len(queries) == 1  # the member, with their part of the thread (one statement)


@pytest.mark.django_db
def test_visitors_share_one_rendering(thread):
    _page(_client(), thread)
    with PostRenders() as renders:
        _page(_client(), thread)
    assert renders.count == 0


@pytest.mark.django_db
def test_an_author_sees_their_own_controls_and_others_do_not(thread, member, other_member):
    mine = _reply(thread)
    member_page = _page(_client(member), thread)
    author_page = _page(_client(other_member), thread)
    edit_link = f'href="/posts/{mine.pk}/edit/"'
    assert edit_link in author_page
    assert edit_link not in member_page


@pytest.mark.django_db
def test_ago_is_as_of_the_page_not_the_cache(thread, member, monkeypatch):
    _page(_client(member), thread)
    later = timezone.now() + timedelta(days=3)
    monkeypatch.setattr("forum.templatetags.kinship.timezone.now", lambda: later)
    with PostRenders() as renders:
        page = _page(_client(member), thread)
    assert renders.count == 0
    assert re.findall(r"<time [^>]*>([^<]*)</time>", page) == ["3\xa0days ago"] * 4, page[-3000:]
    assert "\x00" not in page


@pytest.mark.django_db
def test_forms_in_cached_posts_carry_the_readers_own_token(thread, member, other_member):
    _page(_client(other_member), thread)  # renders the posts
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(member)
    page = reader.get(thread.get_absolute_url()).content.decode()
    reply = _reply(thread)
    form = page[page.index(f'name="parent" value="{reply.pk}"') - 400 :]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    response = reader.post(
        f"{thread.get_absolute_url()}reply/",
        {"body": "Replying from a cached post.", "parent": reply.pk, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert Post.objects.filter(source="Replying from a cached post.", parent=reply).exists()
    assert "\x00" not in page


@pytest.mark.django_db
def test_every_form_on_a_page_carries_one_token(thread, member, monkeypatch):
    """The posts' forms and the page's own (navigation, reply box) share one masked token:
    masking costs each page a little, and once is enough."""
    response = _client(member).get(thread.get_absolute_url())
    page = response.content.decode()
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert len(tokens) > 3 and len(set(tokens)) == 1
    others = thread.posts.exclude(author=member).first()
    assert f'action="{reverse("post_support", args=[others.pk])}"' in page  # a post's form too


@pytest.mark.django_db
def test_a_cache_outage_still_serves_the_page(thread, member, monkeypatch):
    class Down(DummyCache):
        def get_many(self, keys, version=None):
            return {}

    monkeypatch.setattr(fragments, "cache", Down("down", {}))
    page = _page(_client(member), thread)
    assert "Well done, reply 0." in page


@pytest.mark.django_db
def test_a_continued_thread_page_shows_its_roots_context_note(
    thread, member, other_member, site_moderator
):
    reply = _reply(thread)
    note = actions.save_context_note(
        actor=site_moderator, claim="Cold turkey is safe", correction="Ask a doctor first."
    )
    actions.attach_note(actor=site_moderator, note=note, obj=reply)
    response = _client(member).get(f"{thread.get_absolute_url()}p/{reply.pk}/")
    assert response.status_code == 200
    assert "Ask a doctor first." in response.content.decode()


def test_a_body_fills_its_holes_where_they_were():
    moment = timezone.now() - timedelta(hours=3, seconds=30)
    html = (
        f"<a>{ago_hole(moment)}</a><i value='{fragments.CSRF_HOLE}'></i><b>{ago_hole(moment)}</b>"
    )
    body = fragments.Body.of(html)
    assert body.has_forms
    filled = "<a>3\xa0hours ago</a><i value='token'></i><b>3\xa0hours ago</b>"
    assert body.fill("token") == filled.encode()
    with pytest.raises(ValueError, match="CSRF token"):
        body.fill(None)
    plain = fragments.Body.of("<p>No forms, no times.</p>")
    assert not plain.has_forms and plain.fill(None) == b"<p>No forms, no times.</p>"
