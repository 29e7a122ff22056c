"""The grades service's REST API (JSON; paths relative to ``/services/grades/``).

========================================================  ==================================
``GET    api/classes/<code>/assignments``                 teachers: every assignment;
                                                          students: released ones, each with
                                                          their own due date and versions
``POST   api/classes/<code>/assignments``                 create (teachers)
``GET    api/classes/<code>/assignments/<slug>``          one assignment
``PATCH  api/classes/<code>/assignments/<slug>``          edit (teachers)
``POST   .../assignments/<slug>/archive``                 teachers: hide it from students,
                                                          refuse submissions (grades stay)
``POST   .../assignments/<slug>/unarchive``               teachers: undo the archiving
``GET    .../assignments/<slug>/extensions``              teachers: every extension
``GET    .../assignments/<slug>/release``                 teachers: the release (scheduled,
                                                          released with its files push,
                                                          failed, no starting files) and
                                                          the starting files, read from the
                                                          files service
``POST   .../assignments/<slug>/release``                 teachers: "Release now" (a release
                                                          date still to come becomes now)
                                                          or "Release again now" (a new push
                                                          of the starting files, e.g. added
                                                          since; conflict-safe); no body
``PUT    .../assignments/<slug>/extensions/<user>``       ``{"due_at", "reason"}`` (teachers)
``DELETE .../assignments/<slug>/extensions/<user>``       revoke it
``POST   .../assignments/<slug>/submit``                  a student hands in their folder
``POST   .../assignments/<slug>/collect``                 teachers: everyone's folder now
``GET    .../assignments/<slug>/submissions``             teachers: on time, late, missing
``GET    .../<slug>/students/<user>/submissions``         every version of one student,
                                                          newest first (teachers; a
                                                          student: their own)
``GET    api/submissions/<id>``                           the version (teacher or its owner)
``GET    api/submissions/<id>/download``                  a short-lived link to its zip
                                                          (``?redirect=1``: a 302 to it)
``PUT    api/submissions/<id>/grade``                     ``{"points", "feedback",
                                                          "expected_revision"}`` (teachers)
``POST   api/submissions/<id>/return``                    return the grade to the student
``GET    api/classes/<code>/gradebook``                   teachers: the table (JSON)
``GET    api/classes/<code>/gradebook.csv``               the same as a spreadsheet file
========================================================  ==================================

Who may do what comes from the hub's class groups (``teachers-<code>``, ``class-<code>``);
a person outside the class gets 404 and learns nothing about it. A student of the class
gets 403 from the teachers' routes, and 404 for an assignment they cannot see (not
released, archived) or another student's work.

Archived assignments vanish for students, take no submissions (a student's Submit and a
teacher's collect answer 409) and stay in the teachers' list and in the gradebook (their
grades were earned; archiving is not deleting).

Releases: an assignment's starting files (files area ``class/<code>/assignments``, folder
``<slug>``) are pushed into every student's ``~/<code>/assignments/<slug>`` when its release
date comes (at once without one), by the service itself (:mod:`.release`); the teachers'
list of assignments carries each one's ``release`` state. ``POST .../release`` answers 200
with ``outcome``: ``pushed``, ``failed`` (the files service is down or refused: the
reason is in ``release.error`` and the service retries by itself) or ``in_progress``
(the service's own loop is making it right now).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
from decimal import Decimal
from typing import Any

from tornado import web

from services.base.errors import BadRequest, Conflict, Forbidden, NotFound
from services.base.handlers import BaseHandler
from services.files.areas import ADMIN, STUDENT, TEACHER, Caller, Membership
from services.files.names import BadName, validate_assignment, validate_code, validate_username

from . import gradebook, rules
from .bookcache import GradebookCache
from .collect import Collector
from .release import FilesClient, FilesRefused, FilesUnavailable, Releaser
from .store import Assignment, Extension, GradesStore, Submission


def _iso(value: datetime.datetime | None) -> str | None:
    return (
        None if value is None else value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    )


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def assignment_view(a: Assignment) -> dict:
    return {
        "id": a.id,
        "slug": a.slug,
        "title": a.title,
        "instructions": a.instructions,
        "max_points": _num(a.max_points),
        "release_at": _iso(a.release_at),
        "due_at": _iso(a.due_at),
        "late_policy": a.late_policy,
        "late_penalty_percent": _num(a.late_penalty_percent),
        "archived": a.archived,
        "revision": a.revision,
    }


def release_view(a: Assignment, now: datetime.datetime, files_pages: str) -> dict:
    """An assignment's release for its teachers; ``files_pages`` is the files service's
    path (``/services/files/``): where the starting files are uploaded and where the
    report of the push is."""
    code, slug = a.class_code, a.slug
    return {
        "state": a.release_state(now),
        "release_at": _iso(a.release_at),
        "released_at": _iso(a.released_at),
        "push_id": a.release_push_id,
        "push_url": None
        if not a.release_push_id
        else f"{files_pages}classes/{code}/material#push={a.release_push_id}",
        "files": a.release_files,
        "error": a.release_error,
        "retry_at": _iso(a.release_retry_at),
        "rounds": a.release_rounds,
        "pushed": a.release_pushed,
        "upload_url": f"{files_pages}classes/{code}/assignments/{slug}",
    }


def submission_view(s: Submission) -> dict:
    grade = s.grade
    return {
        "id": s.id,
        "user": s.username,
        "version": s.version,
        "submitted_at": _iso(s.submitted_at),
        "due_at": _iso(s.due_at_then),
        "late": s.late,
        "penalty_percent": _num(s.penalty_percent),
        "files": s.files,
        "bytes": s.size_bytes,
        "sha256": s.content_sha256,
        "collected_by": s.collected_by,
        "grade": None
        if grade is None
        else {
            "points": _num(grade.points),
            "final_points": _num(
                rules.apply_penalty(grade.points, s.penalty_percent if s.late else 0)
            ),
            "feedback": grade.feedback,
            "graded_by": grade.graded_by,
            "graded_at": _iso(grade.graded_at),
            "returned_at": _iso(grade.returned_at),
            "revision": grade.revision,
        },
    }


class GradesHandler(BaseHandler):
    """Dependencies: ``store``, ``membership``, ``collector``, ``objects``, ``clock``,
    ``limits``, ``files``, ``releaser``, ``files_pages``."""

    store: GradesStore
    membership: Membership
    collector: Collector
    files: FilesClient
    releaser: Releaser
    files_pages: str

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, BadName):
            kwargs["exc_info"] = (BadRequest, BadRequest(str(exc)), None)
        super().write_error(status_code, **kwargs)

    def caller(self) -> Caller:
        return Caller.from_model(self.require_user())

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)

    async def role(self, code: str) -> tuple[str, str]:
        code = validate_code(code)
        role = await self.membership.role(self.caller(), code)
        if role is None:
            raise NotFound(f"There is no class {code!r} among your classes.")
        return code, role

    async def teacher(self, code: str) -> str:
        code, role = await self.role(code)
        if role not in (ADMIN, TEACHER):
            raise Forbidden("Only the class's teachers can do this.")
        return code

    async def assignment(
        self, code: str, slug: str, role: str, *, archived_ok: bool = False
    ) -> Assignment:
        """The assignment, 404 when a student cannot see it (``archived_ok``: an archived
        one is returned to them too, to be refused with a clearer answer)."""
        found = await self.store.find_assignment(code, validate_assignment(slug))
        hidden = found is None or (
            role == STUDENT
            and not rules.visible_to_student(
                found.release_at, found.archived and not archived_ok, self.now()
            )
        )
        if hidden:
            raise NotFound(f"Class {code} has no assignment {slug!r}.")
        return found

    @staticmethod
    def refuse_if_archived(assignment: Assignment) -> None:
        if assignment.archived:
            raise Conflict(
                f"The assignment {assignment.slug!r} is archived: it takes no submissions. "
                "A teacher can unarchive it."
            )

    async def submission(self, submission_id: str) -> tuple[Submission, Assignment, str]:
        """The submission, its assignment and the caller's role (teacher, or its owner)."""
        submission = await self.store.get_submission(int(submission_id))
        assignment = await self.store.get_assignment(submission.assignment_id)
        _, role = await self.role(assignment.class_code)
        if role == STUDENT and submission.username != self.caller().name:
            raise NotFound("There is no such submission among yours.")
        return submission, assignment, role


class AssignmentsHandler(GradesHandler):
    async def get(self, code):
        code, role = await self.role(code)
        if role != STUDENT:
            items = await self.store.list_assignments(code, include_archived=True)
            now = self.now()
            views = [
                {**assignment_view(a), "release": release_view(a, now, self.files_pages)}
                for a in items
            ]
            self.write_json({"code": code, "role": role, "assignments": views})
            return
        me = self.caller().name
        items = await self.store.list_assignments(code, released_only=True)
        mine = await self.store.student_submissions(code, me)
        now = self.now()
        views = []
        for a in items:
            extensions = {e.username: e for e in await self.store.list_extensions(a.id)}
            extension = extensions.get(me)
            due = rules.due_for(a.due_at, extension.due_at if extension else None)
            versions = [submission_view(s) for s in mine if s.assignment_id == a.id]
            views.append(
                {
                    **assignment_view(a),
                    "your_due_at": _iso(due),
                    "seconds_left": None if due is None else (due - now).total_seconds(),
                    "extended": extension is not None,
                    "submissions": versions,
                    "max_versions": self.store.max_versions or None,
                }
            )
        storage = {"used": await self.store.student_usage(me), "quota": self.store.student_quota}
        self.write_json(
            {"code": code, "role": role, "assignments": views, "submission_storage": storage}
        )

    async def post(self, code):
        code = await self.teacher(code)
        body = self.json_body(_ASSIGNMENT_FIELDS)
        fields = rules.parse_assignment(body)
        created = await self.store.create_assignment(code, fields, actor=self.caller().name)
        self.write_json(assignment_view(created), status=201)


_ASSIGNMENT_FIELDS = {
    "slug",
    "title",
    "instructions",
    "max_points",
    "release_at",
    "due_at",
    "late_policy",
    "late_penalty_percent",
    "starting_files",
}


class AssignmentHandler(GradesHandler):
    async def get(self, code, slug):
        code, role = await self.role(code)
        self.write_json(assignment_view(await self.assignment(code, slug, role)))

    async def patch(self, code, slug):
        code = await self.teacher(code)
        current = await self.assignment(code, slug, TEACHER)
        body = self.json_body(_ASSIGNMENT_FIELDS - {"slug"} | {"revision"})
        revision = body.pop("revision", None)
        fields = rules.parse_assignment(body, current.fields())
        updated = await self.store.update_assignment(
            current.id, fields, actor=self.caller().name, expected_revision=revision
        )
        self.write_json(assignment_view(updated))


def extension_view(e: Extension) -> dict:
    return {
        "user": e.username,
        "due_at": _iso(e.due_at),
        "reason": e.reason,
        "granted_by": e.granted_by,
        "granted_at": _iso(e.granted_at),
    }


class ArchiveHandler(GradesHandler):
    """``POST .../archive`` and ``.../unarchive`` (teachers); doing it twice is harmless."""

    async def post(self, code, slug, action):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        updated = await self.store.set_archived(
            assignment.id, action == "archive", actor=self.caller().name
        )
        self.write_json(assignment_view(updated))


class ExtensionsHandler(GradesHandler):
    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        extensions = await self.store.list_extensions(assignment.id)
        self.write_json(
            {"assignment": assignment.slug, "extensions": [extension_view(e) for e in extensions]}
        )


class ReleaseHandler(GradesHandler):
    async def answer(
        self, assignment: Assignment, *, files_error: str | None = None, **extra: Any
    ) -> None:
        """The release and the starting files; the files service being down or refusing
        (or ``files_error``: it just failed, it is not asked again) leaves
        ``starting_files`` null with ``files_error`` saying why (the page still shows the
        release)."""
        files: list[dict] | None = None
        push: dict | None = None
        try:
            if files_error is None:
                files = await self.files.starting_files(assignment.class_code, assignment.slug)
            if files_error is None and assignment.release_push_id:
                found = await self.files.push(assignment.class_code, assignment.release_push_id)
                if found is not None:
                    push = {"status": found.get("status"), "counts": found.get("counts") or {}}
        except (FilesUnavailable, FilesRefused) as e:
            files_error = str(e)
        self.write_json(
            {
                "assignment": assignment.slug,
                "release": release_view(assignment, self.now(), self.files_pages),
                "push": push,
                "starting_files": files,
                "files_error": files_error,
                **extra,
            }
        )

    async def get(self, code, slug):
        code = await self.teacher(code)
        await self.answer(await self.assignment(code, slug, TEACHER))

    async def post(self, code, slug):
        code = await self.teacher(code)
        self.json_body(())
        current = await self.assignment(code, slug, TEACHER)
        requested = await self.store.request_release(current.id, actor=self.caller().name)
        self.log.info(
            "%s asked for the release of %s/%s (round %d)",
            self.caller().name,
            code,
            requested.slug,
            requested.release_rounds,
        )
        made = await self.releaser.release_now(requested.id)
        outcome = {True: "pushed", False: "failed", None: "in_progress"}[made]
        after = await self.store.get_assignment(requested.id)
        failed = after.release_error if made is False else None
        await self.answer(after, files_error=failed, outcome=outcome)


class ExtensionHandler(GradesHandler):
    async def put(self, code, slug, user):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        user = validate_username(user)
        if user not in await self.membership.students(code):
            raise BadRequest(f"{user} is not a student of {code}.")
        body = self.json_body({"due_at", "reason"}, required=("due_at",))
        due = rules.parse_extension_due(body["due_at"], assignment.due_at)
        extension = await self.store.grant_extension(
            assignment.id,
            user,
            due,
            actor=self.caller().name,
            reason=rules.parse_reason(body.get("reason", "")),
        )
        self.write_json(extension_view(extension))

    async def delete(self, code, slug, user):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        await self.store.revoke_extension(
            assignment.id, validate_username(user), actor=self.caller().name
        )
        self.set_status(204)
        self.finish()


class SubmitHandler(GradesHandler):
    async def post(self, code, slug):
        code, role = await self.role(code)
        if role != STUDENT:
            raise Forbidden("Only students submit; teachers collect (POST .../collect).")
        assignment = await self.assignment(code, slug, role, archived_ok=True)
        self.refuse_if_archived(assignment)
        # the version cap and a full quota, before a snapshot is taken (the store checks
        # again, with the snapshot's size, when it records it)
        await self.store.check_can_submit(assignment.id, self.caller().name)
        submission, duplicate = await self.collector.submit(
            assignment.id, code, assignment.slug, self.caller().name, collected_by=None
        )
        self.write_json(
            {**submission_view(submission), "duplicate": duplicate},
            status=200 if duplicate else 201,
        )


class CollectHandler(GradesHandler):
    async def post(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        self.refuse_if_archived(assignment)
        students = list(await self.membership.students(code))
        results = await self.collector.collect_all(
            assignment.id, code, assignment.slug, students, teacher=self.caller().name
        )
        self.write_json({"assignment": assignment.slug, "students": results})


class SubmissionsHandler(GradesHandler):
    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        latest = {s.username: s for s in await self.store.list_submissions(assignment.id)}
        rows = []
        for user in await self.membership.students(code):
            found = latest.get(user)
            if found is None:
                rows.append({"user": user, "status": "missing", "versions": 0, "latest": None})
            else:
                status = "late" if found.latest.late else "on_time"
                rows.append(
                    {
                        "user": user,
                        "status": status,
                        "versions": found.versions,
                        "latest": submission_view(found.latest),
                    }
                )
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        self.write_json(
            {"assignment": assignment_view(assignment), "students": rows, "counts": counts}
        )


class StudentSubmissionsHandler(GradesHandler):
    """Every version one student handed in, newest first: teachers for any student of
    the class (or one who handed in before leaving it), a student for themselves only
    (with a grade once it is returned)."""

    async def get(self, code, slug, user):
        code, role = await self.role(code)
        user = validate_username(user)
        assignment = await self.assignment(code, slug, role)
        if role == STUDENT and user != self.caller().name:
            raise NotFound("There are no such submissions among yours.")
        versions = await self.store.user_submissions(
            assignment.id, user, returned_grades_only=role == STUDENT
        )
        if not versions and role != STUDENT and user not in await self.membership.students(code):
            raise NotFound(f"{user} is not a student of {code} and handed in nothing.")
        self.write_json(
            {
                "assignment": assignment.slug,
                "user": user,
                "submissions": [submission_view(s) for s in versions],
            }
        )


class SubmissionHandler(GradesHandler):
    async def get(self, submission_id):
        submission, _, role = await self.submission(submission_id)
        if role == STUDENT and submission.grade is not None and not submission.grade.returned:
            # a student sees a grade once it is returned, not while it is being written
            submission = dataclasses.replace(submission, grade=None)
        self.write_json(submission_view(submission))


class SubmissionDownloadHandler(GradesHandler):
    async def get(self, submission_id):
        submission, assignment, _ = await self.submission(submission_id)
        host = self.request.host
        proto = self.request.headers.get("X-Forwarded-Proto", self.request.protocol)
        filename = f"{assignment.slug}-{submission.username}-v{submission.version}.zip"
        url = self.objects.presign_get(
            host=host,
            secure=proto.split(",")[0].strip() == "https",
            key=submission.storage_key,
            filename=filename,
            expires=self.limits["download_expiry"],
        )
        if self.get_query_argument("redirect", "") == "1":
            # a plain link in a page works: the browser follows the short-lived link
            self.set_header("Cache-Control", "no-store")
            self.redirect(url)
            return
        self.write_json({"url": url, "expires_in": self.limits["download_expiry"]})


class GradeHandler(GradesHandler):
    async def put(self, submission_id):
        submission, assignment, role = await self.submission(submission_id)
        if role not in (ADMIN, TEACHER):
            raise Forbidden("Only the class's teachers grade.")
        body = self.json_body(
            {"points", "feedback", "expected_revision"}, required=("points", "expected_revision")
        )
        revision = body["expected_revision"]
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise BadRequest(
                "'expected_revision' must be the grade's revision you saw (0 when it had none)."
            )
        await self.store.set_grade(
            submission.id, body["points"], body.get("feedback", ""), self.caller().name, revision
        )
        self.write_json(submission_view(await self.store.get_submission(submission.id)))


class ReturnHandler(GradesHandler):
    async def post(self, submission_id):
        submission, assignment, role = await self.submission(submission_id)
        if role not in (ADMIN, TEACHER):
            raise Forbidden("Only the class's teachers return grades.")
        await self.store.return_grade(submission.id, actor=self.caller().name)
        # the feedback file goes into the student's home now (running or not); a student
        # without a home yet gets it when it first appears
        # (the service's background round delivers what is missing)
        delivered = await self.collector.deliver_pending_feedback()
        view = submission_view(await self.store.get_submission(submission.id))
        self.write_json({**view, "feedback_files_delivered": delivered})


def gradebook_view(book: gradebook.Gradebook, archived: set[str]) -> dict:
    """The gradebook as ``GET .../gradebook`` answers it."""
    return {
        "assignments": [
            {
                "slug": a.slug,
                "title": a.title,
                "max_points": _num(a.max_points),
                "archived": a.slug in archived,
            }
            for a in book.assignments
        ],
        "students": [
            {
                "user": row.username,
                # in the order of "assignments"
                "cells": [
                    {"state": c.state, "points": _num(c.points), "late": c.late} for c in row.cells
                ],
                "earned": _num(row.earned),
                "possible": _num(row.possible_graded),
                "percent": _num(row.percentage),
            }
            for row in book.rows
        ],
    }


class GradebookHandler(GradesHandler):
    """Dependencies also: ``gradebook_cache`` (:class:`.bookcache.GradebookCache`)."""

    gradebook_cache: GradebookCache

    async def book(
        self, code: str, students: list[str] | None = None
    ) -> tuple[gradebook.Gradebook, set[str]]:
        """The gradebook of ``students`` (the class's roster when not given) and the slugs
        of its archived assignments (they stay in it)."""
        if students is None:
            students = await self.membership.students_for_display(code)  # a cached answer
        # two independent queries: at once, not one after the other
        items, grades = await asyncio.gather(
            self.store.list_assignments(code, include_archived=True),
            self.store.gradebook_rows(code),
        )
        assignments = [
            {"slug": a.slug, "title": a.title, "max_points": a.max_points, "due_at": a.due_at}
            for a in items
        ]
        archived = {a.slug for a in items if a.archived}
        return gradebook.build_gradebook(students, assignments, grades), archived

    async def get(self, code, csv_suffix):
        code = await self.teacher(code)
        if csv_suffix:
            book, _ = await self.book(code)
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header(
                "Content-Disposition", f'attachment; filename="gradebook-{validate_code(code)}.csv"'
            )
            self.set_header("Cache-Control", "no-store")
            self.finish(gradebook.gradebook_csv(book))
            return
        # the generation first, then the data (see services.grades.bookcache)
        students, generation = await asyncio.gather(
            self.membership.students_for_display(code), self.store.gradebook_generation(code)
        )
        key = (generation, tuple(students))
        body = self.gradebook_cache.get(code, key)
        if body is None:
            book, archived = await self.book(code, students)
            body = json.dumps(gradebook_view(book, archived)).encode()
            self.gradebook_cache.put(code, key, body)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


class HomeHandler(GradesHandler):
    @web.authenticated
    async def get(self):
        user = self.require_user()
        self.write_json({"name": user["name"], "api": self.settings["service_prefix"] + "api/"})


def grades_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    a = r"api/classes/([^/]+)/assignments/([^/]+)"
    return [
        ("", HomeHandler, deps),
        (r"api/classes/([^/]+)/assignments", AssignmentsHandler, deps),
        (a, AssignmentHandler, deps),
        (a + r"/(archive|unarchive)", ArchiveHandler, deps),
        (a + r"/extensions", ExtensionsHandler, deps),
        (a + r"/release", ReleaseHandler, deps),
        (a + r"/extensions/([^/]+)", ExtensionHandler, deps),
        (a + r"/submit", SubmitHandler, deps),
        (a + r"/collect", CollectHandler, deps),
        (a + r"/submissions", SubmissionsHandler, deps),
        (a + r"/students/([^/]+)/submissions", StudentSubmissionsHandler, deps),
        (r"api/submissions/(\d+)", SubmissionHandler, deps),
        (r"api/submissions/(\d+)/download", SubmissionDownloadHandler, deps),
        (r"api/submissions/(\d+)/grade", GradeHandler, deps),
        (r"api/submissions/(\d+)/return", ReturnHandler, deps),
        (r"api/classes/([^/]+)/gradebook(\.csv)?", GradebookHandler, deps),
    ]
