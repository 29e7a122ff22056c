"""Unit tests of the authenticator's small parts: settings checks, roles, messages, the
URL-credential check and the log scrubber. No services; the session store is a fake."""

import logging

import pytest
from traitlets import TraitError

from authenticator.authenticator import JWTAuthenticator, too_many
from authenticator.bearer import bearer_token
from authenticator.client_address import client_address, proxy_network
from authenticator.handlers import credential_in_query
from authenticator.messages import describe_agent, reject_message
from authenticator.ratelimit import Limits, Verdict, slowdown
from authenticator.roles import roles_for
from authenticator.sessions import Session
from common.errors import StoreUnavailable
from hub.logscrub import JWTScrubFilter, scrub

pytestmark = pytest.mark.unit

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"jwt_leeway": 61}, "between 0 and 60"),
        ({"jwt_leeway": -1}, "between 0 and 60"),
        ({"jwt_secret": "short"}, "at least 32 bytes"),
        ({"session_idle_timeout": 0}, "positive"),
        ({"student_scopes": ["servers!user", "tokens!user"]}, "must not contain"),
        ({"session_policy": "both"}, "takeover"),
    ],
)
def test_settings_are_checked_with_fixit_messages(settings, message):
    with pytest.raises(TraitError, match=message):
        JWTAuthenticator(**settings)


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("CLASSHUB_SESSION_POLICY", "reject")
    monkeypatch.setenv("CLASSHUB_SESSION_IDLE_TIMEOUT", "900")
    monkeypatch.setenv("CLASSHUB_DB_URL", "postgresql://db/hub")
    a = JWTAuthenticator()
    assert a.jwt_algorithm == "HS256"
    assert a.session_policy == "reject"
    assert a.session_idle_timeout == 900
    assert a.accounts_db_url == "postgresql://db/hub"
    # what the rest of the design relies on
    assert a.manage_roles and a.enable_auth_state and a.auth_refresh_strict
    assert a.auth_refresh_age == 1
    assert a.manage_groups is False


def test_a_public_key_or_jwks_means_rs256_even_with_a_secret(monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", "s" * 40)
    assert JWTAuthenticator().jwt_algorithm == "HS256"
    assert JWTAuthenticator(jwks_url="https://idp.example/jwks").jwt_algorithm == "RS256"
    assert JWTAuthenticator(jwt_public_key_file="/k.pem").jwt_algorithm == "RS256"


def test_groups_claim_switches_on_managed_groups():
    assert JWTAuthenticator(groups_claim="groups").manage_groups is True


def test_allow_all_unless_an_allow_list_is_set():
    assert JWTAuthenticator().allow_all is True
    assert JWTAuthenticator(allowed_users={"ann"}).allow_all is False


def test_usernames_keep_domains_and_refuse_invisible_characters():
    a = JWTAuthenticator()
    assert a.normalize_username("Alice@A.edu") == "alice@a.edu"
    assert a.normalize_username("alice@b.edu") != a.normalize_username("alice@a.edu")
    assert a.validate_username("alice@a.edu")
    assert not a.validate_username("ann\u200b")
    assert not a.validate_username("a/b")


def test_no_role_carries_the_tokens_scope_for_students_or_teachers():
    a = JWTAuthenticator()
    defs = a.roles()
    for role in ("student", "teacher"):
        for r in roles_for(role, defs):
            assert not any(s.split("!")[0] in ("tokens", "self") for s in r["scopes"]), r
    names = lambda role: [r["name"] for r in roles_for(role, defs)]  # noqa: E731
    assert names("student") == ["user", "classhub-student"]
    assert names("teacher") == ["user", "classhub-teacher"]
    assert names("admin") == ["user", "admin"]
    with pytest.raises(ValueError):
        roles_for("wizard", defs)


def test_auth_model_sets_admin_only_for_admins():
    a = JWTAuthenticator()
    assert a.auth_model("t", "teacher", "jwt", {})["admin"] is False
    model = a.auth_model("x", "admin", "password", {})
    assert model["admin"] is True and model["auth_state"]["method"] == "password"


def test_reject_message_says_since_when_where_and_how_to_end_it():
    live = Session(
        user="ann",
        session_id="s",
        started=0,
        address="10.1.2.3",
        agent="Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    )
    msg = reject_message(live, 7200)
    assert "since 00:00 UTC on 01 Jan" in msg
    assert "Firefox on Linux at 10.1.2.3" in msg
    assert "Sign out there" in msg and "120 minutes" in msg and "admin" in msg
    assert "s" != live.session_id or "session_id" not in msg


@pytest.mark.parametrize(
    "agent, name",
    [
        ("Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36 Edg/120.0", "Edge on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1", "Safari on macOS"),
        ("curl/8.0", "curl"),
        ("", "a browser"),
    ],
)
def test_describe_agent(agent, name):
    assert describe_agent(agent) == name


@pytest.mark.parametrize(
    "query, refused",
    [
        ({"token": [b"abc"]}, True),
        ({"Token": [b"abc"]}, True),
        ({"jwt": [b"x"]}, True),
        ({"t": [JWT.encode()]}, True),
        ({"next": [b"/hub/home?x=" + JWT.encode()]}, True),
        ({"next": [b"/hub/home"]}, False),
        ({}, False),
    ],
)
def test_credentials_in_the_url_are_detected(query, refused):
    assert credential_in_query(query) is refused


def test_log_scrubber_removes_jwts_from_every_record():
    assert scrub(f"GET /hub/login?t={JWT} 400") == "GET /hub/login?t=[jwt] 400"
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "%d %s", (400, f"/a?x={JWT}"), None)
    assert JWTScrubFilter().filter(record)
    assert record.getMessage() == "400 /a?x=[jwt]"


class FakeRequest:
    def __init__(self, headers=None):
        self.headers = headers or {}


class FakeHandler:
    def __init__(self, headers=None, token=None, session_cookie=None):
        self.request = FakeRequest(headers)
        self._token, self._cookie = token, session_cookie

    def get_token(self):
        return self._token

    def get_session_cookie(self):
        return self._cookie


class FakeToken:
    def __init__(self, user_id, session_id):
        self.user_id, self.session_id = user_id, session_id


class FakeUser:
    id, name = 7, "ann"
    roles: list = []
    groups: list = []

    @property
    def orm_user(self):
        return self


class FakeSessions:
    def __init__(self, live=None, down=False):
        self.live, self.down, self.touched = live, down, []

    async def touch(self, user, sid, extend=True):
        if self.down:
            raise StoreUnavailable("down", store="sessions")
        self.touched.append((user, sid))
        return sid == self.live


def test_bearer_token_is_read_only_from_the_bearer_scheme():
    assert bearer_token(FakeHandler({"Authorization": "Bearer abc"})) == "abc"
    assert bearer_token(FakeHandler({"Authorization": "bearer  abc "})) == "abc"
    assert bearer_token(FakeHandler({"Authorization": "token abc"})) is None
    assert bearer_token(FakeHandler({})) is None


async def test_refresh_checks_the_browser_session():
    a = JWTAuthenticator()
    a.sessions = FakeSessions(live="s1")
    assert await a.refresh_user(FakeUser(), FakeHandler(session_cookie="s1")) is True
    assert await a.refresh_user(FakeUser(), FakeHandler(session_cookie="old")) is False
    assert await a.refresh_user(FakeUser(), FakeHandler()) is False


async def test_refresh_checks_the_session_of_an_oauth_token():
    a = JWTAuthenticator()
    a.sessions = FakeSessions(live="s1")
    assert await a.refresh_user(FakeUser(), FakeHandler(token=FakeToken(7, "s1"))) is True
    assert await a.refresh_user(FakeUser(), FakeHandler(token=FakeToken(7, "s0"))) is False
    # a server's own token (no session) is not a browser session
    assert await a.refresh_user(FakeUser(), FakeHandler(token=FakeToken(7, None))) is True


async def test_refresh_keeps_serving_while_redis_is_down():
    a = JWTAuthenticator()
    a.sessions = FakeSessions(down=True)
    assert await a.refresh_user(FakeUser(), FakeHandler(session_cookie="s1")) is True


def test_too_many_message():
    account = too_many(Verdict(retry_after=900, locked="account"))
    assert "for this account from this address. Try again in 15 minutes" in account
    assert "sign in from another device" in account
    address = too_many(Verdict(retry_after=20, locked="address"))
    assert "from this address. Try again in 1 minute," in address


def test_the_slow_down_grows_and_is_capped():
    limits = Limits(slowdown_after=5, slowdown_step=0.5, slowdown_max=3.0)
    assert [slowdown(n, limits) for n in (0, 4, 5, 6, 9, 100)] == [0, 0, 0.5, 1.0, 2.5, 3.0]


@pytest.mark.parametrize(
    "trait, value, match",
    [
        ("login_failures_per_user", 0, "at least 1"),
        ("login_slowdown_max", 60, "between 0 and 10"),
        ("trusted_proxies", ["traefik"], "IP addresses or networks"),
        ("trusted_proxies", ["10.217.0.5/24"], "IP addresses or networks"),  # host bits set
    ],
)
def test_limit_settings_are_checked(trait, value, match):
    with pytest.raises(TraitError, match=match):
        JWTAuthenticator(**{trait: value})


class FakeContext:
    def __init__(self, peer):
        self.address = (peer, 40000)


class FakeConnection:
    def __init__(self, peer):
        self.context = FakeContext(peer)


class FakeXheadersRequest:
    """What tornado makes with xheaders: remote_ip from X-Real-Ip, the peer kept apart."""

    def __init__(self, peer, forwarded=None):
        self.connection = FakeConnection(peer)
        self.remote_ip = forwarded or peer


@pytest.mark.parametrize(
    "peer, forwarded, seen",
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # Traefik says who it was
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("172.30.0.5", "127.0.0.1", "172.30.0.5"),  # anyone else: their own address
        ("172.30.0.5", None, "172.30.0.5"),
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_forwarded_addresses_count_only_from_trusted_proxies(peer, forwarded, seen):
    request = FakeXheadersRequest(peer, forwarded)
    proxies = [proxy_network("127.0.0.1"), proxy_network("::1")]
    assert client_address(request, proxies) == seen


@pytest.mark.parametrize(
    "peer, forwarded, seen",
    [
        ("10.217.0.9", "198.51.100.7", "198.51.100.7"),  # Traefik's task on the core network
        ("10.217.1.9", "198.51.100.7", "10.217.1.9"),  # next door: not trusted
        ("10.218.0.4", "10.217.0.9", "10.218.0.4"),  # a student server naming a proxy
        ("::1", "198.51.100.7", "::1"),  # v6 peer, v4 network only
    ],
)
def test_a_trusted_network_covers_every_address_in_it(peer, forwarded, seen):
    request = FakeXheadersRequest(peer, forwarded)
    assert client_address(request, [proxy_network("10.217.0.0/24")]) == seen


def test_trusted_proxies_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLASSHUB_TRUSTED_PROXIES", "127.0.0.1, 10.217.0.0/24")
    auth = JWTAuthenticator()
    assert auth.trusted_proxies == ["127.0.0.1", "10.217.0.0/24"]
    request = FakeXheadersRequest("10.217.0.3", "203.0.113.9")
    assert auth.client_address(type("H", (), {"request": request})()) == "203.0.113.9"
    monkeypatch.setenv("CLASSHUB_TRUSTED_PROXIES", "traefik")
    with pytest.raises(Exception, match="CLASSHUB_TRUSTED_PROXIES"):
        JWTAuthenticator().trusted_proxies  # noqa: B018 - reading runs the @default
