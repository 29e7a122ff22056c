"""What the hub-side configurations of the services share (pure functions, no I/O).

Each service's ``config.py`` builds its ``c.JupyterHub.services`` entry and role from the
hub's environment; :mod:`services.config` calls them.
"""

from __future__ import annotations

from collections.abc import Mapping

from common.settings import EnvSetting, whole

#: the port on 127.0.0.1 of each service, from which the hub makes its ``url`` (the grades
#: service reads the files service's too, to call its API)
PORTS = {
    name: EnvSetting("", f"CLASSHUB_{name.upper()}_PORT", port, whole, "a port number")
    for name, port in (("classes", 10101), ("files", 10102), ("grades", 10103))
}


def service_s3_keys(env: Mapping[str, str], service: str) -> tuple[str, str]:
    """``(access key, secret key)`` of ``service``'s own S3 identity, limited to its key
    prefixes (``CLASSHUB_S3_<SERVICE>_ACCESS_KEY``/``_SECRET_KEY``, see
    hub/stores/s3.py), else the shared ``CLASSHUB_S3_ACCESS_KEY``/``_SECRET_KEY`` of a
    deployment with one identity."""
    keys = []
    for part in ("ACCESS_KEY", "SECRET_KEY"):
        own, shared = f"CLASSHUB_S3_{service.upper()}_{part}", f"CLASSHUB_S3_{part}"
        value = env.get(own) or env.get(shared)
        if not value:
            raise ValueError(
                f"The {service} service needs {own} (or {shared}); scripts/up.sh generates it."
            )
        keys.append(value)
    return keys[0], keys[1]
