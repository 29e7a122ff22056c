"""Pure functions that turn JupyterHub route specs into Traefik names and rules.

JupyterHub hands the proxy *route specs*: URL paths such as ``/user/alice/`` in which
every character of a user or server name other than ``[A-Za-z0-9_.-~@]`` is
percent-encoded (``jupyterhub.utils.url_escape_path``).

Traefik 3 matches ``Path``/``PathPrefix`` rules against the *decoded* request path,
except that it keeps the RFC 3986 reserved characters (``:/?#[]@!$&'()*+,;=``) and ``%``
percent-encoded with upper-case hex (verified against Traefik 3.7, see
``tests/integration/test_traefik_rules.py``). So the rule has to carry the decoded form,
which may contain backticks, quotes, spaces or any unicode character. To make injection
impossible by construction, rules are written as Go interpreted strings in which every
character outside a small safe set is a ``\\uXXXX`` escape: the rule text itself only
ever contains ``[A-Za-z0-9/._~@%-]``.

With per-user origins (``c.JupyterHub.subdomain_host``), JupyterHub's route specs start
with a host: ``alice.classhub.example.edu/user/alice/``. The host is checked against a
strict DNS-name pattern (JupyterHub's ``idna`` subdomain hook only ever produces such
names) and becomes a ``Host(...)`` matcher beside the ``PathPrefix(...)``.

Router and service names are short, stable and unique: a readable, escaped prefix of the
route spec plus a hash of the whole spec.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

#: A DNS name as JupyterHub's ``idna`` subdomain hook makes it: lower-case labels of
#: letters, digits and inner hyphens (punycode ``xn--`` included), at most 63 each.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
MAX_HOST_LENGTH = 253
#: Characters JupyterHub leaves unescaped in a route spec path.
_ROUTESPEC_RE = re.compile(r"^/(?:[A-Za-z0-9._~@/-]|%[0-9A-Fa-f]{2})*$")
#: RFC 3986 reserved characters plus "%": Traefik keeps these percent-encoded.
_KEEP_ENCODED = frozenset(":/?#[]@!$&'()*+,;=%")
#: Characters that may appear verbatim inside a generated rule string.
_RULE_SAFE = re.compile(r"[A-Za-z0-9/._~@%-]")
_NAME_SAFE = re.compile(r"[^a-z0-9]+")

#: Longest route spec accepted. JupyterHub user names may be long; Traefik rules may not
#: be unbounded. 200 unicode characters escaped is at most 1800 bytes.
MAX_ROUTESPEC_LENGTH = 4096


class RouteSpecError(ValueError):
    """A route spec that classhub refuses to turn into a Traefik rule."""


def split_routespec(routespec: str) -> tuple[str, str]:
    """``(host, path)`` of a route spec; the host is ``""`` for a path-only spec.

    >>> split_routespec("alice.hub.example.edu/user/alice/")
    ('alice.hub.example.edu', '/user/alice/')
    >>> split_routespec("/user/alice/")
    ('', '/user/alice/')
    """
    if not isinstance(routespec, str) or not routespec:
        raise RouteSpecError("route spec must be a non-empty string")
    if routespec.startswith("/"):
        return "", routespec
    host, slash, rest = routespec.partition("/")
    return host, slash + rest


def validate_host(host: str) -> str:
    """Return ``host`` if it is a lower-case DNS name of two or more labels, as
    JupyterHub's subdomain hook makes them (no port, no trailing dot, no wildcard)."""
    if len(host) > MAX_HOST_LENGTH or not _HOST_RE.match(host):
        raise RouteSpecError(
            f"route spec host {host!r} is not a lower-case DNS name "
            "(letters, digits and inner hyphens, labels of at most 63 characters)"
        )
    return host


def validate_routespec(routespec: str) -> str:
    """Return ``routespec`` if it is a safe JupyterHub route spec.

    A spec is a path (``/user/alice/``), or with per-user origins a host followed by a
    path (``alice.hub.example.edu/user/alice/``). Refuses hosts that are not plain DNS
    names, characters JupyterHub never emits unescaped, malformed percent-escapes,
    ``.``/``..`` segments (which Traefik and browsers normalise away, so the rule could
    never match) and over-long specs.
    """
    if not isinstance(routespec, str) or not routespec:
        raise RouteSpecError("route spec must be a non-empty string")
    if len(routespec) > MAX_ROUTESPEC_LENGTH:
        raise RouteSpecError(f"route spec longer than {MAX_ROUTESPEC_LENGTH} characters")
    host, path = split_routespec(routespec)
    if host:
        validate_host(host)
    if not path:
        raise RouteSpecError(f"route spec {routespec!r} has no path (it must end with '/')")
    if not path.endswith("/"):
        raise RouteSpecError(f"route spec {routespec!r} must end with '/'")
    if not _ROUTESPEC_RE.match(path):
        raise RouteSpecError(f"route spec {routespec!r} contains characters that must be escaped")
    segments = path.strip("/").split("/") if path != "/" else []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise RouteSpecError(f"route spec {routespec!r} has an empty, '.' or '..' segment")
    return routespec


def traefik_match_path(routespec: str) -> str:
    """The path as Traefik compares it: unreserved escapes decoded, reserved kept.

    >>> traefik_match_path("/user/%C3%A9t@x/")
    '/user/ét@x/'
    >>> traefik_match_path("/user/a%2fb/")
    '/user/a%2Fb/'
    """
    validate_routespec(routespec)
    routespec = split_routespec(routespec)[1]
    out: list[str] = []
    pending = bytearray()

    def flush() -> None:
        if pending:
            try:
                out.append(pending.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise RouteSpecError(f"route spec {routespec!r} is not valid UTF-8") from e
            pending.clear()

    i = 0
    while i < len(routespec):
        ch = routespec[i]
        if ch == "%":
            byte = int(routespec[i + 1 : i + 3], 16)
            if byte < 0x80 and chr(byte) in _KEEP_ENCODED:
                flush()
                out.append(f"%{byte:02X}")
            else:
                pending.append(byte)
            i += 3
        else:
            flush()
            out.append(ch)
            i += 1
    flush()
    return "".join(out)


def go_string_literal(text: str) -> str:
    """A double-quoted Go string literal for ``text`` with every unsafe character escaped."""
    parts = []
    for ch in text:
        if _RULE_SAFE.fullmatch(ch):
            parts.append(ch)
        elif ord(ch) <= 0xFFFF:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(parts) + '"'


def traefik_rule(routespec: str) -> str:
    """The Traefik rule that routes ``routespec`` and nothing outside it."""
    host = split_routespec(routespec)[0]
    path = f"PathPrefix({go_string_literal(traefik_match_path(routespec))})"
    if host:
        return f"Host({go_string_literal(validate_host(host))}) && {path}"
    return path


def hub_api_rule(hub_prefix: str = "/hub/") -> str:
    """The Traefik rule of the hub's routes on the student entrypoint: only the hub API
    calls a single-user server makes, each with its method, and nothing else.

    ======  =================================  ========================================
    GET     ``<hub>/api``, ``<hub>/api/``      the version check at start-up
    GET     ``<hub>/api/user``                 who owns a token (HubAuth, session guard)
    POST    ``<hub>/api/oauth2/token``         a browser's OAuth code for a token
    POST    ``<hub>/api/users/<name>/activity``  the server's activity
    ======  =================================  ========================================

    Not ``<hub>/login``, no other page or API, no ``/services/`` or ``/user/`` path.
    ``hub_prefix`` is the hub's base URL (``/hub/`` under base URL ``/``); it is validated
    like a route spec and written with :func:`go_string_literal`, so it cannot widen the
    rule.
    """
    validate_routespec(hub_prefix)
    api = traefik_match_path(hub_prefix) + "api"

    def path(p: str) -> str:
        return f"Path({go_string_literal(p)})"

    activity = "^" + re.escape(api + "/users/") + "[^/]+/activity$"
    reads = " || ".join(path(p) for p in (api, api + "/", api + "/user"))
    writes = f"{path(api + '/oauth2/token')} || PathRegexp({go_string_literal(activity)})"
    return f'(Method("GET") && ({reads})) || (Method("POST") && ({writes}))'


_RULE_PATH = r'PathPrefix\("((?:[A-Za-z0-9/._~@%-]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*)"\)'
_RULE_RE = re.compile(rf'^(?:Host\("([a-z0-9.-]+)"\) && )?{_RULE_PATH}$')


def routespec_from_rule(rule: str) -> str | None:
    """Invert :func:`traefik_rule`; ``None`` for rules classhub did not write."""
    m = _RULE_RE.match(rule)
    if not m:
        return None
    host = m.group(1) or ""
    if host:
        try:
            validate_host(host)
        except RouteSpecError:
            return None
    decoded = re.sub(
        r"\\u([0-9a-f]{4})|\\U([0-9a-f]{8})",
        lambda g: chr(int(g.group(1) or g.group(2), 16)),
        m.group(2),
    )
    # re-encode the way JupyterHub does: keep [A-Za-z0-9_.-~@/] and existing %XX escapes
    out = [host]
    for ch in decoded:
        if re.fullmatch(r"[A-Za-z0-9._~@/%-]", ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def route_name(routespec: str, prefix: str = "classhub") -> str:
    """A Traefik router/service name for ``routespec``: readable, bounded, collision-free.

    The readable part is lossy (lower-cased, non-alphanumerics folded to ``-``), so the
    name ends with a hash of the exact route spec.
    """
    validate_routespec(routespec)
    digest = hashlib.sha256(routespec.encode("utf-8")).hexdigest()[:16]
    readable = _NAME_SAFE.sub("-", unquote(routespec).lower()).strip("-")[:40].strip("-")
    return f"{prefix}-{readable}-{digest}" if readable else f"{prefix}-root-{digest}"


def user_from_routespec(routespec: str, base_url: str = "/") -> tuple[str, str] | None:
    """``(user, server_name)`` for a user route spec under ``base_url``, else ``None``."""
    routespec = split_routespec(routespec)[1]
    head = base_url.rstrip("/") + "/user/"
    if not routespec.startswith(head):
        return None
    parts = routespec[len(head) :].strip("/").split("/")
    if not parts or not parts[0]:
        return None
    user = unquote(parts[0])
    server = unquote(parts[1]) if len(parts) > 1 else ""
    return user, server
