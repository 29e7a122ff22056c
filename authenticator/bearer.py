"""The bearer token of a request, read only from the ``Authorization: Bearer`` header."""

from __future__ import annotations


def bearer_token(handler) -> str | None:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None
