"""Chromium for the page tests and the benchmarks (Playwright, the Debian chromium):
its flags, a browser for a test module (``chromium``, the integration tier's fixture of the
same name) and a page signed in as someone (``signed_in_page``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

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
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
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
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.goto(f"{stack.url}/hub/login?next={quote(path, safe='')}")
    page.fill("#token_input", stack.mint(name, role))
    page.click("#token_submit")
    page.wait_for_url(f"**{path}")
    return page
