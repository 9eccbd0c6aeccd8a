"""The issue's reference point for the intake: "a naive handler that calls RQ's enqueue
synchronously", which it puts at about 0.1 x bare on a 2-core machine. Run in the same rounds as
the bare handler and the receiver, it shows where this machine puts that reference.

Naive, but generous: it only parses the body and calls ``Queue.enqueue_call`` for each alert
(RQ's own MULTI/EXEC of the job, blocking the event loop until Redis answers), then answers 202.
No authentication, no validation, no dedup, no run records or history: whatever responder does
beyond this, this handler does not pay for. Same aiohttp and ``web.run_app`` options as
`responder serve`, and the same Redis."""

from __future__ import annotations

import argparse
import json

from aiohttp import web
from redis import Redis
from rq import Queue

JOB_FUNCTION = "responder.jobs.run_playbook_job"
QUEUE = "bench-naive"  # its own queue: never taken by a worker


def create_app(queue: Queue) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        notification = json.loads(await request.read())
        for alert in notification["alerts"]:
            queue.enqueue_call(JOB_FUNCTION, args=(alert["fingerprint"],))
        return web.Response(status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/alertmanager", webhook)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    app = create_app(Queue(QUEUE, connection=Redis.from_url(args.redis_url)))
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=10)


if __name__ == "__main__":
    main()
