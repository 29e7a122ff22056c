"""The classes service: rosters, per-class environments and the hub groups that carry
them. See :mod:`services.classes.handlers` for the API and
:func:`services.classes.config.classes_service_config` for the hub configuration."""
