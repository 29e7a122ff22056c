"""The ``CLASSHUB_*`` variables that components of different layers read, declared once.

A variable that feeds one class's trait is declared in that class's table (see
``common/settings.py``). These few are read by components that may not import each other
(the hub's configuration, the spawner, the owner gate, the proxy), so their one
declaration lives here; a table takes one over for its trait with :meth:`EnvSetting.of`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from .errors import ConfigError
from .settings import EnvSetting, switch, whole
from .units import parse_size

#: the hub's state directory (cookie secret, default database, Traefik's dynamic files)
DATA_DIR = EnvSetting("", "CLASSHUB_DATA_DIR", "/srv/classhub")

#: the Docker network of the student containers (the spawner's ``network_name``; the hub
#: finds its own address for them at this network's gateway)
STUDENT_NETWORK = EnvSetting("", "CLASSHUB_STUDENT_NETWORK", "classhub-students")

#: the owner gate's port on 127.0.0.1 (the gate listens there; the spawner points Traefik
#: at it)
GATE_PORT = EnvSetting("", "CLASSHUB_GATE_PORT", 8082, whole, "a port number")


def _bind(raw: str) -> str:
    """An IPv4 address, or a network (``10.217.0.0/24``: this container's address in it)."""
    if "/" in raw:
        return str(ipaddress.IPv4Network(raw, strict=False))
    return str(ipaddress.IPv4Address(raw))


#: where the hub, its services and the owner gate listen. ``127.0.0.1`` on one machine
#: (docker-compose: host network). In a Swarm stack the hub's container is on several
#: overlay networks, one of them the students': it gives the subnet of the ``core`` network
#: (deploy/swarm/stack.yml), and each listens on its own address there only
BIND_IP = EnvSetting(
    "",
    "CLASSHUB_BIND_IP",
    "127.0.0.1",
    _bind,
    "an IPv4 address such as 127.0.0.1, or a subnet such as 10.217.0.0/24",
)


def own_address(bind: str, *, probe: Callable[[str], str] | None = None) -> str:
    """The address to listen on for :data:`BIND_IP`'s value: the value itself, or for a
    subnet this machine's address in it (the source address the kernel picks for the
    subnet's first address; no packet is sent). ``probe`` replaces that lookup in tests."""
    if "/" not in bind:
        return bind
    network = ipaddress.IPv4Network(bind)
    probe = probe or _source_address
    address = probe(str(network.network_address + 1))
    if ipaddress.IPv4Address(address) not in network:
        raise ConfigError(
            f"CLASSHUB_BIND_IP={bind}: this container has no address in that network (the "
            f"route to it leaves from {address}). Attach the container to the network "
            "(deploy/swarm/stack.yml's core network) or give the address itself."
        )
    return address


def _source_address(target: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((target, 9))
        return s.getsockname()[0]


#: per-user origins (hub/origins.py): each user's servers on ``<user>.<domain>``; empty: every
#: server on the hub's origin, behind the owner gate
SERVERS_DOMAIN = EnvSetting("", "CLASSHUB_SERVERS_DOMAIN", "")

#: the prefix of this deployment's containers, volumes, routes and labels
CONTAINER_PREFIX = EnvSetting("", "CLASSHUB_CONTAINER_PREFIX", "classhub")

#: students sign up with a class's join code (the classes service's sign-up page; the hub's
#: login page links to it)
JOIN_CODE_SIGNUP = EnvSetting("", "CLASSHUB_JOIN_CODE_SIGNUP", False, switch, "true or false")

#: the default image of students' servers (the catalogue of the images they may use,
#: ``CLASSHUB_IMAGES`` and the older ``CLASSHUB_ALLOWED_IMAGES``, is read by
#: common/images.py: the spawner enforces it; the classes service offers it to teachers)
SINGLEUSER_IMAGE = EnvSetting("", "CLASSHUB_SINGLEUSER_IMAGE", "classhub/singleuser:latest")


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("not positive")
    return value


#: the CPUs and memory of a student's server (the spawner's limits; a new class's
#: environment)
CPU_LIMIT = EnvSetting("", "CLASSHUB_CPU_LIMIT", 1.0, _positive, "a positive number of CPUs")
MEM_LIMIT = EnvSetting("", "CLASSHUB_MEM_LIMIT", "1G")

#: the Redis of the live sessions (the authenticator's sessions and login counts; the owner
#: gate reads the same sessions)
REDIS_URL = EnvSetting("", "CLASSHUB_REDIS_URL", "redis://127.0.0.1:6379/0", sensitive=True)


def absolute_dir(raw: str) -> str:
    """An absolute path, without a trailing ``/``; ``ValueError`` for a relative one."""
    if not raw.startswith("/"):
        raise ValueError("not an absolute path")
    return raw.rstrip("/") or "/"


def home_size(value: str | int) -> int:
    """Bytes of a home's size limit, written as :func:`common.units.parse_size` reads it
    (``"2G"``, ``"512M"``, ``"1.5g"``); at least 1M."""
    size = parse_size(value)
    if size < 1 << 20:
        raise ValueError(f"{value!r} is too small for a home folder; give at least 1M")
    return size


def _home_quota(raw: str) -> str:
    home_size(raw)
    return raw


#: the btrfs filesystem of students' homes (the spawner makes a subvolume per home there;
#: ``classhub-backup`` snapshots them). Empty: plain Docker volumes without a size limit
HOMES_DIR = EnvSetting(
    "", "CLASSHUB_HOMES_DIR", "", absolute_dir, "an absolute path such as /var/lib/classhub/homes"
)

#: the size limit of one home (the spawner's, and a home that a restore makes)
HOME_QUOTA = EnvSetting("", "CLASSHUB_HOME_QUOTA", "2G", _home_quota, "a size such as 2G")

#: the Traefik entrypoint browsers come in through (the hub's and the services' routes, the
#: students' servers, the files service's route for presigned URLs)
TRAEFIK_ENTRYPOINT = EnvSetting("", "CLASSHUB_TRAEFIK_ENTRYPOINT", "web")

#: the directory Traefik's file provider watches: the hub writes its routes there, the
#: files service its route for presigned URLs
TRAEFIK_DYNAMIC_DIR = EnvSetting(
    "",
    "CLASSHUB_TRAEFIK_DYNAMIC_DIR",
    lambda obj: DATA_DIR.read() + "/traefik-dynamic",
    doc_default="$CLASSHUB_DATA_DIR/traefik-dynamic (/srv/classhub/traefik-dynamic)",
)

#: the first admin's initial password (the authenticator creates the account; the hub's
#: guide lists it, hub/settings.py)
ADMIN_PASSWORD = EnvSetting(
    "",
    "CLASSHUB_ADMIN_PASSWORD",
    "",
    doc_default="unset",
    sensitive=True,
    doc="Initial password of the first admin (`c.JWTAuthenticator.first_admin`, "
    "`CLASSHUB_ADMIN_USER`) (at least 10 characters). `up.sh` generates one (24 hex "
    "characters). Read only when the account is created; an existing account keeps its "
    "password.",
)
ADMIN_PASSWORD_FILE = EnvSetting(
    "",
    "CLASSHUB_ADMIN_PASSWORD_FILE",
    "",
    doc_default="unset",
    doc="A file (inside the hub container) holding that password instead; wins over "
    "`CLASSHUB_ADMIN_PASSWORD`.",
)
