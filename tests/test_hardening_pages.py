"""Extreme but valid Alertmanager times (year 1 at +14:00, year 9999 at -14:00) are shown on the
runs page, never a 500: converting them to UTC leaves the range a datetime can hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder import tickets
from responder.alerts import Alert
from responder.document import render_markdown
from responder.pages import iso, utc
from responder.playbooks.catalog import Catalog
from responder.receiver import create_app
from responder.runs import RunRecord
from responder.settings import Settings
from responder.timefmt import ago, took
from tests.conftest import WEBHOOK_TOKEN, load_example

BEARER = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
EARLIEST = "0001-01-01T00:00:00+14:00"  # before 0001-01-01 UTC, the least datetime
LATEST = "9999-12-31T23:59:59-14:00"  # after 9999-12-31 UTC, the greatest datetime

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, dry_settings: Settings, catalog: Catalog) -> TestClient:
    return await aiohttp_client(create_app(dry_settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))


def extreme(status: str) -> dict[str, Any]:
    payload = load_example("bias-firing.json")
    payload["status"] = status
    alert = payload["alerts"][0]
    alert.update(status=status, startsAt=EARLIEST, endsAt=LATEST if status == "resolved" else alert["endsAt"])
    return payload


async def queue(client: TestClient, payload: dict[str, Any]) -> str:
    response = await client.post("/webhooks/alertmanager", json=payload, headers=BEARER)
    assert response.status == 202, await response.text()
    [run_id] = [a["job_id"] for a in (await response.json())["alerts"] if a["decision"] == "queued"]
    return str(run_id)


@pytest.mark.parametrize("status", ["firing", "resolved"])
async def test_extreme_alert_times_render_on_the_run_and_the_list(client: TestClient, status: str) -> None:
    """An alert that fired in year 1 (+14:00) and resolved in year 9999 (-14:00) shows on both pages."""
    run_id = await queue(client, extreme(status))

    run = await client.get(f"/runs/{run_id}", headers=BEARER)
    listing = await client.get("/runs", headers=BEARER)

    assert run.status == 200, await run.text()
    assert listing.status == 200, await listing.text()
    html = await run.text()
    assert "0001-01-01" in html
    if status == "resolved":
        assert "9999-12-31" in html


@pytest.mark.parametrize("text", [EARLIEST, LATEST])
def test_time_filters_take_any_datetime(text: str) -> None:
    """Every filter the templates apply to a time answers for the least and greatest offset datetimes."""
    value = datetime.fromisoformat(text)
    now = datetime.fromisoformat("2025-01-01T00:00:00+00:00")

    assert text[:10] in iso(value) and text[:10] in utc(value)
    assert ago(value, now) and took(value, now) and took(now, value)


def test_ticket_times_are_on_the_utc_clock():
    """A ticket says "UTC" and means it: an alert firing at 21:40:12+02:00 reads 19:40:12 UTC."""
    alert = Alert(status="firing", labels={"alertname": "model_bias_alert", "model_id": "credit-limit"},
                  annotations={}, startsAt=datetime(2026, 12, 4, 21, 40, 12, tzinfo=timezone(timedelta(hours=2))),
                  fingerprint="f1")
    text = render_markdown(tickets.refired(RunRecord(id="r1", playbook="model_bias_alert", alert=alert), [], "x"))
    assert "Fired again at 2026-12-04 19:40:12 UTC" in text.replace("\\", "")  # as read: escapes left out
