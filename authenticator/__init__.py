"""classhub sign-in: the JWTAuthenticator, local accounts and single sessions."""


def __getattr__(name):
    # lazy, so the command-line tools (classhub-user, classhub-token) stay light
    if name == "JWTAuthenticator":
        from .authenticator import JWTAuthenticator

        return JWTAuthenticator
    raise AttributeError(name)


__all__ = ["JWTAuthenticator"]
