"""classhub authenticators."""

from .local import LocalPasswordAuthenticator

__all__ = ["LocalPasswordAuthenticator"]
