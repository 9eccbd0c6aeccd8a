"""Every knob responder has: declared in groups (one pydantic-settings class each, named for what
it configures) and read as one ``Settings`` class.

Values come from, highest priority first: environment variables prefixed ``RESPONDER_``,
then the optional YAML file (``--config PATH`` or ``RESPONDER_CONFIG``), then the defaults
written here. YAML keys are the field names below (``redis_url``, ``governance_workflow``...).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from redis.connection import parse_url

from responder.errors import ConfigError
from responder.schedules import Schedule

ENV_PREFIX = "RESPONDER_"
# The default playbooks, shipped in the package (a link to the repository's playbooks/).
BUNDLED_PLAYBOOKS = (Path(__file__).parent / "default_playbooks").resolve()
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# Old setting names still read: the YAML key and the environment variable, by the new field name.
DEPRECATED_KEYS = {"read_token": "ui_token"}
DEPRECATED_ENV = tuple(f"{ENV_PREFIX}{old.upper()}" for old in DEPRECATED_KEYS)


class SettingsGroup(BaseSettings):
    """A group of settings; ``Settings`` is all of them, read with one prefix and no unknown names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True)


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value else value


class QueueSettings(SettingsGroup):
    """Redis and the queue"""

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding queue, dedup and runs.")
    redis_sentinels: Annotated[list[str], NoDecode] = Field(  # NoDecode: _sentinel_list splits the env's text
        [],
        description="Redis Sentinels (host:port,host:port,...) to find the master through, following failovers; "
        "with RESPONDER_REDIS_SENTINEL_MASTER. Then RESPONDER_REDIS_URL gives only the database number, user and "
        "password (its host and port are ignored).",
    )
    redis_sentinel_master: str | None = Field(
        None,
        validate_default=True,  # so that sentinels without a master name are caught here
        description="The Sentinels' name of the monitored master (`sentinel monitor NAME ...`); required with "
        "RESPONDER_REDIS_SENTINELS.",
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="Password of the Sentinels themselves (their `requirepass`), if they have one."
    )
    redis_min_replicas: int = Field(
        0,
        ge=0,
        description="With n >= 1 a notification is answered 202 only once WAIT confirms its commit reached n "
        "replicas (and only while n are connected); otherwise 503 with Retry-After, and Alertmanager sends it "
        "again. 0: a 202 means written to the master.",
    )
    queue: str = Field("responder", description="RQ queue name shared by receiver and workers.")
    dedup_retention_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="How long a firing instance is remembered (dedup) and runs kept."
    )
    history_keep: int = Field(1000, gt=0, description="How many received notifications the decision history keeps.")
    history_max_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="At most this many bytes of notifications (records and bodies as received) in the decision "
        "history; the oldest leave first.",
    )
    history_retention_seconds: int = Field(7 * 24 * 3600, gt=0, description="How long decision history is kept.")
    storm_max_runs: int = Field(
        50, gt=0, description="Firing runs of one playbook allowed per storm window; later ones are suppressed."
    )
    storm_window_seconds: int = Field(600, gt=0, description="Length of the storm guard's (fixed) window.")
    job_timeout_seconds: int = Field(300, gt=0, description="A playbook run is killed after this long.")
    job_retry_intervals: list[float] = Field(
        [10, 60, 300, 900, 1800],
        description="Backoff (seconds) before each retry of a step that failed transiently (jittered ±25 %, "
        "never sooner than the server's Retry-After; JSON list); its length is the number of retries. The default "
        "rides out about 50 minutes of a service failing every call.",
    )
    worker_ttl_seconds: int = Field(
        60,
        ge=2,
        description="A worker that has not renewed its run for this long is presumed dead and the run is "
        "re-queued (busy workers renew every quarter of it).",
    )
    maintenance_interval_seconds: int = Field(
        30, gt=0, description="How often each worker looks for runs of dead workers (and restarts its scheduler)."
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        try:  # as the client will, so that a bad port or option stops start-up here, in one line
            parse_url(value)  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
        except ValueError as exc:
            raise ValueError(f"not a Redis URL: {exc}") from None
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_list(cls, value: Any) -> Any:
        entries = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
        for entry in entries if isinstance(entries, list) else []:
            host, _, port = str(entry).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry!r} is not host:port; give host:port,host:port,...")
        return entries

    @field_validator("redis_sentinel_master")
    @classmethod
    def _sentinels_with_master(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "redis_sentinels" not in info.data:  # the sentinels were invalid: that error is the one to report
            return value
        if bool(info.data["redis_sentinels"]) != bool(value):
            both = "RESPONDER_REDIS_SENTINELS and RESPONDER_REDIS_SENTINEL_MASTER"
            raise ValueError(f"{both} go together: set both, or neither")
        if value and not str(info.data.get("redis_url", "redis://")).startswith("redis://"):
            raise ValueError("with Sentinels, RESPONDER_REDIS_URL must be a redis:// URL (TLS and sockets: not yet)")
        return value


class ReceiverSettings(SettingsGroup):
    """The receiver"""

    webhook_token: SecretStr | None = Field(
        None,
        description="Bearer token (or HTTP Basic password) for webhooks; required by `serve` unless "
        "--insecure-no-auth.",
    )
    ui_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(f"{ENV_PREFIX}UI_TOKEN", *DEPRECATED_ENV),  # prefixed: they bypass env_prefix
        description="Read-only token for the runs page (the webhook token works too); unset, the page takes "
        "only the webhook token. RESPONDER_READ_TOKEN, its old name, still works.",
    )
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest webhook body accepted (413 above).")


class GitHubSettings(SettingsGroup):
    """GitHub"""

    github_api_url: str = Field("https://api.github.com", description="GitHub or GHES API base URL.")
    github_token: SecretStr | None = Field(None, description="Token with actions, variables, issues write.")
    github_repo: str | None = Field(None, description="owner/name of the ML platform repository.")
    github_ref: str = Field("main", description="Git ref workflows are dispatched on and files read from.")
    github_webhook_secret: SecretStr | None = Field(
        None,
        description="Secret of the repository webhook posting to /webhooks/github (X-Hub-Signature-256 is "
        "checked against it); unset, every delivery is refused.",
    )
    manifest_path: str = Field("artifacts/ml/model-manifest.json", description="Model manifest in the repo.")
    governance_workflow: str = Field("model-governance.yml", description="Governance workflow file name.")
    retraining_workflow: str = Field("model-retraining.yml", description="Retraining workflow file name.")
    freeze_variable: str = Field("DEPLOY_FREEZE", description="Actions variable that freezes deploys.")
    http_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of every outgoing HTTP call.")
    github_writes_per_second: float = Field(
        1.0, ge=0, description="GitHub writes across all workers, paced through Redis (0: no pacing)."
    )
    dispatch_lookup_seconds: float = Field(
        60.0,
        gt=0,
        description="How long GitHub's run list is read for the run of a dispatch whose answer was lost "
        "(GitHub lists a new run seconds after the dispatch); only then is it dispatched again.",
    )
    follow_poll_seconds: float = Field(
        30.0,
        gt=0,
        description="Between two reads of a dispatched workflow run that is followed to its end (a conditional "
        "read: an unchanged run costs a 304 and no rate limit).",
    )
    follow_timeout_seconds: float = Field(
        21600.0, gt=0, description="How long a dispatched workflow run is followed before responder gives up on it."
    )
    change_request_poll_seconds: float = Field(
        900.0,
        gt=0,
        description="Between two reads of an open change request's reviews, the fallback when GitHub's "
        "pull_request and pull_request_review webhook deliveries do not arrive (they settle it at once).",
    )

    @field_validator("github_api_url")
    @classmethod
    def _github_url(cls, value: str) -> str | None:
        return _http_url(value)

    @field_validator("github_repo")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and not REPO_PATTERN.match(value):
            raise ValueError("must be owner/name, e.g. acme/ml-platform")
        return value


class TrackerSettings(SettingsGroup):
    """Trackers"""

    tracker: Literal["github", "jira"] = Field(
        "github", description="Where incident tickets go: GitHub issues or Jira (see docs/integrations.md)."
    )
    jira_url: str | None = Field(None, description="Jira base URL, e.g. https://acme.atlassian.net.")
    jira_user: str | None = Field(None, description="Jira Cloud account e-mail (basic auth with the API token).")
    jira_token: SecretStr | None = Field(None, description="Jira API token (Cloud) or personal access token (DC).")
    jira_project: str | None = Field(None, description="Project key tickets are created in, e.g. MLOPS.")
    jira_issue_type: str = Field("Task", description="Issue type of new tickets.")
    jira_search_path: str | None = Field(
        None,
        description="JQL search endpoint; default /rest/api/3/search/jql with a user (Cloud), "
        "/rest/api/2/search without (Server/Data Center).",
    )
    jira_done_transition: str = Field("Done", description="Transition used when a playbook closes a ticket.")
    jira_search_lag_seconds: float = Field(
        30.0,
        ge=0,
        description="How long Jira Cloud's search may take to show a new issue: after a create whose answer "
        "was lost, the ticket is searched for this long before another may be opened.",
    )

    @field_validator("jira_url")
    @classmethod
    def _jira_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class ToggleSettings(SettingsGroup):
    """Feature-toggle service (rollback re-tag)"""

    toggle_url: str | None = Field(None, description="Feature-toggle service base URL.")
    toggle_token: SecretStr | None = Field(None, description="Bearer token for the toggle service (optional).")
    toggle_method: Literal["PUT", "POST", "PATCH"] = Field("PUT", description="HTTP method of the re-tag call.")
    toggle_path: str = Field("/endpoints/{{ model_id }}", description="Path template of the re-tag call.")
    toggle_body: dict[str, str] = Field(
        {"model_id": "{{ model_id }}", "version": "{{ version }}", "reason": "{{ reason }}"},
        description="JSON body of the re-tag call: each value a template over model_id, version, reason, endpoint.",
    )

    @field_validator("toggle_url")
    @classmethod
    def _toggle_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class RunSettings(SettingsGroup):
    """Runs"""

    retraining_cooldown_seconds: int = Field(
        6 * 3600, ge=0, description="Default cooldown of retraining dispatches per model (0: none)."
    )
    runbook_url: str | None = Field(None, description="Runbook link put in tickets when an alert has none.")
    approvers: dict[str, list[str]] = Field(
        {},
        description='Approver groups of approval steps: GitHub logins by group, e.g. {"ml-lead": ["alice"], '
        '"responsible-ai": ["carol"]} (JSON in the environment).',
    )
    dry_run: bool = Field(
        False,
        description="Record external writes as 'planned' instead of sending them; without it, a worker needs "
        "the GitHub token and repository.",
    )
    offline_manifest_file: Path | None = Field(
        None, description="Local manifest read in dry-run when no GitHub token is configured."
    )
    playbooks_dir: Path = Field(
        BUNDLED_PLAYBOOKS,
        description="Directory of playbook YAML files (default: the playbooks shipped in the package, "
        "the repository's playbooks/).",
    )


class ScheduleSettings(SettingsGroup):
    """Schedules"""

    schedules: list[Schedule] = Field(
        [],
        description="Playbook runs on a cron schedule (UTC), run by `responder scheduler` (JSON list in the "
        "environment; see docs/schedules.md). Empty: schedules.yaml in the playbooks directory, if there is one.",
    )
    schedule_catch_up_seconds: int = Field(
        6 * 3600,
        gt=0,
        description="A slot the scheduler missed (it was down) by less than this runs late; an older one is "
        "recorded as missed and not run.",
    )


class LogSettings(SettingsGroup):
    """Logging"""

    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest level logged.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console renderer on a TTY, JSON lines otherwise."
    )


class Settings(
    LogSettings,
    ScheduleSettings,
    RunSettings,
    ToggleSettings,
    TrackerSettings,
    GitHubSettings,
    ReceiverSettings,
    QueueSettings,
):
    """Every setting, the groups above in one class: ``Settings.model_fields`` lists them all."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True)
    # What load_settings found under an old name (read_token): warnings for `serve` to log.
    _deprecations: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs (see load_settings); the environment wins over it.
        return (env_settings, init_settings)

    # --- Checks that depend on what the process is about to do ---

    def require_webhook_token(self) -> SecretStr:
        if self.webhook_token is None or not self.webhook_token.get_secret_value():
            raise ConfigError(
                "RESPONDER_WEBHOOK_TOKEN is not set: set it to the token Alertmanager sends, "
                "or start with --insecure-no-auth for a local trial"
            )
        return self.webhook_token

    def require_github(self) -> None:
        """Fail unless GitHub can be written to, or dry-run makes that unnecessary."""
        if self.dry_run:
            return
        for name, value in (("RESPONDER_GITHUB_TOKEN", self.github_token), ("RESPONDER_GITHUB_REPO", self.github_repo)):
            if not value:
                raise ConfigError(f"{name} is not set: set it, or set RESPONDER_DRY_RUN=true to only plan actions")

    def require_jira(self) -> None:
        """With RESPONDER_TRACKER=jira, the URL, project and token must be set (unless dry-run)."""
        if self.tracker != "jira" or self.dry_run:
            return
        for name, value in (
            ("RESPONDER_JIRA_URL", self.jira_url),
            ("RESPONDER_JIRA_PROJECT", self.jira_project),
            ("RESPONDER_JIRA_TOKEN", self.jira_token),
        ):
            if not value:
                raise ConfigError(f"{name} is not set: RESPONDER_TRACKER=jira needs it (or RESPONDER_DRY_RUN=true)")

    def secret_values(self) -> list[str]:
        """Every configured credential, for redaction from logs, errors and run records."""
        tokens = (
            self.webhook_token,
            self.ui_token,
            self.github_token,
            self.github_webhook_secret,
            self.jira_token,
            self.toggle_token,
            self.redis_sentinel_password,
        )
        values = [t.get_secret_value() for t in tokens if t is not None and t.get_secret_value()]
        if self.jira_user and self.jira_token:  # what HTTP Basic sends for Jira Cloud
            values.append(base64.b64encode(f"{self.jira_user}:{self.jira_token.get_secret_value()}".encode()).decode())
        return values

    @property
    def deprecations(self) -> tuple[str, ...]:
        """One line for each old setting name in use, saying what to rename it to."""
        return self._deprecations

    @property
    def has_ui_token(self) -> bool:
        """Whether the runs page has a token of its own (an empty RESPONDER_UI_TOKEN is none)."""
        return self.ui_token is not None and bool(self.ui_token.get_secret_value())

    @property
    def jira_configured(self) -> bool:
        return bool(self.jira_url and self.jira_project and self.jira_token)

    @property
    def github_configured(self) -> bool:
        return bool(self.github_token and self.github_repo)
