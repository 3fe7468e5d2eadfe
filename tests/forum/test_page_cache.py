"""Visitors' thread pages from the cache (forum.page_cache): one rendering for all of them,
retired by the writes that change what they show, never shared with members.

tests/forum/test_fragments.py checks that after each kind of change a visitor's cached
page equals a fresh one; these cover who is served from the cache and what may not be.
"""

import os
import time

import pytest
import redis
from django.core.cache.backends.dummy import DummyCache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from forum import page_cache, privacy, publishing, selectors
from forum.models import Membership, SupportGroup, Thread
from moderation import actions
from tests.conftest import make_group, thread_among


@pytest.fixture
def thread(settings, public_group, member, other_member) -> Thread:
    thread = thread_among(
        settings, public_group, member, other_member, title="Sober curious", body="Week **one**."
    )
    publishing.publish_reply(
        author=other_member, thread=thread, parent=thread.posts.get(), body="Welcome in."
    )
    return thread


def _visit(thread: Thread, client: Client | None = None, path: str = ""):
    return (client or Client()).get(path or thread.get_absolute_url())


@pytest.mark.django_db
def test_a_second_visitor_is_served_without_a_query(thread):
    first = _visit(thread)
    with CaptureQueriesContext(connection) as queries:
        second = _visit(thread)
    assert second.status_code == 200
    assert len(queries) == 0
    assert second.content == first.content
    assert "Welcome in." in second.content.decode()
    assert second["Content-Security-Policy"]  # headers still come from the middleware


@pytest.mark.django_db
def test_members_never_get_the_visitors_page(thread, other_member):
    _visit(thread)
    client = Client()
    client.force_login(other_member)
    page = _visit(thread, client).content.decode()
    assert other_member.handle in page
    assert "Log out" in page
    assert "csrfmiddlewaretoken" in page


@pytest.mark.django_db
def test_a_new_reply_shows_to_visitors_at_once(thread, member):
    _visit(thread)
    publishing.publish_reply(author=member, thread=thread, parent=None, body="Thank you all.")
    assert "Thank you all." in _visit(thread).content.decode()


@pytest.mark.django_db
def test_a_group_made_private_is_closed_to_visitors_at_once(thread, member):
    _visit(thread)
    Membership.objects.filter(user=member, group=thread.group).update(role=Membership.Role.LEADER)
    group = SupportGroup.objects.get(pk=thread.group_id)
    publishing.save_group(
        actor=member,
        group=group,
        name=group.name,
        slug=group.slug,
        kind=group.kind,
        description="A closed circle now.",
        guidelines="Be kind.",
        visibility="private",
        join_policy=group.join_policy,
    )
    response = _visit(thread)
    assert response.status_code in (302, 404)
    assert b"Welcome in." not in response.content


@pytest.mark.django_db
def test_a_thread_hidden_by_a_moderator_is_gone_for_visitors(thread, site_moderator):
    _visit(thread)
    actions.hide_content(actor=site_moderator, obj=thread, reason="Unsafe advice")
    response = _visit(thread)
    assert response.status_code == 404
    assert b"Welcome in." not in response.content


@pytest.mark.django_db
def test_a_moved_thread_is_not_served_at_its_old_address(thread, site_moderator):
    old = thread.get_absolute_url()
    _visit(thread)
    elsewhere = make_group("elsewhere")
    actions.move_thread(actor=site_moderator, thread=thread, to_group=elsewhere)
    assert _visit(thread, path=old).status_code == 404
    moved = Thread.objects.get(pk=thread.pk)
    assert b"Welcome in." in _visit(moved).content


@pytest.mark.django_db
def test_a_wrong_group_in_the_address_is_refused_though_the_page_is_cached(thread):
    _visit(thread)
    make_group("other-group")
    assert _visit(thread, path=f"/g/other-group/t/{thread.pk}/").status_code == 404


@pytest.mark.django_db
def test_erased_words_leave_the_visitors_page_at_once(thread, other_member):
    other_member.set_password("pw")
    other_member.save()
    _visit(thread)
    privacy.delete_account(user=other_member, password="pw", keep_posts=False)
    page = _visit(thread).content.decode()
    assert "Welcome in." not in page
    assert other_member.handle not in page


@pytest.mark.django_db
def test_each_page_of_a_thread_is_its_own(thread, member, settings):
    opening = thread.posts.get(parent__isnull=True)
    for n in range(selectors.POSTS_PER_PAGE):  # with "Welcome in.", one more than a page
        publishing.publish_reply(author=member, thread=thread, parent=opening, body=f"Day {n}.")
    last = f"Day {selectors.POSTS_PER_PAGE - 1}."
    first = _visit(thread, path=f"{thread.get_absolute_url()}?page=1").content.decode()
    second = _visit(thread, path=f"{thread.get_absolute_url()}?page=2").content.decode()
    assert last in second
    assert last not in first
    assert "Day 0." in first


@pytest.mark.django_db
def test_a_visitor_with_a_message_waiting_sees_it_and_it_is_not_shared(thread, other_member):
    other_member.set_password("pw")
    other_member.save()
    _visit(thread)
    client = Client()
    client.force_login(other_member)
    gone = client.post("/settings/your-data/", {"posts": "keep", "password": "pw"})
    assert gone.status_code == 302
    # Signed out now, with a message waiting for the next page they open.
    farewell = "Your account is deleted. Take care of yourself."
    assert farewell in _visit(thread, client).content.decode()
    assert farewell not in _visit(thread).content.decode()


@pytest.mark.django_db
def test_with_the_cache_down_visitors_still_get_the_page(thread, monkeypatch):
    class Down(DummyCache):
        def get_many(self, keys, version=None):
            return {}

    monkeypatch.setattr(page_cache, "cache", Down("down", {}))
    first = _visit(thread)
    second = _visit(thread)
    assert first.status_code == second.status_code == 200
    assert b"Welcome in." in second.content


@pytest.mark.django_db
def test_a_page_is_kept_no_longer_than_the_timeout(thread, monkeypatch):
    stored = []
    real_set_many = page_cache.cache.set_many

    def spy(data, timeout=None, **kwargs):
        stored.extend((key, timeout) for key in data)
        return real_set_many(data, timeout, **kwargs)

    # What LocalFirstCache hands the shared cache (forum.cache.cache is the same object).
    monkeypatch.setattr(page_cache.cache, "set_many", spy)
    _visit(thread)
    [(key, timeout)] = [(key, timeout) for key, timeout in stored if key.startswith("page:")]
    assert timeout == page_cache.TIMEOUT <= 60
    # Gone from Redis (expired), the worker's own copy outlives it by LOCAL_TTL at most.
    page_cache.cache.delete(key)
    with CaptureQueriesContext(connection) as queries:
        _visit(thread)
    assert len(queries) == 0
    later = time.monotonic() + page_cache.LOCAL_TTL + 1
    monkeypatch.setattr("forum.cache.time.monotonic", lambda: later)
    assert b"Welcome in." in _visit(thread).content
    assert [k for k, _ in stored if k.startswith("page:")] == [key, key]  # rendered again


@pytest.mark.django_db
def test_a_members_page_reads_the_versions_once(thread, other_member, monkeypatch):
    # One round trip to Redis names both the thread's rows and its posts'; a write still
    # shows on the next page.
    client = Client()
    client.force_login(other_member)
    reads = []
    real_versions = page_cache.versions

    def versions(thread_id):
        reads.append(thread_id)
        return real_versions(thread_id)

    monkeypatch.setattr(page_cache, "versions", versions)
    assert b"Welcome in." in _visit(thread, client).content
    assert reads == [thread.pk]
    publishing.publish_reply(author=other_member, thread=thread, parent=None, body="Day two.")
    assert b"Day two." in _visit(thread, client).content


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
@pytest.mark.django_db
def test_a_members_page_reads_its_session_and_versions_in_one_round_trip(
    thread, other_member, monkeypatch
):
    client = Client()
    client.force_login(other_member)
    _visit(thread, client)  # the page's rows and body are now kept in this process
    commands = []
    real = redis.Redis.execute_command

    def spy(self, *args, **options):
        commands.append(args)
        return real(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", spy)
    assert b"Welcome in." in _visit(thread, client).content
    [(name, *keys)] = commands
    assert name == "MGET"
    session_key = client.session.cache_key
    assert {key.rsplit(":", 1)[-1] for key in keys} >= {
        page_cache.SITE_VERSION.rsplit(":", 1)[-1],
        str(thread.pk),
        session_key.rsplit(":", 1)[-1],
    }
