"""Jupyter kernel messages for tests and benchmarks that drive a kernel over its websocket."""

from __future__ import annotations

import json
import uuid


def execute_request(code: str, username: str = "test") -> tuple[str, str]:
    """(msg_id, JSON text) of a Jupyter ``execute_request`` on the shell channel."""
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps(
        {
            "header": {
                "msg_id": msg_id,
                "username": username,
                "session": uuid.uuid4().hex,
                "msg_type": "execute_request",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False},
            "channel": "shell",
        }
    )
