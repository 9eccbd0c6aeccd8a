"""Sandboxed templates for playbook parameters.

Labels and annotations are untrusted text from whoever can push metrics: templates run in
Jinja2's immutable sandbox with undefined names as errors, and are parsed at load time.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from responder.errors import PlaybookError

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def check(template: str) -> None:
    """Raise PlaybookError if ``template`` does not parse."""
    try:
        _ENV.parse(template)
    except TemplateError as exc:
        raise PlaybookError(f"template {template!r} does not parse: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    """Templates come from playbooks (a bounded set), never from alerts: compile each once per process."""
    return _ENV.from_string(template)


def render(template: str, context: dict[str, Any]) -> str:
    if "{" not in template:
        return template
    try:
        return _compiled(template).render(context).strip()
    except TemplateError as exc:
        raise PlaybookError(f"template {template!r} failed: {exc}") from None
    except (ArithmeticError, ValueError, TypeError, MemoryError) as exc:  # e.g. {{ range(10**9) }}
        raise PlaybookError(f"template {template!r} failed: {type(exc).__name__}: {exc}") from None
