"""Docker labels that make Traefik route a student's server, and nothing else."""

from __future__ import annotations

from urllib.parse import quote

from common.routing import route_name, traefik_rule

MANAGED_LABEL = "classhub.managed"
#: Traefik of one deployment only routes containers carrying its deployment name.
DEPLOYMENT_LABEL = "classhub.deployment"


def traefik_labels(
    *,
    routespec: str,
    port: int,
    network: str,
    entrypoint: str,
    name_prefix: str = "classhub",
    gate_url: str = "",
) -> dict[str, str]:
    """Labels for Traefik's Docker provider (``exposedByDefault=false``).

    Router and service share one name derived from the route spec; the rule is built by
    :func:`common.routing.traefik_rule`, which validates the spec and escapes every unsafe
    character, so a hostile user name cannot inject or widen the rule. With ``gate_url``,
    Traefik asks the owner gate (authenticator/gate.py) before it forwards any request:
    only the server's owner gets through.
    """
    name = route_name(routespec, name_prefix)
    labels = {
        "traefik.enable": "true",
        "traefik.docker.network": network,
        f"traefik.http.routers.{name}.rule": traefik_rule(routespec),
        f"traefik.http.routers.{name}.entrypoints": entrypoint,
        f"traefik.http.routers.{name}.service": name,
        f"traefik.http.services.{name}.loadbalancer.server.port": str(int(port)),
    }
    if gate_url:
        gate = f"traefik.http.middlewares.{name}-gate.forwardauth"
        labels.update(
            {
                f"{gate}.address": gate_url,
                # the gate needs only these; nothing else of the request leaves Traefik
                f"{gate}.authRequestHeaders": "Cookie,Authorization",
                f"{gate}.trustForwardHeader": "false",
                f"traefik.http.routers.{name}.middlewares": f"{name}-gate",
            }
        )
    return labels


def identity_labels(
    *, user: str, server: str, routespec: str, deployment: str = "classhub"
) -> dict[str, str]:
    """Labels that tell admins and clean-up scripts whose container this is.

    Values are percent-encoded so no user-chosen character (braces, newlines, ...) ever
    reaches Docker or DockerSpawner's template rendering raw.
    """
    return {
        MANAGED_LABEL: "true",
        DEPLOYMENT_LABEL: deployment,
        "classhub.user": quote(user, safe="@~"),
        "classhub.server": quote(server, safe="@~"),
        "classhub.routespec": routespec,
    }
