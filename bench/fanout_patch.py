"""What-if for the bench: Kinship's ASGI app with one change to the chat consumer.

Channels (4.2+) runs `close_old_connections()` through `sync_to_async` before every
message a consumer handles. For a chat broadcast that is one hop to the process's
single thread-sensitive executor thread, per open socket, per message: with 100
sockets on a worker and 20 messages/s, 2,000 hops a second through the same thread
that runs every database write. Chat fan-out never touches the database (its payloads
are complete, docs/ARCHITECTURE), so this variant hands `chat.event` messages straight
to their handler. The bench's `core-patched` and `pubsub-patched` runs serve this app.
"""

from forum.asgi import application
from forum.consumers import ChatConsumer

_dispatch = ChatConsumer.dispatch


async def dispatch(self, message):
    if message["type"] == "chat.event":
        await self.chat_event(message)
        return
    await _dispatch(self, message)


ChatConsumer.dispatch = dispatch

__all__ = ["application"]
