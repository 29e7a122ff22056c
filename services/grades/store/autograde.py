"""The grades store's queries of autograding (migration 0006): an assignment's tests and
switches, the durable queue of jobs (one per version; claimed with ``FOR UPDATE SKIP
LOCKED`` and a lease the worker extends), and the results per test, written with the
job's end in one transaction that first checks the claim."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from common.errors import BadRequest, NotFound

from ..autograde import queue as q
from .base import StoreBase, _actor, _id, _row, _rows

_CONFIG_COLUMNS = (
    "assignment_id, notebook_path, source, source_sha256, image, on_submit, show_hidden,"
    " revision, updated_by, updated_at, test_files"
)
#: a job that can be claimed: queued and not waiting for a retry, or running with a lease
#: that lapsed (its worker died)
_READY = (
    "((j.state = 'queued' AND (j.retry_at IS NULL OR j.retry_at <= %(now)s))"
    " OR (j.state = 'running' AND j.claimed_until < %(now)s))"
)


def _config(row: dict) -> q.AutogradeConfig:
    return q.AutogradeConfig(**row)


class AutogradeQueries(StoreBase):
    """Autograding (mixed into :class:`services.grades.store.GradesStore`)."""

    # ------------------------------------------------------------------ configuration

    async def autograde_config(self, assignment_id: int) -> q.AutogradeConfig | None:
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_CONFIG_COLUMNS} FROM autograde_configs WHERE assignment_id = %s",  # noqa: S608
                (_id(assignment_id, "assignment"),),
            )
        return _config(row) if row else None

    async def set_autograde_config(
        self,
        assignment_id: int,
        *,
        notebook_path: str,
        source: dict,
        image: str,
        on_submit: bool,
        show_hidden: bool,
        actor: str,
        test_files: list[dict] | None = None,
    ) -> q.AutogradeConfig:
        """Create or replace the assignment's autograding (validated by the caller); the
        revision rises when the source notebook changes, so "grade all" grades again the
        versions graded with older tests. Audited as ``autograde.config``."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        test_files = list(test_files or [])
        tests = {"source": source, "files": test_files} if test_files else source
        sha = hashlib.sha256(json.dumps(tests, sort_keys=True).encode()).hexdigest()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            row = await _row(
                conn,
                "INSERT INTO autograde_configs AS c (assignment_id, notebook_path, source,"  # noqa: S608
                " source_sha256, image, on_submit, show_hidden, updated_by, updated_at,"
                " test_files) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (assignment_id) DO UPDATE SET"
                " notebook_path = excluded.notebook_path, source = excluded.source,"
                " test_files = excluded.test_files,"
                " source_sha256 = excluded.source_sha256, image = excluded.image,"
                " on_submit = excluded.on_submit, show_hidden = excluded.show_hidden,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at,"
                " revision = c.revision + CASE WHEN (c.source_sha256, c.notebook_path, c.image)"
                " IS DISTINCT FROM (excluded.source_sha256, excluded.notebook_path,"
                f" excluded.image) THEN 1 ELSE 0 END RETURNING {_CONFIG_COLUMNS}",
                (
                    assignment_id,
                    notebook_path,
                    Jsonb(source),
                    sha,
                    image,
                    bool(on_submit),
                    bool(show_hidden),
                    actor,
                    now,
                    Jsonb(test_files),
                ),
            )
            config = _config(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="autograde.config",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                new={
                    "notebook_path": notebook_path,
                    "source_sha256": sha,
                    "test_files": [f.get("name") for f in test_files],
                    "image": image,
                    "on_submit": bool(on_submit),
                    "show_hidden": bool(show_hidden),
                    "revision": config.revision,
                },
            )
        return config

    # ------------------------------------------------------------------ the queue

    async def enqueue_autograde(
        self, submission_ids: list[int], *, trigger: str, actor: str
    ) -> int:
        """Queue a job for each version (all of one assignment that has autograding).
        Idempotent: a version has one job; queuing it again changes nothing, except that a
        teacher's request (``trigger="teacher"``) queues again a job that failed or was
        graded with older tests. How many jobs were queued now."""
        if trigger not in q.TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}")
        actor = _actor(actor)
        ids = sorted({_id(i, "submission") for i in submission_ids})
        if not ids:
            return 0
        now = self._now()
        again = (
            " ON CONFLICT (submission_id) DO UPDATE SET state = 'queued', attempts = 0,"
            " reason = '', retry_at = NULL, claim = NULL, claimed_until = NULL, worker = NULL,"
            " config_revision = excluded.config_revision, trigger = excluded.trigger,"
            " enqueued_by = excluded.enqueued_by, enqueued_at = excluded.enqueued_at,"
            " started_at = NULL, finished_at = NULL"
            " WHERE j.state = 'failed'"
            " OR (j.state = 'done' AND j.config_revision < excluded.config_revision)"
            if trigger == "teacher"
            else " ON CONFLICT (submission_id) DO NOTHING"
        )
        async with self._connection() as conn, conn.transaction():
            rows = await _rows(
                conn,
                "SELECT DISTINCT s.assignment_id FROM submissions s WHERE s.id = ANY(%s)",
                (ids,),
            )
            if len(rows) != 1:
                raise BadRequest("Queue the versions of one assignment at a time.")
            assignment_id = rows[0]["assignment_id"]
            config = await _row(
                conn,
                "SELECT revision FROM autograde_configs WHERE assignment_id = %s FOR SHARE",
                (assignment_id,),
            )
            if config is None:
                raise NotFound("This assignment has no autograding tests yet.")
            done = await _rows(
                conn,
                "INSERT INTO autograde_jobs AS j (submission_id, assignment_id,"  # noqa: S608
                " config_revision, trigger, enqueued_by, enqueued_at)"
                " SELECT s.id, s.assignment_id, %s, %s, %s, %s FROM submissions s"
                f" WHERE s.id = ANY(%s) ORDER BY s.id{again} RETURNING j.id",
                (config["revision"], trigger, actor, now, ids),
            )
        return len(done)

    async def claim_autograde_job(
        self, *, lease: float, worker: str, max_attempts: int
    ) -> q.Job | None:
        """Claim the oldest job that is ready (queued and not waiting for a retry, or
        running with a lapsed lease: its worker died) for ``lease`` seconds; None when
        there is none. A job whose worker died on its last allowed attempt fails instead,
        with that reason. ``FOR UPDATE SKIP LOCKED``: two workers never claim one job."""
        now = self._now()
        claim = secrets.token_hex(16)
        params = {
            "now": now,
            "claim": claim,
            "until": now + timedelta(seconds=lease),
            "worker": worker[:200],
            "max": max(1, int(max_attempts)),
        }
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE autograde_jobs SET state = 'failed', claim = NULL,"
                " claimed_until = NULL, finished_at = %(now)s,"
                " reason = 'the grading worker stopped during each of its '"
                " || attempts || ' attempts (the last on ' || coalesce(worker, '?') || ')'"
                " WHERE state = 'running' AND claimed_until < %(now)s AND attempts >= %(max)s",
                params,
            )
            row = await _row(
                conn,
                "UPDATE autograde_jobs j SET state = 'running', claim = %(claim)s,"  # noqa: S608
                " claimed_until = %(until)s, attempts = j.attempts + 1, worker = %(worker)s,"
                " started_at = %(now)s, retry_at = NULL"
                " FROM submissions s JOIN assignments a ON a.id = s.assignment_id"
                " WHERE s.id = j.submission_id AND j.id = ("
                f" SELECT j.id FROM autograde_jobs j WHERE {_READY}"
                " ORDER BY j.enqueued_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED)"
                " RETURNING j.id, j.submission_id, j.assignment_id, a.class_code, s.username,"
                " s.version, s.storage_key, s.size_bytes, j.attempts, j.config_revision,"
                " j.claim",
                params,
            )
        return q.Job(**row) if row else None

    async def extend_autograde_claim(self, job: q.Job, lease: float) -> bool:
        """The heartbeat: the claim holds ``lease`` seconds more. False when it was lost
        (the lease lapsed and another worker took the job): stop working on it."""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                "UPDATE autograde_jobs SET claimed_until = %s"
                " WHERE id = %s AND claim = %s AND state = 'running' RETURNING id",
                (self._now() + timedelta(seconds=lease), job.id, job.claim),
            )
        return bool(rows)

    async def fail_autograde_job(
        self, job: q.Job, reason: str, *, retry_after: float, max_attempts: int
    ) -> str | None:
        """An attempt failed for a reason that is not the student's (Docker, the S3 store):
        queued again after ``retry_after`` seconds, or failed for good after
        ``max_attempts``; the reason is kept. The new state, None when the claim was lost."""
        now = self._now()
        final = q.gives_up(job.attempts, max_attempts)
        async with self._connection() as conn:
            row = await _row(
                conn,
                "UPDATE autograde_jobs SET state = %s, reason = %s, claim = NULL,"
                " claimed_until = NULL, retry_at = %s, finished_at = %s"
                " WHERE id = %s AND claim = %s AND state = 'running' RETURNING state",
                (
                    "failed" if final else "queued",
                    reason[:1000],
                    None if final else now + timedelta(seconds=retry_after),
                    now if final else None,
                    job.id,
                    job.claim,
                ),
            )
        return row["state"] if row else None

    async def finish_autograde_job(
        self,
        job: q.Job,
        *,
        tests: list[q.TestRow],
        config_revision: int,
        complete: bool,
        reason: str,
        flags: list[str],
        cell_flags: list[dict],
        cells: list[dict] = (),
    ) -> bool:
        """Store the result of ``job`` and end it, in ONE transaction that first checks the
        claim (False, nothing written, when it was lost: another worker grades it). The
        version's earlier result is replaced; its points go to the questions each test
        feeds (source ``auto``; a question a teacher gave points by hand keeps them) and to
        the grade (one a teacher typed is never changed)."""
        now = self._now()
        score = sum((t.score for t in tests), Decimal(0))
        points = sum((t.points for t in tests), Decimal(0))
        async with self._connection() as conn, conn.transaction():
            mine = await _row(
                conn,
                "SELECT j.id, a.class_code, a.max_points, s.username FROM autograde_jobs j"
                " JOIN submissions s ON s.id = j.submission_id"
                " JOIN assignments a ON a.id = j.assignment_id"
                " WHERE j.id = %s AND j.claim = %s AND j.state = 'running' FOR UPDATE OF j",
                (job.id, job.claim),
            )
            if mine is None:
                return False
            await conn.execute(
                "DELETE FROM autograde_results WHERE submission_id = %s", (job.submission_id,)
            )
            await conn.execute(
                "INSERT INTO autograde_results (submission_id, job_id, config_revision, score,"
                " points, complete, reason, flags, cell_flags, cells, graded_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    job.submission_id,
                    job.id,
                    config_revision,
                    score,
                    points,
                    complete,
                    reason[:2000],
                    Jsonb([f[:500] for f in flags][:200]),
                    Jsonb(cell_flags[:500]),
                    Jsonb(
                        [{k: str(c[k])[:500] for k in ("label", "status", "error")} for c in cells][
                            :50
                        ]
                    ),
                    now,
                ),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO autograde_test_results (submission_id, test_id, position,"
                    " status, score, points, visibility, message, flags, question_key)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            job.submission_id,
                            t.test_id,
                            t.position,
                            t.status,
                            t.score,
                            t.points,
                            t.visibility,
                            t.message[:4000],
                            Jsonb(list(t.flags)[:50]),
                            t.question_key,
                        )
                        for t in tests
                    ],
                )
            await self._autograde_points(conn, job, tests, score, mine["max_points"], now)
            await conn.execute(
                "UPDATE autograde_jobs SET state = 'done', reason = '', claim = NULL,"
                " claimed_until = NULL, finished_at = %s, config_revision = %s WHERE id = %s",
                (now, config_revision, job.id),
            )
            await self._audit(
                conn,
                at=now,
                actor=q.ACTOR,
                action="autograde.result",
                class_code=mine["class_code"],
                assignment_id=job.assignment_id,
                submission_id=job.submission_id,
                username=mine["username"],
                new={"score": score, "points": points, "complete": complete, "job": job.id},
            )
        return True

    async def _autograde_points(self, conn, job, tests, score, max_points, now) -> None:
        questions = await self._questions(conn, job.assignment_id)
        if questions:
            worth = {x.key: x.points for x in questions}
            for key, given in q.question_points(tests, worth).items():
                await conn.execute(
                    "INSERT INTO question_points AS p (submission_id, question_key, points,"
                    " source, given_by, given_at) VALUES (%s, %s, %s, 'auto', %s, %s)"
                    " ON CONFLICT (submission_id, question_key) DO UPDATE SET"
                    " points = excluded.points, given_at = excluded.given_at"
                    " WHERE p.source = 'auto' AND p.points <> excluded.points",
                    (job.submission_id, key, given, q.ACTOR, now),
                )
            given = await _rows(
                conn,
                "SELECT question_key, points FROM question_points WHERE submission_id = %s",
                (job.submission_id,),
            )
            if {r["question_key"] for r in given} < set(worth):
                return  # questions without a test wait for the teacher's points
            total = sum((r["points"] for r in given if r["question_key"] in worth), Decimal(0))
            manual_ok = True  # the grade is the questions' sum, whoever gave them
        else:
            total = min(score, max_points)
            manual_ok = False  # a grade a teacher typed stays
        current = await _row(
            conn,
            "SELECT points, graded_by FROM grades WHERE submission_id = %s FOR UPDATE",
            (job.submission_id,),
        )
        if current is None:
            await conn.execute(
                "INSERT INTO grades (submission_id, points, graded_by, graded_at)"
                " VALUES (%s, %s, %s, %s)",
                (job.submission_id, total, q.ACTOR, now),
            )
        elif current["points"] != total and (manual_ok or current["graded_by"] == q.ACTOR):
            await conn.execute(
                "UPDATE grades SET points = %s, graded_at = %s, revision = revision + 1,"
                " feedback_delivered_at = NULL WHERE submission_id = %s",
                (total, now, job.submission_id),
            )

    # ------------------------------------------------------------------ reading

    async def autograde_progress(self, assignment_id: int) -> tuple[q.Progress, list[dict]]:
        """Jobs per state, and the failed ones (username, version, reason)."""
        assignment_id = _id(assignment_id, "assignment")
        async with self._connection() as conn:
            counts = await _rows(
                conn,
                "SELECT state, count(*) AS n FROM autograde_jobs WHERE assignment_id = %s"
                " GROUP BY state",
                (assignment_id,),
            )
            failed = await _rows(
                conn,
                "SELECT s.username, s.version, s.id AS submission_id, j.reason, j.attempts"
                " FROM autograde_jobs j JOIN submissions s ON s.id = j.submission_id"
                " WHERE j.assignment_id = %s AND j.state = 'failed'"
                " ORDER BY s.username, s.version LIMIT 200",
                (assignment_id,),
            )
        return q.Progress(**{r["state"]: r["n"] for r in counts}), failed

    async def autograde_job_states(self, submission_ids: list[int]) -> dict[int, dict]:
        """``{submission id: {state, attempts, reason}}`` of those that have a job."""
        ids = [_id(i, "submission") for i in submission_ids]
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                "SELECT submission_id, state, attempts, reason FROM autograde_jobs"
                " WHERE submission_id = ANY(%s)",
                (ids,),
            )
        return {r.pop("submission_id"): r for r in rows}

    async def autograde_results(self, submission_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The stored result of each version that has one: ``{submission id: {score,
        points, complete, reason, flags, cell_flags, cells, graded_at, config_revision,
        tests: [TestRow]}}``."""
        ids = [_id(i, "submission") for i in submission_ids]
        if not ids:
            return {}
        async with self._connection() as conn:
            results = await _rows(
                conn,
                "SELECT submission_id, config_revision, score, points, complete, reason,"
                " flags, cell_flags, cells, graded_at FROM autograde_results"
                " WHERE submission_id = ANY(%s)",
                (ids,),
            )
            tests = await _rows(
                conn,
                "SELECT submission_id, test_id, position, status, score, points, visibility,"
                " message, flags, question_key FROM autograde_test_results"
                " WHERE submission_id = ANY(%s) ORDER BY submission_id, position",
                (ids,),
            )
        out: dict[int, dict[str, Any]] = {
            r.pop("submission_id"): {**r, "tests": []} for r in results
        }
        for t in tests:
            sid = t.pop("submission_id")
            if sid not in out:
                # a result committed between the two reads (its row was not there yet,
                # its tests were): no result yet, as the first read said
                continue
            t["flags"] = tuple(t["flags"] or ())
            out[sid]["tests"].append(q.TestRow(**t))
        return out
