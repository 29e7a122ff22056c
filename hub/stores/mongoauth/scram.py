"""SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server's side, as MongoDB runs it.

A user's password is kept only as MongoDB keeps it (:func:`credentials`): a random salt, an
iteration count, ``StoredKey = H(HMAC(SaltedPassword, "Client Key"))`` and
``ServerKey = HMAC(SaltedPassword, "Server Key")``, with
``SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations)``.

:class:`Conversation` is one exchange: :meth:`~Conversation.start` takes the
client-first-message (``n,,n=user,r=nonce``) and answers the server-first-message
(``r=nonce+ours,s=salt,i=iterations``); :meth:`~Conversation.finish` takes the
client-final-message (``c=biws,r=...,p=proof``), checks the proof against StoredKey and
answers the server-final-message (``v=signature``). Anything malformed or wrong raises
:class:`ScramError`; the caller answers every such error the same way ("Authentication
failed."), as MongoDB does. No channel binding, no authorization identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
#: MongoDB's default for SCRAM-SHA-256 (scramSHA256IterationCount); RFC 7677's minimum is 4096
ITERATIONS = 15000
MIN_ITERATIONS = 4096
_SALT_BYTES = 28
_NONCE_BYTES = 24
_DIGEST = "sha256"


class ScramError(Exception):
    """The exchange failed: malformed message, wrong nonce or wrong proof."""


@dataclass(frozen=True)
class Credentials:
    """What the server keeps of a password (base64 fields, as in ``admin.system.users``)."""

    iterations: int
    salt: str
    stored_key: str
    server_key: str

    def to_json(self) -> dict:
        return {
            "iterationCount": self.iterations,
            "salt": self.salt,
            "storedKey": self.stored_key,
            "serverKey": self.server_key,
        }

    @classmethod
    def from_json(cls, doc: dict) -> Credentials:
        return cls(int(doc["iterationCount"]), doc["salt"], doc["storedKey"], doc["serverKey"])


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, _DIGEST).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise ScramError("bad base64") from e


def credentials(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> Credentials:
    """The stored form of ``password`` (SASLprep'd, as MongoDB does for SCRAM-SHA-256)."""
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"at least {MIN_ITERATIONS} iterations")
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac(_DIGEST, saslprep(password).encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return Credentials(
        iterations,
        _b64(salt),
        _b64(hashlib.sha256(client_key).digest()),
        _b64(_hmac(salted, b"Server Key")),
    )


def decode_username(text: str) -> str:
    """``saslname`` of RFC 5802: ``=2C`` is a comma, ``=3D`` an equals sign."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "=":
            code = text[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ScramError("bad username escape")
            i += 3
        elif text[i] == ",":
            raise ScramError("bad username")
        else:
            out.append(text[i])
            i += 1
    if not out:
        raise ScramError("empty username")
    return "".join(out)


def _attributes(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError("bad attribute")
        pairs.append((part[0], part[2:]))
    return pairs


def parse_client_first(message: bytes) -> tuple[str, str, str, str]:
    """``(gs2 header, client-first-bare, user name, client nonce)`` of a client-first-message."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScramError("not UTF-8") from e
    flag, sep1, rest = text.partition(",")
    authzid, sep2, bare = rest.partition(",")
    if not (sep1 and sep2) or flag not in ("n", "y"):
        raise ScramError("channel binding is not supported")
    if authzid:
        raise ScramError("an authorization identity is not supported")
    attrs = _attributes(bare)
    if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r":
        raise ScramError("bad client-first-message")
    if any(name == "m" for name, _ in attrs):
        raise ScramError("mandatory extension not supported")
    if not attrs[1][1]:
        raise ScramError("empty nonce")
    return f"{flag},{authzid},", bare, decode_username(attrs[0][1]), attrs[1][1]


class Conversation:
    """One SCRAM-SHA-256 exchange with one client; see the module's text."""

    def __init__(self, creds: Credentials, nonce: Callable[[], str] | None = None):
        self.creds = creds
        self._nonce = nonce or (lambda: _b64(os.urandom(_NONCE_BYTES)))
        self._gs2 = self._first_bare = self._server_first = self._combined = ""
        self.done = False

    def start(self, client_first: bytes) -> bytes:
        """The server-first-message for ``client_first`` (its user must be this one's)."""
        self._gs2, self._first_bare, _user, client_nonce = parse_client_first(client_first)
        self._combined = client_nonce + self._nonce()
        self._server_first = f"r={self._combined},s={self.creds.salt},i={self.creds.iterations}"
        return self._server_first.encode("ascii")

    def finish(self, client_final: bytes) -> bytes:
        """The server-final-message, once the proof in ``client_final`` is right."""
        if not self._server_first or self.done:
            raise ScramError("out of order")
        try:
            text = client_final.decode("ascii")
        except UnicodeDecodeError as e:
            raise ScramError("not ASCII") from e
        without_proof, sep, proof_attr = text.rpartition(",")
        if not sep or not proof_attr.startswith("p="):
            raise ScramError("no proof")
        attrs = _attributes(without_proof)
        if len(attrs) < 2 or attrs[0][0] != "c" or attrs[1][0] != "r":
            raise ScramError("bad client-final-message")
        if _unb64(attrs[0][1]) != self._gs2.encode("utf-8"):
            raise ScramError("channel binding mismatch")
        if not hmac.compare_digest(attrs[1][1].encode(), self._combined.encode()):
            raise ScramError("nonce mismatch")
        proof = _unb64(proof_attr[2:])
        stored_key = _unb64(self.creds.stored_key)
        auth_message = ",".join((self._first_bare, self._server_first, without_proof)).encode(
            "utf-8"
        )
        signature = _hmac(stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("bad proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key):
            raise ScramError("wrong proof")
        self.done = True
        server_signature = _hmac(_unb64(self.creds.server_key), auth_message)
        return b"v=" + _b64(server_signature).encode("ascii")
