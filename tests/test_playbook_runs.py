"""The three playbooks' effects on a GitHub-compatible server (the fake, driven by PyGithub
over HTTP), run by a real RQ worker against a real Redis."""

from __future__ import annotations

import copy
import json

from responder.runs import RunStore
from tests.conftest import MANIFEST, Worker, github_repo, load_example, make_settings
from tests.fakes.github import FakeGitHub
from tests.support.github import with_previous_version
from tests.support.runs import MANIFEST_DIGEST, integrity, run_notification


def dispatched(fake: FakeGitHub) -> list[tuple[str, dict[str, str]]]:
    return [(d.workflow, d.inputs) for d in fake.dispatches]


# --- model_integrity_failed ---


def test_integrity_freezes_deploys(settings, redis, worker, fake_github):
    """An integrity alert sets DEPLOY_FREEZE to "true"."""
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}


def test_integrity_updates_an_existing_freeze_variable(settings, redis, worker, fake_github):
    """A DEPLOY_FREEZE variable that exists as "false" is updated to "true"."""
    github_repo(fake_github).create_variable("DEPLOY_FREEZE", "false")
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}


def test_integrity_dispatches_governance_with_exact_inputs(settings, redis, worker, fake_github):
    """Governance is dispatched on main with exactly MODEL_ID, MODEL_VERSION and REASON."""
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    assert dispatched(fake_github) == [
        ("model-governance.yml",
         {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": "2026.11.1", "REASON": "model_integrity_failed"}),
    ]
    assert fake_github.dispatches[0].ref == "main"


def test_integrity_ticket_shows_both_digests_and_mismatch(settings, redis, worker, fake_github):
    """The ticket body shows the deployed and the manifest digest and says they do not match."""
    [record] = run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    [issue] = fake_github.issues
    assert "9f2c4e0d8b7a61f35c2e9d04b8a7f6e5d4c3b2a190817263544536271809abcd" in issue.body
    assert "5d41402abc4b2a76b9719d911017c592ae4d6e1f5c3b2a190817263544536271" in issue.body
    assert "DO NOT match" in issue.body
    assert record.step("verify-digest").outputs["result"] == "mismatch"


def test_integrity_ticket_says_match_for_equal_digests_in_other_case_and_prefix(settings, redis, worker, fake_github):
    """Digests compare equal regardless of a sha256: prefix and letter case."""
    payload = load_example("integrity-firing.json")
    payload["alerts"][0]["annotations"]["deployed_digest"] = (
        "SHA256:5D41402ABC4B2A76B9719D911017C592AE4D6E1F5C3B2A190817263544536271"
    )
    [record] = run_notification(settings, redis, worker, payload)
    assert record.step("verify-digest").outputs["result"] == "match"
    assert "digests match" in fake_github.issues[0].body


def test_integrity_missing_digest_is_reported(settings, redis, worker, fake_github):
    """An alert without deployed_digest is reported as missing, and the other steps still run."""
    payload = load_example("integrity-firing.json")
    del payload["alerts"][0]["annotations"]["deployed_digest"]
    [record] = run_notification(settings, redis, worker, payload)
    assert record.step("verify-digest").outputs["result"] == "missing"
    assert record.status == "succeeded"


def test_ticket_title_and_labels(settings, redis, worker, fake_github):
    """The ticket is titled [alertname] model_id: summary and carries the standard labels."""
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    [issue] = fake_github.issues
    assert issue.title == "[model_integrity_failed] fraud-scorer: Deployed artifact digest differs from manifest"
    assert sorted(issue.labels) == sorted(
        ["incident", "model_integrity_failed", "model:fraud-scorer", "severity:critical"]
    )


def test_ticket_links_and_step_results(settings, redis, worker, fake_github):
    """The ticket links the source, Alertmanager and runbook, and lists the steps run before it."""
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    body = fake_github.issues[0].body
    assert "(http://prometheus.example.internal:9090/graph?g0.expr=model_artifact_digest_match%3D%3D0)" in body
    assert "(http://alertmanager.example.internal:9093)" in body
    assert "(https://runbooks.example.internal/ml-operations#alert-response)" in body
    assert "freeze\\-deploys | ok" in body
    assert "dispatch\\-governance | ok" in body


def test_untrusted_annotation_is_escaped_in_ticket(settings, redis, worker, fake_github):
    """Markdown, HTML and mentions in annotations cannot format the ticket or ping anyone."""
    payload = load_example("integrity-firing.json")
    payload["alerts"][0]["annotations"]["note"] = "<img src=x> [click](http://evil) @org/team **bold**"
    run_notification(settings, redis, worker, payload)
    body = fake_github.issues[0].body
    assert "<img" not in body
    assert "[click](http://evil)" not in body
    assert "@org" not in body
    assert "**bold**" not in body


# --- model_bias_alert ---


def test_bias_critical_dispatches_governance_and_hotfix(settings, redis, worker, fake_github):
    """A critical bias alert dispatches governance and bias-hotfix retraining."""
    run_notification(settings, redis, worker, load_example("bias-firing.json"))
    assert dispatched(fake_github) == [
        ("model-governance.yml", {"MODEL_ID": "credit-limit", "MODEL_VERSION": "3.2.0", "REASON": "model_bias_alert"}),
        ("model-retraining.yml", {"MODEL_ID": "credit-limit", "MODEL_VERSION": "3.2.0", "REASON": "bias-hotfix"}),
    ]


def test_bias_warning_skips_hotfix(settings, redis, worker, fake_github):
    """A non-critical bias alert dispatches governance only; the hotfix step is recorded as skipped."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["severity"] = "warning"
    [record] = run_notification(settings, redis, worker, payload)
    assert [w for w, _ in dispatched(fake_github)] == ["model-governance.yml"]
    assert record.step("dispatch-hotfix-retraining").status == "skipped"


def test_bias_ticket_engages_responsible_ai_with_bias_annotations(settings, redis, worker, fake_github):
    """The bias ticket has the responsible-ai label and carries the bias annotations."""
    run_notification(settings, redis, worker, load_example("bias-firing.json"))
    [issue] = fake_github.issues
    assert "responsible-ai" in issue.labels
    for text in ("demographic\\_parity\\_difference", "0\\.18", "0\\.10"):
        assert text in issue.body


# --- model_drift_detected ---


def test_drift_dispatches_retraining(settings, redis, worker, fake_github):
    """A drift alert dispatches retraining with REASON=model_drift_detected."""
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    run_notification(settings, redis, worker, payload)
    assert dispatched(fake_github) == [
        ("model-retraining.yml",
         {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": "2026.11.1", "REASON": "model_drift_detected"}),
    ]


def test_drift_ticket_lists_segments_as_checklist(settings, redis, worker, fake_github):
    """The drift ticket lists every affected segment of the group as a checklist item, on one ticket."""
    run_notification(settings, redis, worker, load_example("drift-two-segments-firing.json"))
    [issue] = fake_github.issues
    assert "- [ ] apac" in issue.body
    assert "- [ ] eu" in issue.body


def test_a_runs_checkpoints_keep_the_groups_shared_related_alerts_out_of_its_record(
    settings, redis, worker, fake_github
):
    """The runner saves each checkpoint the way RunStore does: the related alerts a group's runs
    share stay stored once, not copied into each finished run record, and still read back."""
    runs = run_notification(settings, redis, worker, load_example("drift-two-segments-firing.json"))
    assert ["succeeded", "succeeded"] == [r.status for r in runs]
    for record in runs:
        assert b'"related"' not in redis.get(RunStore.key(record.id))
        assert 1 == len(record.related)


def test_drift_segment_arriving_later_is_added_to_open_ticket(settings, redis, worker, fake_github):
    """A segment that starts drifting later is added as a comment to the open ticket, not a new ticket."""
    first = load_example("drift-two-segments-firing.json")
    second = copy.deepcopy(first)
    first["alerts"] = first["alerts"][:1]
    second["alerts"] = second["alerts"][1:]
    run_notification(settings, redis, worker, first)
    run_notification(settings, redis, worker, second)
    [issue] = fake_github.issues
    assert any("- [ ] eu" in comment for comment in issue.comments)


# --- behaviour shared by the playbooks ---


def test_refire_comments_on_the_open_ticket(settings, redis, worker, fake_github):
    """A new firing instance while the ticket is open adds "fired again" to it instead of opening another."""
    payload = integrity(MANIFEST_DIGEST)  # digests that match: no rollback proposed, no question on the ticket
    run_notification(settings, redis, worker, payload)
    payload["alerts"][0]["startsAt"] = "2026-11-26T15:00:00Z"
    [record] = run_notification(settings, redis, worker, payload)
    [issue] = fake_github.issues
    assert len(issue.comments) == 1
    assert "Fired again at 2026\\-11\\-26 15:00:00 UTC" in issue.comments[0]
    assert "noted the re-fire" in record.step("open-incident").detail


def test_closed_ticket_lets_a_new_one_open(settings, redis, worker, fake_github):
    """Once the ticket is closed, a new firing instance opens a new ticket."""
    payload = load_example("integrity-firing.json")
    run_notification(settings, redis, worker, payload)
    github_repo(fake_github).get_issue(fake_github.issues[0].number).edit(state="closed")
    payload["alerts"][0]["startsAt"] = "2026-11-26T15:00:00Z"
    run_notification(settings, redis, worker, payload)
    assert [i.state for i in fake_github.issues] == ["closed", "open"]


def test_redelivery_runs_nothing_again(settings, redis, worker, fake_github):
    """Re-sending the same notification (repeat_interval, HA pair) dispatches and opens nothing more."""
    payload = load_example("integrity-firing.json")
    run_notification(settings, redis, worker, payload)
    assert run_notification(settings, redis, worker, payload) == []
    assert len(fake_github.dispatches) == 1
    assert len(fake_github.issues) == 1


def test_model_version_comes_from_manifest_without_label(settings, redis, worker, fake_github):
    """Without a model_version label, MODEL_VERSION is the model's current version in the manifest."""
    payload = load_example("bias-firing.json")
    del payload["alerts"][0]["labels"]["model_version"]
    run_notification(settings, redis, worker, payload)
    assert {d.inputs["MODEL_VERSION"] for d in fake_github.dispatches} == {"3.2.0"}


def test_unknown_model_without_version_fails_dispatch_clearly(settings, redis, worker, fake_github):
    """A model absent from the manifest, without a version label, fails the dispatch step with the reason."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["model_id"] = "ghost-model"
    del payload["alerts"][0]["labels"]["model_version"]
    [record] = run_notification(settings, redis, worker, payload)
    assert fake_github.dispatches == []
    assert "ghost-model is not in artifacts/ml/model-manifest.json" in record.step("dispatch-governance").error
    assert record.status == "failed"


def test_rejected_alert_is_never_dispatched(settings, redis, worker, fake_github):
    """An alert whose model_id is not a safe identifier queues nothing and dispatches nothing."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["model_id"] = "credit-limit; rm -rf /"
    assert run_notification(settings, redis, worker, payload) == []
    assert fake_github.dispatches == []


def test_github_refusal_fails_step_with_api_message_and_others_run(settings, redis, worker, fake_github):
    """A 422 from GitHub fails that step with GitHub's message; the ticket is still opened."""
    fake_github.fail_next("POST", r"/actions/workflows/.*/dispatches", status=422,
                          body={"message": "Workflow does not have 'workflow_dispatch' trigger"})
    [record] = run_notification(settings, redis, worker, integrity(MANIFEST_DIGEST))
    step = record.step("dispatch-governance")
    assert step.status == "failed"
    assert "422" in step.error and "workflow_dispatch" in step.error
    assert record.step("open-incident").status == "ok"
    assert record.status == "failed"


def test_transient_failure_is_retried_without_repeating_done_steps(redis, redis_url, fake_github):
    """A 502 on dispatch retries the run; the freeze done before it is not sent again."""
    # The retry is the last attempt: it reads the run list in the worker for the lookup window (1 s)
    # and, as the 502 started nothing, dispatches.
    settings = make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                             github_repo=fake_github.full_name, job_retry_intervals=[0], dispatch_lookup_seconds=1)
    worker = Worker(settings)
    fake_github.fail_next("POST", r"/actions/workflows/.*/dispatches", status=502)
    [record] = run_notification(settings, redis, worker, integrity(MANIFEST_DIGEST))
    variable_writes = [r for r in fake_github.requests if "/actions/variables" in r.path and r.method != "GET"]
    assert record.status == "succeeded"
    assert record.attempts == 2
    assert len(fake_github.dispatches) == 1
    assert len(variable_writes) == 1


def test_dry_run_writes_nothing_and_records_planned(redis, redis_url, fake_github):
    """In dry-run every write is recorded as planned and nothing is written to GitHub."""
    settings = make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                             github_repo=fake_github.full_name, dry_run=True)
    with_previous_version(fake_github)  # the mismatch plans a rollback to the previous version
    [record] = run_notification(settings, redis, Worker(settings), load_example("integrity-firing.json"))
    writes = [r for r in fake_github.requests if r.method != "GET"]
    assert writes == []
    assert [(s.name, s.status) for s in record.steps] == [
        ("freeze-deploys", "planned"), ("verify-digest", "ok"), ("dispatch-governance", "planned"),
        ("open-incident", "planned"), ("approve-rollback", "planned"), ("rollback.find-previous-version", "ok"),
        ("rollback.dispatch-governance", "planned"), ("rollback.retag-endpoint", "planned"),
        ("rollback.note-incident", "planned"),
    ]


def test_dry_run_without_credentials_reads_offline_manifest(redis, redis_url):
    """Dry-run needs no GitHub: the manifest comes from the offline file."""
    settings = make_settings(redis_url, dry_run=True, offline_manifest_file=MANIFEST)
    [record] = run_notification(settings, redis, Worker(settings), load_example("integrity-firing.json"))
    assert record.step("verify-digest").outputs["result"] == "mismatch"
    assert record.status == "succeeded"


def test_github_enterprise_server_url_works(redis, redis_url):
    """A GitHub Enterprise Server API URL (with /api/v3) is used as given."""
    with FakeGitHub(prefix="/api/v3") as fake:
        fake.set_manifest(json.loads(MANIFEST.read_text()))
        settings = make_settings(redis_url, github_api_url=fake.url, github_token=fake.token,
                                 github_repo=fake.full_name)
        [record] = run_notification(settings, redis, Worker(settings), load_example("bias-firing.json"))
        assert record.status == "succeeded"
        assert len(fake.dispatches) == 2


def test_a_read_that_fails_once_is_retried_in_the_call(settings, redis, worker, fake_github):
    """A 502 on a GET (the manifest read) is retried at once; the run needs no second attempt."""
    fake_github.fail_next("GET", r"/contents/", status=502)
    payload = load_example("bias-firing.json")
    del payload["alerts"][0]["labels"]["model_version"]
    [record] = run_notification(settings, redis, worker, payload)
    assert (record.status, record.attempts) == ("succeeded", 1)


def test_a_write_that_fails_is_not_resent_by_the_client(settings, redis, worker, fake_github):
    """A 502 on the issue POST is not re-sent by the HTTP client (that could open a second issue)."""
    fake_github.fail_next("POST", r"/issues$", status=502, after_write=True)
    run_notification(settings, redis, worker, load_example("integrity-firing.json"))
    posts = [r for r in fake_github.requests if r.method == "POST" and r.path.endswith("/issues")]
    assert len(posts) == 1
    assert len(fake_github.issues) == 1
