"""The autograding API (docs/autograding.md, "The queue"; teacher-guide, "Autograding").

========================================================  ==================================
``GET  api/classes/<code>/assignments/<slug>/autograde``  teachers: the tests (without their
                                                          code), switches, images, progress
``PUT  api/classes/<code>/assignments/<slug>/autograde``  teachers: ``{notebook_path,
                                                          source?, test_files?, image?,
                                                          on_submit?, show_hidden?}``
``POST api/classes/<code>/assignments/<slug>/autograde/run``  teachers: queue every
                                                          student's counting version
``GET  api/submissions/<id>/autograde``                   a version's result: teachers all
                                                          of it, its student the tests
                                                          they may see
========================================================  ==================================

A person outside the class gets 404, a student 403 from the teachers' routes and 404 for
another student's version. The source notebook (solutions, hidden tests) never leaves the
service: no answer carries a test's code.
"""

from __future__ import annotations

import posixpath
from typing import Any

from common.errors import BadRequest
from common.groups import class_group, class_image
from services.base.membership import STUDENT, TEACHER

from .autograde import pytests
from .autograde import queue as q
from .autograde.notebook import NotebookError, load_notebook, make_plan
from .autograde.service import Autograding
from .handlers import GradesHandler, _iso, _num, assignment_view

MAX_PATH = 500


def check_notebook_path(value: Any) -> str:
    """The graded file: a relative path in the assignment's folder, ending in .ipynb."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("Name the notebook to grade, e.g. homework.ipynb.")
    path = value.strip()
    normal = posixpath.normpath(path)
    if (
        len(path) > MAX_PATH
        or path.startswith("/")
        or normal != path
        or normal.startswith("..")
        or not path.lower().endswith(".ipynb")
        or any(ord(c) < 32 for c in path)
    ):
        raise BadRequest(
            "The notebook to grade must be a path inside the assignment's folder ending in"
            " .ipynb, such as homework.ipynb or part1/homework.ipynb."
        )
    return path


def check_source(value: Any, test_files: list | None = None) -> dict:
    """The teacher's source notebook: readable, and with at least one test cell (or a
    pytest file)."""
    if not isinstance(value, dict):
        raise BadRequest("The source notebook must be a notebook's JSON object.")
    try:
        nb = load_notebook(value)
        plan = make_plan(nb, {"cells": []})
    except NotebookError as e:
        raise BadRequest(f"The source notebook cannot be used: {e}") from None
    if not plan.tests and not test_files:
        raise BadRequest(
            "The source notebook has no test cells: mark them with nbgrader's metadata"
            ' ("grade": true, "solution": false) or the tag "test", or attach a pytest file.'
        )
    return nb


def check_test_files(value: Any) -> list[dict]:
    try:
        return [f.as_json() for f in pytests.parse_files(value)]
    except NotebookError as e:
        raise BadRequest(str(e)) from None


def tests_view(source: dict, test_files: list | None = None) -> list[dict]:
    """The tests of a source notebook and the pytest files, without their code."""
    files = [pytests.TestFile(**f) for f in test_files or []]
    tests = make_plan(source, {"cells": []}).tests + pytests.file_tests(files)
    return [{"id": t.id, "points": t.points, "visibility": t.visibility} for t in tests]


def test_view(row: q.TestRow, *, teacher: bool) -> dict:
    view = {
        "id": row.test_id,
        "status": row.status,
        "score": _num(row.score),
        "points": _num(row.points),
        "visibility": row.visibility,
        "message": row.message,
    }
    if teacher:
        view.update(flags=list(row.flags), question=row.question_key)
    return view


class AutogradeHandler(GradesHandler):
    autograding: Autograding

    async def class_default_image(self, code: str) -> str:
        """The image a class's autograding uses unless the teacher chooses another: the
        class's own (its students' servers run it, so their code meets the same packages)
        when classhub grades in it, else the service's ``autograde_image``."""
        image = class_image(await self.membership.hub.get_group(class_group(code)))
        return image if image in self.autograding.images else self.autograding.default_image

    async def config_answer(self, assignment) -> dict:
        config = await self.store.autograde_config(assignment.id)
        progress, failed = await self.store.autograde_progress(assignment.id)
        return {
            "assignment": assignment_view(assignment),
            "config": None
            if config is None
            else {
                "notebook_path": config.notebook_path,
                "image": config.image,
                "on_submit": config.on_submit,
                "show_hidden": config.show_hidden,
                "revision": config.revision,
                "updated_by": config.updated_by,
                "updated_at": _iso(config.updated_at),
                "tests": tests_view(config.source, config.test_files),
                "test_files": [
                    {k: f[k] for k in ("name", "points", "visibility", "question")}
                    for f in config.test_files
                ],
            },
            "images": self.autograding.images,
            "default_image": await self.class_default_image(assignment.class_code),
            "progress": progress.as_json(),
            "failed": [
                {
                    "user": f["username"],
                    "version": f["version"],
                    "submission": f["submission_id"],
                    "reason": f["reason"],
                    "attempts": f["attempts"],
                }
                for f in failed
            ],
        }

    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        self.write_json(await self.config_answer(assignment))

    async def put(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        body = self.json_body(
            {"notebook_path", "source", "test_files", "image", "on_submit", "show_hidden"},
            required=("notebook_path",),
        )
        current = await self.store.autograde_config(assignment.id)
        for switch in ("on_submit", "show_hidden"):
            if switch in body and not isinstance(body[switch], bool):
                raise BadRequest(f"'{switch}' must be true or false.")
        if "test_files" in body:
            test_files = check_test_files(body["test_files"])
        else:
            test_files = current.test_files if current else []
        if "source" in body:
            source = check_source(body["source"], test_files)
        elif current is not None:
            source = current.source
        else:
            raise BadRequest("Send the source notebook (with its tests) the first time.")
        image = body.get("image") or (
            current.image if current else await self.class_default_image(code)
        )
        if image not in self.autograding.images:
            raise BadRequest(
                f"{str(image)[:100]!r} is not an image classhub grades in; choose one of: "
                + ", ".join(self.autograding.images)
            )
        await self.store.set_autograde_config(
            assignment.id,
            notebook_path=check_notebook_path(body["notebook_path"]),
            source=source,
            image=image,
            on_submit=body.get("on_submit", current.on_submit if current else False),
            show_hidden=body.get("show_hidden", current.show_hidden if current else False),
            actor=self.caller().name,
            test_files=test_files,
        )
        self.write_json(await self.config_answer(assignment))


class AutogradeRunHandler(AutogradeHandler):
    """Queue every student's counting version (the one the gradebook shows): versions
    already graded with these tests are not graded again; failed ones are tried again."""

    async def post(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        self.json_body(())
        data = await self.standing_data(assignment)
        now = self.now()
        ids = []
        for user in sorted(data.users(assignment.id)):
            counting = data.standing(assignment.id, user, now).counting
            if counting is not None:
                ids.append(counting.id)
        queued = await self.store.enqueue_autograde(
            ids, trigger="teacher", actor=self.caller().name
        )
        if queued:
            self.autograding.wake()
        answer = await self.config_answer(assignment)
        self.write_json({"queued": queued, "versions": len(ids), **answer})


class SubmissionAutogradeHandler(AutogradeHandler):
    """A version's autograding: its job's state and its result. Its student sees the
    tests they may (visible; after the due date once their deadline passed; hidden ones
    only when the teacher opted in), with no flags and no test code."""

    async def get(self, submission_id):
        submission, assignment, role = await self.submission(submission_id)
        config = await self.store.autograde_config(assignment.id)
        jobs = await self.store.autograde_job_states([submission.id])
        results = await self.store.autograde_results([submission.id])
        job = jobs.get(submission.id)
        result = results.get(submission.id)
        teacher = role != STUDENT
        answer: dict[str, Any] = {
            "submission": submission.id,
            "configured": config is not None,
            "state": job["state"] if job else None,
            "reason": job["reason"] if job and teacher else None,
            "result": None,
        }
        if result is not None:
            rows = result["tests"]
            if not teacher:
                data = await self.standing_data(assignment, submission.username)
                now = self.now()
                due_passed = data.standing(assignment.id, submission.username, now).deadline_passed
                if due_passed:
                    # after-due tests give answers away: nobody sees them while a
                    # classmate with an extension still works
                    extensions = await self.store.list_extensions(assignment.id)
                    due_passed = all(now > e.due_at for e in extensions)
                rows = q.for_student(
                    rows,
                    show_hidden=bool(config and config.show_hidden),
                    due_passed=due_passed,
                )
            view = {
                "graded_at": _iso(result["graded_at"]),
                "complete": result["complete"],
                "reason": result["reason"],
                "score": _num(sum((r.score for r in rows), q.cents(0))),
                "points": _num(sum((r.points for r in rows), q.cents(0))),
                "tests": [test_view(r, teacher=teacher) for r in rows],
                # the cells that stopped with an error, a timeout or the kernel's end:
                # the student's own code (or the released cell put back), so both see them
                "cells": result.get("cells") or [],
            }
            if teacher:
                view.update(
                    flags=result["flags"],
                    cell_flags=result["cell_flags"],
                    config_revision=result["config_revision"],
                    # tests never shown to the student (hidden, unless opted in)
                    hidden=sum(
                        1
                        for r in rows
                        if not q.student_sees(
                            r.visibility,
                            show_hidden=bool(config and config.show_hidden),
                            due_passed=True,
                        )
                    ),
                )
            answer["result"] = view
        self.write_json(answer)


def autograde_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    a = r"api/classes/([^/]+)/assignments/([^/]+)"
    return [
        (a + r"/autograde", AutogradeHandler, deps),
        (a + r"/autograde/run", AutogradeRunHandler, deps),
        (r"api/submissions/(\d+)/autograde", SubmissionAutogradeHandler, deps),
    ]
