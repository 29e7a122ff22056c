"""Chromium for the page tests and the benchmarks (Playwright, the Debian chromium)."""

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
