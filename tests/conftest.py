"""Shared fixtures: members in every role, a public and a private group."""

from datetime import timedelta

import pytest
from django.core.cache import cache

from forum import memberships, publishing
from forum.models import Membership, SupportGroup, Thread, User
from moderation import actions
from moderation.models import Sanction

PASSWORD = "calm-river-9431"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests only need hashing to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _trust_rules_off(settings):
    # Test members are minutes old, so trust rules would hold their every first post;
    # tests/moderation/test_trust.py switches them on (the domain blocklist always applies).
    settings.KINSHIP_TRUST_RULES = False


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


def make_user(handle: str, **extra) -> User:
    return User.objects.create_user(handle, f"{handle}@example.test", PASSWORD, **extra)


def make_group(slug: str, *, private: bool = False, join_policy: str = "open") -> SupportGroup:
    return SupportGroup.objects.create(
        name=slug.replace("-", " ").title(),
        slug=slug,
        kind=SupportGroup.Kind.MUTUAL_AID,
        visibility="private" if private else "public",
        join_policy=join_policy,
        guidelines_source="Be kind.",
        guidelines_html="<p>Be kind.</p>",
    )


@pytest.fixture
def public_group(db) -> SupportGroup:
    return make_group("open-circle")


@pytest.fixture
def private_group(db) -> SupportGroup:
    return make_group("womens-circle", private=True, join_policy="request")


@pytest.fixture
def member(db) -> User:
    return make_user("river")


@pytest.fixture
def other_member(db) -> User:
    return make_user("meadow")


@pytest.fixture
def outsider(db) -> User:
    return make_user("stranger")


@pytest.fixture
def site_moderator(db) -> User:
    return make_user("warden", is_site_moderator=True)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("keeper", is_staff=True, is_superuser=True)


def join(user: User, group: SupportGroup, role: str = Membership.Role.MEMBER) -> Membership:
    return memberships.add_member(user=user, group=group, role=role)


def suspend(member: User, group: SupportGroup, *, by: User) -> Sanction:
    """A day's suspension from ``group``, given by the moderator ``by``."""
    return actions.sanction_member(
        actor=by,
        member=member,
        kind=Sanction.Kind.SUSPENSION,
        group=group,
        reason="Cooling off",
        duration=timedelta(days=1),
    )


def thread_among(settings, group: SupportGroup, author: User, *others: User, **text) -> Thread:
    """A thread by ``author`` in ``group``, which they and ``others`` join; rate limits and
    the duplicate window are out of the way of tests that post a lot."""
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    for user in (author, *others):
        join(user, group)
    return publishing.publish_thread(author=author, group=group, **text)


@pytest.fixture
def membership_of(public_group, private_group, member, other_member):
    """river and meadow belong to both groups as plain members."""
    for group in (public_group, private_group):
        join(member, group)
        join(other_member, group)


@pytest.fixture
def unused_tcp_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # Browser tests last (after pytest-django's own ordering): they are the slowest,
    # and nothing else shares the thread with Playwright's event loop.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
