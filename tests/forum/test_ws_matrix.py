"""Who may open which WebSocket, from which origin: every route of forum.routing, for every
kind of person, from a missing, a foreign and an allowed Origin.

Each handshake goes through ``forum.asgi.application`` (AllowedHostsOriginValidator,
AuthMiddlewareStack with a real signed-in session cookie, the URL router, the consumer).
Only an allowed origin with an authorised person is accepted; every other handshake is
refused before it is accepted, with the close code docs/chat-protocol.md gives.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from forum import conversations
from forum.models import ChatRoom, Membership, User
from forum.routing import websocket_urlpatterns
from moderation import actions
from tests.chat_helpers import ChatSocket, db, login_session, room_path, run_async
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_ROUTE = "ws/g/<slug:slug>/chat/<slug:room_slug>/"
QUEUE_ROUTE = "ws/moderation/queue/"
NOTIFICATIONS_ROUTE = "ws/notifications/"
ORIGINS = {"missing": None, "foreign": "http://evil.example", "allowed": "http://127.0.0.1"}
# The origin check refuses with the ASGI default (no code given: 1000) before any consumer
# runs; through a real server the browser sees the handshake fail (HTTP 403).
ORIGIN_REFUSED = 1000
OK = "accepted"
PEOPLE = ("anonymous", "member", "bystander", "outsider", "banned", "group moderator",
          "site moderator")  # fmt: skip


@dataclass
class World:
    users: dict[str, User]
    rooms: dict[str, ChatRoom]


@pytest.fixture
def world(settings) -> World:
    """Two groups (public, private). ``member`` and ``banned`` share a direct conversation
    (accepted before ``banned`` was banned site-wide); ``bystander`` belongs to both groups
    but not to the conversation; ``outsider`` belongs to no group."""
    public, private = make_group("open-circle"), make_group("quiet-room", private=True)
    users = {name: make_user(name.replace(" ", "-")) for name in PEOPLE[1:-1]}
    users["site moderator"] = make_user("warden", is_site_moderator=True)
    for group in (public, private):
        for name in ("member", "bystander", "banned"):
            join(users[name], group)
        join(users["group moderator"], group, Membership.Role.MODERATOR)
    request = conversations.request_conversation(
        starter=users["member"], recipient=users["banned"], note="Talk after the meeting?"
    )
    conversation = conversations.accept(user=users["banned"], conversation=request)
    actions.ban_member(actor=users["site moderator"], member=users["banned"], reason="Spam")
    rooms = {
        "public room": ChatRoom.objects.create(group=public, name="General", slug="general"),
        "private room": ChatRoom.objects.create(group=private, name="Evening", slug="evening"),
        "direct conversation": ChatRoom.objects.select_related("group").get(
            pk=conversation.room_id
        ),
    }
    return World(users, rooms)


@dataclass(frozen=True)
class Place:
    route: str
    path: Callable[[World], str]
    first_frame: str | None  # what an accepted socket hears first (None: nothing unasked)
    expected: dict[str, object]  # person -> OK or the close code, from an allowed origin


def _room(name: str) -> Callable[[World], str]:
    return lambda world: room_path(world.rooms[name])


PLACES = {
    "public room": Place(
        CHAT_ROUTE, _room("public room"), "history",
        {"anonymous": 4401, "member": OK, "bystander": OK, "outsider": 4403, "banned": 4403,
         "group moderator": OK, "site moderator": OK},
    ),
    # A private group's rooms do not exist for outsiders; a banned member knows the group.
    "private room": Place(
        CHAT_ROUTE, _room("private room"), "history",
        {"anonymous": 4401, "member": OK, "bystander": OK, "outsider": 4404, "banned": 4403,
         "group moderator": OK, "site moderator": OK},
    ),
    # Only the two participants; a ban stops writing, not reading their own conversation.
    "direct conversation": Place(
        CHAT_ROUTE, _room("direct conversation"), "history",
        {"anonymous": 4401, "member": OK, "bystander": 4404, "outsider": 4404, "banned": OK,
         "group moderator": 4404, "site moderator": 4404},
    ),
    "review queue": Place(
        QUEUE_ROUTE, lambda world: "/" + QUEUE_ROUTE, None,
        {"anonymous": 4401, "member": 4403, "bystander": 4403, "outsider": 4403, "banned": 4403,
         "group moderator": OK, "site moderator": OK},
    ),
    # Everyone signed in hears their own count; a banned member is told of the ban there.
    "notifications": Place(
        NOTIFICATIONS_ROUTE, lambda world: "/" + NOTIFICATIONS_ROUTE, "unread",
        {"anonymous": 4401, "member": OK, "bystander": OK, "outsider": OK, "banned": OK,
         "group moderator": OK, "site moderator": OK},
    ),
}  # fmt: skip


def test_every_websocket_route_has_cases():
    routes = {str(pattern.pattern) for pattern in websocket_urlpatterns}
    covered = {place.route for place in PLACES.values()}
    assert routes == covered, f"routes without a case: {routes - covered}"
    for place in PLACES.values():
        assert set(place.expected) == set(PEOPLE)


async def _handshake(path: str, session_key: str | None, origin: str | None, first: str | None):
    """OK (after the socket proved it works) or the close code of the refusal."""
    socket = ChatSocket(path, session_key=session_key, origin=origin)
    connected, code = await socket.connect()
    if not connected:
        return code
    if first is not None:
        assert (await socket.next())["type"] == first
    else:
        await socket.send({"type": "ping"})
        assert (await socket.next())["type"] == "pong"
    await socket.disconnect()
    return OK


@pytest.mark.parametrize("place", PLACES)
def test_only_an_allowed_origin_and_an_authorised_person_get_in(world, place):
    spec = PLACES[place]
    path = spec.path(world)

    async def scenario():
        outcomes = {}
        for person in PEOPLE:
            user = world.users.get(person)
            key = None if user is None else await db(login_session, user)
            for origin_name, origin in ORIGINS.items():
                outcomes[person, origin_name] = await _handshake(
                    path, key, origin, spec.first_frame
                )
        return outcomes

    expected = {}
    for person in PEOPLE:
        expected[person, "missing"] = expected[person, "foreign"] = ORIGIN_REFUSED
        expected[person, "allowed"] = spec.expected[person]
    assert run_async(scenario) == expected
