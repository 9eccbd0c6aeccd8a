"""Real log lines: structlog configured as the CLI configures it, its output captured. The ``logs``
fixture is registered from tests/conftest.py."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from responder.log import configure_logging
from tests.conftest import WEBHOOK_TOKEN


class LogOutput:
    """What the process printed to stdout since configure_logging ran."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self._read = 0

    def text(self) -> str:
        return self.stream.getvalue()

    def new_lines(self) -> list[dict[str, Any]]:
        """The JSON lines printed since the last call."""
        text = self.stream.getvalue()
        fresh, self._read = text[self._read :], len(text)
        return [json.loads(line) for line in fresh.splitlines() if line.startswith("{")]


@pytest.fixture
def logs() -> Iterator[LogOutput]:
    """structlog configured as the CLI configures it (JSON lines on stdout, secrets known), stdout captured."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    output = LogOutput()
    with contextlib.redirect_stdout(output.stream):
        configure_logging("info", "json", secrets=[WEBHOOK_TOKEN])
    yield output
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level
