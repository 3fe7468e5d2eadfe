"""The live review queue socket (moderation.consumers.QueueConsumer), through the real
ASGI stack: who may open it, and that a change to a group's queue rings only the
moderators of that group and the site moderators."""

import pytest

from forum import publishing
from forum.models import Membership
from moderation import actions
from moderation.models import FlagReason, QueueItem
from tests.chat_helpers import ChatSocket, db, login_session, run_async
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/moderation/queue/"


@pytest.fixture
def world(settings, public_group, member, other_member, site_moderator):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    elsewhere = make_group("other-circle")
    tender, faraway, leader = make_user("tender"), make_user("faraway"), make_user("lantern")
    join(member, public_group)
    join(other_member, public_group)
    join(tender, public_group, Membership.Role.MODERATOR)
    join(leader, public_group, Membership.Role.LEADER)
    join(faraway, elsewhere, Membership.Role.MODERATOR)
    thread = publishing.publish_thread(author=member, group=public_group, title="T", body="b")
    return {
        "member": member,
        "flagger": other_member,
        "tender": tender,
        "faraway": faraway,
        "leader": leader,
        "warden": site_moderator,
        "thread": thread,
    }


async def connect(user=None) -> ChatSocket:
    key = await db(login_session, user) if user is not None else None
    socket = ChatSocket(PATH, session_key=key)
    await socket.connect()
    return socket


def test_refusals_happen_before_accept_with_their_codes(world):
    async def scenario():
        anonymous = await connect()
        assert not anonymous.accepted and anonymous.close_code == 4401
        for name in ("member", "leader"):
            refused = await connect(world[name])
            assert not refused.accepted and refused.close_code == 4403, name

    run_async(scenario)


def test_a_flag_rings_the_groups_moderators_and_site_moderators_only(world):
    async def scenario():
        tender = await connect(world["tender"])
        warden = await connect(world["warden"])
        faraway = await connect(world["faraway"])
        assert tender.accepted and warden.accepted and faraway.accepted
        await db(
            actions.flag,
            flagger=world["flagger"],
            obj=world["thread"],
            reason=FlagReason.SPAM,
            details="",
        )
        assert await tender.expect("queue_changed") == {"type": "queue_changed"}
        await warden.expect("queue_changed")
        await faraway.quiet(0.3)
        # Resolving the item rings again (the item leaves everyone's list).
        item = await db(QueueItem.objects.get)
        await db(actions.dismiss_flags, actor=world["warden"], item=item)
        await tender.expect("queue_changed")
        for socket in (tender, warden, faraway):
            await socket.disconnect()

    run_async(scenario)


def test_a_member_flag_rings_site_moderators_only(world):
    async def scenario():
        tender = await connect(world["tender"])
        warden = await connect(world["warden"])
        await db(
            actions.flag,
            flagger=world["flagger"],
            obj=world["member"],
            reason=FlagReason.OTHER,
            details="Odd messages",
        )
        await warden.expect("queue_changed")
        await tender.quiet(0.3)
        # The client has nothing to say; a ping is answered, nonsense ignored.
        await warden.send_text("not json")
        await warden.send({"type": "ping"})
        await warden.expect("pong")
        for socket in (tender, warden):
            await socket.disconnect()

    run_async(scenario)


def test_crisis_words_ring_the_queue_as_urgent(world):
    """Crisis words in a reply: the moderators' open queues hear an urgent change at once."""

    async def scenario():
        tender = await connect(world["tender"])
        warden = await connect(world["warden"])
        faraway = await connect(world["faraway"])
        reply = await db(
            publishing.publish_reply,
            author=world["flagger"],
            thread=world["thread"],
            body="Honestly I feel like everyone would be better off without me",
        )
        frames = [await tender.expect("queue_changed"), await warden.expect("queue_changed")]
        await faraway.quiet(0.3)
        # An ordinary change is not urgent.
        await db(
            actions.flag,
            flagger=world["member"],
            obj=reply,
            reason=FlagReason.SPAM,
            details="",
        )
        ordinary = await tender.expect("queue_changed")
        for socket in (tender, warden, faraway):
            await socket.disconnect()
        return frames, ordinary

    frames, ordinary = run_async(scenario)
    assert frames == [{"type": "queue_changed", "urgent": True}] * 2
    assert ordinary == {"type": "queue_changed"}
    # The spam flag joined the same urgent item, which stays urgent.
    item = QueueItem.objects.get()
    assert (item.member, item.flag_count, item.is_urgent) == (world["flagger"], 1, True)
    assert item.auto_reason == "Crisis words: suicide"


def test_a_moderator_who_steps_down_stops_hearing_the_queue(world):
    """The doorbell re-checks standing on every ring: a former moderator's socket closes."""

    async def scenario():
        tender = await connect(world["tender"])
        warden = await connect(world["warden"])
        await db(
            Membership.objects.filter(user=world["tender"]).update, role=Membership.Role.MEMBER
        )
        await db(
            actions.flag,
            flagger=world["flagger"],
            obj=world["thread"],
            reason=FlagReason.SPAM,
            details="",
        )
        code = await tender.closed()
        await warden.expect("queue_changed")
        await warden.disconnect()
        return code

    assert run_async(scenario) == 4403


@pytest.mark.parametrize("failing", ["new_channel", "group_add"])
def test_with_redis_unreachable_the_queue_socket_says_try_again_later(world, monkeypatch, failing):
    from channels.layers import get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    async def scenario():
        layer = get_channel_layer()  # this loop's own (tests/chat_helpers.run_async)
        monkeypatch.setattr(layer, failing, down)
        monkeypatch.setattr(layer, "group_discard", down)
        socket = await connect(world["warden"])
        assert socket.accepted
        assert await socket.closed() == 1013

    run_async(scenario)
