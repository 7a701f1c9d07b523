#!/usr/bin/env python3
"""Holds COUNT WebSocket connections to URL, each echoing a message every PACE seconds.

    ws_client.py URL COUNT SECONDS [PACE]

Opens them all (each must echo its first message), prints "open N", then goes on echoing on
every connection; SIGUSR1 marks a moment (the test's rollout). After SECONDS it
prints one JSON line: opened, echoed (messages that came back right), wrong (that came back
wrong), closed (connections that ended early), and first_close_after_mark (seconds, or null),
then exits. Closes with code 1001 and the like count as closed; nothing here retries.
"""
import asyncio
import json
import signal
import sys
import time

import websockets


async def main():
    url, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    pace = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
    state = {"echoed": 0, "wrong": 0, "closed": 0, "closes": [], "mark": None}

    async def one(i, ready):
        try:
            async with websockets.connect(url, open_timeout=10, ping_interval=None,
                                          close_timeout=1, max_queue=4) as ws:
                n = 0
                while True:
                    message = f"{i}:{n}"
                    await ws.send(message)
                    back = await asyncio.wait_for(ws.recv(), 10)
                    state["echoed" if back == message else "wrong"] += 1
                    if n == 0:
                        ready.set_result(True)
                    n += 1
                    await asyncio.sleep(pace)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # closed or failed: counted, with when
            if not ready.done():
                ready.set_result(False)
                return
            state["closed"] += 1
            state["closes"].append(time.monotonic())

    loop = asyncio.get_running_loop()
    readies = [loop.create_future() for _ in range(count)]
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i, readies[i])))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    opened = sum(1 for ok in await asyncio.gather(*readies) if ok)
    # Before "open": the test marks its moment as soon as it reads it (SIGUSR1's default action
    # would end this process).
    loop.add_signal_handler(signal.SIGUSR1, lambda: state.update(mark=time.monotonic()))
    print(f"open {opened}", flush=True)
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    after = [c - state["mark"] for c in state["closes"]] if state["mark"] else []
    print(json.dumps({"opened": opened, "echoed": state["echoed"], "wrong": state["wrong"],
                      "closed": state["closed"],
                      "first_close_after_mark": min(after) if after else None}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
