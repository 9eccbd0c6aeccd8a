"""Following a dispatched run to its end (responder.integrations.workflow_runs) against the GitHub
fake over real HTTP: PyGithub's requester for the API, a plain session for the artifact storage."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from responder.errors import PermanentError, TransientError
from responder.integrations.base import ArtifactSummary, EvidenceFile, NotModified, RunSnapshot
from responder.integrations.github import connect
from responder.integrations.workflow_runs import ArtifactLimits, PyGithubRunReader
from tests.fakes.github import FakeGitHub

GOVERNANCE = "model-governance.yml"
INTEGRITY = "model-integrity.json"
PASSING = {"status": "pass", "modelId": "churn-xgb", "modelVersion": "42", "sha256": "9f2c", "checked": 3}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(queued_seconds=0, running_seconds=0) as server:
        yield server


def reader_for(fake: FakeGitHub, limits: ArtifactLimits | None = None) -> PyGithubRunReader:
    """The reader as responder wires it: over connect()'s lazy Repository."""
    return PyGithubRunReader(connect(fake.url, fake.token, fake.full_name, timeout=5), timeout=5, limits=limits)


@pytest.fixture
def reader(fake: FakeGitHub) -> PyGithubRunReader:
    return reader_for(fake)


def completed_run(fake: FakeGitHub, **artifacts: dict[str, Any]) -> int:
    """A completed governance run with one artifact per keyword (name -> files)."""
    run_id = fake.add_run(GOVERNANCE, display_title="model-governance churn-xgb 42 (manual)")
    for name, files in artifacts.items():
        fake.add_artifact(run_id, name, files)
    return run_id


def zip_requests(fake: FakeGitHub) -> list[str]:
    return [r.path for r in fake.requests if r.path.endswith("/zip")]


# --------------------------------------------------------------------------- polling


def test_poll_sees_the_run_queued_then_in_progress_then_completed() -> None:
    """Polling with each answer's ETag sees every state the run passes through, up to its conclusion."""
    with FakeGitHub(queued_seconds=0.3, running_seconds=0.3) as fake:
        reader = reader_for(fake)
        run_id = fake.add_run(GOVERNANCE, display_title="manual")
        seen: list[tuple[str, str | None]] = []
        etag: str | None = None
        deadline = time.monotonic() + 5
        while (not seen or seen[-1][0] != "completed") and time.monotonic() < deadline:
            answer = reader.poll(run_id, etag)
            if isinstance(answer, RunSnapshot):
                seen.append((answer.status, answer.conclusion))
                etag = answer.etag
            time.sleep(0.05)

    assert [("queued", None), ("in_progress", None), ("completed", "success")] == seen


def test_a_snapshot_carries_the_run_fields(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A snapshot names the workflow file, links the run and carries its times in UTC."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual", created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    snapshot = reader.poll(run_id)

    assert isinstance(snapshot, RunSnapshot)
    assert (run_id, GOVERNANCE, f"http://github.fake/acme/ml-platform/actions/runs/{run_id}") == (
        snapshot.run_id,
        snapshot.workflow,
        snapshot.html_url,
    )
    assert datetime(2026, 3, 1, 12, 0, tzinfo=UTC) == snapshot.created_at
    assert snapshot.completed


def test_a_repeated_poll_with_the_etag_is_not_modified_and_costs_no_rate_limit(
    fake: FakeGitHub, reader: PyGithubRunReader
) -> None:
    """An unchanged run answers 304 to If-None-Match: NotModified, counted by the fake, no rate limit spent."""
    run_id = completed_run(fake)
    first = reader.poll(run_id)
    assert isinstance(first, RunSnapshot) and first.etag
    remaining = fake.rate_remaining

    second = reader.poll(run_id, first.etag)

    assert NotModified(etag=first.etag) == second
    assert first.etag == fake.requests[-1].headers["If-None-Match"]
    counts = fake.path_counts[f"/repos/acme/ml-platform/actions/runs/{run_id}"]
    assert (2, 1) == (counts.requests, counts.not_modified)
    assert remaining == fake.rate_remaining


@pytest.mark.parametrize("conclusion", ["failure", "cancelled", "timed_out"])
def test_a_run_that_did_not_succeed_reports_its_conclusion(conclusion: str) -> None:
    """A completed run's conclusion (here its workflow's) is reported as GitHub gives it."""
    with FakeGitHub(queued_seconds=0, running_seconds=0, conclusions={GOVERNANCE: conclusion}) as fake:
        snapshot = reader_for(fake).poll(completed_run(fake))

    assert isinstance(snapshot, RunSnapshot)
    assert ("completed", conclusion) == (snapshot.status, snapshot.conclusion)


def test_an_unknown_run_is_a_permanent_error(reader: PyGithubRunReader) -> None:
    """A run GitHub does not know (404) is a PermanentError naming the run."""
    with pytest.raises(PermanentError, match=r"read workflow run 12345: GitHub answered 404"):
        reader.poll(12345)


def test_a_rate_limited_poll_is_a_transient_error(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A 429 on a poll is a TransientError: the follow-up is tried again later."""
    run_id = completed_run(fake)
    fake.fail_next("GET", r"/actions/runs/\d+$", status=429)

    with pytest.raises(TransientError) as raised:
        reader.poll(run_id)
    assert 429 == raised.value.status


# --------------------------------------------------------------------------- artifacts


def test_the_artifact_is_fetched_through_the_redirect_without_the_token(
    fake: FakeGitHub, reader: PyGithubRunReader
) -> None:
    """The zip comes from the storage host the 302 names, and that host never sees the GitHub token."""
    run_id = completed_run(fake, **{INTEGRITY: {INTEGRITY: PASSING}})

    [summary] = reader.artifacts(run_id)

    assert "pass" == summary.status
    [download] = fake.storage_requests
    assert (None, 200) == (download.authorization, download.status)
    [link_request] = [r for r in fake.requests if r.path.endswith("/zip")]
    assert f"token {fake.token}" == link_request.headers["Authorization"]


def test_evidence_is_summarised_by_its_status_and_first_scalar_fields(
    fake: FakeGitHub, reader: PyGithubRunReader
) -> None:
    """A JSON object gives its top-level status and up to five top-level scalars, long strings clipped."""
    evidence = {
        "modelId": "churn-xgb",
        "metrics": {"auc": 0.91},  # not a scalar: left out
        "status": "fail",
        "note": "x" * 500,
        "threshold": 0.8,
        "passed": False,
        "failures": None,
        "sixth": "not shown",
    }
    run_id = completed_run(fake, **{"bias-report.json": {"bias-report.json": evidence}})

    [summary] = reader.artifacts(run_id)

    [file] = summary.files
    assert ("bias-report.json", "fail", None) == (summary.name, summary.status, summary.reason)
    assert "fail" == file.status
    assert ["modelId", "note", "threshold", "passed", "failures"] == list(file.fields)
    assert (0.8, False, None) == (file.fields["threshold"], file.fields["passed"], file.fields["failures"])
    assert 200 == len(str(file.fields["note"]))


def test_every_artifact_of_the_run_is_summarised(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """Each uploaded evidence file is an artifact of its own, summarised by its own status."""
    run_id = completed_run(
        fake,
        **{INTEGRITY: {INTEGRITY: PASSING}, "drift-scan.json": {"drift-scan.json": {"status": "fail", "psi": 0.4}}},
    )

    summaries = reader.artifacts(run_id)

    assert [(INTEGRITY, "pass"), ("drift-scan.json", "fail")] == [(s.name, s.status) for s in summaries]


def test_an_artifact_listed_over_10_mib_is_named_and_not_downloaded(
    fake: FakeGitHub, reader: PyGithubRunReader
) -> None:
    """An artifact the listing says is over 10 MiB is named with the reason, and no download is asked for."""
    run_id = completed_run(fake)
    fake.add_artifact(run_id, "model-weights", {"weights.bin": b"0"}, size_in_bytes=11 * 1024 * 1024)

    [summary] = reader.artifacts(run_id)

    assert (
        ArtifactSummary("model-weights", 11 * 1024 * 1024, reason="11.0 MiB, over the 10.0 MiB limit: not downloaded")
        == summary
    )
    assert [] == zip_requests(fake)


def test_a_download_longer_than_the_limit_is_abandoned(fake: FakeGitHub) -> None:
    """The size cap holds on what arrives, not on what the listing claims."""
    run_id = completed_run(fake)
    fake.add_artifact(run_id, "noise", {"noise.json": os.urandom(5000)}, size_in_bytes=10)

    [summary] = reader_for(fake, ArtifactLimits(max_artifact_bytes=1000)).artifacts(run_id)

    assert (None, "the download passed the 1000 bytes limit: not read") == (summary.status, summary.reason)


def test_a_json_file_over_1_mib_unpacked_is_named_and_not_read(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A JSON file over 1 MiB once unpacked (a few KiB zipped) is named with the reason, its status unread."""
    huge = {"status": "pass", "padding": "x" * (1024 * 1024)}
    run_id = completed_run(fake, **{"drift-scan.json": {"drift-scan.json": huge, "summary.json": {"status": "pass"}}})

    [summary] = reader.artifacts(run_id)

    big, small = summary.files
    assert EvidenceFile("drift-scan.json", reason="1.0 MiB, over the 1.0 MiB limit unpacked: not read") == big
    assert EvidenceFile("summary.json", status="pass") == small
    assert "pass" == summary.status  # the files read agree


def test_files_that_are_not_json_objects_are_named_with_their_reason(
    fake: FakeGitHub, reader: PyGithubRunReader
) -> None:
    """Non-JSON, invalid JSON, JSON nested beyond parsing and a JSON array are each named with why."""
    files: dict[str, bytes | str | dict[str, Any]] = {
        "check.log": "all good",
        "broken.json": '{"status": "pass"',
        "deep.json": "[" * 200_000,
        "list.json": "[1, 2]",
    }
    run_id = completed_run(fake, **{"evidence": files})

    [summary] = reader.artifacts(run_id)

    reasons = {file.name: file.reason for file in summary.files}
    assert "not a JSON file: not read" == reasons["check.log"]
    assert str(reasons["broken.json"]).startswith("invalid JSON (")
    assert "invalid JSON (nested too deeply)" == reasons["deep.json"]
    assert "not a JSON object: not summarised" == reasons["list.json"]
    assert summary.status is None


def test_an_expired_artifact_is_named_without_a_download(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """An artifact listed as expired is reported as such; no download link is asked for."""
    run_id = completed_run(fake)
    fake.add_artifact(run_id, INTEGRITY, {INTEGRITY: PASSING}, expired=True)

    [summary] = reader.artifacts(run_id)

    assert (INTEGRITY, None, "expired: GitHub no longer keeps it") == (summary.name, summary.status, summary.reason)
    assert [] == zip_requests(fake)


def test_an_artifact_that_expires_after_the_listing_is_named(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A 410 for the download link (expired since it was listed) is reported, not raised."""
    run_id = completed_run(fake, **{INTEGRITY: {INTEGRITY: PASSING}})
    fake.fail_next("GET", r"/zip$", status=410, body={"message": "Artifact has expired"})

    [summary] = reader.artifacts(run_id)

    assert "expired: GitHub no longer keeps it" == summary.reason


def test_an_expired_download_link_is_asked_for_again_then_reported() -> None:
    """A link the storage refuses is asked for once more; refused again, the artifact is named with the refusal."""
    with FakeGitHub(queued_seconds=0, running_seconds=0, artifact_link_seconds=0) as fake:
        run_id = completed_run(fake, **{INTEGRITY: {INTEGRITY: PASSING}})

        [summary] = reader_for(fake).artifacts(run_id)

        assert "the artifact storage refused the download link (403)" == summary.reason
        assert [403, 403] == [r.status for r in fake.storage_requests]
        assert 2 == len(zip_requests(fake))


def test_a_link_refused_once_is_replaced_by_a_fresh_one(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """After one refused link, the fresh link GitHub gives is read."""
    run_id = completed_run(fake, **{INTEGRITY: {INTEGRITY: PASSING}})
    fake.fail_storage_next(403)

    [summary] = reader.artifacts(run_id)

    assert ("pass", None) == (summary.status, summary.reason)
    assert [403, 200] == [r.status for r in fake.storage_requests]


def test_unavailable_storage_is_a_transient_error(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A 503 from the storage host is a TransientError: reading the artifacts again later is safe."""
    run_id = completed_run(fake, **{INTEGRITY: {INTEGRITY: PASSING}})
    fake.fail_storage_next(503)

    with pytest.raises(TransientError, match="artifact storage answered 503"):
        reader.artifacts(run_id)


def test_a_run_without_artifacts_has_none(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A run that uploaded nothing gives an empty list, after one request."""
    run_id = completed_run(fake)

    assert [] == reader.artifacts(run_id)
    assert [f"/repos/acme/ml-platform/actions/runs/{run_id}/artifacts?per_page=100"] == [r.path for r in fake.requests]


def test_an_archive_that_is_not_a_zip_is_named(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A download that is not a zip archive is reported as such."""
    run_id = completed_run(fake)
    fake.add_artifact(run_id, INTEGRITY, json.dumps(PASSING).encode())

    [summary] = reader.artifacts(run_id)

    assert "not a zip archive" == summary.reason


def test_a_file_larger_than_its_zip_header_says_is_not_read(fake: FakeGitHub, reader: PyGithubRunReader) -> None:
    """A member whose header understates its size is named as damaged, not unpacked past the stated size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(INTEGRITY, json.dumps({**PASSING, "padding": "x" * 50_000}))
    lying = bytearray(buffer.getvalue())
    struct.pack_into("<I", lying, lying.find(b"PK\x03\x04") + 22, 100)  # local header: uncompressed size
    struct.pack_into("<I", lying, lying.find(b"PK\x01\x02") + 24, 100)  # central directory: the same
    run_id = completed_run(fake)
    fake.add_artifact(run_id, INTEGRITY, bytes(lying))

    [summary] = reader.artifacts(run_id)

    assert (EvidenceFile(INTEGRITY, reason="damaged in the archive (BadZipFile)"),) == summary.files
