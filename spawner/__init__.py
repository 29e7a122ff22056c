"""classhub's spawner: one hardened, Traefik-routed container per student server."""

from .readiness import SpawnError
from .spawner import ClassroomSpawner

__all__ = ["ClassroomSpawner", "SpawnError"]
