# A WebSocket echo service (Python's `websockets`, Debian's python3-websockets): every message
# comes back as it was sent. GET /healthz answers 200 for readiness; anything else that is not a
# WebSocket handshake gets websockets' own 426. HOST and PORT from the environment (Squadron's
# contract); on SIGTERM it closes its connections with 1001 (going away) and exits.
import asyncio
import http
import os
import signal

import websockets


async def echo(socket, _path):
    async for message in socket:
        await socket.send(message)


async def health(path, _headers):
    if path == "/healthz":
        return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"ok\n"
    return None


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, os.environ.get("HOST", "127.0.0.1"),
                                int(os.environ.get("PORT", "8765")), process_request=health,
                                max_queue=64, ping_interval=None):
        print(f"ws-echo listening on http://{os.environ.get('HOST', '127.0.0.1')}:"
              f"{os.environ.get('PORT', '8765')}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
