"""Following a dispatched workflow run to its end: its state, then the evidence it uploaded.

* ``poll`` reads ``GET /repos/{o}/{r}/actions/runs/{id}`` with ``If-None-Match`` set to the ETag
  of the previous answer: an unchanged run answers ``304 Not Modified``, which GitHub does not
  count against the rate limit, so polling every interval is cheap.
* ``artifacts`` lists ``.../actions/runs/{id}/artifacts`` and downloads each one:
  ``.../actions/artifacts/{id}/zip`` answers 302 to a short-lived signed link on another host
  (blob storage). That link is fetched by a session of its own that holds no credentials, so the
  GitHub token never reaches the storage host, whatever the redirect. (PyGithub's own 302 following
  drops the token only when the hostname differs, and asserts that the target is on the API's
  host and port or within github.com/githubusercontent.com: blob storage hosts fail that.)
* Sizes are capped by what is read, not by what headers claim: an artifact listed over
  ``max_artifact_bytes`` is not downloaded, a download is abandoned once it passes that size, and
  a file is unpacked only up to ``max_json_bytes``. What is not read is named, with the reason.
* A JSON file holding an object is summarised by its top-level ``status`` and its first few
  top-level scalar fields; any other file is named with the reason it was not.

Errors: the API calls go through PyGithub's requester and ``translated_errors`` (5xx, 429 and
rate limits are TransientError, other 4xx PermanentError). At the storage host, a 5xx, 429 or a
lost connection is a TransientError (everything here is a read: retrying is safe); a refused
link is asked for again once, then the artifact is named with the refusal.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from github.Repository import Repository
from github.Requester import Requester
from pydantic import BaseModel, ConfigDict, ValidationError

from responder.errors import PermanentError
from responder.integrations import http_policy
from responder.integrations.base import ArtifactSummary, EvidenceFile, NotModified, RunSnapshot, Scalar
from responder.integrations.github import SYSTEM, translated_errors

MiB = 1024 * 1024
LINK_ATTEMPTS = 2  # a signed link lives a minute: one refused is asked for afresh, once
CHUNK_BYTES = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ArtifactLimits:
    """How much of a run's evidence is read."""

    max_artifact_bytes: int = 10 * MiB  # a larger artifact is named, not downloaded
    max_json_bytes: int = 1 * MiB  # a larger file, unpacked, is named, not read
    max_fields: int = 5  # top-level scalar fields kept besides "status"
    max_text: int = 200  # characters kept of a string field
    max_files: int = 20  # files summarised per artifact; the rest are counted
    max_artifacts: int = 100  # artifacts summarised per run (one page of the listing)


class _Unreadable(Exception):
    """An artifact that is named with this reason instead of being read."""


# --------------------------------------------------------------------------- GitHub's payloads


class _RunPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    path: str = ""
    html_url: str
    status: str
    conclusion: str | None = None
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None = None


class _ArtifactPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    name: str
    size_in_bytes: int
    expired: bool


class _ArtifactListPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total_count: int
    artifacts: list[_ArtifactPayload]


# --------------------------------------------------------------------------- the reader


class PyGithubRunReader:
    """WorkflowRunReader over a PyGithub Repository (its requester: auth, base URL, retries) and a
    credential-free session for the artifact storage. No I/O until a method is called."""

    def __init__(self, repo: Repository, *, timeout: float, limits: ArtifactLimits | None = None) -> None:
        self._repo = repo
        self._timeout = timeout
        self._limits = limits or ArtifactLimits()
        self._storage = requests.Session()
        # A no-op auth, so that requests does not fall back to ~/.netrc credentials for the host either.
        self._storage.auth = _no_auth

    def poll(self, run_id: int, etag: str | None = None) -> RunSnapshot | NotModified:
        action = f"read workflow run {run_id}"
        headers = {"If-None-Match": etag} if etag else {}
        with translated_errors(action, self._repo):
            status, response_headers, body = self._requester.requestJson("GET", self._run_url(run_id), headers=headers)
            if status == 304:
                return NotModified(etag=response_headers.get("etag") or etag or "")
            data = _checked(status, response_headers, body)
        run = _validated(_RunPayload, data, action, "a workflow run")
        return RunSnapshot(
            run_id=run.id,
            workflow=run.path.rsplit("/", 1)[-1],
            html_url=run.html_url,
            status=run.status,
            conclusion=run.conclusion,
            created_at=run.created_at.astimezone(UTC),
            updated_at=run.updated_at.astimezone(UTC),
            run_started_at=run.run_started_at.astimezone(UTC) if run.run_started_at else None,
            etag=response_headers.get("etag"),
        )

    def artifacts(self, run_id: int) -> list[ArtifactSummary]:
        listing = self._listing(run_id)
        return [self._summarise(artifact) for artifact in listing.artifacts[: self._limits.max_artifacts]]

    def json_file(self, run_id: int, artifact: str, file_name: str) -> dict[str, Any]:
        """The JSON object ``file_name`` in the artifact named ``artifact`` (or ``artifact.json``) of
        run ``run_id``, read whole (``artifacts`` keeps a few fields of each). PermanentError saying
        why when it is missing or cannot be read."""
        found = next((a for a in self._listing(run_id).artifacts if a.name in (artifact, f"{artifact}.json")), None)
        if found is None:
            raise PermanentError(f"run {run_id} uploaded no {artifact} artifact", system=SYSTEM)
        try:
            if found.expired:
                raise _Unreadable("expired: GitHub no longer keeps it")
            if found.size_in_bytes > self._limits.max_artifact_bytes:
                raise _Unreadable(f"{found.size_in_bytes} bytes, over the limit: not downloaded")
            raw = _member(self._download(found), file_name, self._limits.max_json_bytes)
        except _Unreadable as unreadable:
            raise PermanentError(f"the {artifact} artifact of run {run_id}: {unreadable}", system=SYSTEM) from None
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            raise PermanentError(f"{file_name} of run {run_id} is not valid JSON", system=SYSTEM) from None
        if not isinstance(document, dict):
            raise PermanentError(f"{file_name} of run {run_id} is not a JSON object", system=SYSTEM)
        return document

    def _listing(self, run_id: int) -> _ArtifactListPayload:
        action = f"list artifacts of workflow run {run_id}"
        with translated_errors(action, self._repo):
            status, headers, body = self._requester.requestJson(
                "GET", f"{self._run_url(run_id)}/artifacts", parameters={"per_page": self._limits.max_artifacts}
            )
            data = _checked(status, headers, body)
        return _validated(_ArtifactListPayload, data, action, "an artifact list")

    # ----------------------------------------------------------------- one artifact

    def _summarise(self, artifact: _ArtifactPayload) -> ArtifactSummary:
        limit = self._limits.max_artifact_bytes
        try:
            if artifact.expired:
                raise _Unreadable("expired: GitHub no longer keeps it")
            if artifact.size_in_bytes > limit:
                raise _Unreadable(f"{_size(artifact.size_in_bytes)}, over the {_size(limit)} limit: not downloaded")
            archive = self._download(artifact)
            files, omitted = self._read_archive(archive)
        except _Unreadable as unreadable:
            return ArtifactSummary(artifact.name, artifact.size_in_bytes, reason=str(unreadable))
        statuses = {file.status for file in files if file.status is not None}
        status = statuses.pop() if len(statuses) == 1 else None
        return ArtifactSummary(artifact.name, artifact.size_in_bytes, status, tuple(files), omitted_files=omitted)

    def _download(self, artifact: _ArtifactPayload) -> bytes:
        action = f"download artifact {artifact.name}"
        refusal = ""
        for _ in range(LINK_ATTEMPTS):
            location = self._link(artifact, action)
            try:
                with self._storage.get(location, stream=True, timeout=self._timeout) as response:
                    status = response.status_code
                    if http_policy.transient(status, response.headers):
                        text = f"{action}: artifact storage answered {status}"
                        raise http_policy.failure(status, response.headers, text, system=SYSTEM)
                    if status != 200:
                        refusal = f"the artifact storage refused the download link ({status})"
                        continue
                    return self._read_capped(response)
            except http_policy.NO_ANSWER as exc:
                raise http_policy.unanswered(action, "artifact storage", exc, system=SYSTEM) from None
        raise _Unreadable(refusal)

    def _link(self, artifact: _ArtifactPayload, action: str) -> str:
        """The short-lived storage URL GitHub redirects the archive to (the redirect is not followed here)."""
        url = f"{self._repo.url}/actions/artifacts/{artifact.id}/zip"
        with translated_errors(action, self._repo):
            status, headers, body = self._requester.requestJson("GET", url)
            location = headers.get("location") if status in REDIRECTS else None
            if status != 410 and not location:
                _checked(status, headers, body)
        if status == 410:  # expired since it was listed
            raise _Unreadable("expired: GitHub no longer keeps it")
        if not location:
            raise PermanentError(
                f"{action}: GitHub answered {status} without a download link", system=SYSTEM, status=status
            )
        return str(location)

    def _read_capped(self, response: requests.Response) -> bytes:
        """The body, read up to the limit whatever Content-Length says."""
        limit = self._limits.max_artifact_bytes
        data = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            data += chunk
            if len(data) > limit:
                raise _Unreadable(f"the download passed the {_size(limit)} limit: not read")
        return bytes(data)

    def _read_archive(self, archive: bytes) -> tuple[list[EvidenceFile], int]:
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as opened:
                members = [info for info in opened.infolist() if not info.is_dir()]
                shown = members[: self._limits.max_files]
                return [self._read_file(opened, info) for info in shown], len(members) - len(shown)
        except zipfile.BadZipFile:
            raise _Unreadable("not a zip archive") from None

    def _read_file(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> EvidenceFile:
        limit = self._limits.max_json_bytes
        too_large = f"over the {_size(limit)} limit unpacked: not read"
        if not info.filename.lower().endswith(".json"):
            return EvidenceFile(info.filename, reason="not a JSON file: not read")
        if info.file_size > limit:
            return EvidenceFile(info.filename, reason=f"{_size(info.file_size)}, {too_large}")
        try:
            with archive.open(info) as member:
                raw = member.read(limit + 1)  # the size in the zip's header may lie
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            return EvidenceFile(info.filename, reason=f"damaged in the archive ({type(exc).__name__})")
        if len(raw) > limit:
            return EvidenceFile(info.filename, reason=too_large)
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return EvidenceFile(info.filename, reason=f"invalid JSON ({_json_error(exc)})")
        if not isinstance(document, dict):
            return EvidenceFile(info.filename, reason="not a JSON object: not summarised")
        return self._evidence(info.filename, document)

    def _evidence(self, name: str, document: dict[str, Any]) -> EvidenceFile:
        status = document.get("status")
        fields: dict[str, Scalar] = {}
        for key, value in document.items():
            if len(fields) >= self._limits.max_fields:
                break
            if key == "status" and isinstance(status, str):
                continue
            if isinstance(value, str):
                fields[key] = _clip(value, self._limits.max_text)
            elif value is None or isinstance(value, bool | int | float):
                fields[key] = value
        return EvidenceFile(name, status if isinstance(status, str) else None, fields)

    # ----------------------------------------------------------------- plumbing

    @property
    def _requester(self) -> Requester:
        return self._repo.requester

    def _run_url(self, run_id: int) -> str:
        return f"{self._repo.url}/actions/runs/{run_id}"


def _checked(status: int, headers: dict[str, Any], body: str) -> Any:
    """The parsed JSON of a 2xx answer; raises PyGithub's exception for an error, for ``classify``."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = {"message": body[:200]}
    if status >= 400:
        raise Requester.createException(status, headers, data if isinstance(data, dict) else {})
    if not 200 <= status < 300:
        raise PermanentError(f"GitHub answered {status} unexpectedly", system=SYSTEM, status=status)
    return data


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


_Payload = TypeVar("_Payload", bound=BaseModel)


def _validated(model: type[_Payload], data: Any, action: str, what: str) -> _Payload:
    """GitHub's answer read as ``model``; a PermanentError naming ``what`` it should have been."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PermanentError(f"{action}: GitHub's answer is not {what} ({_first_error(exc)})", system=SYSTEM) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"


def _json_error(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:100]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(count: int) -> str:
    return f"{count / MiB:.1f} MiB" if count >= MiB else f"{count} bytes"


def _member(archive: bytes, file_name: str, limit: int) -> bytes:
    """The bytes of the file named ``file_name`` (in any folder) of a zip ``archive``, at most ``limit``."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            names = [i.filename for i in opened.infolist() if not i.is_dir()]
            name = next((n for n in names if n.rsplit("/", 1)[-1] == file_name), None)
            if name is None:
                raise _Unreadable(f"it holds no {file_name}")
            with opened.open(name) as member:
                raw = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise _Unreadable(f"not a readable zip archive ({type(exc).__name__})") from None
    if len(raw) > limit:
        raise _Unreadable(f"{file_name} is over the {limit} bytes limit")
    return raw
