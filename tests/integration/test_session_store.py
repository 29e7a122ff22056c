"""The Redis session store and login limiter against a real Redis server."""

import asyncio
import secrets

import pytest

from authenticator.ratelimit import Limits, LoginLimiter, Verdict
from authenticator.sessions import REJECT, TAKEOVER, Session, SessionStore
from common.errors import StoreUnavailable
from harness.stack import start_redis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield proc, port
    proc.stop()


@pytest.fixture
async def store(redis_server):
    _, port = redis_server
    s = SessionStore.from_url(
        f"redis://127.0.0.1:{port}/0",
        timeout=1.0,
        idle_timeout=60,
        prefix="t" + secrets.token_hex(4),
    )
    yield s
    await s.close()


def session(user, sid=None):
    return Session(user=user, session_id=sid or secrets.token_hex(8), started=1000.0)


async def test_takeover_replaces_and_reports_the_old_session(store):
    first = await store.begin(session("ann"), TAKEOVER)
    assert first.accepted and first.replaced is None
    second = await store.begin(session("ann"), TAKEOVER)
    assert second.accepted
    assert second.replaced.session_id == first.session.session_id
    assert await store.touch("ann", second.session.session_id)
    assert not await store.touch("ann", first.session.session_id)


async def test_reject_keeps_the_first_session_and_says_which(store):
    first = await store.begin(session("bob"), REJECT)
    second = await store.begin(session("bob"), REJECT)
    assert not second.accepted
    assert second.session.session_id == first.session.session_id
    # the same browser signing in again is not a second session
    again = await store.begin(session("bob", first.session.session_id), REJECT)
    assert again.accepted and again.replaced is None


@pytest.mark.parametrize("policy", [TAKEOVER, REJECT])
async def test_fifty_parallel_begins_leave_exactly_one_live_session(store, policy):
    attempts = [session("race") for _ in range(50)]
    results = await asyncio.gather(*(store.begin(s, policy) for s in attempts))
    live = [s for s in attempts if await store.touch("race", s.session_id)]
    assert len(live) == 1
    accepted = [r for r in results if r.accepted]
    if policy == REJECT:
        assert len(accepted) == 1 and accepted[0].session.session_id == live[0].session_id
    else:
        assert len(accepted) == 50
        # every accepted session but the live one was reported as replaced exactly once
        replaced = [r.replaced.session_id for r in results if r.replaced]
        assert sorted(replaced) == sorted(s.session_id for s in attempts if s is not live[0])


async def test_end_only_ends_the_named_session(store):
    s = (await store.begin(session("cy"), TAKEOVER)).session
    assert await store.end("cy", "not-this-one") is None
    assert await store.touch("cy", s.session_id)
    ended = await store.end("cy", s.session_id)
    assert ended.session_id == s.session_id
    assert not await store.touch("cy", s.session_id)


async def test_idle_expiry_and_activity_extends_it(store):
    s = (await store.begin(session("dee"), TAKEOVER)).session
    key = store._key("dee")
    # move Redis' clock for this key: 1.5 s left, below the extend threshold
    await store.redis.pexpire(key, 1500)
    assert await store.touch("dee", s.session_id)
    assert await store.redis.pttl(key) > 50_000, "activity must extend the idle expiry"
    # a re-check that is not activity does not extend it
    await store.redis.pexpire(key, 1500)
    assert await store.touch("dee", s.session_id, extend=False)
    assert await store.redis.pttl(key) <= 1500
    await store.redis.pexpire(key, 50)
    await asyncio.sleep(0.2)
    assert not await store.touch("dee", s.session_id)
    assert (await store.get("dee"))[0] is None


async def test_a_token_id_is_accepted_once(store):
    jti = secrets.token_hex(8)
    assert await store.claim_jti(jti, 30)
    assert not await store.claim_jti(jti, 30)
    # long or odd ids are hashed, never used raw as keys
    assert await store.claim_jti("x" * 5000 + "/../", 30)


async def test_list_shows_live_sessions_with_idle_time(store):
    await store.begin(session("eve"), TAKEOVER)
    listed = await store.list()
    (eve,) = [(s, ttl) for s, ttl in listed if s.user == "eve"]
    assert 0 < eve[1] <= 60


async def test_login_limiter_locks_an_account_only_from_the_guessing_address(store):
    limits = Limits(per_user=3, per_address=5, window=60, slowdown_after=2, slowdown_max=3)
    limiter = LoginLimiter(store, limits)
    for _ in range(3):
        assert (await limiter.attempt("fay", "10.0.0.1")).retry_after == 0  # counted: failed
    verdict = await limiter.attempt("fay", "10.0.0.1")
    assert verdict.locked == "account" and 0 < verdict.retry_after <= 60
    # the owner from another address is never locked, only slowed down (3 failures)
    owner = await limiter.attempt("fay", "10.0.0.2")
    assert owner.retry_after == 0 and owner.delay == 1.0
    await limiter.succeeded("fay", "10.0.0.2")
    assert (await limiter.attempt("fay", "10.0.0.2")).delay == 1.0, "the account count stays"
    await limiter.release("fay", "10.0.0.2")
    # another user from another address is not affected
    assert await limiter.check("gus", "10.0.0.3") == Verdict()
    # five failures from 10.0.0.1 in all: the address is locked for everyone
    await limiter.attempt("hal", "10.0.0.1")
    await limiter.attempt("ivy", "10.0.0.1")
    assert (await limiter.attempt("joe", "10.0.0.1")).locked == "address"
    assert (await limiter.check("", "10.0.0.1")).locked == "address"  # tokens too


async def test_parallel_guesses_cannot_slip_past_the_limit(store):
    limiter = LoginLimiter(store, Limits(per_user=5, per_address=1000, window=60))
    verdicts = await asyncio.gather(*(limiter.attempt("kay", "10.0.0.7") for _ in range(50)))
    assert sum(1 for v in verdicts if not v.retry_after) == 5


async def test_released_and_successful_attempts_never_leave_keys_without_expiry(store):
    limiter = LoginLimiter(store, Limits(per_user=5, per_address=50, window=60))
    await limiter.release("lou", "10.0.0.8")  # nothing counted: nothing created
    await limiter.succeeded("lou", "10.0.0.8")
    assert await store.redis.keys(f"{store.prefix}:fail:*") == []
    await limiter.attempt("lou", "10.0.0.8")
    for key in await store.redis.keys(f"{store.prefix}:fail:*"):
        assert 0 < await store.redis.ttl(key) <= 60


async def test_redis_down_fails_closed_and_recovers(redis_server, tmp_path):
    proc, port = redis_server
    store = SessionStore.from_url(
        f"redis://127.0.0.1:{port}/0", timeout=1.0, idle_timeout=60, prefix="down"
    )
    try:
        await store.begin(session("kim"), TAKEOVER)
        proc.stop()
        with pytest.raises(StoreUnavailable):
            await store.begin(session("kim"), TAKEOVER)
        with pytest.raises(StoreUnavailable):
            await store.touch("kim", "x")
        proc.start()
        for _ in range(50):
            try:
                await store.ping()
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        # the same client object works again without being rebuilt
        assert (await store.begin(session("kim"), TAKEOVER)).accepted
    finally:
        await store.close()


async def test_the_first_request_after_a_redis_restart_succeeds(redis_server):
    """A restart closes every pooled connection. The next sign-in must not pay for that with
    a 503 (it did, once per dead connection, before the client retried connection errors)."""
    import redis

    _, port = redis_server
    store = SessionStore.from_url(
        f"redis://127.0.0.1:{port}/0", timeout=1.0, idle_timeout=60, prefix="restart"
    )
    limiter = LoginLimiter(store, Limits(per_user=5, per_address=5, window=60))
    admin = redis.Redis(port=port, socket_timeout=5)
    try:
        # several pooled connections, all alive
        await asyncio.gather(*(store.begin(session(f"u{i}"), TAKEOVER) for i in range(4)))
        assert await limiter.retry_after("u0", "10.0.0.1") == 0
        # what the clients see when Redis restarts: the server closes every connection
        killed = admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert killed >= 1
        # scripts, plain commands and pipelines all go through on fresh connections
        assert (await store.begin(session("u0"), TAKEOVER)).accepted
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert await limiter.retry_after("u1", "10.0.0.1") == 0
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await limiter.failed("u2", "10.0.0.2")
    finally:
        admin.close()
        await store.close()
