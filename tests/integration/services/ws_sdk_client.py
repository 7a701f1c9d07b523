#!/usr/bin/env python3
"""A WebSocket client for the SDK's endpoint (examples/echo's /ws/{room}).

    ws_sdk_client.py talk URL   sends text, binary, a 1 MiB text and "describe", closes with 1000;
                                prints one JSON line: what came back and the close code
    ws_sdk_client.py hold URL   opens, prints "open", then waits for the server to close; prints
                                one JSON line: the close code and the seconds since "open"
"""
import asyncio
import json
import sys
import time

import websockets


async def talk(url):
    out = {}
    async with websockets.connect(url, open_timeout=10, ping_interval=None, max_size=2 ** 21,
                                  user_agent_header="ws-sdk-client/1") as ws:
        await ws.send("hello")
        out["text"] = await asyncio.wait_for(ws.recv(), 10)
        await ws.send(bytes(range(256)))
        back = await asyncio.wait_for(ws.recv(), 10)
        out["binary"] = isinstance(back, bytes) and back == bytes(range(256))
        big = "x" * (1 << 20)
        await ws.send(big)
        out["big"] = (await asyncio.wait_for(ws.recv(), 10)) == big
        await ws.send("describe")
        out["describe"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.close(1000, "done")
        out["close_code"] = ws.close_code
    print(json.dumps(out), flush=True)


async def hold(url):
    async with websockets.connect(url, open_timeout=10, ping_interval=None,
                                  close_timeout=5) as ws:
        print("open", flush=True)
        opened = time.monotonic()
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            print(json.dumps({"close_code": code, "reason": e.rcvd.reason if e.rcvd else None,
                              "after": time.monotonic() - opened}), flush=True)


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    asyncio.run(talk(url) if mode == "talk" else hold(url))
