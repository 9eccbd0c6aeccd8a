"""The feature-toggle client against a real HTTP fake of the service, and its dry-run twin."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from responder.errors import ConfigError, PermanentError, TransientError
from responder.integrations.base import Outcome
from responder.integrations.toggles import DryRunToggles, ToggleClient
from tests.fakes.toggles import FakeToggles

TOKEN = "toggle-test-token"
CALL = {"model_id": "churn-model", "version": "1.4.0", "reason": "drift alert", "endpoint": "serving-eu"}


@pytest.fixture
def toggle_service() -> Iterator[FakeToggles]:
    with FakeToggles(token=TOKEN) as fake:
        yield fake


def retag(client: ToggleClient | DryRunToggles, **overrides: Any) -> Outcome:
    return client.retag(**{**CALL, **overrides})


def test_default_call_puts_the_body_at_the_model_endpoint_with_the_token(toggle_service: FakeToggles) -> None:
    """By default the client PUTs {model_id, version, reason} to /endpoints/<model_id> with the bearer token."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    outcome = retag(client)

    assert Outcome("re-tagged churn-model to 1.4.0", url=None) == outcome
    [request] = toggle_service.requests
    assert (request.method, request.path, request.status) == ("PUT", "/endpoints/churn-model", 200)
    assert request.body == {"model_id": "churn-model", "version": "1.4.0", "reason": "drift alert"}
    assert f"Bearer {TOKEN}" == request.headers["Authorization"]
    assert {"churn-model": request.body} == toggle_service.endpoints


def test_custom_method_path_and_body_templates_shape_the_call(toggle_service: FakeToggles) -> None:
    """The method, the path template and each body template are taken from the configuration."""
    client = ToggleClient(
        base_url=toggle_service.url,
        token=TOKEN,
        method="post",
        path="/endpoints/{{ endpoint }}",
        body={"version": "{{ version }}", "target": "{{ model_id }}@{{ version }}"},
    )

    retag(client)

    [request] = toggle_service.requests
    assert (request.method, request.path) == ("POST", "/endpoints/serving-eu")
    assert toggle_service.endpoints == {"serving-eu": {"version": "1.4.0", "target": "churn-model@1.4.0"}}


def test_trailing_slash_of_the_base_url_is_trimmed(toggle_service: FakeToggles) -> None:
    """A base URL ending in '/' does not double the slash before the path."""
    client = ToggleClient(base_url=toggle_service.url + "/", token=TOKEN)

    retag(client)

    assert [request.path for request in toggle_service.requests] == ["/endpoints/churn-model"]


def test_values_in_the_path_are_url_quoted(toggle_service: FakeToggles) -> None:
    """A model_id such as 'a/b' stays one path segment instead of changing the path."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    retag(client, model_id="a/b?x=1#y")

    assert [request.path for request in toggle_service.requests] == ["/endpoints/a%2Fb%3Fx%3D1%23y"]
    assert list(toggle_service.endpoints) == ["a/b?x=1#y"]


def test_a_dot_segment_in_the_path_is_refused_before_sending(toggle_service: FakeToggles) -> None:
    """A value of '..' would make HTTP clients address another resource, so nothing is sent."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    with pytest.raises(PermanentError, match=r"'\.\.' segment"):
        retag(client, model_id="..")

    assert toggle_service.requests == []


@pytest.mark.parametrize(
    ("templates", "setting"),
    [
        ({"path": "/endpoints/{{ model_id "}, "toggle_path"),
        ({"body": {"version": "{% if version %}{{ version }}"}}, "toggle_body['version']"),
    ],
)
def test_a_template_that_does_not_parse_is_a_config_error_at_construction(
    templates: dict[str, Any], setting: str
) -> None:
    """A template that does not parse fails when the client is built, naming the setting."""
    with pytest.raises(ConfigError, match=re.escape(f"invalid {setting}: template ") + ".* does not parse"):
        ToggleClient(base_url="http://toggles.invalid", **templates)


def test_a_template_with_an_unknown_name_fails_at_retag_with_a_config_error(toggle_service: FakeToggles) -> None:
    """An undefined name in a template is a ConfigError naming the setting and the name, and nothing is sent."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN, path="/endpoints/{{ model }}")

    with pytest.raises(ConfigError, match=r"invalid toggle_path: .*'model' is undefined; names available: model_id"):
        retag(client)

    assert toggle_service.requests == []


def test_without_a_token_no_authorization_header_is_sent() -> None:
    """A client without a token sends no Authorization header."""
    with FakeToggles(token=None) as open_service:
        retag(ToggleClient(base_url=open_service.url))

        [request] = open_service.requests
    assert "Authorization" not in request.headers
    assert request.status == 200


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_and_request_timeouts_are_transient(toggle_service: FakeToggles, status: int) -> None:
    """5xx and 408 answers are TransientError carrying the status."""
    toggle_service.fail_next("PUT", "^/endpoints/", status=status)
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    with pytest.raises(TransientError) as caught:
        retag(client)

    assert (status, "toggles", None) == (caught.value.status, caught.value.system, caught.value.retry_after)


def test_rate_limit_is_transient_with_retry_after(toggle_service: FakeToggles) -> None:
    """A 429 with Retry-After: 7 is a TransientError whose retry_after is 7 seconds."""
    toggle_service.fail_next("PUT", "^/endpoints/", status=429, headers={"Retry-After": "7"})
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    with pytest.raises(TransientError) as caught:
        retag(client)

    assert (caught.value.status, caught.value.retry_after) == (429, 7)


def test_an_unknown_path_is_permanent_with_the_service_message(toggle_service: FakeToggles) -> None:
    """A 404 is a PermanentError quoting the status and the service's message."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN, path="/v1/routes/{{ endpoint }}")

    with pytest.raises(PermanentError, match="answered 404: no route for PUT /v1/routes/serving-eu") as caught:
        retag(client)

    assert caught.value.status == 404


def test_a_rejected_body_is_permanent_with_the_service_message(toggle_service: FakeToggles) -> None:
    """A 400 is a PermanentError quoting the status and the service's message."""
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN, body={"target": "{{ version }}"})

    with pytest.raises(PermanentError, match='answered 400: body lacks "version"') as caught:
        retag(client)

    assert caught.value.status == 400


def test_the_service_message_is_cut_to_200_characters(toggle_service: FakeToggles) -> None:
    """A long message (here in an "error" field) is kept to its first 200 characters."""
    toggle_service.fail_next("PUT", "", status=422, body={"error": "x" * 500})
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    with pytest.raises(PermanentError) as caught:
        retag(client)

    assert str(caught.value).endswith(": " + "x" * 200)


def test_a_refused_connection_is_transient() -> None:
    """When nothing listens at the URL the error is transient."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ToggleClient(base_url=f"http://127.0.0.1:{port}", token=TOKEN, timeout=2)

    with pytest.raises(TransientError, match=r"unreachable \(ConnectionError\)"):
        retag(client)


def test_an_answer_slower_than_the_timeout_is_transient(toggle_service: FakeToggles) -> None:
    """A service that takes longer than the timeout to answer gives a TransientError."""
    toggle_service.fail_next("PUT", "", status=None, delay=1.0)
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN, timeout=0.2)

    with pytest.raises(TransientError, match=r"did not answer within 0.2s \(ReadTimeout\)"):
        retag(client)


def test_a_retry_after_an_ambiguous_failure_leaves_one_state(toggle_service: FakeToggles) -> None:
    """When the write happened but the answer was a 502, sending the call again yields the same single state."""
    toggle_service.fail_next("PUT", "", status=502, after_write=True)
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)
    with pytest.raises(TransientError):
        retag(client)

    retag(client)

    assert toggle_service.endpoints == {
        "churn-model": {"model_id": "churn-model", "version": "1.4.0", "reason": "drift alert"}
    }


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 403, "body": {"message": f"token {TOKEN} lacks the toggles:write scope"}},
        {"status": 500, "body": {"error": f"upstream rejected Bearer {TOKEN}"}},
    ],
)
def test_the_token_never_appears_in_an_error_message(toggle_service: FakeToggles, failure: dict[str, Any]) -> None:
    """A service that echoes the token gets it redacted from the error message."""
    toggle_service.fail_next("PUT", "", **failure)
    client = ToggleClient(base_url=toggle_service.url, token=TOKEN)

    with pytest.raises((PermanentError, TransientError)) as caught:
        retag(client)

    assert TOKEN not in str(caught.value)
    assert "***" in str(caught.value)


def test_dry_run_plans_the_rendered_call_without_sending() -> None:
    """DryRunToggles returns a planned outcome naming the method and the rendered, quoted path."""
    dry_run = DryRunToggles(method="PATCH", path="/endpoints/{{ endpoint }}/{{ model_id }}")

    outcome = retag(dry_run, model_id="a/b")

    assert Outcome("would re-tag a/b to 1.4.0 (PATCH /endpoints/serving-eu/a%2Fb)", planned=True) == outcome


def test_dry_run_reports_template_errors_like_the_real_client() -> None:
    """An undefined name fails the dry run with the same ConfigError as a real re-tag."""
    dry_run = DryRunToggles(body={"version": "{{ versoin }}"})

    with pytest.raises(ConfigError, match=r"invalid toggle_body\['version'\]: .*'versoin' is undefined"):
        retag(dry_run)
