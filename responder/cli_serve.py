"""``responder serve``: the webhook receiver on its host and port, its start-up warnings; an
address it cannot listen on told in one line (a ConfigError, exit 2) instead of a traceback."""

from __future__ import annotations

import argparse
import errno
import gc
import os
import socket

from responder.errors import ConfigError
from responder.log import get_logger
from responder.settings import Settings

GC_THRESHOLD = 10_000  # allocations between collections of the youngest generation in `serve` (default 700)

log = get_logger(__name__)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from responder.playbooks.catalog import load_catalog
    from responder.receiver import create_app

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port: give one from 0 to 65535")
    token = None if args.insecure_no_auth else settings.require_webhook_token()
    app = create_app(settings, load_catalog(settings.playbooks_dir), token=token)
    _warn(settings, authenticated=token is not None)
    _settle_garbage_collector()
    try:
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=10)
    except OSError as exc:  # from binding: an error while serving stays in its request
        raise ConfigError(_cannot_listen(args.host, args.port, exc)) from None
    return 0


def _warn(settings: Settings, *, authenticated: bool) -> None:
    """At start-up: old setting names in use, and a runs page whose password is the webhook token."""
    for note in settings.deprecations:
        log.warning("settings.deprecated", detail=note)
    if authenticated and not settings.has_ui_token:
        log.warning(
            "runs_page.webhook_token_fallback",
            detail="RESPONDER_UI_TOKEN is not set, so the runs page takes the webhook token as its password: "
            "set RESPONDER_UI_TOKEN to give on-call a read-only token of their own",
        )


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot listen on {where}: --host {host} is not an address of this machine "
            f"({exc.strerror}); give one, e.g. 127.0.0.1 or 0.0.0.0"
        )
    reason = os.strerror(exc.errno) if exc.errno else " ".join(str(exc).split())
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: {reason}; stop what listens there or pick another --port"
    return f"cannot listen on {where}: {reason}; fix --host or --port"


def _settle_garbage_collector() -> None:
    """What is loaded by now (modules, playbooks, the app) lives as long as the process: the cyclic
    collector stops scanning it (``gc.freeze``), and runs less often. A webhook allocates a few
    thousand short-lived objects, few of them in cycles; with the default threshold (700) the
    collector ran every few requests. Memory stays bounded: reference counting frees the rest."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
