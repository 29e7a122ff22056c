"""The grades API's pure parts: which handler a path reaches, the archived refusal and
the extension's JSON."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.errors import Conflict
from services.grades import handlers
from services.grades.store import Assignment, Extension

pytestmark = pytest.mark.unit

WHEN = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def route(path: str) -> tuple[type, tuple[str, ...]] | None:
    """The handler and path arguments tornado would pick (first full match wins)."""
    for pattern, handler, _ in handlers.grades_handlers({}):
        found = re.fullmatch(pattern, path)
        if found:
            return handler, found.groups()
    return None


@pytest.mark.parametrize(
    "path, handler, args",
    [
        ("api/classes/c1/assignments/hw/extensions", handlers.ExtensionsHandler, ("c1", "hw")),
        (
            "api/classes/c1/assignments/hw/extensions/sam",
            handlers.ExtensionHandler,
            ("c1", "hw", "sam"),
        ),
        ("api/classes/c1/assignments/hw/archive", handlers.ArchiveHandler, ("c1", "hw", "archive")),
        (
            "api/classes/c1/assignments/hw/unarchive",
            handlers.ArchiveHandler,
            ("c1", "hw", "unarchive"),
        ),
        (
            "api/classes/c1/assignments/hw/students/sam/submissions",
            handlers.StudentSubmissionsHandler,
            ("c1", "hw", "sam"),
        ),
        ("api/classes/c1/assignments/hw/submissions", handlers.SubmissionsHandler, ("c1", "hw")),
        (
            "api/classes/c1/assignments/hw/students/sam/counts",
            handlers.StudentChoiceHandler,
            ("c1", "hw", "sam", "counts"),
        ),
        (
            "api/classes/c1/assignments/hw/students/sam/penalty",
            handlers.StudentChoiceHandler,
            ("c1", "hw", "sam", "penalty"),
        ),
        ("api/classes/c1/assignments/hw/questions", handlers.QuestionsHandler, ("c1", "hw")),
        (
            "api/classes/c1/assignments/hw/questions/import",
            handlers.QuestionsImportHandler,
            ("c1", "hw"),
        ),
        ("api/classes/c1/assignments/hw", handlers.AssignmentHandler, ("c1", "hw")),
        ("api/submissions/12/download", handlers.SubmissionDownloadHandler, ("12",)),
    ],
)
def test_each_path_reaches_its_handler(path, handler, args):
    assert route(path) == (handler, args)


@pytest.mark.parametrize(
    "path",
    [
        "api/classes/c1/assignments/hw/archived",
        "api/classes/c1/assignments/hw/students/sam",
        "api/classes/c1/assignments/hw/students//submissions",
        "api/classes/c1/assignments/hw/extensions/sam/more",
    ],
)
def test_other_paths_reach_nothing(path):
    assert route(path) is None


def assignment(archived_at=None) -> Assignment:
    return Assignment(
        id=1,
        class_code="c1",
        slug="hw",
        title="Homework",
        instructions="",
        max_points=Decimal(10),
        release_at=None,
        due_at=WHEN,
        late_policy="accept",
        late_penalty_percent=Decimal(0),
        starting_files=(),
        created_by="tia",
        created_at=WHEN,
        updated_by=None,
        updated_at=None,
        archived_at=archived_at,
        revision=1,
    )


def test_an_archived_assignment_refuses_submissions_with_a_clear_conflict():
    handlers.GradesHandler.refuse_if_archived(assignment())  # open: nothing raised
    with pytest.raises(Conflict, match="'hw' is archived: it takes no submissions") as e:
        handlers.GradesHandler.refuse_if_archived(assignment(archived_at=WHEN))
    assert e.value.status_code == 409


def test_an_extension_is_shown_with_who_granted_it_and_when():
    ext = Extension(1, "sam", WHEN, "tia", WHEN.replace(hour=7), "ill")
    assert handlers.extension_view(ext) == {
        "user": "sam",
        "due_at": "2025-03-01T08:00:00Z",
        "reason": "ill",
        "granted_by": "tia",
        "granted_at": "2025-03-01T07:00:00Z",
    }
