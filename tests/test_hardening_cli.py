"""Mistakes at the command line (a busy port, a bad host, a malformed Redis URL, bytes that are not
text) are told in one readable line on stderr with exit 2, never as a Python traceback."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import WEBHOOK_TOKEN, run_cli


def assert_one_line_exit_2(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("responder: error: "), result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_serve_on_a_port_in_use_is_one_line_exit_2(cli_env):
    """`serve --port P` with P already taken says it cannot listen there, in one line, exit 2."""
    env = {**cli_env, "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(env, "serve", "--port", str(port), timeout=30)
    assert_one_line_exit_2(result, f"127.0.0.1:{port}", "ddress already in use")


def test_serve_on_a_host_that_does_not_resolve_is_one_line_exit_2(cli_env):
    """`serve --host 256.1.1.1` (no such address) names the host in one line, exit 2."""
    env = {**cli_env, "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
    result = run_cli(env, "serve", "--host", "256.1.1.1", timeout=30)
    assert_one_line_exit_2(result, "256.1.1.1", "--host")


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_serve_on_a_port_out_of_range_is_one_line_exit_2(cli_env, port):
    """`serve --port` outside 0-65535 is refused in one line, exit 2."""
    env = {**cli_env, "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
    result = run_cli(env, "serve", "--port", port, timeout=30)
    assert_one_line_exit_2(result, "--port")


@pytest.mark.parametrize("command", [["jobs", "list"], ["serve"], ["worker", "--burst"]])
@pytest.mark.parametrize("url", ["redis://h:notaport/0", "redis://h:99999/0"])
def test_malformed_redis_url_is_one_line_exit_2(cli_env, command, url):
    """A RESPONDER_REDIS_URL whose port is not a port is a configuration error naming the setting: one line, exit 2."""
    env = {**cli_env, "RESPONDER_REDIS_URL": url, "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
    result = run_cli(env, *command, timeout=30)
    assert_one_line_exit_2(result, "RESPONDER_REDIS_URL")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "rollback", "--label", "model_id=a\udcff"],  # the bytes b"model_id=a\xff" on the command line
        ["run", "rollback", "--label", "model_id=x", "--annotation", "reason=\udcff"],
        ["jobs", "show", "a\udcff"],
    ],
    ids=["label", "annotation", "job-id"],
)
def test_argument_that_is_not_utf8_is_one_line_exit_2(cli_env, args):
    """An argument whose bytes are not UTF-8 text is refused, shown with the bad byte escaped: one line, exit 2."""
    result = run_cli(cli_env, *args)
    assert_one_line_exit_2(result, "not valid UTF-8", "\\xff")
