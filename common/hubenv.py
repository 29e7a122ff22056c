"""The ``CLASSHUB_*`` variables that components of different layers read, declared once.

A variable that feeds one class's trait is declared in that class's table (see
``common/settings.py``). These few are read by components that may not import each other
(the hub's configuration, the spawner, the owner gate, the proxy), so their one
declaration lives here; a table takes one over for its trait with :meth:`EnvSetting.of`.
"""

from __future__ import annotations

from .settings import EnvSetting, switch, whole

#: the hub's state directory (cookie secret, default database, Traefik's dynamic files)
DATA_DIR = EnvSetting("", "CLASSHUB_DATA_DIR", "/srv/classhub")

#: the Docker network of the student containers (the spawner's ``network_name``; the hub
#: finds its own address for them at this network's gateway)
STUDENT_NETWORK = EnvSetting("", "CLASSHUB_STUDENT_NETWORK", "classhub-students")

#: the owner gate's port on 127.0.0.1 (the gate listens there; the spawner points Traefik
#: at it)
GATE_PORT = EnvSetting("", "CLASSHUB_GATE_PORT", 8082, whole, "a port number")

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
