"""**Download all** (the review page): ``GET api/classes/<code>/assignments/<slug>/
download-all`` (teachers) streams one zip of the versions that count, a folder per student
(``<username>/...``) and ``manifest.csv`` with a row per student of the class (and anyone
who handed in before leaving it).

Which version counts, on time or late and the penalty come from the one computation
(:func:`.standing.standing`, through :meth:`.store.StandingData.standing`), with the
teacher's choice of version and penalty for each student: the zip holds what the
submissions list, the gradebook and the student's own page say counts.

Each student's files are copied from the store into the zip as it is sent (memory: a few
MB, whatever the class's size); a version whose snapshot cannot be read is left out and
the manifest says why.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from common.errors import ServiceError, Unavailable
from services.base.membership import TEACHER

from . import snapzip
from . import standing as st
from .handlers import GradesHandler
from .reviewwork import COPY_TIMEOUT, Review, Unreadable
from .store import StandingData, Submission
from .zipstream import Aborted, ChunkPipe, add_file, zip_time

#: the words of ``manifest.csv``
_WHY = {
    st.CHOSEN: "chosen by a teacher",
    st.LAST_ON_TIME: "last on time",
    st.FIRST_LATE: "first late",
}
_KIND = {st.SUBMIT: "handed in", st.COLLECT: "collected", st.DEADLINE: "deadline snapshot"}
_STATE = {st.MISSING: "missing", st.NOT_YET: "not handed in yet"}


@dataclass(frozen=True)
class ManifestRow:
    """One student of a **Download all**: where they stand and the version that counts
    (None: nothing counts, they handed in nothing)."""

    student: str
    standing: st.Standing
    submission: Submission | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.submission is None:
            return _STATE.get(self.standing.state, "nothing handed in")
        return "late" if self.standing.late else "on time"


def counted(
    data: StandingData, assignment_id: int, roster: Iterable[str], now: datetime.datetime
) -> list[ManifestRow]:
    """Every student of ``roster`` and everyone who handed in (by username) with their
    standing and the version that counts (``data``: read with the versions' full rows)."""
    on_roster = set(roster)
    rows = []
    for user in sorted(on_roster | data.users(assignment_id)):
        standing = data.standing(assignment_id, user, now)
        sub = None if standing.counting is None else data.submissions[standing.counting.id]
        note = "" if user in on_roster else "no longer on the class's roster"
        rows.append(ManifestRow(user, standing, sub, note))
    return rows


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")


def manifest_csv(rows: list[ManifestRow]) -> bytes:
    """``manifest.csv`` of a **Download all** zip (UTF-8 with a BOM, for spreadsheets)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "student",
            "status",
            "version",
            "counts_because",
            "taken_by",
            "submitted_at",
            "late",
            "penalty_percent",
            "collected_by",
            "files",
            "bytes",
            "sha256",
            "note",
        ]
    )
    for row in rows:
        s, standing = row.submission, row.standing
        writer.writerow(
            [
                row.student,
                row.status,
                s.version if s else "",
                _WHY.get(standing.why or "", "") if s else "",
                _KIND.get(s.kind, s.kind) if s else "",
                _iso(s.submitted_at) if s else "",
                ("yes" if standing.late else "no") if s else "",
                _percent(standing.penalty_percent) if s and standing.late else "",
                (s.collected_by or "") if s else "",
                s.files if s else "",
                s.size_bytes if s else "",
                s.content_sha256 if s else "",
                row.note,
            ]
        )
    return out.getvalue().encode("utf-8-sig")


async def download_all(
    review: Review, handler: GradesHandler, rows: list[ManifestRow], now: datetime.datetime
) -> None:
    """Send the zip of the versions that count in ``rows`` (one folder per student) with
    its manifest. A version whose snapshot cannot be read is left out and the manifest
    says why; the store failing on the way ends the download (the browser shows it
    failed)."""
    pipe = ChunkPipe(asyncio.get_running_loop())
    zf = zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    done: list[ManifestRow] = []
    pump = asyncio.create_task(pipe.pump(handler))
    try:
        for row in rows:
            s = row.submission
            if s is None:
                done.append(row)
                continue
            when = zip_time(s.submitted_at)

            def copy(s=s, when=when) -> list[str]:
                def add(path: str, size: int, chunks: Iterator[bytes]) -> None:
                    add_file(zf, f"{s.username}/{path}", size, chunks, when)

                return snapzip.copy_files(review.objects, s.storage_key, s.size_bytes, add, 1 << 40)

            note = row.note
            try:
                await review.job("copying a version into a zip", copy, timeout=COPY_TIMEOUT)
            except (Unreadable, snapzip.SnapshotMissing) as e:
                note = f"{note}; left out: {e}" if note else f"left out: {e}"
            done.append(ManifestRow(row.student, row.standing, s, note.strip()))

        def finish() -> None:
            manifest = manifest_csv(done)
            add_file(zf, "manifest.csv", len(manifest), iter([manifest]), zip_time(now))
            zf.close()
            pipe.drain()

        await review.job("finishing a zip", finish)
    except Aborted:
        handler.log.info("Download all stopped: the browser went away")
    except (ServiceError, Unavailable) as e:
        pipe.aborted = True
        handler.log.warning("Download all stopped: %s", e)
        handler.request.connection.close()
    finally:
        pipe.end()
        await pump


class DownloadAllHandler(GradesHandler):
    """Dependencies also: ``review`` (:class:`.reviewwork.Review`)."""

    review: Review

    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        data, roster = await asyncio.gather(
            self.standing_data(assignment), self.membership.students(code)
        )
        now = self.now()
        rows = counted(data, assignment.id, roster, now)
        await self.objects.ping()  # the store down: a 503 now, before the first byte
        if self.review.downloads.locked():
            raise Unavailable(
                "Other downloads of all versions are being made right now; try again in a minute."
            )
        async with self.review.downloads:
            filename = f"{code}-{assignment.slug}-all.zip"
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
            self.set_header("Cache-Control", "private, no-store")
            self.log.info(
                "%s downloads all %d counting versions of %s/%s",
                self.caller().name,
                sum(1 for r in rows if r.submission is not None),
                code,
                assignment.slug,
            )
            await download_all(self.review, self, rows, now)
