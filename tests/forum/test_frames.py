"""The page around a thread page's body, rendered once per reader's facts (forum.frames).

What matters: a page from a kept frame is the page rendered in full, for each reader, and a
frame never carries one reader's token, title or messages to another.
"""

import html
import re

import pytest
from django.test import Client
from django.test.signals import template_rendered

from forum import frames
from forum.models import Notification, Thread
from tests.conftest import thread_among

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TITLE = 'Day <1> & "still here"'


@pytest.fixture
def thread(settings, public_group, member, other_member) -> Thread:
    return thread_among(settings, public_group, member, other_member, title=TITLE, body="Hello.")


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


class BaseRenders:
    """Counts renders of base.html while it is active."""

    def __init__(self):
        self.count = 0

    def __call__(self, sender, template, context, **kwargs):
        self.count += template.name == "base.html"

    def __enter__(self):
        template_rendered.connect(self)
        return self

    def __exit__(self, *exc):
        template_rendered.disconnect(self)


def _in_full(client: Client, url: str, monkeypatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(frames, "page", lambda *args, **kwargs: None)
        return client.get(url).content.decode()


def _masked(page: str) -> str:
    return TOKEN.sub('name="csrfmiddlewaretoken" value="…"', page)


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["visitor", "member", "moderator"])
def test_a_framed_page_is_the_page_rendered_in_full(
    viewer, thread, member, site_moderator, monkeypatch
):
    user = {"visitor": None, "member": member, "moderator": site_moderator}[viewer]
    client, url = _client(user), thread.get_absolute_url()
    client.get(url)  # keeps the frame
    with BaseRenders() as renders:
        framed = client.get(url).content.decode()
    assert renders.count == 0
    assert _masked(framed) == _masked(_in_full(client, url, monkeypatch))
    assert f"<title>{html.escape(TITLE)} · Kinship</title>" in framed
    assert "\x00" not in framed


@pytest.mark.django_db
def test_each_reader_gets_their_own_navigation_and_token(thread, member, other_member):
    url = thread.get_absolute_url()
    Notification.objects.create(recipient=member, kind=Notification.Kind.MENTION, thread=thread)
    river, meadow = _client(member), _client(other_member)
    river.get(url), meadow.get(url)
    first, second = river.get(url).content.decode(), meadow.get(url).content.decode()
    assert "<summary>river</summary>" in first and "<summary>meadow</summary>" in second
    assert 'aria-label="1 unread"' in first and "unread" not in second.split("<main")[0]
    tokens = {
        client: set(TOKEN.findall(page)) for client, page in ((river, first), (meadow, second))
    }
    assert len(tokens[river]) == len(tokens[meadow]) == 1
    assert tokens[river] != tokens[meadow]
    # The token works: the logout form in the framed navigation posts.
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(member)
    page = checked.get(url).content.decode()
    token = TOKEN.search(page.split('action="/accounts/logout/"')[1])[1]
    assert checked.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302


@pytest.mark.django_db
def test_a_new_notification_shows_on_the_next_page(thread, member):
    client, url = _client(member), thread.get_absolute_url()
    assert "unread" not in client.get(url).content.decode().split("<main")[0]
    Notification.objects.create(recipient=member, kind=Notification.Kind.MENTION, thread=thread)
    assert 'aria-label="1 unread"' in client.get(url).content.decode()


@pytest.mark.django_db
def test_a_waiting_message_is_shown_once(thread, member):
    client, url = _client(member), thread.get_absolute_url()
    client.get(url)  # a frame for this reader is kept
    opening = thread.posts.get()
    edited = client.post(f"/posts/{opening.pk}/edit/", {"title": TITLE, "body": "Hello again."})
    assert edited.status_code == 302
    assert "Your changes are saved." in client.get(url).content.decode()
    assert "Your changes are saved." not in client.get(url).content.decode()
