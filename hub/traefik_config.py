"""Traefik's static configuration for classhub, as a pure function and a CLI."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

#: the entrypoint on the student network's gateway (see traefik_static_config)
STUDENTS_ENTRYPOINT = "students"


def traefik_static_config(
    *,
    web_address: str,
    api_address: str,
    students_address: str = "",
    network: str,
    dynamic_dir: str,
    deployment: str = "classhub",
    docker_endpoint: str = "unix:///var/run/docker.sock",
    throttle: str = "100ms",
    log_level: str = "WARN",
    access_log: bool = False,
    access_log_statuses: str = "",
) -> dict:
    """The static config: one public entrypoint, the API on a loopback entrypoint, the
    Docker provider for student containers and the file provider for hub routes.

    ``students_address`` (the student network's gateway and the hub port, e.g.
    ``172.30.0.1:8081``) adds the entrypoint ``students``: the only way from a student
    container to the hub, which listens on loopback only. Its one router (written by the
    hub, :func:`common.routing.hub_api_rule`) passes only the hub API calls a single-user
    server makes; Traefik sets ``X-Real-Ip`` there itself, whatever the container sends.

    The API is unauthenticated, so ``api_address`` must be a loopback address.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", deployment):
        raise ValueError(f"deployment name {deployment!r} must be lower-case letters/digits/-")
    host = api_address.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise ValueError(
            f"Traefik's API address {api_address!r} must be on loopback (127.0.0.1:PORT): "
            "it lists every route without authentication."
        )
    config: dict = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {
                "address": web_address,
                # never let a client spoof headers Traefik sets for the hub
                "forwardedHeaders": {"insecure": False},
                # nor smuggle an alias of one (X_Forwarded_For, X.Forwarded.For), which
                # backends that map header names to variables read as the real header
                "http": {"aliasHeadersStrategy": "delete"},
            },
            "traefik": {"address": api_address},
        },
        "api": {"insecure": True, "dashboard": False},
        # student containers are on a local bridge: a dial that takes longer than this is
        # a container that just stopped (its route goes within providersThrottleDuration)
        "serversTransport": {"forwardingTimeouts": {"dialTimeout": "3s"}},
        "ping": {"entryPoint": "traefik"},
        "log": {"level": log_level},
        "providers": {
            "providersThrottleDuration": throttle,
            "docker": {
                "endpoint": docker_endpoint,
                "exposedByDefault": False,
                "network": network,
                "watch": True,
                # only classhub's labelled containers, never anything else on the host
                "constraints": f"Label(`classhub.deployment`,`{deployment}`)",
            },
            "file": {"directory": dynamic_dir, "watch": True},
        },
    }
    if students_address:
        config["entryPoints"][STUDENTS_ENTRYPOINT] = {
            "address": students_address,
            # containers are hostile: their X-Real-Ip / X-Forwarded-* are replaced
            "forwardedHeaders": {"insecure": False},
            "http": {"aliasHeadersStrategy": "delete"},
        }
    if access_log:
        # request paths only: query strings can carry tokens and are never logged
        config["accessLog"] = {
            "fields": {"defaultMode": "keep", "names": {"RequestPath": "drop"}},
        }
        if access_log_statuses:
            # only the answers worth reading (e.g. "300-599"): a short log to print when a
            # test fails
            config["accessLog"]["filters"] = {"statusCodes": [access_log_statuses]}
    return config


def write_static_config(out_dir: Path, config: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "traefik.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write classhub's Traefik static config.")
    parser.add_argument("--out", required=True, type=Path, help="directory for traefik.yml")
    parser.add_argument("--web-address", default=":8000")
    parser.add_argument("--api-address", default="127.0.0.1:8099")
    parser.add_argument(
        "--students-address",
        default="",
        help="GATEWAY:HUB_PORT: the entrypoint through which student containers reach the hub API",
    )
    parser.add_argument("--network", default="classhub-students")
    parser.add_argument("--dynamic-dir", default="/etc/traefik/dynamic")
    parser.add_argument("--docker-endpoint", default="unix:///var/run/docker.sock")
    parser.add_argument("--log-level", default="WARN")
    parser.add_argument("--deployment", default="classhub", help="CLASSHUB_CONTAINER_PREFIX")
    parser.add_argument(
        "--access-log",
        default="",
        metavar="STATUSES",
        help="log the requests answered with these statuses (e.g. 300-599); paths only, "
        "never query strings",
    )
    args = parser.parse_args(argv)
    config = traefik_static_config(
        web_address=args.web_address,
        api_address=args.api_address,
        students_address=args.students_address,
        network=args.network,
        dynamic_dir=args.dynamic_dir,
        docker_endpoint=args.docker_endpoint,
        deployment=args.deployment,
        log_level=args.log_level,
        access_log=bool(args.access_log),
        access_log_statuses=args.access_log,
    )
    write_static_config(args.out, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
