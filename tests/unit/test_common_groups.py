"""What the hub's class groups say about a class (common/groups.py): read from a group model
as the hub API returns it, whatever a hand-edited group holds."""

import pytest

from common.groups import PROPERTY, class_image, class_name

pytestmark = pytest.mark.unit


def model(props):
    return {"name": "class-bio", "properties": {PROPERTY: props}}


def test_the_class_image_is_read_from_the_group():
    assert class_image(model({"image": "classhub/datascience:latest"})) == (
        "classhub/datascience:latest"
    )


@pytest.mark.parametrize(
    "group",
    [None, {}, {"properties": None}, model(None), model("text"), model({"image": ""}),
     model({"image": "  "}), model({"image": 3}), model({"name": "Biology"})],
)  # fmt: skip
def test_no_image_when_the_group_names_none(group):
    assert class_image(group) is None


def test_the_class_name_falls_back_to_the_code():
    assert class_name(model({"name": "Biology 1"}), "bio1") == "Biology 1"
    assert class_name(model({"name": " "}), "bio1") == "bio1"
    assert class_name(None, "bio1") == "bio1"


def test_codes_of_group_names():
    """One parser of ``class-<code>``/``teachers-<code>`` names, with the code check."""
    from common.groups import CLASS_PREFIX, TEACHERS_PREFIX, codes_of, group_code

    groups = ["class-phys3", "teachers-chem2", "class-", "other", "class-bio1", "class-Bad!"]
    assert codes_of(groups, CLASS_PREFIX) == ["bio1", "phys3"]
    assert codes_of(groups, TEACHERS_PREFIX) == ["chem2"]
    assert group_code("teachers-chem2", TEACHERS_PREFIX) == "chem2"
    assert group_code("teachers-chem2", CLASS_PREFIX) is None
