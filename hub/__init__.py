"""Hub-side glue for classhub: the Traefik proxy class, naming and config helpers."""
