"""What a step can see and use while it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from redis import Redis
from redis.exceptions import LockError

from responder.alerts import Alert
from responder.errors import PermanentError, TransientError, WaitingForStep
from responder.integrations.base import GitHubGateway, Ticket, TicketDraft, TicketKey, Toggles, Tracker
from responder.log import get_logger
from responder.manifest import Manifest, ModelEntry
from responder.playbooks import templating
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from responder.store.redis_keys import ticket_claim_key, ticket_lock_key, ticket_memory_keys

if TYPE_CHECKING:
    from responder.playbooks.model import Playbook

log = get_logger(__name__)


class TicketMemory:
    """Which firing instances and checklist items a ticket already shows (Redis sets)."""

    def __init__(self, redis: Redis, ticket_url: str, ttl: int) -> None:
        self._redis = redis
        self._instances, self._items = ticket_memory_keys(ticket_url)
        self._ttl = ttl

    def shows(self, instance_key: str) -> bool:
        return bool(self._redis.sismember(self._instances, instance_key))

    def new_items(self, items: list[str]) -> list[str]:
        if not items:
            return []
        known = self._redis.smismember(self._items, items)
        return [item for item, present in zip(items, known, strict=True) if not present]

    def remember(self, instance_keys: list[str], items: list[str]) -> None:
        with self._redis.pipeline() as pipe:
            pipe.sadd(self._instances, *instance_keys)
            pipe.expire(self._instances, self._ttl)
            if items:
                pipe.sadd(self._items, *items)
                pipe.expire(self._items, self._ttl)
            pipe.execute()


@dataclass
class StepContext:
    run: RunRecord
    settings: Settings
    playbook: Playbook
    github: GitHubGateway
    tracker: Tracker
    redis: Redis
    toggle_client: Toggles | None = None
    current_step: str = ""
    runs: RunStore | None = None  # where the firing run of a resolve is read; None: not read
    dry_run: bool = False  # the integrations only plan their writes (a dry run, or no credentials)
    _manifest: Manifest | None = field(default=None, repr=False)
    _firing: tuple[RunRecord | None] | None = field(default=None, repr=False)

    @property
    def alert(self) -> Alert:
        return self.run.alert

    @property
    def model_id(self) -> str:
        model_id = self.alert.labels.get("model_id")
        if not model_id:
            raise PermanentError(
                f"playbook {self.playbook.name} needs a model_id label for this step", system="responder"
            )
        return model_id

    def instance_keys(self) -> list[str]:
        return [a.instance_key() for a in [self.alert, *self.run.related]]

    def firing_run(self) -> RunRecord | None:
        """The firing run this resolve run follows (read once per run); None when there is none."""
        if self._firing is None:
            self._firing = (self.runs.firing_run(self.run) if self.runs is not None else None,)
        return self._firing[0]

    def template_vars(self) -> dict[str, Any]:
        s = self.settings
        alert = self.alert
        return {
            "alertname": alert.alertname,
            "model_id": alert.model_id,
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "starts_at": alert.startsAt.isoformat(),
            "ends_at": None if alert.still_open else alert.endsAt.isoformat(),
            "requested_by": self.run.requested_by or "",
            "steps": self._step_outputs(),
            "settings": {
                "governance_workflow": s.governance_workflow,
                "retraining_workflow": s.retraining_workflow,
                "freeze_variable": s.freeze_variable,
                "github_ref": s.github_ref,
                "github_repo": s.github_repo or "",
            },
        }

    def _step_outputs(self) -> dict[str, Mapping[str, str]]:
        """Outputs of finished steps by name; inside an included playbook also by the name it gave them.
        A step waiting for a retry has none yet: reading them raises WaitingForStep."""
        outputs: dict[str, Mapping[str, str]] = {
            s.name: PendingOutputs(s.name) if s.status == "retrying" else dict(s.outputs) for s in self.run.steps
        }
        prefix = self.current_step.rpartition(".")[0]
        if prefix:
            outputs |= {
                name.removeprefix(prefix + "."): out for name, out in outputs.items() if name.startswith(prefix + ".")
            }
        return outputs

    def render(self, template: str) -> str:
        return templating.render(template, self.template_vars())

    def manifest(self) -> Manifest:
        """The manifest on the configured ref, read once per run."""
        if self._manifest is None:
            path = self.settings.manifest_path
            self._manifest = Manifest.parse(self.github.read_file(path), source=path)
        return self._manifest

    def manifest_entry(self) -> ModelEntry:
        manifest = self.manifest()
        entry = manifest.find(self.model_id)
        if entry is None:
            known = ", ".join(m.modelId for m in manifest.models) or "none"
            raise PermanentError(
                f"model {self.model_id} is not in {self.settings.manifest_path} (known: {known})", system="github"
            )
        return entry

    def toggles(self) -> Toggles:
        if self.toggle_client is None:
            raise PermanentError(
                "RESPONDER_TOGGLE_URL is not set: cannot re-tag the serving endpoint", system="toggles"
            )
        return self.toggle_client

    @contextmanager
    def ticket_slot(self, key: TicketKey, *, find: Callable[[], list[Ticket]] | None = None) -> Iterator[TicketSlot]:
        """Find or open the ticket of ``key``, once; every step that opens tickets goes through here.

        Under a Redis lock across workers, the open tickets are looked up (``find``; by default the
        one labelled with ``key``) before one is opened, so concurrent runs and retries find the
        ticket instead of opening another; and a create whose answer was lost (a 502 or a timeout
        after the tracker created it) is found again, not taken for somebody else's ticket.
        """
        lock = self.redis.lock(ticket_lock_key(f"{key.alertname}:{key.ident}"), timeout=120, blocking_timeout=60)
        if not lock.acquire():
            raise TransientError(f"ticket lock for {key} is busy", system="responder")
        try:
            found = find() if find is not None else [t for t in [self.tracker.find_open(key)] if t is not None]
            claimant = cast(bytes | None, self.redis.get(_claim_key(key))) if found else None
            yield TicketSlot(self, key, found, found_again=claimant is not None and claimant.decode() == self.run.id)
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("ticket.lock_lost", ticket_key=str(key))

    def ticket_memory(self, ticket: Ticket) -> TicketMemory:
        return TicketMemory(self.redis, ticket.url, self.settings.dedup_retention_seconds)


@dataclass
class TicketSlot:
    """One ticket key held under its lock (``StepContext.ticket_slot``): the open tickets found for
    it, and the one way to open one."""

    ctx: StepContext
    key: TicketKey
    found: list[Ticket]
    found_again: bool  # the ticket found was opened by this run before its answer was lost

    @property
    def existing(self) -> Ticket | None:
        return self.found[0] if self.found else None

    def open(self, draft: TicketDraft) -> Ticket:
        """Note that this run is opening the ticket (so a lost answer is found again), then open it."""
        self.ctx.redis.set(_claim_key(self.key), self.ctx.run.id, ex=self.ctx.settings.dedup_retention_seconds)
        return self.ctx.tracker.open(draft)


class PendingOutputs(Mapping[str, str]):
    """The outputs of a step waiting for a retry, as templates see them: any read raises WaitingForStep
    (Jinja's sandbox lets that through, unlike the lookup errors it turns into undefined values)."""

    def __init__(self, step: str) -> None:
        self._step = step

    def __getitem__(self, key: str) -> str:
        raise WaitingForStep(self._step)

    def __iter__(self) -> Iterator[str]:
        raise WaitingForStep(self._step)

    def __len__(self) -> int:
        raise WaitingForStep(self._step)


def _claim_key(key: TicketKey) -> str:
    return ticket_claim_key(f"{key.alertname}:{key.ident}")
