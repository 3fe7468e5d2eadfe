"""The Redis channel layer as configured in settings survives quiet periods."""

import asyncio
import os

import pytest
from channels.layers import channel_layers


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
@pytest.mark.parametrize("layer", ["core", "pubsub"])
def test_a_receiver_still_hears_after_six_quiet_seconds(settings, layer):
    """redis-py's default 5 s read timeout once broke the core layer's blocking receive."""
    from forum import settings as project_settings

    backends = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }
    config = {**project_settings.CHANNEL_LAYERS["default"], "BACKEND": backends[layer]}
    settings.CHANNEL_LAYERS = {"default": config}
    channel_layers.backends.pop("default", None)

    async def scenario():
        bus = channel_layers["default"]
        channel = await bus.new_channel()
        await bus.group_add("quiet-room", channel)
        waiting = asyncio.ensure_future(bus.receive(channel))
        await asyncio.sleep(6)
        assert not waiting.done(), "the receiver gave up while the room was quiet"
        await bus.group_send("quiet-room", {"type": "chat.event", "frame": {}})
        assert (await asyncio.wait_for(waiting, 5))["type"] == "chat.event"
        await bus.group_discard("quiet-room", channel)

    try:
        asyncio.run(scenario())
    finally:
        channel_layers.backends.pop("default", None)
