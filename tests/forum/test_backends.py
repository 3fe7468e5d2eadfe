"""Signing in: the member, their unread count, whether a sanction is in force and whether
they moderate a group in one query; a refused password is checked once."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum.backends import UNREAD_ATTRIBUTE, MemberBackend
from forum.models import Membership, Notification
from forum.selectors import unread_notification_count
from tests.conftest import PASSWORD, join, make_group, make_user

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
