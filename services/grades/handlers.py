"""The grades service's REST API (JSON; paths relative to ``/services/grades/``).

========================================================  ==================================
``GET    api/classes/<code>/assignments``                 teachers: every assignment;
                                                          students: released ones, each with
                                                          their own due date and versions
``POST   api/classes/<code>/assignments``                 create (teachers)
``GET    api/classes/<code>/assignments/<slug>``          one assignment
``PATCH  api/classes/<code>/assignments/<slug>``          edit (teachers)
``POST   api/classes/<code>/copy-assignments``            ``{"from": "<old code>"}``: the
                                                          old class's assignments, archived
                                                          and undated (teachers of both)
``DELETE api/classes/<code>/assignments/<slug>``          delete one without submissions
                                                          (teachers; otherwise 409: archive)
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
``POST   .../assignments/<slug>/starting-files``          teachers: sign the upload of a
                                                          starting file ``{"path", "size"}``
                                                          (through the files service; the
                                                          browser PUTs the bytes to the
                                                          store with the answer's ``url``
                                                          and ``headers``)
``POST   .../starting-files/<upload id>``                 teachers: the upload arrived
``PUT    .../assignments/<slug>/extensions/<user>``       ``{"due_at", "reason"}`` (teachers)
``DELETE .../assignments/<slug>/extensions/<user>``       revoke it
``POST   .../assignments/<slug>/submit``                  a student hands in their folder
``POST   .../assignments/<slug>/collect``                 teachers: everyone's folder now
``GET    .../assignments/<slug>/submissions``             teachers: on time, late, missing
``GET    .../<slug>/students/<user>/submissions``         every version of one student,
                                                          newest first, and where they
                                                          stand (teachers; a student:
                                                          their own)
``PUT    .../<slug>/students/<user>/counts``              teachers: ``{"submission_id":
                                                          <id> or null, "reason"}``: the
                                                          version that counts
``PUT    .../<slug>/students/<user>/penalty``             teachers: ``{"penalty_percent":
                                                          <0-100> or null, "reason"}``
``GET    .../assignments/<slug>/questions``               teachers: the questions
``PUT    .../assignments/<slug>/questions``               ``{"questions": [{"key"?,
                                                          "label", "points"}]}`` (teachers)
``POST   .../assignments/<slug>/questions/import``        ``{"notebook", "by"}``: the
                                                          questions a notebook defines
``GET    api/submissions/<id>``                           the version (teacher or its owner)
``GET    api/submissions/<id>/download``                  a short-lived link to its zip
                                                          (``?redirect=1``: a 302 to it)
``PUT    api/submissions/<id>/grade``                     ``{"points" or "questions",
                                                          "feedback", "expected_revision"}``
                                                          (teachers)
``POST   api/submissions/<id>/return``                    return the grade to the student
``GET    api/classes/<code>/gradebook``                   teachers: the table (JSON)
``GET    api/classes/<code>/gradebook.csv``               the same as a spreadsheet file
========================================================  ==================================

Who may do what comes from the hub's class groups (``teachers-<code>``, ``class-<code>``);
a person outside the class gets 404 and learns nothing about it. A student of the class
gets 403 from the teachers' routes, and 404 for an assignment they cannot see (not
released, archived) or another student's work.

Where a student stands (which version counts, on time or late against their current
deadline, the penalty, the points) comes from one pure computation,
:func:`.standing.standing`, through :func:`standing_view`: the student's answers, the
teachers' and the gradebook always agree. At each student's deadline the service takes a
snapshot of their folder by itself (:mod:`.deadlines`).

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
import datetime
import json
from decimal import Decimal
from typing import Any

from tornado import web

from common.errors import BadRequest, Conflict, Forbidden, NotFound
from services.base.handlers import BaseHandler
from services.base.membership import ADMIN, STUDENT, TEACHER, Caller, Membership
from services.base.names import BadName, validate_assignment, validate_code, validate_username

from . import gradebook, rules
from . import questions as qs
from . import standing as st
from .bookcache import GradebookCache
from .collect import Collector
from .release import FilesClient, FilesRefused, FilesUnavailable, Releaser
from .store import Assignment, Extension, GradesStore, StandingData, Submission


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


def submission_view(
    s: Submission,
    v: st.VersionStanding,
    *,
    due: datetime.datetime | None,
    question_points: dict[str, tuple[Decimal, str]] | None = None,
) -> dict:
    """A version as both sides see it: on time or late against the student's current
    deadline ``due``, whether it counts, its grade (the caller hides an unreturned one
    from a student)."""
    grade = s.grade
    return {
        "id": s.id,
        "user": s.username,
        "version": s.version,
        "submitted_at": _iso(s.submitted_at),
        # how it was taken; a deadline snapshot stands for its deadline (on time by
        # construction), submitted_at is when it was really taken
        "kind": s.kind,
        "deadline_for": _iso(s.deadline_for),
        "due_at": _iso(due),
        "on_time": v.on_time,
        "late": v.late,
        "counts": v.counts,
        # the penalty it gets when it counts (0 when on time)
        "penalty_percent": _num(v.penalty_percent),
        "files": s.files,
        "bytes": s.size_bytes,
        "sha256": s.content_sha256,
        "collected_by": s.collected_by,
        "grade": None
        if grade is None
        else {
            "points": _num(grade.points),
            "final_points": _num(v.final_points),
            "feedback": grade.feedback,
            "graded_by": grade.graded_by,
            "graded_at": _iso(grade.graded_at),
            "returned_at": _iso(grade.returned_at),
            "revision": grade.revision,
            "questions": {
                k: {"points": _num(p), "source": src}
                for k, (p, src) in (question_points or {}).items()
            },
        },
    }


def _hidden_grade(view: dict) -> dict:
    """A student sees a grade once it is returned, not while it is being written."""
    grade = view.get("grade")
    if grade is not None and not grade["returned_at"]:
        return {**view, "grade": None}
    return view


def standing_view(data: StandingData, assignment_id: int, user: str, now, *, student: bool):
    """``(standing, its JSON, the versions' JSON newest first)``: THE computation
    (:func:`.standing.standing`), as the student's page, the teacher's page and the
    gradebook show it. A student sees points only once they are returned."""
    standing = data.standing(assignment_id, user, now)
    subs = {v.id: data.submissions[v.id] for v in standing.versions if v.id in data.submissions}
    versions = []
    for v in standing.versions:
        sub = subs.get(v.id)
        if sub is None:
            continue
        view = submission_view(
            sub, v, due=standing.due, question_points=data.question_points.get(v.id)
        )
        versions.append(_hidden_grade(view) if student else view)
    hide = student and not standing.returned
    deadline = data.deadlines.get((assignment_id, user))
    choice = data.choices.get((assignment_id, user))
    state = standing.state
    if student and state == st.GRADED and not standing.returned:
        state = st.HANDED_IN
    view = {
        "user": user,
        "state": state,
        "due_at": _iso(standing.due),
        "deadline_passed": standing.deadline_passed,
        "extended": (assignment_id, user) in data.extensions,
        "counting_id": standing.counting.id if standing.counting else None,
        "counting_version": standing.counting.version if standing.counting else None,
        "why": standing.why,
        "late": standing.late,
        "penalty_percent": _num(standing.penalty_percent),
        "penalty_source": standing.penalty_source,
        "points": None if hide else _num(standing.points),
        "final_points": None if hide else _num(standing.final_points),
        "returned": standing.returned,
        "missing_reason": standing.missing_reason,
        "deadline_snapshot": None
        if deadline is None
        else {
            "due_at": _iso(deadline.due_at),
            "state": deadline.state,
            "taken_at": _iso(deadline.taken_at),
            "submission_id": deadline.submission_id,
            "reason": deadline.reason if deadline.state == "missing" or not student else None,
        },
    }
    if not student:
        view["choice"] = None
        if choice is not None:
            view["choice"] = {
                "counted_submission_id": choice.counted_submission_id,
                "counted_by": choice.counted_by,
                "counted_at": _iso(choice.counted_at),
                "counted_reason": choice.counted_reason,
                "penalty_percent": _num(choice.penalty_percent),
                "penalty_by": choice.penalty_by,
                "penalty_at": _iso(choice.penalty_at),
                "penalty_reason": choice.penalty_reason,
            }
    return standing, view, versions


def questions_view(questions: list[qs.Question]) -> list[dict]:
    return [
        {"key": q.key, "label": q.label, "points": _num(q.points), "origin": q.origin}
        for q in questions
    ]


def submissions_answer(
    assignment: Assignment, roster: list[str], data: StandingData, now: datetime.datetime
) -> dict:
    """The submissions list as ``GET .../submissions`` answers it (teachers): every
    student of ``roster`` and everyone who handed in (``data``: the assignment's
    standing data, full), sorted by name, with where they stand, their latest version
    and the one that counts; the counts of each status."""
    rows = []
    for user in sorted(set(roster) | data.users(assignment.id)):
        standing, view, versions = standing_view(data, assignment.id, user, now, student=False)
        counting = next((v for v in versions if v["counts"]), None)
        if counting is None:
            status = standing.state  # missing, or not handed in yet
        else:
            status = "late" if counting["late"] else "on_time"
        rows.append(
            {
                "user": user,
                "status": status,
                "versions": len(versions),
                "latest": versions[0] if versions else None,
                "counting": counting,
                "standing": view,
                "on_roster": user in roster,
            }
        )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {
        "assignment": assignment_view(assignment),
        "questions": questions_view(data.questions.get(assignment.id, [])),
        "students": rows,
        "counts": counts,
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

    async def standing_data(self, assignment: Assignment, user: str | None = None):
        return await self.store.standing_data(
            assignment.class_code, assignment_id=assignment.id, username=user
        )

    async def student_answer(
        self, assignment: Assignment, user: str, role: str, data: StandingData | None = None
    ) -> dict:
        """One student's standing and versions, as ``GET .../students/<user>/submissions``
        answers (a student: their own, with grades once returned); ``data``: standing
        data already read that holds the student (else it is read)."""
        if data is None:
            data = await self.standing_data(assignment, user)
        _, view, versions = standing_view(
            data, assignment.id, user, self.now(), student=role == STUDENT
        )
        return {
            "assignment": assignment.slug,
            "user": user,
            "standing": view,
            "submissions": versions,
            "questions": questions_view(data.questions.get(assignment.id, [])),
        }

    async def checked_student_answer(
        self,
        code: str,
        assignment: Assignment,
        user: str,
        role: str,
        *,
        data: StandingData | None = None,
        roster: list[str] | None = None,
    ) -> dict:
        """:meth:`student_answer` for the caller, who has ``role`` in class ``code``: a
        student for themselves only, teachers for a student of the class or one who
        handed in (404 otherwise); ``roster``: the class's students already read."""
        if role == STUDENT and user != self.caller().name:
            raise NotFound("There are no such submissions among yours.")
        answer = await self.student_answer(assignment, user, role, data)
        if not answer["submissions"] and role != STUDENT:
            if roster is None:
                roster = await self.membership.students(code)
            if user not in roster:
                raise NotFound(f"{user} is not a student of {code} and handed in nothing.")
        return answer

    async def version_answer(
        self,
        submission: Submission,
        assignment: Assignment,
        role: str,
        data: StandingData | None = None,
    ):
        """One version as its assignment's standing shows it; ``data``: standing data
        already read that holds the version's student (else it is read)."""
        if data is None:
            data = await self.standing_data(assignment, submission.username)
        standing = data.standing(assignment.id, submission.username, self.now())
        mine = standing.version(submission.id)
        view = submission_view(
            data.submissions.get(submission.id, submission),
            mine,
            due=standing.due,
            question_points=data.question_points.get(submission.id),
        )
        return _hidden_grade(view) if role == STUDENT else view

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
        now = self.now()
        data = await self.store.standing_data(code, username=me)
        items = sorted(
            (
                a
                for a in data.assignments.values()
                if rules.visible_to_student(a.release_at, a.archived, now)
            ),
            key=lambda a: (a.due_at is None, a.due_at or now, a.slug),
        )
        views = []
        for a in items:
            _, standing, versions = standing_view(data, a.id, me, now, student=True)
            due = data.due(a.id, me)
            views.append(
                {
                    **assignment_view(a),
                    "your_due_at": _iso(due),
                    "seconds_left": None if due is None else (due - now).total_seconds(),
                    "extended": standing["extended"],
                    "standing": standing,
                    "submissions": versions,
                    "questions": questions_view(data.questions.get(a.id, [])),
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


class CopyAssignmentsHandler(GradesHandler):
    """``POST api/classes/<code>/copy-assignments`` ``{"from": "<old code>"}``: the old
    class's assignments (not archived) again in class ``<code>``, for a new term: title,
    instructions, points, late policy and penalty, starting files' names and questions;
    no release or due date, no submissions, grades or extensions. The copies are archived
    (students see nothing, nothing is released) until a teacher sets this term's dates
    and restores them. The caller must teach (or administer) both classes. An assignment whose
    folder name the new class has already is left as it is (``skipped``), so calling it
    again finishes an interrupted copy. The starting files themselves are in the files
    service (its ``POST api/classes/<code>/copy``)."""

    async def post(self, code):
        target = await self.teacher(code)
        body = self.json_body({"from"}, required=("from",))
        if not isinstance(body["from"], str):
            raise BadRequest("'from' must be the code of the class to copy from.")
        source = await self.teacher(body["from"])
        if source == target:
            raise BadRequest("A class cannot be copied into itself.")
        actor = self.caller().name
        have = {a.slug for a in await self.store.list_assignments(target, include_archived=True)}
        copied, skipped = [], []
        for old in await self.store.list_assignments(source):
            if old.slug in have:
                skipped.append(old.slug)
                continue
            fields = rules.AssignmentFields(
                slug=old.slug,
                title=old.title,
                max_points=old.max_points,
                instructions=old.instructions,
                late_policy=old.late_policy,
                late_penalty_percent=old.late_penalty_percent,
                starting_files=old.starting_files,
            )
            # archived: nothing is released nor shown to students until a teacher has set
            # this term's dates and restores it
            new = await self.store.create_assignment(target, fields, actor=actor, archived=True)
            questions = await self.store.questions(old.id)
            if questions:
                await self.store.set_questions(
                    new.id,
                    [{"label": q.label, "points": q.points, "origin": q.origin} for q in questions],
                    actor=actor,
                )
            copied.append(old.slug)
        self.log.info("%s copied %d assignment(s) of %s to %s", actor, len(copied), source, target)
        self.write_json({"from": source, "code": target, "copied": copied, "skipped": skipped})


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

    async def delete(self, code, slug):
        """Delete an assignment nobody handed anything in for (teachers); one with
        submissions is a 409 that says to archive it instead."""
        code = await self.teacher(code)
        current = await self.assignment(code, slug, TEACHER)
        await self.store.delete_assignment(current.id, actor=self.caller().name)
        self.log.info("%s deleted assignment %s/%s", self.caller().name, code, current.slug)
        self.set_status(204)
        self.finish()


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


class StartingFilesHandler(GradesHandler):
    """The assignment editor's upload of starting files: the grades service checks the
    teacher and asks the files service (as a release service, for that teacher) to sign
    the upload; the bytes go from the browser to the store, never through a service."""

    def browser_address(self) -> tuple[str, bool]:
        proto = self.request.headers.get("X-Forwarded-Proto", self.request.protocol)
        return self.request.host, proto.split(",")[0].strip() == "https"

    async def post(self, code, slug, upload_id=None):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        teacher = self.caller().name
        if upload_id is not None:
            self.json_body(())
            done = await self.files.finish_starting_upload(code, upload_id, teacher=teacher)
            self.log.info("%s uploaded a starting file of %s/%s", teacher, code, assignment.slug)
            self.write_json(done)
            return
        body = self.json_body({"path", "size"}, required=("path", "size"))
        size, path = body["size"], body["path"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest("'size' must be the file's size in bytes (a whole number).")
        if not isinstance(path, str):
            raise BadRequest("'path' must be the file's name, e.g. 'start.ipynb'.")
        host, secure = self.browser_address()
        signed = await self.files.sign_starting_upload(
            code, assignment.slug, path, size, teacher=teacher, host=host, secure=secure
        )
        self.write_json({k: signed.get(k) for k in ("id", "method", "url", "headers")})


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
        me = self.caller().name
        submission, duplicate, snapshot = await self.collector.submit(
            assignment.id, code, assignment.slug, me, collected_by=None
        )
        # the version's grading job, if the assignment grades on Submit, was queued with
        # it (a trigger, migration 0006): the workers look now, not at their next poll
        autograding = getattr(self, "autograding", None)
        if autograding is not None and not duplicate:
            autograding.wake()
        view = await self.version_answer(submission, assignment, STUDENT)
        self.write_json(
            {
                **view,
                "duplicate": duplicate,
                # what was taken just now: the folder as saved on disk (a notebook's
                # unsaved changes in JupyterLab are not in it)
                "taken": {
                    "at": _iso(self.now()),
                    "files": snapshot.files,
                    "bytes": snapshot.size,
                    "skipped": snapshot.skipped,
                    "skipped_total": snapshot.skipped_total,
                },
            },
            status=200 if duplicate else 201,
        )


class CollectHandler(GradesHandler):
    async def post(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        self.refuse_if_archived(assignment)
        students = list(await self.membership.students(code))
        before = await self.standing_data(assignment)
        now = self.now()
        passed = set()
        for user in students:
            due = before.due(assignment.id, user)
            if due is not None and now > due:
                passed.add(user)
        results = await self.collector.collect_all(
            assignment.id,
            code,
            assignment.slug,
            students,
            teacher=self.caller().name,
            passed=passed,
        )
        # how each version stands (after the deadline a collect records a late version
        # only when the folder changed, and never changes which version counts)
        after = await self.standing_data(assignment)
        now = self.now()
        for r in results:
            if r["status"] != "collected":
                continue
            standing = after.standing(assignment.id, r["user"], now)
            mine = standing.version(r["id"])
            r["late"] = bool(mine and mine.late)
            r["counts"] = bool(mine and mine.counts)
            r["counting_version"] = standing.counting.version if standing.counting else None
        self.write_json({"assignment": assignment.slug, "students": results})


class SubmissionsHandler(GradesHandler):
    """Every student of the class (and anyone who handed in before leaving it): where
    they stand (the version that counts, on time or late, missing or not handed in yet)
    and their latest version (:func:`submissions_answer`)."""

    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        roster = await self.membership.students(code)
        data = await self.standing_data(assignment)
        self.write_json(submissions_answer(assignment, roster, data, self.now()))


class StudentSubmissionsHandler(GradesHandler):
    """Every version one student handed in, newest first: teachers for any student of
    the class (or one who handed in before leaving it), a student for themselves only
    (with a grade once it is returned)."""

    async def get(self, code, slug, user):
        code, role = await self.role(code)
        user = validate_username(user)
        assignment = await self.assignment(code, slug, role)
        self.write_json(await self.checked_student_answer(code, assignment, user, role))


class StudentChoiceHandler(GradesHandler):
    """Teachers: ``PUT .../students/<user>/counts`` ``{"submission_id": <id> or null,
    "reason"}`` (the version that counts for this student; null: the default rule) and
    ``PUT .../students/<user>/penalty`` ``{"penalty_percent": <0-100> or null, "reason"}``
    (this student's late penalty; 0 waives it, null: the assignment's; a reason is
    required). Both are in the audit log; the answer is the student's standing and
    versions."""

    async def put(self, code, slug, user, what):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        user = validate_username(user)
        actor = self.caller().name
        if what == "counts":
            body = self.json_body({"submission_id", "reason"}, required=("submission_id",))
            chosen = body["submission_id"]
            if chosen is not None and (
                isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1
            ):
                raise BadRequest("'submission_id' must be a version's id, or null.")
            await self.store.choose_version(
                assignment.id,
                user,
                chosen,
                actor=actor,
                reason=rules.parse_reason(body.get("reason", "")),
            )
        else:
            body = self.json_body({"penalty_percent", "reason"}, required=("penalty_percent",))
            percent = body["penalty_percent"]
            if percent is not None:
                percent = rules.parse_decimal(
                    percent,
                    "late_penalty_percent",
                    low=Decimal(0),
                    high=Decimal(100),
                    low_open=False,
                )
            await self.store.set_penalty(
                assignment.id,
                user,
                percent,
                actor=actor,
                reason=rules.parse_reason(body.get("reason", "")),
            )
        self.write_json(await self.student_answer(assignment, user, TEACHER))


class QuestionsHandler(GradesHandler):
    """``GET .../questions`` (teachers; students see them with their assignments) and
    ``PUT .../questions`` ``{"questions": [{"key"?, "label", "points"}], "revision"?}``:
    the assignment's questions; its maximum becomes their sum."""

    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        questions = await self.store.questions(assignment.id)
        self.write_json(
            {
                "assignment": assignment_view(assignment),
                "questions": questions_view(questions),
            }
        )

    async def put(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        body = self.json_body({"questions", "revision"}, required=("questions",))
        revision = body.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise BadRequest("'revision' must be the assignment's revision you saw.")
        updated, questions = await self.store.set_questions(
            assignment.id, body["questions"], actor=self.caller().name, expected_revision=revision
        )
        self.write_json(
            {"assignment": assignment_view(updated), "questions": questions_view(questions)}
        )


class QuestionsImportHandler(GradesHandler):
    """``POST .../questions/import`` ``{"notebook": {...}, "by": "tag" | "heading",
    "tag": "question"}`` (teachers): the questions a notebook defines, to review and
    save with ``PUT .../questions``; nothing is stored. The page reads the starting
    notebook through the files service (as the teacher) and sends its cells, without
    outputs."""

    async def post(self, code, slug):
        code = await self.teacher(code)
        await self.assignment(code, slug, TEACHER)
        body = self.json_body({"notebook", "by", "tag"}, required=("notebook",))
        found = qs.questions_from_notebook(
            body["notebook"],
            by=body.get("by", qs.BY_TAG),
            tag=body.get("tag", qs.DEFAULT_TAG),
        )
        self.write_json(
            {
                "questions": [
                    {"label": q["label"], "points": _num(q["points"]), "origin": q["origin"]}
                    for q in found
                ]
            }
        )


class SubmissionHandler(GradesHandler):
    async def get(self, submission_id):
        submission, assignment, role = await self.submission(submission_id)
        self.write_json(await self.version_answer(submission, assignment, role))


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
            {"points", "questions", "feedback", "expected_revision"},
            required=("expected_revision",),
        )
        revision = body["expected_revision"]
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise BadRequest(
                "'expected_revision' must be the grade's revision you saw (0 when it had none)."
            )
        if "points" not in body and "questions" not in body:
            raise BadRequest("Give the points (or the points per question).")
        await self.store.set_grade(
            submission.id,
            body.get("points"),
            body.get("feedback", ""),
            self.caller().name,
            revision,
            question_points=body.get("questions"),
        )
        graded = await self.store.get_submission(submission.id)
        self.write_json(await self.version_answer(graded, assignment, role))


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
        returned = await self.store.get_submission(submission.id)
        view = await self.version_answer(returned, assignment, role)
        self.write_json({**view, "feedback_files_delivered": delivered})


def _cell_view(c: gradebook.Cell) -> dict:
    view: dict[str, Any] = {"state": c.state, "points": _num(c.points), "late": c.late}
    if c.questions:
        view["questions"] = [_num(v) for v in c.questions]
    if c.reason:
        view["reason"] = c.reason
    return view


def gradebook_view(book: gradebook.Gradebook, archived: set[str]) -> dict:
    """The gradebook as ``GET .../gradebook`` answers it."""
    return {
        "assignments": [
            {
                "slug": a.slug,
                "title": a.title,
                "max_points": _num(a.max_points),
                "archived": a.slug in archived,
                "questions": [
                    {"key": q.key, "label": q.label, "points": _num(q.points)} for q in a.questions
                ],
            }
            for a in book.assignments
        ],
        "students": [
            {
                "user": row.username,
                # in the order of "assignments"
                "cells": [_cell_view(c) for c in row.cells],
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
        self, code: str, students: list[str] | None = None, *, tests: bool = False
    ) -> tuple[gradebook.Gradebook, set[str]]:
        """The gradebook of ``students`` (the class's roster when not given) and the slugs
        of its archived assignments (they stay in it); with ``tests``, also the score of
        each automatic test of the counting versions (the CSV export)."""
        if students is None:
            students = await self.membership.students_for_display(code)  # a cached answer
        data = await self.store.standing_data(code, full=False)
        now = self.now()
        standings = {
            (a.id, user): data.standing(a.id, user, now)
            for a in data.assignments.values()
            for user in students
        }
        results: dict[int, dict] = {}
        if tests:
            counting = [s.counting.id for s in standings.values() if s.counting is not None]
            results = await self.store.autograde_results(counting)
        assignments, rows = [], []
        for a in data.assignments.values():
            questions = data.questions.get(a.id, [])
            # the tests of the counting versions' results, in their order (a version
            # graded with older tests may lack some)
            tests_of = {
                user: results.get(c.id, {}).get("tests", ())
                if (c := standings[a.id, user].counting) is not None
                else ()
                for user in students
            }
            test_points: dict[str, Any] = {}
            for user in students:
                for t in tests_of[user]:
                    test_points.setdefault(t.test_id, t.points)
            assignments.append(
                {
                    "slug": a.slug,
                    "title": a.title,
                    "max_points": a.max_points,
                    "due_at": a.due_at,
                    "questions": [(q.key, q.label, q.points) for q in questions],
                    "tests": list(test_points.items()),
                }
            )
            for user in students:
                # THE computation, as the student's page and the teacher's list show it
                standing = standings[a.id, user]
                counting = standing.counting
                per_question = {}
                if questions and counting is not None:
                    given = data.question_points.get(counting.id, {})
                    per_question = {k: p for k, (p, _) in given.items()}
                rows.append(
                    {
                        "username": user,
                        "slug": a.slug,
                        "state": standing.state,
                        "submitted": counting is not None,
                        "points": standing.points,
                        "final_points": standing.final_points,
                        "late": standing.late,
                        "penalty_percent": standing.penalty_percent,
                        "questions": per_question,
                        "reason": standing.missing_reason,
                        "tests": {t.test_id: t.score for t in tests_of[user]},
                    }
                )
        archived = {a.slug for a in data.assignments.values() if a.archived}
        return gradebook.build_gradebook(students, assignments, rows), archived

    async def get(self, code, csv_suffix):
        code = await self.teacher(code)
        if csv_suffix:
            book, _ = await self.book(code, tests=True)
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header(
                "Content-Disposition", f'attachment; filename="gradebook-{validate_code(code)}.csv"'
            )
            self.set_header("Cache-Control", "no-store")
            self.finish(gradebook.gradebook_csv(book))
            return
        # the generation first, then the data (see services.grades.bookcache)
        students, generation = await asyncio.gather(
            self.membership.students_for_display(code), self.store.gradebook_key(code)
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
    same_origin_home = True  # pages of other services read the XSRF token here

    @web.authenticated
    async def get(self):
        user = self.require_user()
        # the XSRF token: a page of another service calls this one with it (a class's copy)
        self.write_json(
            {
                "name": user["name"],
                "api": self.settings["service_prefix"] + "api/",
                "xsrf": self.xsrf_token.decode("ascii"),
            }
        )


def grades_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    a = r"api/classes/([^/]+)/assignments/([^/]+)"
    return [
        ("", HomeHandler, deps),
        (r"api/classes/([^/]+)/assignments", AssignmentsHandler, deps),
        (r"api/classes/([^/]+)/copy-assignments", CopyAssignmentsHandler, deps),
        (a, AssignmentHandler, deps),
        (a + r"/(archive|unarchive)", ArchiveHandler, deps),
        (a + r"/extensions", ExtensionsHandler, deps),
        (a + r"/release", ReleaseHandler, deps),
        (a + r"/starting-files", StartingFilesHandler, deps),
        (a + r"/starting-files/([0-9a-f]+)", StartingFilesHandler, deps),
        (a + r"/extensions/([^/]+)", ExtensionHandler, deps),
        (a + r"/submit", SubmitHandler, deps),
        (a + r"/collect", CollectHandler, deps),
        (a + r"/submissions", SubmissionsHandler, deps),
        (a + r"/students/([^/]+)/submissions", StudentSubmissionsHandler, deps),
        (a + r"/students/([^/]+)/(counts|penalty)", StudentChoiceHandler, deps),
        (a + r"/questions", QuestionsHandler, deps),
        (a + r"/questions/import", QuestionsImportHandler, deps),
        (r"api/submissions/(\d+)", SubmissionHandler, deps),
        (r"api/submissions/(\d+)/download", SubmissionDownloadHandler, deps),
        (r"api/submissions/(\d+)/grade", GradeHandler, deps),
        (r"api/submissions/(\d+)/return", ReturnHandler, deps),
        (r"api/classes/([^/]+)/gradebook(\.csv)?", GradebookHandler, deps),
    ]
