"""Who may call: the token check shared by the webhook and the runs page.

A caller presents a token as ``Authorization: Bearer <token>`` or as the password of HTTP Basic
(any user name), so browsers and Alertmanager's ``basic_auth`` both work.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from pydantic import SecretStr


def presented_token(header: str) -> bytes | None:
    """The token from 'Bearer <token>' or from the password of 'Basic base64(user:password)'."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(b":")
        return password if sep else None
    return None


def authorized(header: str, tokens: Sequence[SecretStr]) -> bool:
    """Whether the Authorization header carries one of ``tokens``.

    Each token is compared in constant time and every one is compared, so timing tells neither
    the token nor which of them matched. An empty token matches nothing.
    """
    presented = presented_token(header)
    if presented is None:
        return False
    matched = False
    for token in tokens:
        expected = token.get_secret_value().encode()
        matched |= bool(expected) and hmac.compare_digest(presented, expected)
    return matched
