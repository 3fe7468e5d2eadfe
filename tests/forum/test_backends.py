"""Signing in: the member, their unread count, whether a sanction is in force and whether
they moderate a group in one query, kept under their standing version where the page read
it ahead; a refused password is checked once."""

import time

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import backends, engagement, publishing, selectors, standing
from forum import cache as cache_module
from forum import notify as notifications
from forum.backends import UNREAD_ATTRIBUTE, MemberBackend
from forum.cache import read_ahead
from forum.models import Membership, Notification
from forum.selectors import unread_notification_count
from tests.conftest import PASSWORD, join, make_group, make_user, suspend, thread_among

pytestmark = pytest.mark.django_db


def notify(user, count: int, *, read: bool = False) -> None:
    Notification.objects.bulk_create(
        Notification(
            recipient=user,
            kind=Notification.Kind.MODERATION,
            text="hello",
            read_at=timezone.now() if read else None,
        )
        for _ in range(count)
    )


def test_the_member_comes_with_their_unread_count_in_one_query():
    river, other = make_user("river"), make_user("meadow")
    notify(river, 3)
    notify(river, 2, read=True)
    notify(other, 4)
    with CaptureQueriesContext(connection) as queries:
        loaded = MemberBackend().get_user(river.pk)
        assert unread_notification_count(loaded) == 3
    assert len(queries) == 1
    assert getattr(MemberBackend().get_user(other.pk), UNREAD_ATTRIBUTE) == 4


def test_a_member_with_nothing_unread_counts_zero_and_a_closed_account_is_nobody():
    river = make_user("river")
    assert getattr(MemberBackend().get_user(river.pk), UNREAD_ATTRIBUTE) == 0
    river.is_active = False
    river.save()
    assert MemberBackend().get_user(river.pk) is None
    assert MemberBackend().get_user(10_000) is None


def test_a_member_loaded_elsewhere_is_counted_by_query():
    river = make_user("river")
    notify(river, 2)
    with CaptureQueriesContext(connection) as queries:
        assert unread_notification_count(river) == 2
    assert len(queries) == 1


def test_a_refused_password_is_hashed_once_not_once_per_backend(monkeypatch):
    make_user("river")
    calls = []
    real = ModelBackend.authenticate

    def counting(self, *args, **kwargs):
        calls.append(type(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)
    assert authenticate(username="river", password="not-the-password") is None
    assert calls == [MemberBackend]
    assert authenticate(username="river", password=PASSWORD) is not None


def test_a_session_signed_in_by_model_backend_still_works(client):
    river = make_user("river")
    client.force_login(river, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/groups/")
    assert response.status_code == 200
    assert response.context["user"] == river


def test_the_member_comes_knowing_whether_they_moderate_a_group(django_assert_num_queries):
    from moderation import permissions

    river, tender = make_user("river"), make_user("tender")
    group = make_group("circle")
    join(river, group, Membership.Role.LEADER)  # leads, reviews no queue
    join(tender, group, Membership.Role.MODERATOR)
    with django_assert_num_queries(2):
        loaded = [MemberBackend().get_user(user.pk) for user in (river, tender)]
    with django_assert_num_queries(0):
        assert [permissions.can_review(user) for user in loaded] == [False, True]


def test_a_signed_up_member_is_signed_in_by_member_backend(client):
    response = client.post(
        "/accounts/signup/",
        {"handle": "newcomer", "email": "newcomer@example.org",
         "password1": PASSWORD, "password2": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 302, getattr(response, "context", None)
    assert client.session["_auth_user_backend"] == "forum.backends.MemberBackend"


# --- the answer kept under the member's standing version ----------------------------------


def _load_read_ahead(user, rider=None):
    """load_member as a page that read the member's version ahead, with its session,
    loads them."""
    cache.set("a-session", {})
    with read_ahead([standing.version_key(user.pk), "a-session"]):
        if rider is None:
            return backends.load_member(user.pk)
        with backends.read_with_member(rider):
            return backends.load_member(user.pk)


def test_a_member_read_with_their_version_ahead_is_kept_until_it_changes():
    river = make_user("river")
    notify(river, 2)
    first = _load_read_ahead(river)
    with CaptureQueriesContext(connection) as queries:
        again = _load_read_ahead(river)
    assert queries.captured_queries == []
    assert again is not first and again.handle == river.handle
    assert getattr(again, UNREAD_ATTRIBUTE) == 2
    # A change the page must show: the next load asks the database.
    notifications.notify(recipient=river, kind=Notification.Kind.MODERATION, text="More")
    with CaptureQueriesContext(connection) as queries:
        changed = _load_read_ahead(river)
    assert len(queries) == 1 and getattr(changed, UNREAD_ATTRIBUTE) == 3


def test_a_member_the_cache_has_no_version_for_is_given_one_and_kept_from_then():
    river = make_user("river")
    cache.delete(standing.version_key(river.pk))  # a new cache, or the key evicted
    _load_read_ahead(river)
    assert cache.get(standing.version_key(river.pk)) is not None
    _load_read_ahead(river)
    with CaptureQueriesContext(connection) as queries:
        _load_read_ahead(river)
    assert queries.captured_queries == []


def test_without_the_version_read_ahead_every_load_asks_the_database():
    river = make_user("river")
    _load_read_ahead(river)
    with CaptureQueriesContext(connection) as queries:
        MemberBackend().get_user(river.pk)
        MemberBackend().get_user(river.pk)
    assert len(queries) == 2


def test_a_kept_member_is_a_copy_the_next_page_does_not_see_changed():
    river = make_user("river")
    _load_read_ahead(river).handle = "changed-in-a-request"
    assert _load_read_ahead(river).handle == "river"


def test_a_kept_answer_lasts_kept_seconds_at_most(monkeypatch):
    river = make_user("river")
    _load_read_ahead(river)
    now = time.monotonic()
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now + backends.KEPT_SECONDS + 1)
    with CaptureQueriesContext(connection) as queries:
        _load_read_ahead(river)
    assert len(queries) == 1


def test_each_rider_is_kept_for_its_own_parameters(settings, public_group, member, other_member):
    one = thread_among(settings, public_group, member, title="One", body="One.")
    two = thread_among(settings, public_group, other_member, title="Two", body="Two.")
    engagement.set_thread_mute(user=member, thread=two, muted=True)
    _load_read_ahead(member, selectors.viewer_with_member(one.pk))
    with CaptureQueriesContext(connection) as queries:
        loaded = _load_read_ahead(member, selectors.viewer_with_member(two.pk))
    assert len(queries) == 1
    assert getattr(loaded, selectors.VIEWER_ATTRIBUTE)[2].muted is True
    with CaptureQueriesContext(connection) as queries:
        kept = _load_read_ahead(member, selectors.viewer_with_member(one.pk))
    assert queries.captured_queries == []
    assert getattr(kept, selectors.VIEWER_ATTRIBUTE)[2].muted is False


@pytest.mark.parametrize("standing_that_ends_by_itself", ["suspended", "holding a reply"])
def test_a_member_whose_standing_can_change_without_a_write_is_never_kept(
    settings, public_group, member, other_member, site_moderator, standing_that_ends_by_itself
):
    thread = thread_among(settings, public_group, other_member, member, title="T", body="Hi.")
    if standing_that_ends_by_itself == "suspended":
        suspend(member, public_group, by=site_moderator)
    else:
        publishing.hold_reply(author=member, thread=thread, body="Later, please")
    _load_read_ahead(member)
    with CaptureQueriesContext(connection) as queries:
        _load_read_ahead(member)
    assert len(queries) == 1
