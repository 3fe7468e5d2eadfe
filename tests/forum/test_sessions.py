"""Sessions: a signed-in session's key names its member, as a hint and nothing more."""

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client

from forum.sessions import KEY_LENGTH, SessionStore, member_in_key
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("key", "member"),
    [
        ("42-k3j4h5", 42),
        ("7-", 7),
        ("k3j4h5g6", None),
        ("-k3j4h5", None),
        ("x1-k3j4h5", None),
        ("", None),
        (None, None),
    ],
)
def test_the_member_is_read_from_the_head_of_a_key(key, member):
    assert member_in_key(key) == member


def test_signing_in_gives_a_key_naming_the_member(member):
    client = Client()
    client.get("/")  # a visitor's session first, if the page makes one
    assert client.login(username=member.handle, password=PASSWORD)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert member_in_key(key) == member.pk
    assert len(key) == KEY_LENGTH
    assert SessionStore(key).load()[SESSION_KEY] == str(member.pk)


def test_signing_in_as_someone_else_names_them_and_ends_the_old_key(member, other_member):
    client = Client()
    client.force_login(member)
    first = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.force_login(other_member)
    second = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert member_in_key(second) == other_member.pk
    assert not SessionStore().exists(first)


def test_a_key_is_random_beyond_its_head():
    river = make_user("river")
    keys = set()
    for _ in range(3):
        store = SessionStore()
        store[SESSION_KEY] = str(river.pk)
        store.create()
        keys.add(store.session_key)
    assert len(keys) == 3 and {member_in_key(key) for key in keys} == {river.pk}


def test_a_session_naming_no_member_has_a_plain_key():
    store = SessionStore()
    store["anything"] = 1
    store.create()
    assert member_in_key(store.session_key) is None
    assert len(store.session_key) == KEY_LENGTH
