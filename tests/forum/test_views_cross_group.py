"""Pages that name a group and an object of it (``/g/<slug>/t/<id>/``, ``.../sessions/<id>/``,
``.../chat/<room>/``...) find the object in that group only.

A leader of one group who puts the id of another group's thread, post, session, reading
or the slug of its room under their own group's address gets 404, and the page names
nothing of the other group: leading one group opens nothing of another (docs/permissions.md,
"404 vs 403"). tests/forum/test_views_permissions.py checks each page with its own group's
objects; this file checks the mismatched pairs.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from forum import publishing
from forum.models import (
    ChatRoom,
    LiveSession,
    Membership,
    Mute,
    SessionRSVP,
    SessionScript,
    Subscription,
    Thread,
)
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits

pytestmark = pytest.mark.django_db

THEIR_WORDS = ("Far Harbour", "Harbour lights at night", "Night owls", "Tide share", "Undertow")


@pytest.fixture
def groups(settings):
    """``sage`` leads open-circle; far-harbour (private) is someone else's."""
    lift_limits(settings)
    mine, theirs = make_group("open-circle"), make_group("far-harbour", private=True)
    sage, kestrel = make_user("sage"), make_user("kestrel")
    join(sage, mine, Membership.Role.LEADER)
    join(kestrel, theirs, Membership.Role.LEADER)
    my_thread = publishing.publish_thread(author=sage, group=mine, title="Ours", body="Hello")
    their_thread = publishing.publish_thread(
        author=kestrel, group=theirs, title="Harbour lights at night", body="Just us"
    )
    their_post = publishing.publish_reply(author=kestrel, thread=their_thread, body="Undertow")
    room = ChatRoom.objects.create(group=theirs, name="Night owls", slug="night-owls")
    session_room = ChatRoom.objects.create(
        group=theirs, name="Tide share", slug="tide-share", kind=ChatRoom.Kind.SESSION
    )
    starts = timezone.now() + timedelta(days=2)
    session = LiveSession.objects.create(
        group=theirs,
        room=session_room,
        title="Tide share",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        leader=kestrel,
        facilitator=kestrel,
    )
    script = SessionScript.objects.create(
        group=theirs, title="Undertow", source="Welcome.", html="<p>Welcome.</p>"
    )
    return {
        "mine": mine,
        "sage": sage,
        "my_thread": my_thread,
        "their_thread": their_thread,
        "their_post": their_post,
        "room": room,
        "session": session,
        "script": script,
    }


def _cases(g: dict):
    thread, post, session = g["their_thread"].pk, g["their_post"].pk, g["session"].pk
    yield "thread", "get", {"thread_id": thread}
    yield "reply", "get", {"thread_id": thread}
    yield "thread_follow", "post", {"thread_id": thread}
    yield "thread_mute", "post", {"thread_id": thread}
    yield "thread_slow_mode", "post", {"thread_id": thread}
    yield "subthread", "get", {"thread_id": thread, "post_id": post}
    yield "subthread", "get", {"thread_id": g["my_thread"].pk, "post_id": post}
    for name in ("session", "session_edit", "session_cancel", "session_ics"):
        yield name, "get", {"session_id": session}
    yield "session_rsvp", "post", {"session_id": session}
    yield "session_script_edit", "get", {"script_id": g["script"].pk}
    for name in ("room", "room_settings"):
        yield name, "get", {"room_slug": g["room"].slug}
    for name in ("room_mute", "room_slow_mode"):
        yield name, "post", {"room_slug": g["room"].slug}
    yield "room", "get", {"room_slug": g["session"].room.slug}


def test_another_groups_objects_under_ones_own_group_are_not_found(client, groups):
    client.force_login(groups["sage"])
    seen = {}
    for name, method, kwargs in _cases(groups):
        url = reverse(name, kwargs={"slug": groups["mine"].slug, **kwargs})
        data = {"seconds": 60, "follow": "1", "going": "yes", "mute": "1"}
        response = getattr(client, method)(url, data)
        body = response.content.decode(errors="replace")
        seen[url] = (response.status_code, [w for w in THEIR_WORDS if w in body])
    assert seen == {url: (404, []) for url in seen}
    # The refused POSTs changed nothing of theirs.
    assert not Mute.objects.exists()
    assert (
        not Subscription.objects.filter(user=groups["sage"])
        .exclude(thread=groups["my_thread"])
        .exists()
    )
    assert not SessionRSVP.objects.exists()
    assert Thread.objects.get(pk=groups["their_thread"].pk).slow_mode_seconds == 0
    assert ChatRoom.objects.get(pk=groups["room"].pk).slow_mode_seconds == 0
