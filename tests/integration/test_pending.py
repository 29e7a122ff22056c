"""While a server starts, its URL shows the hub's pending page, never a proxy error."""

import concurrent.futures
import time

import pytest
import requests

pytestmark = pytest.mark.integration


def test_no_proxy_error_while_starting(stack):
    stack.create_user("paula")
    session = requests.Session()
    session.headers["Authorization"] = f"token {stack.token}"
    seen = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        spawn = pool.submit(stack.spawn, "paula")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = session.get(stack.url + "/user/paula/api/status", allow_redirects=False, timeout=10)
            from_container = r.status_code == 200 and "kernels" in r.text
            seen.append(
                (r.status_code, from_container, r.text[:80] + r.headers.get("Location", ""))
            )
            if spawn.done() and from_container:
                break
            time.sleep(0.02)
        spawn.result()
    statuses = {s for s, _, _ in seen}
    assert not statuses & {502, 503, 504}, seen[:5]
    assert not [t for _, _, t in seen if "Bad Gateway" in t or "Service Unavailable" in t]
    # before Traefik routes to the container, the hub answers (redirects to its pending
    # page or says the server is not ready); once the container answers, it keeps answering
    first = next(i for i, (_, c, _) in enumerate(seen) if c)
    for status, _, location in seen[:first]:
        assert status == 302 and location.startswith("/hub/user/paula/"), (status, location)
    assert all(c for _, c, _ in seen[first:]), seen[first:]
    assert first > 0, "the first request already reached the container: spawn was too fast to test"
