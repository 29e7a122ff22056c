"""Every setting of the JWTAuthenticator, as traits with environment defaults.

Set them as ``c.JWTAuthenticator.<name> = ...`` in a config file, or through the
``CLASSHUB_*`` environment variables named in each ``help``.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Bool, Enum, Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from common.hubenv import ADMIN_PASSWORD, ADMIN_PASSWORD_FILE, REDIS_URL
from common.settings import EnvSetting, EnvTable, comma_list, named, one_of, switch

from .client_address import proxy_network
from .roles import ROLES, STUDENT_SCOPES
from .sessions import POLICIES, TAKEOVER


def _proxies(raw: str) -> list[str]:
    """``CLASSHUB_TRUSTED_PROXIES``: addresses or networks separated by commas."""
    values = comma_list(raw)
    for value in values:
        proxy_network(value)
    return values


def _idle_seconds(raw: str) -> int:
    value = int(raw)
    if value < 60:
        raise ValueError("shorter than 60 seconds")
    return value


def _algorithm_default(auth: AuthSettings) -> str:
    # a public key or JWKS wins over a secret (make_keys uses them first)
    if auth.jwks_url or auth.jwt_public_key_file or not auth.jwt_secret:
        return "RS256"
    return "HS256"


#: the authenticator's settings from the hub's environment: the @defaults of its traits
AUTH_TABLE = EnvTable(
    (
        EnvSetting("jwt_secret", "CLASSHUB_JWT_SECRET", "", sensitive=True),
        EnvSetting("jwt_public_key_file", "CLASSHUB_JWT_PUBLIC_KEY_FILE", ""),
        EnvSetting("jwks_url", "CLASSHUB_JWKS_URL", ""),
        EnvSetting(
            "jwt_algorithm",
            "CLASSHUB_JWT_ALGORITHM",
            _algorithm_default,
            doc_default="HS256 with a jwt_secret, else RS256",
        ),
        EnvSetting("jwt_issuer", "CLASSHUB_JWT_ISSUER", "classhub"),
        EnvSetting("jwt_audience", "CLASSHUB_JWT_AUDIENCE", "classhub"),
        EnvSetting("username_claim", "CLASSHUB_JWT_USERNAME_CLAIM", "sub"),
        EnvSetting(
            "password_login",
            "CLASSHUB_PASSWORD_LOGIN",
            True,
            switch,
            "1 or 0",
            doc_default="True (0, false or no switch it off)",
        ),
        EnvSetting(
            "accounts_db_url",
            "CLASSHUB_ACCOUNTS_DB_URL",
            "",
            also=("CLASSHUB_DB_URL",),
            sensitive=True,
            doc_default="CLASSHUB_DB_URL",
        ),
        EnvSetting("first_admin", "CLASSHUB_ADMIN_USER", ""),
        REDIS_URL.of("redis_url"),
        EnvSetting(
            "session_policy",
            "CLASSHUB_SESSION_POLICY",
            TAKEOVER,
            one_of(POLICIES, "not a policy"),
            "'takeover' or 'reject'",
        ),
        EnvSetting(
            "session_idle_timeout",
            "CLASSHUB_SESSION_IDLE_TIMEOUT",
            7200,
            _idle_seconds,
            "a number of seconds, at least 60",
        ),
        EnvSetting(
            "trusted_proxies",
            "CLASSHUB_TRUSTED_PROXIES",
            ["127.0.0.1", "::1"],
            _proxies,
            "addresses or networks separated by commas, such as 10.217.0.0/24",
            doc_default="127.0.0.1,::1",
        ),
    )
)


@AUTH_TABLE.install
class AuthSettings(LoggingConfigurable):
    # ----- JWT -----
    jwt_secret = Unicode(
        config=True,
        help="""Shared secret for HS256 sign-in tokens, at least 32 bytes (``openssl rand
        -hex 32``; ``up.sh`` writes a generated one); a value that looks like a PEM or ssh
        key is refused. Your portal or LMS signs each sign-in token with it. Whoever has it
        can sign in as anybody, admins included: keep it out of the repository. Leave empty
        and set ``jwt_public_key_file`` or ``jwks_url`` for RS256/ES256.

        Example: ``c.JWTAuthenticator.jwt_secret = open("/run/secrets/jwt").read().strip()``
        """,
    )
    jwt_public_key_file = Unicode(
        config=True,
        help="""PEM public key file (``-----BEGIN PUBLIC KEY-----``, a path inside the hub
        container) for RS256 (RSA, at least 2048 bits) or ES256 (EC P-256) sign-in tokens
        (see ``jwt_algorithm``). A private key is refused. Used instead of ``jwt_secret``
        when set.

        Example: ``c.JWTAuthenticator.jwt_public_key_file = "/etc/classhub/portal.pem"``
        """,
    )
    jwks_url = Unicode(
        config=True,
        help="""JWKS address of your identity provider, pinned here (a token's ``jku`` or
        ``x5u`` is never followed). Keys are cached; an unknown ``kid`` refreshes the set at
        most once per ``jwks_min_refresh_interval``.

        Example: ``c.JWTAuthenticator.jwks_url = "https://idp.example.edu/.well-known/jwks.json"``
        """,
    )
    jwks_min_refresh_interval = Float(
        60.0,
        config=True,
        help="""Seconds between two JWKS downloads at most, so tokens with made-up key ids
        cannot hammer the identity provider.

        Example: ``c.JWTAuthenticator.jwks_min_refresh_interval = 300``
        """,
    )
    jwt_algorithm = Enum(
        ["HS256", "RS256", "ES256"],
        config=True,
        help="""The one algorithm accepted, fixed here and never read from the token.

        HS256 with ``jwt_secret``; RS256 or ES256 with ``jwt_public_key_file`` or
        ``jwks_url``. Without a value, HS256 when a secret is set and RS256 otherwise. Set it
        explicitly when you use a public key or a JWKS: ``up.sh`` always writes
        CLASSHUB_JWT_SECRET, so the default is HS256, and HS256 with a key file or JWKS
        stops the hub at start-up.

        Example: ``c.JWTAuthenticator.jwt_algorithm = "ES256"``
        """,
    )
    jwt_issuer = Unicode(
        config=True,
        help="""Required ``iss`` claim.

        Example: ``c.JWTAuthenticator.jwt_issuer = "https://portal.example.edu"``
        """,
    )
    jwt_audience = Unicode(
        config=True,
        help="""Required ``aud`` claim: tokens minted for another service are refused.

        Example: ``c.JWTAuthenticator.jwt_audience = "classhub.example.edu"``
        """,
    )
    username_claim = Unicode(
        config=True,
        help="""Claim holding the username. It is normalised (Unicode NFC, lower case) but
        never shortened: ``alice@a.edu`` and ``alice@b.edu`` stay two people. Cannot be a
        registered claim (``exp``, ``iat``, ``nbf``, ``iss``, ``aud``, ``jti``).

        Example: ``c.JWTAuthenticator.username_claim = "email"``
        """,
    )
    role_claim = Unicode(
        "role",
        config=True,
        help="""Claim giving the role: "admin", "teacher" or "student".

        Example: ``c.JWTAuthenticator.role_claim = "classhub_role"``
        """,
    )
    default_role = Enum(
        list(ROLES),
        default_value="student",
        config=True,
        help="""Role for a token without the role claim.

        Example: ``c.JWTAuthenticator.default_role = "student"``
        """,
    )
    groups_claim = Unicode(
        "",
        config=True,
        help="""Optional claim with a list of group names. When set, the authenticator
        manages group membership (``Authenticator.manage_groups``): each sign-in sets the
        person's groups to the claim, and the group API is switched off.

        Example: ``c.JWTAuthenticator.groups_claim = "groups"``
        """,
    )
    jwt_leeway = Integer(
        30,
        config=True,
        help="""Clock skew allowed for ``exp``, ``nbf`` and ``iat``, in seconds (0-60).

        Example: ``c.JWTAuthenticator.jwt_leeway = 10``
        """,
    )
    max_token_age = Integer(
        600,
        config=True,
        help="""Oldest ``iat`` accepted, in seconds: a sign-in token is for signing in now.

        Example: ``c.JWTAuthenticator.max_token_age = 120``
        """,
    )
    max_token_bytes = Integer(
        8192,
        config=True,
        help="""Longest token accepted, checked before decoding anything.

        Example: ``c.JWTAuthenticator.max_token_bytes = 4096``
        """,
    )

    # ----- local accounts -----
    password_login = Bool(
        True,
        config=True,
        help="""Allow sign-in with a local username and password (accounts in PostgreSQL,
        argon2 hashes). Switch off where everyone comes through single sign-on: the login
        page then shows only the token box, a password sign-in answers 400, no account
        database is opened (so no first admin is created) and the accounts API answers
        404.

        Example: ``c.JWTAuthenticator.password_login = False``
        """,
    )
    accounts_db_url = Unicode(
        config=True,
        help="""PostgreSQL database for local accounts (schema ``classhub_auth``); by
        default the hub's database. ``postgresql://`` and SQLAlchemy's
        ``postgresql+psycopg://`` are accepted. While ``password_login`` is on it must be
        PostgreSQL, or the hub does not start.

        Example: ``c.JWTAuthenticator.accounts_db_url = "postgresql://hub:pw@db/classhub"``
        """,
    )
    first_admin = Unicode(
        config=True,
        help="""Admin account created at start-up when missing, with the password from
        CLASSHUB_ADMIN_PASSWORD_FILE (or CLASSHUB_ADMIN_PASSWORD; nothing is created when
        the password is empty). An existing account is left alone: its password and role
        do not change.

        Example: ``c.JWTAuthenticator.first_admin = "admin"``
        """,
    )

    # ----- sessions -----
    redis_url = Unicode(
        config=True,
        help="""Redis holding the live sessions, used token ids and login failure counts
        (the owner gate reads the same sessions). Set from ``CLASSHUB_REDIS_URL``; it may
        hold a password: never logged.

        Example: ``c.JWTAuthenticator.redis_url = "redis://:pw@redis:6379/0"``
        """,
    )
    redis_prefix = Unicode(
        "classhub",
        config=True,
        help="""Prefix of every Redis key, so two deployments can share one Redis.

        Example: ``c.JWTAuthenticator.redis_prefix = "course-a"``
        """,
    )
    redis_timeout = Float(
        2.0,
        config=True,
        help="""Seconds each Redis call may take before sign-in answers 503.

        Example: ``c.JWTAuthenticator.redis_timeout = 1.0``
        """,
    )
    session_policy = Enum(
        list(POLICIES),
        config=True,
        help="""What a second sign-in of the same person does. "takeover": the new sign-in
        wins and the old browser loses access within seconds. "reject": the new sign-in is
        refused with a message saying where the other session is and how to end it.

        Example: ``c.JWTAuthenticator.session_policy = "reject"``
        """,
    )
    session_idle_timeout = Integer(
        config=True,
        help="""Seconds without activity after which a session ends (at least 60 through
        the variable).

        Example: ``c.JWTAuthenticator.session_idle_timeout = 3600``
        """,
    )

    # ----- login attempt limits -----
    login_failures_per_user = Integer(
        5,
        config=True,
        help="""Failed password sign-ins of one account from one client address per window
        before that account is locked *from that address* for the rest of the window. The
        owner signing in from another address is not affected: a guesser cannot lock
        anyone out (the account-wide ``login_slowdown_*`` settings slow guessing from many
        addresses down instead). At least 1.

        Example: ``c.JWTAuthenticator.login_failures_per_user = 10``
        """,
    )
    login_failures_per_address = Integer(
        50,
        config=True,
        help="""Failed sign-ins (passwords and refused tokens) per client address per window
        before every sign-in from that address is refused for the rest of the window (a
        classroom behind one NAT shares an address, so keep this well above the per-account
        limit). At least 1.

        Example: ``c.JWTAuthenticator.login_failures_per_address = 200``
        """,
    )
    login_failure_window = Integer(
        900,
        config=True,
        help="""Length of the failure-counting window, in seconds, from the first failure.

        Example: ``c.JWTAuthenticator.login_failure_window = 600``
        """,
    )
    login_slowdown_after = Integer(
        5,
        config=True,
        help="""Failed password sign-ins of one account, from all addresses together, in a
        window after which every further password attempt for that account waits before it
        is checked (``login_slowdown_step`` seconds more per failure, at most
        ``login_slowdown_max``). Never a lock: the owner waits a few seconds at worst, while
        guessing from many addresses stays slow. At least 1.

        Example: ``c.JWTAuthenticator.login_slowdown_after = 10``
        """,
    )
    login_slowdown_step = Float(
        0.5,
        config=True,
        help="""Seconds of waiting added per failure beyond ``login_slowdown_after``.

        Example: ``c.JWTAuthenticator.login_slowdown_step = 1.0``
        """,
    )
    login_slowdown_max = Float(
        3.0,
        config=True,
        help="""The longest wait, in seconds, before a password of a slowed-down account is
        checked (0-10; 0 switches the slow-down off).

        Example: ``c.JWTAuthenticator.login_slowdown_max = 5``
        """,
    )
    trusted_proxies = List(
        Unicode(),
        config=True,
        help="""Addresses or networks whose ``X-Real-Ip``/``X-Forwarded-For`` headers name
        the client: Traefik's, as the hub sees it. On one machine that is loopback (the hub
        listens there only). In a Swarm stack Traefik reaches the hub over the ``core``
        overlay network from an address Docker picks, so the stack trusts that network
        (``CLASSHUB_TRUSTED_PROXIES=10.217.0.0/24``; student servers are never on it). From
        any other peer the peer's own address is the client's, whatever the headers say. The
        address is used by the login limits and shown on the Sessions page.

        Example: ``c.JWTAuthenticator.trusted_proxies = ["127.0.0.1", "10.217.0.0/24"]``
        """,
    )

    # ----- roles -----
    student_scopes = List(
        Unicode(),
        list(STUDENT_SCOPES),
        config=True,
        help="""Scopes of JupyterHub's ``user`` role, which everyone holds. Never add
        ``tokens``: a token must not outlive a revoked session.

        Example: ``c.JWTAuthenticator.student_scopes = ["read:users!user", "servers!user",
        "access:servers!user", "users:activity!user"]``
        """,
    )
    teacher_scopes = List(
        Unicode(),
        config=True,
        help="""Extra scopes of the ``classhub-teacher`` role (the classes service narrows
        teachers to their classes' groups).

        Example: ``c.JWTAuthenticator.teacher_scopes = ["read:users:name"]``
        """,
    )

    # ----- JupyterHub defaults that this authenticator relies on -----

    @default("manage_roles")
    def _manage_roles(self):
        return True

    @default("reset_managed_roles_on_startup")
    def _reset_managed_roles(self):
        # load_managed_roles returns the fixed roles (admin included), so their assignments
        # are kept; per-class teacher roles are dropped at start-up and restored by
        # refresh_user on the teacher's next request. Off, JupyterHub 6.1 fails on restart
        # with a KeyError in its start-up role assignment.
        return True

    @default("manage_groups")
    def _manage_groups(self):
        return bool(self.groups_claim)

    @default("enable_auth_state")
    def _enable_auth_state(self):
        return True

    @default("allow_all")
    def _allow_all(self):
        # a verified token or a local account is the permission to sign in; allowed_users
        # and blocked_users still apply when an admin sets them
        return not self.allowed_users

    @default("auth_refresh_age")
    def _auth_refresh_age(self):
        return 1  # check the session on (nearly) every request; see refresh_user

    @default("auth_refresh_strict")
    def _auth_refresh_strict(self):
        return True  # an ended session's OAuth tokens stop working on API requests too

    # ----- checks with fix-it messages -----

    @validate("jwt_leeway")
    def _check_leeway(self, proposal):
        if not 0 <= proposal.value <= 60:
            raise TraitError(
                f"jwt_leeway must be between 0 and 60 seconds, got {proposal.value}; "
                "fix the clocks (NTP) instead of widening the leeway."
            )
        return proposal.value

    @validate("jwt_secret")
    def _check_secret(self, proposal):
        if proposal.value and len(proposal.value.encode()) < 32:
            raise TraitError(
                "jwt_secret (CLASSHUB_JWT_SECRET) must be at least 32 bytes; generate one "
                "with: openssl rand -hex 32"
            )
        return proposal.value

    @validate("session_idle_timeout", "redis_timeout", "max_token_age", "login_failure_window")
    def _check_positive(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"{named(self, proposal)} must be positive, got {proposal.value}")
        return proposal.value

    @validate("login_failures_per_user", "login_failures_per_address", "login_slowdown_after")
    def _check_at_least_one(self, proposal):
        if proposal.value < 1:
            raise TraitError(f"{named(self, proposal)} must be at least 1, got {proposal.value}")
        return proposal.value

    @validate("login_slowdown_step", "login_slowdown_max")
    def _check_slowdown(self, proposal):
        if not 0 <= proposal.value <= 10:
            raise TraitError(
                f"{named(self, proposal)} must be between 0 and 10 seconds, got {proposal.value}: "
                "a longer wait would lock the owner out in all but name."
            )
        return proposal.value

    @validate("trusted_proxies")
    def _check_proxies(self, proposal):
        for value in proposal.value:
            try:
                proxy_network(value)
            except ValueError:
                raise TraitError(
                    "trusted_proxies must list IP addresses or networks (such as 127.0.0.1 "
                    f"or 10.217.0.0/24), got {value!r}"
                ) from None
        return proposal.value

    @validate("student_scopes")
    def _check_student_scopes(self, proposal):
        bad = [s for s in proposal.value if s.split("!")[0] in ("tokens", "self", "admin:users")]
        if bad:
            raise TraitError(
                f"student_scopes must not contain {bad}: a student-held token or admin right "
                "would outlive a revoked session. Remove them."
            )
        return proposal.value

    # ----- objects built from the settings -----

    def first_admin_password(self) -> str:
        path = ADMIN_PASSWORD_FILE.read()
        if path:
            return Path(path).read_text().strip()
        return ADMIN_PASSWORD.read()

    def make_keys(self):
        """The key source for token sign-in, or None when token sign-in is not set up."""
        from .jwt_keys import JWKSKeys, StaticKey

        if self.jwks_url:
            return JWKSKeys(
                self.jwks_url,
                algorithm=self.jwt_algorithm,
                min_refresh_interval=self.jwks_min_refresh_interval,
            )
        if self.jwt_public_key_file:
            pem = Path(self.jwt_public_key_file).read_bytes()
            return StaticKey.from_public_pem(pem, self.jwt_algorithm)
        if self.jwt_secret:
            if self.jwt_algorithm != "HS256":
                raise ValueError("jwt_secret is for HS256; set jwt_algorithm = 'HS256'.")
            return StaticKey.from_secret(self.jwt_secret.encode())
        return None

    def verify_settings(self):
        from .jwt_verify import VerifySettings

        return VerifySettings(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            username_claim=self.username_claim,
            role_claim=self.role_claim,
            groups_claim=self.groups_claim,
            default_role=self.default_role,
            leeway=self.jwt_leeway,
            max_age=self.max_token_age,
            max_token_bytes=self.max_token_bytes,
        )

    def make_account_store(self):
        from .accounts import AccountStore

        if not self.accounts_db_url.startswith(("postgresql", "postgres")):
            raise ValueError(
                "Local accounts live in PostgreSQL: set CLASSHUB_ACCOUNTS_DB_URL (or "
                "CLASSHUB_DB_URL) to a postgresql:// address, or set "
                "c.JWTAuthenticator.password_login = False."
            )
        return AccountStore(self.accounts_db_url)
