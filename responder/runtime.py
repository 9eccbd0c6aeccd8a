"""Wiring: the clients a process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis

from responder import metrics
from responder.integrations import github as gh
from responder.integrations.base import GitHubGateway, Toggles, Tracker, WorkflowRunReader
from responder.integrations.dryrun import DryRunGitHub, DryRunTracker
from responder.integrations.github_changes import PullRequests
from responder.integrations.jira import JiraTracker
from responder.integrations.jira_ledger import TicketLedger
from responder.integrations.toggles import DryRunToggles, ToggleClient
from responder.integrations.workflow_runs import PyGithubRunReader
from responder.playbooks.catalog import Catalog, load_catalog
from responder.runs import RunStore
from responder.settings import Settings
from responder.store.pacing import WritePacer
from responder.store.redisconn import redis_client


@dataclass(frozen=True)
class Integrations:
    github: GitHubGateway
    tracker: Tracker
    toggles: Toggles | None


@dataclass(frozen=True)
class Runtime:
    """Everything a worker (or an inline CLI run) needs to run playbooks; built once per process."""

    settings: Settings
    redis: Redis
    catalog: Catalog
    runs: RunStore
    live: Integrations | None  # None when no GitHub credentials are configured
    dry: Integrations
    workflow_runs: WorkflowRunReader | None = None  # follows dispatched runs; None without GitHub credentials
    pulls: PullRequests | None = None  # change requests' branches, pull requests, reviews; None likewise

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.require_github()
        settings.require_jira()
        redis = redis_client(settings)
        metrics.install(metrics.WorkerMetrics(redis))
        live = None
        github: GitHubGateway | None = None
        reader: WorkflowRunReader | None = None
        pulls: PullRequests | None = None
        tracker: Tracker | None = (
            _jira(settings, redis) if settings.tracker == "jira" and settings.jira_configured else None
        )
        if settings.github_configured:
            assert settings.github_token is not None and settings.github_repo is not None
            repo = gh.connect(
                settings.github_api_url,
                settings.github_token.get_secret_value(),
                settings.github_repo,
                timeout=settings.http_timeout_seconds,
            )
            pace = WritePacer(redis, settings.github_writes_per_second).wait
            github = gh.PyGithubGateway(repo, ref=settings.github_ref, pace=pace)
            reader = PyGithubRunReader(repo, timeout=settings.http_timeout_seconds)
            owner = settings.github_repo.partition("/")[0]
            pulls = PullRequests(repo, owner=owner, base=settings.github_ref, pace=pace)
            if settings.tracker == "github":
                tracker = gh.GitHubIssueTracker(repo, pace=pace)
        if github is not None and tracker is not None:
            live = Integrations(github, tracker, _toggles(settings))
        dry = Integrations(
            DryRunGitHub(github, manifest_file=settings.offline_manifest_file, manifest_path=settings.manifest_path),
            DryRunTracker(tracker, name=settings.tracker),
            DryRunToggles(**_toggle_templates(settings)),
        )
        return cls(
            settings=settings,
            redis=redis,
            catalog=load_catalog(settings.playbooks_dir),
            runs=RunStore(redis, retention_seconds=settings.dedup_retention_seconds),
            live=live,
            dry=dry,
            workflow_runs=reader if live is not None else None,
            pulls=pulls if live is not None else None,
        )

    def integrations(self, *, dry_run: bool) -> Integrations:
        if dry_run or self.settings.dry_run or self.live is None:
            return self.dry
        return self.live


def _jira(settings: Settings, redis: Redis) -> JiraTracker:
    assert settings.jira_url and settings.jira_project and settings.jira_token
    ledger = TicketLedger(
        redis,
        project=settings.jira_project,
        retention_seconds=settings.dedup_retention_seconds,
        search_lag_seconds=settings.jira_search_lag_seconds,
    )
    return JiraTracker(
        base_url=settings.jira_url,
        project=settings.jira_project,
        token=settings.jira_token.get_secret_value(),
        ledger=ledger,
        user=settings.jira_user,
        issue_type=settings.jira_issue_type,
        search_path=settings.jira_search_path,
        done_transition=settings.jira_done_transition,
        timeout=settings.http_timeout_seconds,
    )


def _toggle_templates(settings: Settings) -> dict[str, Any]:
    return {"method": settings.toggle_method, "path": settings.toggle_path, "body": settings.toggle_body}


def _toggles(settings: Settings) -> Toggles | None:
    if settings.toggle_url is None:
        return None
    token = settings.toggle_token.get_secret_value() if settings.toggle_token else None
    return ToggleClient(
        base_url=settings.toggle_url, token=token, timeout=settings.http_timeout_seconds, **_toggle_templates(settings)
    )
