"""Webhook deliveries of :class:`tests.fakes.github.FakeGitHub`, signed and sent as GitHub does.

A test registers a receiver with :meth:`WebhooksLayer.hook` (a repository webhook: URL,
secret, events). When something happens in the fake that GitHub announces -- an issue
opened or closed, a comment, a pull request opened, closed or merged, a review requested or
submitted, a workflow run completed -- a delivery is queued for every active hook that
subscribed to the event, and a background thread POSTs it a little later
(:attr:`WebhooksLayer.webhook_delay`), as GitHub delivers asynchronously:

* headers: ``Content-Type: application/json``, ``User-Agent: GitHub-Hookshot/<hex>``,
  ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a GUID), ``X-GitHub-Hook-ID``,
  ``X-GitHub-Hook-Installation-Target-Type``/``-ID``, and when the hook has a secret
  ``X-Hub-Signature`` (``sha1=`` HMAC-SHA1) and ``X-Hub-Signature-256`` (``sha256=`` hex
  HMAC-SHA256 of the raw body, keyed with the secret);
* body: compact JSON with ``action``, the event's objects, ``repository``, ``organization``
  (the owner is an organization) and ``sender``.

Every attempt is recorded (:attr:`WebhooksLayer.deliveries`) with the status the receiver
answered, or none and the error when it could not be reached. Like GitHub, a failed delivery
is not retried on its own: :meth:`WebhooksLayer.redeliver` sends it again with the same GUID
and body (GitHub's "Redeliver" button). Redirects are not followed (GitHub records them as
failures). GitHub also sends a ``ping`` when a hook is created: ``hook(..., ping=True)``.
:meth:`WebhooksLayer.wait_for_deliveries` waits until everything queued was attempted.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.github_common import REPOSITORY_ID, GitHubCore

DEFAULT_WEBHOOK_DELAY = 0.05  # seconds between an event and its delivery
WEBHOOK_TIMEOUT = 10.0  # GitHub gives a receiver 10 seconds to answer
HOOKSHOT_AGENT = "GitHub-Hookshot/" + hashlib.sha1(b"fake").hexdigest()[:7]


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a webhook."""

    id: int  # the delivery's own id (each attempt has one, as in GitHub's "Recent Deliveries")
    delivery_id: str  # X-GitHub-Delivery: the event's GUID (a redelivery repeats it)
    hook_id: int
    url: str
    event: str  # X-GitHub-Event
    action: str | None
    body: bytes  # the raw body, exactly as signed and sent
    headers: dict[str, str]
    status: int | None  # what the receiver answered; None when it could not be reached
    error: str | None  # why it could not be reached (connection refused, timeout)
    redelivery: bool
    duration: float  # seconds the attempt took

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        """Whether GitHub would call it delivered (a 2xx answer)."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Hook:
    id: int
    url: str
    secret: str | None
    events: frozenset[str]  # "*": every event
    active: bool = True

    def wants(self, event: str) -> bool:
        return self.active and (event == "ping" or "*" in self.events or event in self.events)


@dataclass
class _Queued:
    due: float  # time.monotonic()
    delivery_id: str
    hook: _Hook
    event: str
    action: str | None
    body: bytes
    redelivery: bool


def _signature_headers(secret: str | None, body: bytes) -> dict[str, str]:
    if not secret:
        return {}
    key = secret.encode()
    return {
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


@dataclass
class _Sender:
    """The delivery queue and the thread that works it (one at a time, oldest first)."""

    ids: Iterator[int]
    cond: threading.Condition = field(default_factory=threading.Condition)
    queue: list[_Queued] = field(default_factory=list)
    busy: bool = False
    done: list[Delivery] = field(default_factory=list)
    thread: threading.Thread | None = None
    stopped: bool = False

    def put(self, item: _Queued) -> None:
        with self.cond:
            if self.stopped:
                return
            self.queue.append(item)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="FakeGitHubWebhooks", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def stop(self, *, join: bool = True) -> None:
        with self.cond:
            self.stopped = True
            self.queue.clear()
            self.cond.notify_all()
            thread = self.thread
        if join and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=WEBHOOK_TIMEOUT + 1)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.queue or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (not self.queue or self.queue[0].due > time.monotonic()):
                    self.cond.wait(self.queue[0].due - time.monotonic() if self.queue else None)
                if self.stopped:
                    return
                item = self.queue.pop(0)
                self.busy = True
            try:
                delivery = self._send(item)
            finally:
                with self.cond:
                    self.busy = False
                    if not self.stopped:
                        self.done.append(delivery)
                    self.cond.notify_all()

    def _send(self, item: _Queued) -> Delivery:
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT_AGENT,
            "X-GitHub-Event": item.event,
            "X-GitHub-Delivery": item.delivery_id,
            "X-GitHub-Hook-ID": str(item.hook.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(REPOSITORY_ID),
            **_signature_headers(item.hook.secret, item.body),
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        target = urllib.parse.urlsplit(item.hook.url)
        connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(target.hostname or "", target.port, timeout=WEBHOOK_TIMEOUT)
        try:  # http.client keeps the headers' case as GitHub sends it (urllib would capitalize them)
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            connection.request("POST", path, body=item.body, headers=headers)
            answer = connection.getresponse()
            answer.read()
            status = answer.status  # a redirect too: GitHub does not follow it
        except OSError as unreachable:
            error = str(unreachable) or type(unreachable).__name__
        finally:
            connection.close()
        return Delivery(
            id=next(self.ids),
            delivery_id=item.delivery_id,
            hook_id=item.hook.id,
            url=item.hook.url,
            event=item.event,
            action=item.action,
            body=item.body,
            headers=headers,
            status=status,
            error=error,
            redelivery=item.redelivery,
            duration=time.monotonic() - started,
        )


class WebhooksLayer(GitHubCore):
    """Repository webhooks: registration, signed asynchronous deliveries, redelivery; see the module docstring."""

    webhook_delay = DEFAULT_WEBHOOK_DELAY  # may be changed on a running fake

    def reset(self) -> None:
        """Forget hooks and deliveries (deliveries still queued are dropped)."""
        with self._lock:
            super().reset()
            previous: _Sender | None = getattr(self, "_sender", None)
            if previous is not None:
                previous.stop(join=False)  # an attempt under way finishes and is not recorded
            self._hooks: dict[int, _Hook] = {}
            self._hook_ids = itertools.count(480_000_001)
            self._sender = _Sender(ids=itertools.count(30_000_000_001))

    def stop(self) -> None:
        with self._lock:
            sender = self._sender
        sender.stop()
        super().stop()

    # ----------------------------------------------------------------- test API

    def hook(
        self, url: str, secret: str | None = None, events: Iterable[str] | None = None, *, ping: bool = False
    ) -> int:
        """Register a repository webhook POSTing to ``url``, signed with ``secret`` (None: unsigned), for
        ``events`` (None: every event, GitHub's "Send me everything"). ``ping``: deliver GitHub's ``ping``
        now, as GitHub does when a hook is created. Returns the hook id (``X-GitHub-Hook-ID``)."""
        with self._lock:
            hook = _Hook(next(self._hook_ids), url, secret, frozenset(events) if events is not None else frozenset("*"))
            self._hooks[hook.id] = hook
            if ping:
                config = {"content_type": "json", "insecure_ssl": "0", "url": url}
                hook_json = {"type": "Repository", "id": hook.id, "name": "web", "active": True,
                             "events": sorted(hook.events), "config": config}
                payload = {"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": hook_json}
                self._queue(hook, "ping", None, self._payload(None, payload, self.login))
            return hook.id

    def unhook(self, hook_id: int) -> None:
        """Delete a webhook: nothing more is delivered to it."""
        with self._lock:
            del self._hooks[hook_id]

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempted so far, oldest first (queued ones are not, yet: see wait_for_deliveries)."""
        with self._sender.cond:
            return list(self._sender.done)

    def wait_for_deliveries(self, timeout: float = 5.0) -> list[Delivery]:
        """Wait until every queued delivery was attempted; returns :attr:`deliveries`. TimeoutError if not in time."""
        with self._lock:
            sender = self._sender
        if not sender.wait(timeout):
            raise TimeoutError(f"webhook deliveries still queued after {timeout} s")
        return self.deliveries

    def redeliver(self, delivery_id: str) -> None:
        """Send a delivery again, as GitHub's "Redeliver" does: same GUID, same body, signed with the hook's
        current secret, flagged a redelivery. KeyError for a GUID never delivered; ValueError if its hook is gone."""
        with self._lock:
            attempts = [d for d in self.deliveries if d.delivery_id == delivery_id]
            if not attempts:
                raise KeyError(delivery_id)
            last = attempts[-1]
            hook = self._hooks.get(last.hook_id)
            if hook is None:
                raise ValueError(f"hook {last.hook_id} was deleted")
            self._sender.put(_Queued(time.monotonic() + self.webhook_delay, delivery_id, hook, last.event,
                                     last.action, last.body, redelivery=True))

    # ----------------------------------------------------------------- for the layers above

    def _payload(self, action: str | None, objects: dict[str, Any], sender: str) -> dict[str, Any]:
        head = {"action": action} if action is not None else {}
        return {
            **head,
            **objects,
            "repository": self._repository_json(),
            "organization": self._organization_json(),
            "sender": self._user_json(sender),
        }

    def _emit(self, event: str, action: str | None, objects: dict[str, Any], sender: str) -> None:
        """Queue ``event`` for every hook that wants it (call with the fake's lock held: a consistent snapshot)."""
        hooks = [hook for hook in self._hooks.values() if hook.wants(event)]
        if not hooks:
            return
        payload = self._payload(action, objects, sender)
        for hook in hooks:
            self._queue(hook, event, action, payload)

    def _queue(self, hook: _Hook, event: str, action: str | None, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        item = _Queued(time.monotonic() + self.webhook_delay, str(uuid.uuid4()), hook, event, action, body, False)
        self._sender.put(item)
