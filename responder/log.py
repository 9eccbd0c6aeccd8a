"""structlog configuration: JSON lines on stdout (a console renderer on a TTY), and redaction.

Every request and job binds job_id, alertname, fingerprint, playbook and step with
``structlog.contextvars``; the redaction processor keeps credentials out of every line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any, TextIO

import structlog

SENSITIVE_KEYS = re.compile(r"(token|secret|password|authorization|credential|api_key)", re.IGNORECASE)
# A URL query parameter whose name ends like a credential's: api_key, apikey, key, access_key,
# subscription-key, sig, X-Amz-Signature, X-Amz-Credential, auth, passwd, pwd (and access_token,
# client_secret, password, which the "token|password|secret=" form finds anywhere).
_QUERY_CREDENTIAL = r"[?&;][\w.-]*(?:token|key|secret|passw(?:or)?d|pwd|sig|signature|auth|credential)="
# Credentials that reach a string by way of an exception text or a URL: a GitHub token has the
# classic (ghp_...) or the fine-grained (github_pat_...) shape.
SENSITIVE_TEXT = re.compile(
    r"(?i)((?:bearer|token|basic)\s+|" + _QUERY_CREDENTIAL + r"|(?:token|password|secret)\s*[:=]\s*)"
    r"[^&\s\"',;]{6,}"
    r"|(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})"
    r"|(://[^/\s:@]+:)[^@\s/]+@"
)
# Every match of SENSITIVE_TEXT holds one of these (ignoring case): Redactor._clean skips the
# regex for lines with none of them. The query parameters' words end in their "=" ("key=" is much
# rarer in a line than "key"), and are looked for only in a line with an "=".
_SENSITIVE_TEXT_NEEDS = ("bearer", "token", "basic", "password", "secret", "gh", "github_pat_", "://")
_SENSITIVE_QUERY_NEEDS = ("key=", "passwd=", "pwd=", "sig=", "signature=", "auth=", "credential=")
_SCALARS = {int, float, bool}
REDACTED = "[redacted]"


class Redactor:
    """A structlog processor that removes credentials from keys, values and known secret strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self._clean(event_dict):
            return event_dict
        for key, value in list(event_dict.items()):
            if _sensitive_key(key) and value is not None:
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self.scrub(value)
        return event_dict

    def _clean(self, event_dict: MutableMapping[str, Any]) -> bool:
        """Whether the line has nothing to redact, told cheaply (almost every line): no sensitive
        key, no nested value, no known secret, and none of the words ``SENSITIVE_TEXT`` needs.
        Running that regex on each value took 60 % of a line's cost (about 50 ns a character).
        Text that is not ASCII goes to the regex: its case-insensitive match admits letters that
        ``str.lower`` does not fold (the long s, the Kelvin sign)."""
        texts = []
        for key, value in event_dict.items():
            if type(value) is str:
                texts.append(value)
            elif not (value is None or type(value) in _SCALARS):
                return False  # nested, or an object: scrubbed the long way
            if _sensitive_key(key):
                return False
        text = "\n".join(texts)
        for secret in self._secrets:
            if secret in text:
                return False
        if not text.isascii():
            return SENSITIVE_TEXT.search(text) is None
        lowered = text.lower()
        for word in _SENSITIVE_TEXT_NEEDS:  # a loop: a generator doubles the cost of these few tests
            if word in lowered:
                return False
        return "=" not in lowered or all(word not in lowered for word in _SENSITIVE_QUERY_NEEDS)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: REDACTED if _sensitive_key(str(k)) else self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return SENSITIVE_TEXT.sub(_mask, text)


@lru_cache(maxsize=1024)
def _sensitive_key(key: str) -> bool:
    """Whether values under ``key`` are credentials (a line's keys come from a small set)."""
    return SENSITIVE_KEYS.search(key) is not None


def _mask(match: re.Match[str]) -> str:
    if match.group(1):
        return match.group(1) + REDACTED
    if match.group(3):
        return match.group(3) + REDACTED + "@"
    return REDACTED


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    *,
    final: bool = False,
) -> Redactor:
    """Configure structlog (and stdlib logging of libraries) once per process.

    Services log to stdout; CLI commands pass ``sys.stderr`` so their stdout holds only output.
    ``final``: this configuration stays for the life of the process (the services), so each
    module's logger is built once instead of on every call (tests configure again and again).
    """
    stream = stream or sys.stdout
    redactor = Redactor(secrets)
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=final,
    )
    # Libraries (rq, aiohttp, urllib3) log through stdlib logging: render them the same way.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    return redactor


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
