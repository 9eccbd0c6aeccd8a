"""Wiring: the clients a process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from responder.errors import ConfigError
from responder.integrations import github as gh
from responder.integrations.base import GitHubGateway, Tracker
from responder.integrations.dryrun import DryRunGitHub, DryRunTracker
from responder.playbooks.catalog import Catalog, load_catalog
from responder.runs import RunStore
from responder.settings import Settings


def redis_client(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30)


@dataclass(frozen=True)
class Integrations:
    github: GitHubGateway
    tracker: Tracker


@dataclass(frozen=True)
class Runtime:
    """Everything a worker needs to run playbooks; built once per worker process."""

    settings: Settings
    redis: Redis
    catalog: Catalog
    runs: RunStore
    live: Integrations | None  # None when no GitHub credentials are configured
    dry: Integrations

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.require_github()
        if settings.tracker != "github":
            raise ConfigError(f"RESPONDER_TRACKER={settings.tracker} is not supported yet: use github")
        redis = redis_client(settings)
        live = None
        if settings.github_configured:
            assert settings.github_token is not None and settings.github_repo is not None
            repo = gh.connect(
                settings.github_api_url,
                settings.github_token.get_secret_value(),
                settings.github_repo,
                timeout=settings.http_timeout_seconds,
            )
            live = Integrations(gh.PyGithubGateway(repo, ref=settings.github_ref), gh.GitHubIssueTracker(repo))
        dry = Integrations(
            DryRunGitHub(
                live.github if live else None,
                manifest_file=settings.offline_manifest_file,
                manifest_path=settings.manifest_path,
            ),
            DryRunTracker(live.tracker if live else None),
        )
        return cls(
            settings=settings,
            redis=redis,
            catalog=load_catalog(settings.playbooks_dir),
            runs=RunStore(redis, retention_seconds=settings.dedup_retention_seconds),
            live=live,
            dry=dry,
        )

    def integrations(self, *, dry_run: bool) -> Integrations:
        if dry_run or self.settings.dry_run or self.live is None:
            return self.dry
        return self.live
