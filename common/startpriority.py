"""How a hub API client marks a server start as background work (the warm-up before a
class, a teacher's "start all"): the spawner's start queue lets the starts of students
who wait on their spawn page go first. A start without the header is a student's own.

Anybody who may start a server may mark it background: that only ever makes that one
start wait longer, so the header grants nothing.
"""

from __future__ import annotations

#: request header of ``POST /hub/api/users/<name>/servers/<server>``
HEADER = "X-Classhub-Start-Priority"
#: its one meaningful value; anything else (or none) is a student's own start
BACKGROUND = "background"
