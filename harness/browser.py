"""Chromium for the page tests and the benchmarks (Playwright, the Debian chromium):
its flags, a browser for a test module (``chromium``, the integration tier's fixture of the
same name) and a page signed in as someone (``signed_in_page``)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

#: the tests' Chromium: the Debian package, started blind to the machine's network changes
#: (which the tests cause all the time and which make Chromium fail requests in flight:
#: see chromium_steady.py)
CHROMIUM = str(Path(__file__).resolve().parent / "chromium_steady.py")

#: no sandbox (tests run as root in a container), nothing that phones home or updates
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def chromium() -> Iterator:
    """Headless Chromium (the Debian package) driven by Playwright, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(
    browser, stack, name: str, role: str, path: str, *, timeout: float = 20_000, **options
):
    """A new browser context of ``browser`` signed in as ``name`` (``role``) with a token
    through the hub's login page, on ``path`` (the ``next`` address). ``page.problems``
    collects the page's uncaught errors; close it with ``page.context.close()``."""
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(timeout)
    watch_page(page)
    page.goto(f"{stack.url}/hub/login?next={quote(path, safe='')}")
    page.fill("#token_input", stack.mint(name, role))
    page.click("#token_submit")
    page.wait_for_url(f"**{path}")
    return page


def watch_page(page):
    """``page`` collecting its uncaught errors in ``page.problems`` (:func:`page_error`)
    and its failed requests in ``page.network`` (:func:`watch_network`)."""
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(page_error(page, e)))
    watch_network(page)
    return page


def watch_network(page) -> list[str]:
    """Record on ``page.network`` (and return) the requests of ``page`` that went wrong: no
    answer, an answer of 400 or more, a redirect of anything but a page, a stylesheet that
    is not CSS. Printed when a test fails, so that a page that did not load says why (a
    JupyterLab theme that "failed to load" says nothing else). Paths only, never queries."""
    page.network = []

    def where(request) -> str:
        return f"{request.method} {urlsplit(request.url).path}"

    def on_response(response) -> None:
        request = response.request
        kind = request.resource_type
        status = response.status
        ctype = response.headers.get("content-type", "")
        odd_css = kind == "stylesheet" and status < 300 and "text/css" not in ctype
        redirect = 300 <= status < 400 and status != 304
        if status >= 400 or (redirect and kind != "document") or odd_css:
            page.network.append(f"{status} {where(request)} ({kind}, {ctype or 'no type'})")

    page.on("response", on_response)
    page.on(
        "requestfailed",
        lambda request: page.network.append(f"failed {where(request)}: {request.failure}"),
    )
    return page.network


def page_error(page, error) -> str:
    """The entry of ``page.problems`` for an uncaught error, with the odd requests seen so
    far (:func:`watch_network`): "$ is not defined" is a script that did not load."""
    odd = getattr(page, "network", None)
    return f"page error: {error}" + (f" (odd requests so far: {odd})" if odd else "")


def explain_failure(page, path) -> None:
    """Print what a failed page test needs: a screenshot at ``path``, the address, the
    page's problems and its odd requests (:func:`watch_network`)."""
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as e:  # noqa: BLE001 - a closed page must not hide the test's failure
        print("no screenshot:", e)
    print("screenshot:", path, "url:", urlsplit(page.url).path)
    for line in [*getattr(page, "problems", []), *getattr(page, "network", [])]:
        print(line)


class Listener:
    """An HTTP listener on loopback that records the path of every request: the beacon a
    hostile notebook's payload would call if it ran (a page test asserts it heard nothing)."""

    def __init__(self):
        from harness.stack import free_port

        self.port = free_port()
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
