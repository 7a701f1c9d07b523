#!/usr/bin/env python3
"""WebSocket echo load for bench/ws.sh: COUNT tunnels to URL, then round trips as fast as each goes.

    ws_load.py URL COUNT SECONDS [HOLD]

Opens COUNT connections (each must echo one message), prints "open N", keeps them quiet for
HOLD seconds (default 3: the bench reads the proxy's memory meanwhile), then on every connection
sends a 32-byte message and awaits its echo, again and again, for SECONDS; prints
"roundtrips R per_second X wrong W closed C". Needs Debian's python3-websockets.
"""
import asyncio
import sys
import time

import websockets


async def main():
    url, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    socks = []
    for start in range(0, count, 100):
        part = [websockets.connect(url, open_timeout=20, ping_interval=None, close_timeout=1,
                                   compression=None, max_queue=4)
                for _ in range(start, min(count, start + 100))]
        socks += await asyncio.gather(*part)
    for ws in socks:
        await ws.send("x" * 32)
    await asyncio.gather(*(ws.recv() for ws in socks))
    print(f"open {len(socks)}", flush=True)
    await asyncio.sleep(hold)
    state = {"n": 0, "wrong": 0, "closed": 0}
    message = "m" * 32
    until = time.monotonic() + seconds

    async def loop(ws):
        try:
            while time.monotonic() < until:
                await ws.send(message)
                if await ws.recv() != message:
                    state["wrong"] += 1
                state["n"] += 1
        except websockets.ConnectionClosed:
            state["closed"] += 1

    began = time.monotonic()
    await asyncio.gather(*(loop(ws) for ws in socks))
    took = time.monotonic() - began
    print(f"roundtrips {state['n']} per_second {state['n'] / took:.0f} wrong {state['wrong']} "
          f"closed {state['closed']}", flush=True)
    await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
