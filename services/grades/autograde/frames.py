"""The runner's output, verified (pure): every frame signed with the run's secret, in
sequence, and of a known shape.

A frame is one line ``CHAG1 <seq> <hmac> <json>``, ``hmac`` = HMAC-SHA256 of
``"<seq> <json>"`` with the run's secret (the runner: ``classhub_singleuser.grader``).
:class:`FrameReader` takes the container's stdout in chunks of any size and keeps the
frames that pass every check: the prefix, the sequence number (0, 1, 2, ...), the HMAC
(constant-time), the JSON (ASCII, an object) and the schema of its type (exact fields and
types, sizes, only the cell keys and test ids this run sent, each test once). The first
line that fails ends the trusted stream: nothing after it counts (``problem`` says why).
Nothing from the container is ever unpickled or run.
"""

from __future__ import annotations

import hashlib
import hmac
import json

PREFIX = b"CHAG1"
MAX_LINE = 64 << 10
MAX_TEXT = 500
MAX_FLAG = 200
MAX_FLAGS = 50
CELL_STATUSES = frozenset({"ok", "error", "timeout", "died", "not-run"})
TEST_STATUSES = frozenset({"pass", "fail", "error", "timeout", "died", "not-run"})


class BadFrame(ValueError):
    """A line that is not a valid frame of this run."""


def sign(secret: bytes, seq: int, body: str) -> str:
    return hmac.new(secret, f"{seq} {body}".encode(), hashlib.sha256).hexdigest()


def _text(value, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BadFrame(f"a text field is not a string of at most {limit} characters")
    return value


def _flags(value) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_FLAGS:
        raise BadFrame("flags must be a list of at most 50 texts")
    return [_text(v, MAX_FLAG) for v in value]


def _int(value, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise BadFrame("a count is out of range")
    return value


_FIELDS = {
    "hello": {"type", "runner", "cells"},
    "cell": {"type", "key", "status", "error"},
    "student-done": {"type", "flags"},
    "integrity": {"type", "ok", "flags"},
    "test": {"type", "id", "status", "message", "flags"},
    "end": {"type"},
    "error": {"type", "message"},
}


def check_payload(payload, cell_keys: frozenset[str], test_ids: frozenset[str]) -> dict:
    """The payload, checked against its type's schema (BadFrame)."""
    if not isinstance(payload, dict):
        raise BadFrame("a frame must be a JSON object")
    kind = payload.get("type")
    if kind not in _FIELDS:
        raise BadFrame(f"unknown frame type {str(kind)[:40]!r}")
    if set(payload) != _FIELDS[kind]:
        raise BadFrame(f"a {kind} frame has the wrong fields")
    if kind == "hello":
        if payload["runner"] != 1 or isinstance(payload["runner"], bool):
            raise BadFrame("unknown runner version")
        return {"type": kind, "runner": 1, "cells": _int(payload["cells"], 1 << 20)}
    if kind == "cell":
        if payload["key"] not in cell_keys:
            raise BadFrame("a cell frame names a cell this run did not send")
        if payload["status"] not in CELL_STATUSES:
            raise BadFrame("unknown cell status")
        return {
            "type": kind,
            "key": payload["key"],
            "status": payload["status"],
            "error": _text(payload["error"]),
        }
    if kind == "student-done":
        return {"type": kind, "flags": _flags(payload["flags"])}
    if kind == "integrity":
        if not isinstance(payload["ok"], bool):
            raise BadFrame("integrity.ok must be true or false")
        return {"type": kind, "ok": payload["ok"], "flags": _flags(payload["flags"])}
    if kind == "test":
        if payload["id"] not in test_ids:
            raise BadFrame("a test frame names a test this run did not send")
        if payload["status"] not in TEST_STATUSES:
            raise BadFrame("unknown test status")
        return {
            "type": kind,
            "id": payload["id"],
            "status": payload["status"],
            "message": _text(payload["message"]),
            "flags": _flags(payload["flags"]),
        }
    if kind == "error":
        return {"type": kind, "message": _text(payload["message"])}
    return {"type": "end"}


def verify_line(secret: bytes, expected_seq: int, line: bytes) -> object:
    """The JSON payload of one frame line (without its newline), or BadFrame."""
    parts = line.split(b" ", 3)
    if len(parts) != 4 or parts[0] != PREFIX:
        raise BadFrame("a line that is not a frame")
    seq_text, mac, body = parts[1], parts[2], parts[3]
    if not seq_text.isdigit() or len(seq_text) > 9 or int(seq_text) != expected_seq:
        raise BadFrame("a frame out of sequence")
    try:
        text = body.decode("ascii")
        mac_text = mac.decode("ascii")
    except UnicodeDecodeError:
        raise BadFrame("a frame that is not ASCII") from None
    if not hmac.compare_digest(sign(secret, expected_seq, text), mac_text):
        raise BadFrame("a frame whose signature is wrong (not from the grader)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadFrame("a frame that is not JSON") from None


class FrameReader:
    """Verifies the runner's stdout as it arrives."""

    def __init__(self, secret: bytes, cell_keys, test_ids):
        self.secret = secret
        self.cell_keys = frozenset(cell_keys)
        self.test_ids = frozenset(test_ids)
        self.frames: list[dict] = []
        self.problem = ""
        self._buffer = bytearray()
        self._tests_seen: set[str] = set()
        self._cells_seen: set[str] = set()

    @property
    def ended(self) -> bool:
        return any(f["type"] == "end" for f in self.frames[-1:])

    def saw(self, kind: str) -> bool:
        return any(f["type"] == kind for f in self.frames)

    def feed(self, data: bytes) -> None:
        if self.problem:
            return
        self._buffer += data
        while not self.problem:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self.problem = "the grader's output had a line over 64 KiB"
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            try:
                self._accept(line)
            except BadFrame as e:
                self.problem = f"the grader's output was refused: {e}"
                self._buffer.clear()

    def _accept(self, line: bytes) -> None:
        if len(line) > MAX_LINE:
            raise BadFrame("a line over 64 KiB")
        if self.ended:
            raise BadFrame("output after the end frame")
        payload = check_payload(
            verify_line(self.secret, len(self.frames), line), self.cell_keys, self.test_ids
        )
        if payload["type"] == "test":
            if payload["id"] in self._tests_seen:
                raise BadFrame("a test reported twice")
            self._tests_seen.add(payload["id"])
        if payload["type"] == "cell":
            if payload["key"] in self._cells_seen:
                raise BadFrame("a cell reported twice")
            self._cells_seen.add(payload["key"])
        self.frames.append(payload)

    def finish(self) -> None:
        """The stream ended: a partial last line is a problem (never a frame)."""
        if self._buffer and not self.problem:
            self.problem = "the grader's output ended inside a line"
            self._buffer.clear()
