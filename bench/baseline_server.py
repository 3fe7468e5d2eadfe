"""The floor for chat fan-out: a bare `websockets` broadcast server in one process.

No Django, no database, no Redis: a `send` frame gets the next sequence number, is
broadcast to every open connection as a `message` frame shaped like Kinship's, and is
acknowledged with an `ack`, in that order (as Kinship broadcasts before it acks).
Used by bench/chat_fanout.py; run alone with:  python bench/baseline_server.py PORT
"""

import asyncio
import html
import json
import sys
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection, broadcast, serve

connections: set[ServerConnection] = set()
last_seq = 0


async def handler(ws: ServerConnection) -> None:
    global last_seq
    connections.add(ws)
    try:
        await ws.send(json.dumps({"type": "history", "messages": [], "latest_seq": last_seq,
                                  "has_more": False}))  # fmt: skip
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "send":
                continue
            last_seq += 1
            message = {
                "id": last_seq, "seq": last_seq, "version": last_seq, "author": "bench",
                "html": f"<p>{html.escape(frame['body'])}</p>",
                "created_at": datetime.now(UTC).isoformat(), "edited": False, "removed": False,
                "removed_by": None, "client_id": frame["client_id"],
            }  # fmt: skip
            broadcast(connections, json.dumps({"type": "message", "message": message}))
            ack = {"client_id": frame["client_id"], "id": last_seq, "seq": last_seq}
            await ws.send(json.dumps({"type": "ack", **ack, "version": last_seq}))
    finally:
        connections.discard(ws)


async def main(port: int) -> None:
    # Without per-message compression, as Kinship's workers are deployed.
    async with serve(handler, "127.0.0.1", port, max_size=8 * 1024, compression=None) as server:
        print(f"baseline listening on 127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop  # the event loop uvicorn[standard] runs on, for a like-for-like floor
    except ImportError:
        uvloop = None
    runner = uvloop.run if uvloop else asyncio.run
    runner(main(int(sys.argv[1])))
