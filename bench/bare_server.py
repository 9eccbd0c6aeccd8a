"""The baseline for the intake benchmark: a bare aiohttp handler that only reads the body and
answers 202 (no auth, no parsing, no Redis). Same aiohttp, same event loop, same
`web.run_app` options as `responder serve`."""

from __future__ import annotations

import argparse

from aiohttp import web


async def webhook(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/alertmanager", webhook)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=10)


if __name__ == "__main__":
    main()
