"""The runs page (GET /runs, GET /runs/{id}) as on-call reads it: real runs against the GitHub fake,
read over HTTP with a real Redis behind the app, and once in headless Chromium."""

from __future__ import annotations

import base64
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis import Redis

from responder import jobs
from responder.playbooks.catalog import Catalog, load_catalog
from responder.receiver import create_app
from responder.runs import INDEX_KEY, RUN_STATUSES, RunStore
from responder.settings import Settings
from tests.conftest import ROOT, WEBHOOK_TOKEN, Worker, load_example, make_settings
from tests.fakes.github import FakeGitHub
from tests.support.pages import Page
from tests.support.processes import serving
from tests.support.runs import MANIFEST_DIGEST, integrity

READ_TOKEN = "read-only-token-456"
BEARER = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
HOSTILE = "<script>alert(1)</script>"
CLOSED_REDIS = "redis://127.0.0.1:1/0"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_HINT = "install it with: apt-get install chromium (Debian's package; scripts/test does this)"

ClientFactory = Callable[..., Awaitable[TestClient]]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "playbooks")


@pytest.fixture
def live(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    """Live settings against the GitHub fake, with a read-only token for the page."""
    return make_settings(
        redis_url,
        github_api_url=fake_github.url,
        github_token=fake_github.token,
        github_repo=fake_github.full_name,
        ui_token=READ_TOKEN,
    )


@pytest.fixture
async def client(aiohttp_client: ClientFactory, live: Settings, catalog: Catalog) -> TestClient:
    return await aiohttp_client(create_app(live, catalog, token=SecretStr(WEBHOOK_TOKEN)))


@pytest.fixture
def run_worker(live: Settings) -> Iterator[Worker]:
    """Runs queued jobs on a real RQ worker against the GitHub fake."""
    yield Worker(live)
    jobs.install_runtime(None)


def store(redis: Redis) -> RunStore:
    return RunStore(redis, retention_seconds=3600)


async def fire(client: TestClient, payload: dict[str, Any]) -> list[str]:
    """Post a notification through the webhook; the ids of the runs it queued."""
    response = await client.post("/webhooks/alertmanager", json=payload, headers=BEARER)
    assert response.status == 202, await response.text()
    return [a["job_id"] for a in (await response.json())["alerts"] if a["decision"] == "queued"]


async def get(client: TestClient, path: str, headers: dict[str, str] | None = None) -> tuple[int, Page]:
    response = await client.get(path, headers=BEARER if headers is None else headers)
    assert response.content_type == "text/html"
    return response.status, Page(await response.text())


def hostile(payload: dict[str, Any], **labels: str) -> dict[str, Any]:
    """``payload`` with extra labels on its first alert (a valid alert still: model_id is untouched)."""
    payload["alerts"][0]["labels"].update(labels)
    return payload


# --- The list ---


async def test_list_shows_each_runs_time_alert_model_playbook_and_status(client, redis, run_worker):
    """Each run is a row with its relative time (absolute UTC in the title), alertname, model, playbook, status."""
    for sample in ("integrity-firing.json", "bias-firing.json", "drift-two-segments-firing.json"):
        await fire(client, load_example(sample))
    run_worker.drain()
    records = store(redis).recent()

    status, page = await get(client, "/runs")

    assert 200 == status
    assert [(r.alertname, r.model_id, r.playbook, r.status) for r in records] == [
        (row["alert"], row["model"].split()[0], row["playbook"].removeprefix("playbook "), row["status"].split()[-1])
        for row in page.rows
    ]
    assert [r.enqueued_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") for r in records] == [
        row["title"] for row in page.rows
    ]
    assert all(row["time"] == "just now" or row["time"].endswith(" ago") for row in page.rows)
    assert [f"/runs/{r.id}" for r in records] == [row["href"] for row in page.rows]
    assert 4 == len(page.rows)


async def test_list_is_newest_first_with_relative_times(client, redis):
    """Older runs come later and read "3 min ago", "2 h ago"."""
    ids = [
        run_id
        for sample in ("integrity-firing.json", "bias-firing.json")
        for run_id in await fire(client, load_example(sample))
    ]
    runs = store(redis)
    for run_id, minutes in zip(ids, (3, 120), strict=True):
        record = runs.get(run_id)
        moved = record.model_copy(update={"enqueued_at": record.enqueued_at - timedelta(minutes=minutes, seconds=5)})
        runs.save(moved)
        redis.zadd(INDEX_KEY, {run_id: moved.enqueued_at.timestamp()})

    _, page = await get(client, "/runs")

    assert [("model_integrity_failed", "3 min ago"), ("model_bias_alert", "2 h ago")] == [
        (row["alert"], row["time"]) for row in page.rows
    ]


async def test_status_filter_shows_only_that_status(client, redis, run_worker, fake_github):
    """?status=failed lists the failed runs only; an unknown status is a 400 page naming the valid ones."""
    fake_github.fail_next(
        "POST",
        r"/actions/workflows/.*/dispatches",
        status=422,
        body={"message": "Workflow does not have 'workflow_dispatch' trigger"},
    )
    [failed] = await fire(client, integrity(MANIFEST_DIGEST))
    run_worker.drain()
    [succeeded] = await fire(client, load_example("bias-firing.json"))
    run_worker.drain()

    _, failed_page = await get(client, "/runs?status=failed")
    _, succeeded_page = await get(client, "/runs?status=succeeded")
    bad_status, bad_page = await get(client, "/runs?status=nope")

    assert [f"/runs/{failed}"] == [row["href"] for row in failed_page.rows]
    assert [f"/runs/{succeeded}"] == [row["href"] for row in succeeded_page.rows]
    assert 400 == bad_status
    assert ", ".join(RUN_STATUSES) in bad_page.text


async def test_limit_shows_that_many_newest_runs(client):
    """?limit=1 shows the newest run only; a limit that is not 1..500 is a 400 page."""
    await fire(client, integrity(MANIFEST_DIGEST))
    [newest] = await fire(client, load_example("bias-firing.json"))

    _, page = await get(client, "/runs?limit=1")
    statuses = [(await get(client, f"/runs?limit={v}"))[0] for v in ("0", "501", "x", "-1")]

    assert [f"/runs/{newest}"] == [row["href"] for row in page.rows]
    assert [400, 400, 400, 400] == statuses


async def test_no_runs_yet_says_so(client):
    """An empty list explains where runs come from."""
    status, page = await get(client, "/runs")
    assert (200, []) == (status, page.rows)
    assert "No runs yet" in page.text


# --- One run ---


async def test_detail_shows_steps_with_status_timings_details_and_links(client, redis, run_worker, fake_github):
    """A real integrity run: every step with its status, duration and detail; links to the workflow run and ticket."""
    [run_id] = await fire(client, integrity(MANIFEST_DIGEST))
    run_worker.drain()
    record = store(redis).get(run_id)
    [issue] = fake_github.issues

    status, page = await get(client, f"/runs/{run_id}")

    assert 200 == status
    ran = ["freeze-deploys", "verify-digest", "dispatch-governance", "open-incident"]
    assert ran == [s.name for s in record.steps[:4]]
    for step, text in zip(record.steps[:4], page.steps[:4], strict=True):
        assert re.match(rf"✓ ok {step.name} {step.kind} \d+ ms {re.escape(step.detail)}", text), text
    # the digests match: the rollback proposed on a mismatch is skipped, and says why
    assert [text.split(" ")[:3] for text in page.steps[4:]] == [["\N{EN DASH}", "skipped", s.name]
                                                                 for s in record.steps[4:]]
    links = dict((text, href) for href, text in page.links)
    assert record.step("dispatch-governance").url == links["workflow run"]
    assert "/actions/runs/" in links["workflow run"]
    assert issue.html_url == links["ticket"] == record.step("open-incident").url
    for shown in (
        "✓ succeeded",
        "fraud-scorer",
        "2026.11.1",
        record.alert.fingerprint,
        "Deployed artifact digest differs from manifest",  # the alert's summary
        run_id,
        "attempts 1",
    ):
        assert shown in page.text


async def test_detail_shows_a_failed_steps_error(client, redis, run_worker, fake_github):
    """A step GitHub refused shows failed with the API's message; the steps after it still show."""
    fake_github.fail_next(
        "POST",
        r"/actions/workflows/.*/dispatches",
        status=422,
        body={"message": "Workflow does not have 'workflow_dispatch' trigger"},
    )
    [run_id] = await fire(client, integrity(MANIFEST_DIGEST))
    run_worker.drain()

    _, page = await get(client, f"/runs/{run_id}")

    [dispatch] = [s for s in page.steps if s.split(" ")[2] == "dispatch-governance"]
    assert dispatch.startswith("✕ failed dispatch-governance")
    assert "Workflow does not have 'workflow_dispatch' trigger" in dispatch
    [opened] = [s for s in page.steps if s.split(" ")[2] == "open-incident"]
    assert opened.startswith("✓ ok open-incident")
    assert "✕ failed" in page.text.split("Steps")[0]  # the run's own badge, above the steps


async def test_unknown_run_is_a_404_page(client):
    """An id with no record answers a 404 HTML page that says it may have expired."""
    status, page = await get(client, "/runs/model_bias_alert-0000")
    assert 404 == status
    assert "Run not found" in page.text and "may have expired" in page.text


# --- Untrusted text ---


async def test_hostile_label_and_annotation_are_escaped(client, redis, run_worker):
    """Markup in labels and annotations of a run that ran is shown as text, never as elements."""
    payload = hostile(integrity(MANIFEST_DIGEST), team=HOSTILE)
    payload["alerts"][0]["annotations"]["summary"] = '<img src=x onerror="alert(2)"><b>bold</b>'
    [run_id] = await fire(client, payload)
    run_worker.drain()
    assert "succeeded" == store(redis).get(run_id).status

    response = await client.get(f"/runs/{run_id}", headers=BEARER)
    html = await response.text()
    page = Page(html)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE in page.text
    assert '<img src=x onerror="alert(2)"><b>bold</b>' in page.text
    assert {"script", "img", "b", "iframe", "link"}.isdisjoint(page.tags)
    assert "<script" not in html.lower()
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_hostile_alertname_and_model_in_the_list_are_escaped(client, redis):
    """A stored run whose alertname and model hold markup lists as text."""
    [run_id] = await fire(client, load_example("bias-firing.json"))
    runs = store(redis)
    record = runs.get(run_id)
    labels = {**record.alert.labels, "alertname": HOSTILE, "model_id": '"><svg onload=alert(1)>'}
    runs.save(record.model_copy(update={"alert": record.alert.model_copy(update={"labels": labels})}))

    response = await client.get("/runs", headers=BEARER)
    html = await response.text()
    page = Page(html)

    assert HOSTILE == page.rows[0]["alert"]
    assert page.rows[0]["model"].startswith('"><svg onload=alert(1)>')
    assert {"script", "svg"}.isdisjoint(page.tags)


async def test_javascript_urls_never_become_links(client, redis, run_worker):
    """Only http(s) URLs are links: javascript: in generatorURL, an annotation or a step URL is plain text."""
    payload = integrity(MANIFEST_DIGEST)
    payload["alerts"][0]["generatorURL"] = "javascript:alert(document.cookie)"
    payload["alerts"][0]["annotations"]["runbook_url"] = "JavaScript:alert(3)"
    [run_id] = await fire(client, payload)
    run_worker.drain()
    runs = store(redis)
    record = runs.get(run_id)
    record.steps[0] = record.steps[0].model_copy(update={"url": "javascript:alert(4)"})
    record.steps[1] = record.steps[1].model_copy(update={"url": " javascript:alert(5)"})
    record.steps[2] = record.steps[2].model_copy(update={"url": "data:text/html,<script>alert(6)</script>"})
    runs.save(record)

    _, page = await get(client, f"/runs/{run_id}")

    hrefs = [href for href, _ in page.links]
    assert [h for h in hrefs if not (h.startswith(("/runs", "http://", "https://")))] == []
    for text in (
        "javascript:alert(document.cookie)",
        "JavaScript:alert(3)",
        "javascript:alert(4)",
        "javascript:alert(5)",
        "data:text/html,<script>alert(6)</script>",
    ):
        assert text in page.text
    assert record.steps[3].url in hrefs  # the ticket, a real http URL, is still a link
    assert "script" not in page.tags


# --- Who may read it ---


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        (basic("oncall", "wrong"), 401),
        (basic(WEBHOOK_TOKEN, ""), 401),
        ({"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, 200),
        (basic("oncall", WEBHOOK_TOKEN), 200),
        ({"Authorization": f"Bearer {READ_TOKEN}"}, 200),
        (basic("", READ_TOKEN), 200),
    ],
    ids=["none", "wrong-bearer", "wrong-basic", "token-as-user", "bearer", "basic", "read-bearer", "read-basic"],
)
async def test_page_needs_the_webhook_or_read_token(client, headers, expected):
    """The webhook or read-only token, as bearer or Basic password, opens both pages; else 401 with a Basic prompt."""
    for path in ("/runs", "/runs/some-run"):
        response = await client.get(path, headers=headers)
        assert expected == (response.status if response.status == 401 else 200)
        if expected == 401:
            assert 'Basic realm="responder"' == response.headers["WWW-Authenticate"]
            assert "Sign in" in await response.text()


async def test_read_token_does_not_post_webhooks(client):
    """The read-only token is refused by the webhook."""
    response = await client.post(
        "/webhooks/alertmanager",
        json=load_example("bias-firing.json"),
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert 401 == response.status


async def test_no_auth_serves_the_page_without_credentials(aiohttp_client, live, catalog):
    """With authentication off (serve --insecure-no-auth) the page needs no token."""
    client = await aiohttp_client(create_app(live, catalog, token=None))
    status, _ = await get(client, "/runs", headers={})
    assert 200 == status


async def test_redis_down_is_a_503_page(aiohttp_client, catalog):
    """Without Redis both pages answer 503 HTML with Retry-After."""
    settings = make_settings(CLOSED_REDIS)
    client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
    for path in ("/runs", "/runs/x"):
        response = await client.get(path, headers=BEARER)
        assert (503, "5") == (response.status, response.headers["Retry-After"])
        assert "Redis is unavailable" in Page(await response.text()).text


async def test_page_is_self_contained_and_fits_a_phone(client):
    """A viewport meta tag, inline CSS only: no script, stylesheet link, image or frame."""
    response = await client.get("/runs", headers=BEARER)
    html = await response.text()
    page = Page(html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert {"script", "link", "img", "iframe"}.isdisjoint(page.tags)
    assert "style" in page.tags


# --- In a real browser ---


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=390,844",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def serve(redis, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """A real `responder serve` with the webhook and read-only tokens, on a free port; its base URL."""
    with serving(redis_url, tmp_path / "serve.log", RESPONDER_UI_TOKEN=READ_TOKEN) as base:
        yield base


def test_runs_page_in_headless_chromium(serve, live, redis, run_worker, fake_github, tmp_path):
    """Chromium at phone width, signed in with the read-only token as the Basic password (in the URL), renders
    the runs rows; the screenshots are written to tmp_path (runs.png, run.png and dark-mode copies)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: {CHROMIUM_HINT}")
    fake_github.fail_next(
        "POST",
        r"/actions/workflows/.*/dispatches",
        status=422,
        body={"message": "Workflow does not have 'workflow_dispatch' trigger"},
    )
    for sample in ("integrity-firing.json", "bias-firing.json", "drift-two-segments-firing.json"):
        response = requests.post(f"{serve}/webhooks/alertmanager", json=load_example(sample), headers=BEARER, timeout=5)
        assert 202 == response.status_code
        run_worker.drain()
    records = store(redis).recent()
    profile = tmp_path / "chromium-profile"
    shot = tmp_path / "runs.png"
    signed_in = serve.replace("http://", f"http://oncall:{READ_TOKEN}@")
    failed = f"{signed_in}/runs/{records[-1].id}"

    anonymous = chromium("--dump-dom", f"{serve}/runs", profile=profile)
    dom = chromium("--dump-dom", f"{signed_in}/runs", profile=profile)
    screenshot = chromium(f"--screenshot={shot}", f"{signed_in}/runs", profile=profile)
    detail = chromium(f"--screenshot={tmp_path / 'run.png'}", failed, profile=profile)
    chromium("--force-dark-mode", f"--screenshot={tmp_path / 'runs-dark.png'}", f"{signed_in}/runs", profile=profile)
    chromium("--force-dark-mode", f"--screenshot={tmp_path / 'run-dark.png'}", failed, profile=profile)

    assert 0 == dom.returncode, dom.stderr[-2000:]
    assert [] == Page(anonymous.stdout).rows
    assert "ERR_INVALID_AUTH_CREDENTIALS" in anonymous.stderr  # challenged, and headless has no one to ask
    rows = Page(dom.stdout).rows
    assert [(r.alertname, r.status) for r in records] == [(row["alert"], row["status"].split()[-1]) for row in rows]
    assert (0, 0) == (screenshot.returncode, detail.returncode), screenshot.stderr[-2000:] + detail.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert 390 == png_size(shot)[0]
    print(f"screenshots: {shot} {tmp_path / 'run.png'}")
    if os.environ.get("RESPONDER_SCREENSHOT_DIR"):  # keep them past the test, e.g. to look at them
        for name in ("runs.png", "run.png", "runs-dark.png", "run-dark.png"):
            shutil.copy(tmp_path / name, Path(os.environ["RESPONDER_SCREENSHOT_DIR"]) / name)
