"""Per-user origins: each person's servers on a host of their own.

A student controls everything their server sends, the single-user server process
included. Served from the hub's origin, a page of theirs would run with the session of
anybody who opens it (a teacher helping, an admin, a classmate following a link). With
``c.JupyterHub.subdomain_host`` every user's servers live on ``<user>.<servers domain>``
instead, and the hub, its pages and the services stay on the hub's own host.

Best is a servers domain that is not under the hub's registrable domain at all (hub on
``classhub.example.edu``, servers on ``*.example-classhub.net``; locally ``classhub.localhost``
and ``*.classhub-servers.localhost``): browsers then treat the two as different sites, so
no cookie of the hub is sent with a request a student's page makes, and a student's page
cannot set cookies for the hub. Pure functions only; :func:`hub.config.configure_origins`
applies them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from jupyterhub.utils import subdomain_hook_idna

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
#: room for the user's label (at most 63 characters and a dot) in a 253-character name
MAX_DOMAIN_LENGTH = 189


class OriginError(ValueError):
    """A domain or URL setting that cannot give per-user origins, with how to fix it."""


def validate_domain(domain: str, what: str = "CLASSHUB_SERVERS_DOMAIN") -> str:
    """A lower-case DNS name without port, scheme, wildcard or trailing dot."""
    if not isinstance(domain, str) or not domain:
        raise OriginError(f"{what} is empty")
    if domain.startswith("*."):
        raise OriginError(
            f"{what}={domain!r}: give the domain without the wildcard "
            f"({domain[2:]!r}); each user's servers get '<user>.{domain[2:]}'"
        )
    if len(domain) > MAX_DOMAIN_LENGTH or not _DOMAIN_RE.match(domain):
        raise OriginError(
            f"{what}={domain!r} is not a lower-case DNS name such as "
            "'classhub-servers.example.edu' (no scheme, port or trailing dot)"
        )
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return domain
    raise OriginError(f"{what}={domain!r} is an IP address; per-user origins need a DNS name")


@dataclass(frozen=True)
class PublicURL:
    """The hub's public address, split: ``scheme``, ``host`` (lower case), ``port`` (or
    None) and ``path`` (the base URL, ending with ``/``)."""

    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}{f':{self.port}' if self.port else ''}"


def parse_public_url(url: str) -> PublicURL:
    """Split the hub's public URL (``CLASSHUB_PUBLIC_URL``), which must name a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise OriginError(f"CLASSHUB_PUBLIC_URL={url!r} is not a URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OriginError(
            f"CLASSHUB_PUBLIC_URL={url!r} must be the hub's full address, such as "
            "'https://classhub.example.edu' or 'http://classhub.localhost:8000'"
        )
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    return PublicURL(parts.scheme, parts.hostname.lower(), port, path)


def servers_origin(public: PublicURL, servers_domain: str) -> str:
    """``c.JupyterHub.subdomain_host``: the servers domain on the hub's scheme and port
    (one Traefik entry point serves both)."""
    port = f":{public.port}" if public.port else ""
    return f"{public.scheme}://{servers_domain}{port}"


@dataclass(frozen=True)
class SubdomainHook:
    """``c.JupyterHub.subdomain_hook``: users on ``<label>.<servers_domain>`` (JupyterHub's
    own ``idna`` encoding of the name: any user name gives one valid, distinct label),
    services on the hub's own host, beside the hub's pages that link to them."""

    servers_domain: str
    hub_host: str

    def __call__(self, name: str, domain: str, kind: str) -> str:
        if kind == "user":
            return subdomain_hook_idna(name, self.servers_domain, kind)
        return self.hub_host


def user_host(name: str, servers_domain: str) -> str:
    """The host of ``name``'s servers (as :class:`SubdomainHook` makes it)."""
    return subdomain_hook_idna(name, servers_domain, "user")


def same_site(host_a: str, host_b: str) -> bool:
    """Whether browsers would treat the two hosts as one site, approximated by their last
    two labels (exact for names under a single-label suffix such as ``localhost`` or
    ``edu``; public suffixes of two labels such as ``ac.uk`` count as one site here, so the
    answer errs on the side of warning)."""
    return host_a.split(".")[-2:] == host_b.split(".")[-2:]
