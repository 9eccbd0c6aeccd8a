"""GitHub through PyGithub: Actions variables, workflow dispatch, repository files, issues.

Works against api.github.com, a GitHub Enterprise Server (``https://ghe.example/api/v3``) or
any compatible ``http://`` server. See READ_RETRY for what is retried where.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from urllib.parse import quote

import github
from github import Auth, Github, GithubException
from github.Commit import Commit
from github.Repository import Repository
from github.WorkflowRun import WorkflowRun
from urllib3.util.retry import Retry

from responder import metrics
from responder.document import Document, render_markdown
from responder.errors import IntegrationError, PermanentError, TransientError
from responder.integrations import http_policy
from responder.integrations.base import Outcome, Revision, Ticket, TicketDraft, TicketKey, WorkflowRunRef

SYSTEM = "github"

# Reads are idempotent, so a 5xx on a GET is retried in the call. Writes are not retried here:
# PyGithub's default retry would re-send a POST after a 502 that may have created the issue or
# dispatched the workflow. They are retried per run instead, after the step looked again
# (tickets are found by their labels, variables read first) so nothing is done twice.
READ_RETRY = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(500, 502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    raise_on_status=False,
    # A Retry-After (429, 503) is not slept on inside the call: it could hold a worker for an hour.
    # The error carries it, and the step or poll is scheduled again after it instead.
    respect_retry_after_header=False,
)


def connect(api_url: str, token: str, repo: str, *, timeout: float) -> Repository:
    """A lazy Repository handle: no request is sent until a step needs one."""
    # PyGithub's per-client write pacing is off: it holds a worker idle and does not coordinate
    # across workers; pacing shared in Redis is the job of RESPONDER_GITHUB_WRITES_PER_SECOND.
    client = Github(
        base_url=api_url,
        auth=Auth.Token(token),
        timeout=max(1, math.ceil(timeout)),
        retry=READ_RETRY,
        per_page=50,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )
    return client.get_repo(repo)


@contextmanager
def translated_errors(action: str, repo: Repository | None = None) -> Iterator[None]:
    """Turn PyGithub and requests failures into TransientError or PermanentError; count the call
    and note GitHub's remaining rate limit for /metrics."""
    try:
        with metrics.external_call(SYSTEM):
            try:
                yield
            except GithubException as exc:
                raise classify(exc, action) from None
            except http_policy.NO_ANSWER as exc:
                raise http_policy.unanswered(action, "GitHub", exc, system=SYSTEM) from None
    finally:
        recorder = metrics.recorder()
        if repo is not None and recorder is not None:
            recorder.github_ratelimit(repo.requester.rate_limiting[0])


def classify(exc: GithubException, action: str) -> IntegrationError:
    """PyGithub's exception read by the one HTTP policy (``http_policy``)."""
    message = _api_message(exc)
    text = f"{action}: GitHub answered {exc.status}: {message}"
    return http_policy.failure(exc.status, dict(exc.headers or {}), text, system=SYSTEM, message=message)


def _api_message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        if errors:
            message += f" {errors}"
        return message.strip() or "no message"
    return str(data)[:200] if data else "no message"


Pace = Callable[[], object]
VARIABLE_WRITE_TRIES = 3
RECENT_RUNS = 50  # one page: runs of one workflow created within a lookup's few seconds


def _no_pacing() -> None:
    return None


class PyGithubGateway:
    """GitHubGateway over a PyGithub Repository; ``pace`` is called before every write."""

    def __init__(self, repo: Repository, *, ref: str, pace: Pace = _no_pacing) -> None:
        self._repo = repo
        self._ref = ref
        self._pace = pace
        self._run_details = True  # ask dispatches for their run, until the server refuses the field

    def get_variable(self, name: str) -> str | None:
        with translated_errors(f"read variable {name}", self._repo):
            try:
                return self._repo.get_variable(name).value
            except github.UnknownObjectException:
                return None

    def set_variable(self, name: str, value: str) -> Outcome:
        """Create or update; safe to retry because it reads the current value first.

        Two writers can both read "absent" and both create: the second gets GitHub's 409 "Already
        exists", and reads again (the variable holding ``value`` is then success)."""
        for _ in range(VARIABLE_WRITE_TRIES):
            current = self.get_variable(name)
            if current == value:
                return Outcome(f"{name}={value} (already set)", changed=False)
            with translated_errors(f"set variable {name}", self._repo):
                if current is None:
                    self._pace()
                    try:
                        self._repo.create_variable(name, value)
                    except GithubException as exc:
                        if exc.status == 409:
                            continue  # created by someone else since we read it
                        raise
                    return Outcome(f"{name}={value} (created)")
                # Variable.edit() swallows HTTP errors (it returns False): send the PATCH checked.
                self._pace()
                self._repo.requester.requestJsonAndCheck(
                    "PATCH",
                    f"{self._repo.url}/actions/variables/{quote(name, safe='')}",
                    input={"name": name, "value": value},
                )
                return Outcome(f"{name}={value} (was {current})")
        raise TransientError(f"set variable {name}: it kept being created by someone else meanwhile", system=SYSTEM)

    def dispatch_workflow(self, workflow: str, inputs: dict[str, str]) -> Outcome:
        """One workflow_dispatch. GitHub.com names the run it started (``return_run_details``); a
        GitHub Enterprise Server without that field answers 204 without it, or refuses the field
        with a 422 and is then asked without it (a 422 started nothing)."""
        action = f"dispatch {workflow}"
        with translated_errors(action, self._repo):
            handle = self._repo.get_workflow(workflow)
            self._pace()
            run: WorkflowRun | bool
            try:
                if self._run_details:
                    run = handle.create_dispatch(self._ref, inputs, throw=True, return_run_details=True)
                else:
                    run = handle.create_dispatch(self._ref, inputs, throw=True)
            except GithubException as exc:
                if not (self._run_details and exc.status == 422 and "return_run_details" in _api_message(exc)):
                    raise
                self._run_details = False  # this server does not know the field: never send it again
                self._pace()
                run = handle.create_dispatch(self._ref, inputs, throw=True)
        url = getattr(run, "html_url", None) if not isinstance(run, bool) else None
        return Outcome(f"dispatched {workflow} on {self._ref} ({_inputs_text(inputs)})", url=url)

    def recent_dispatch_runs(self, workflow: str, since: datetime) -> list[WorkflowRunRef]:
        created = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with translated_errors(f"list runs of {workflow}", self._repo):
            runs = self._repo.get_workflow(workflow).get_runs(
                branch=self._ref, event="workflow_dispatch", created=f">={created}"
            )
            # islice, not a slice: PyGithub's PaginatedList slice raises IndexError on an empty list.
            found: Iterable[WorkflowRun] = islice(runs, RECENT_RUNS)
            return [
                WorkflowRunRef(
                    id=run.id,
                    html_url=run.html_url,
                    display_title=run.display_title or "",
                    workflow_name=run.name or "",
                    created_at=run.created_at,
                )
                for run in found
            ]

    def read_file(self, path: str, ref: str | None = None) -> str:
        ref = ref or self._ref
        with translated_errors(f"read {path}@{ref}", self._repo):
            content = self._repo.get_contents(path, ref=ref)
        if isinstance(content, list):
            raise PermanentError(f"{path} is a directory, expected a file", system=SYSTEM)
        return base64.b64decode(content.content).decode("utf-8")

    def file_revisions(self, path: str, limit: int = 50) -> list[Revision]:
        with translated_errors(f"list revisions of {path}", self._repo):
            revisions = []
            commits: Iterable[Commit] = islice(self._repo.get_commits(sha=self._ref, path=path), limit)
            for commit in commits:
                author = commit.commit.author
                revisions.append(
                    Revision(sha=commit.sha, date=author.date if author else None, message=commit.commit.message)
                )
            return revisions


class GitHubIssueTracker:
    """Incident tickets as GitHub issues; a ticket's key is carried by its labels."""

    name = "github"

    def __init__(self, repo: Repository, *, pace: Pace = _no_pacing) -> None:
        self._repo = repo
        self._pace = pace

    @staticmethod
    def key_labels(key: TicketKey) -> list[str]:
        kind, value = key.subject
        return ["incident", key.alertname, f"{kind}:{value}"]

    def search_open(self, *, alertname: str | None = None, model_id: str | None = None) -> list[Ticket]:
        labels = ["incident", *([alertname] if alertname else []), *([f"model:{model_id}"] if model_id else [])]
        with translated_errors(f"search open tickets labelled {', '.join(labels)}", self._repo):
            return [
                Ticket(ref=f"#{issue.number}", url=issue.html_url, title=issue.title)
                for issue in self._repo.get_issues(state="open", labels=labels, sort="created", direction="desc")
                if issue.pull_request is None
            ]

    def find_open(self, key: TicketKey) -> Ticket | None:
        labels = self.key_labels(key)
        with translated_errors(f"search open tickets labelled {', '.join(labels)}", self._repo):
            for issue in self._repo.get_issues(state="open", labels=labels, sort="created", direction="desc"):
                if issue.pull_request is None:
                    return Ticket(ref=f"#{issue.number}", url=issue.html_url, title=issue.title)
        return None

    def open(self, draft: TicketDraft) -> Ticket:
        labels = list(dict.fromkeys([*self.key_labels(draft.key), *draft.labels]))
        with translated_errors("open ticket", self._repo):
            self._pace()
            issue = self._repo.create_issue(title=draft.title, body=render_markdown(draft.body), labels=labels)
        return Ticket(ref=f"#{issue.number}", url=issue.html_url, title=issue.title)

    def comment(self, ticket: Ticket, body: Document) -> Outcome:
        with translated_errors(f"comment on {ticket.ref}", self._repo):
            issue = self._repo.get_issue(_number(ticket))
            self._pace()
            comment = issue.create_comment(render_markdown(body))
        return Outcome(f"commented on {ticket.ref}", url=comment.html_url)

    def close(self, ticket: Ticket) -> Outcome:
        with translated_errors(f"close {ticket.ref}", self._repo):
            issue = self._repo.get_issue(_number(ticket))
            self._pace()
            issue.edit(state="closed", state_reason="completed")
        return Outcome(f"closed {ticket.ref}", url=ticket.url)


def _number(ticket: Ticket) -> int:
    return int(ticket.ref.lstrip("#"))


def _inputs_text(inputs: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in inputs.items())
