"""A logging filter that removes anything shaped like a JWT from every hub log line.

JupyterHub's request log hides query parameters whose names look secret (``token``,
``key``, ...), but a JWT can arrive under any name (``?jwt=``, ``?t=``) and tornado's own
warnings ("400 GET /hub/login?...") print the full URL. The filter sits on the hub's log
handler (``configure_logging``), so every line, from any logger, is scrubbed.
"""

from __future__ import annotations

import logging
import re

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?")


def scrub(text: str) -> str:
    return JWT.sub("[jwt]", text)


class JWTScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "eyJ" in message:
            record.msg, record.args = scrub(message), None
        return True
