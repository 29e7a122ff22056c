"""Messages people see about their sessions."""

from __future__ import annotations

import time

from .sessions import Session


def _when(epoch: float) -> str:
    return time.strftime("%H:%M UTC on %d %b", time.gmtime(epoch))


def describe_agent(agent: str) -> str:
    """A short, human name for a User-Agent string ("Firefox on Linux")."""
    a = agent or ""
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
                ("curl/", "curl"),
                ("python-requests", "a script"),
            )
            if key in a
        ),
        "a browser",
    )
    system = next(
        (
            name
            for key, name in (
                ("Windows", "Windows"),
                ("Android", "Android"),
                ("iPhone", "iOS"),
                ("Mac OS", "macOS"),
                ("Linux", "Linux"),
            )
            if key in a
        ),
        "",
    )
    return f"{browser} on {system}" if system else browser


def reject_message(live: Session, idle_timeout: int) -> str:
    """Why a second sign-in was refused, and the three ways out."""
    where = describe_agent(live.agent)
    if live.address:
        where += f" at {live.address}"
    minutes = max(1, idle_timeout // 60)
    return (
        f"You are already signed in elsewhere: since {_when(live.started)}, from {where}. "
        "Only one session at a time is allowed. Sign out there (Logout), or wait until "
        f"that session has been unused for {minutes} minutes, or ask an admin to end it."
    )
