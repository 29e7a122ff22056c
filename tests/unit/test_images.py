"""The image catalogue (common/images.py) and the spawner's check against it."""

from types import SimpleNamespace

import pytest
from docker.errors import ImageNotFound

from common import images as ci
from spawner.readiness import SpawnError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name",
    [
        "classhub/singleuser:latest",
        "classhub/datascience",
        "ubuntu",
        "registry.example.edu:5000/course/r-env:2026.1",
        "quay.io/jupyter/scipy-notebook:2024-05-27",
        "a__b/c-d.e:T_1",
        "classhub/singleuser@sha256:" + "a" * 64,
    ],
)
def test_references(name):
    assert ci.check_reference(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Classhub/singleuser",
        "classhub/singleuser:",
        "classhub//singleuser",
        "-a/b",
        "a/b:-tag",
        "a b",
        "a/b:latest; rm -rf /",
        "a/b@sha256:xyz",
        "x" * 256,
        3,
        None,
    ],
)
def test_not_references(name):
    with pytest.raises(ci.CatalogueError, match="Docker image reference"):
        ci.check_reference(name)


def test_catalogue_entries_are_completed():
    catalogue = ci.parse_catalogue(
        [
            {"name": "classhub/singleuser:latest", "display_name": " Python ", "description": ""},
            "classhub/datascience:latest",
        ]
    )
    assert catalogue == (
        ci.ImageChoice("classhub/singleuser:latest", "Python", ""),
        ci.ImageChoice("classhub/datascience:latest", "classhub/datascience:latest", ""),
    )
    assert ci.names(catalogue) == ["classhub/singleuser:latest", "classhub/datascience:latest"]
    assert catalogue[0].as_json() == {
        "name": "classhub/singleuser:latest",
        "display_name": "Python",
        "description": "",
    }


@pytest.mark.parametrize(
    "value, message",
    [
        ([], "is empty: list at least the default image"),
        ("a:1", "must be a list of images"),
        ([3], "image 1 must be an object"),
        ([{"display_name": "A"}], "image 1 has no 'name'"),
        ([{"name": "a:1", "tag": "x"}], "unknown field(s) tag"),
        ([{"name": "a:1", "display_name": 5}], "'display_name' must be a string"),
        ([{"name": "a:1", "description": "x" * 501}], "longer than 500"),
        ([{"name": "a:1", "display_name": "A\u202eB"}], "control or invisible"),
        (["a:1", "b:1", "a:1"], "lists 'a:1' twice (images 1 and 3)"),
        (
            [{"name": "a:1", "display_name": "Python"}, {"name": "b:1", "display_name": "python"}],
            "both called 'python'",
        ),
        ([f"a:{i}" for i in range(51)], "the limit is 50"),
    ],
)
def test_catalogue_errors_say_how_to_fix(value, message):
    with pytest.raises(ci.CatalogueError) as e:
        ci.parse_catalogue(value, "CLASSHUB_IMAGES")
    assert message in str(e.value)
    assert "CLASSHUB_IMAGES" in str(e.value)


def test_catalogue_from_env():
    default = "classhub/singleuser:latest"
    # nothing set: the default image alone
    assert ci.catalogue_from_env({}, default) == [{"name": default}]
    # the older comma-separated names
    assert ci.catalogue_from_env({"CLASSHUB_ALLOWED_IMAGES": " a:1, b:2 ,"}, default) == [
        {"name": "a:1"},
        {"name": "b:2"},
    ]
    # JSON, then the older names it does not list yet
    env = {
        "CLASSHUB_IMAGES": '[{"name": "a:1", "display_name": "A"}]',
        "CLASSHUB_ALLOWED_IMAGES": "a:1,b:2",
    }
    assert ci.catalogue_from_env(env, default) == [
        {"name": "a:1", "display_name": "A"},
        {"name": "b:2"},
    ]
    with pytest.raises(ci.CatalogueError, match="not valid JSON .* one line"):
        ci.catalogue_from_env({"CLASSHUB_IMAGES": "[{'name': 'a:1'}]"}, default)


def test_default_image_must_be_in_the_catalogue():
    catalogue = ci.parse_catalogue(["a:1"])
    ci.check_default(catalogue, "a:1")
    with pytest.raises(ci.CatalogueError, match="CLASSHUB_SINGLEUSER_IMAGE"):
        ci.check_default(catalogue, "b:1")


# ----------------------------------------------------------------------------- spawner


def spawner(**kwargs):
    from spawner import ClassroomSpawner

    s = ClassroomSpawner(
        user=SimpleNamespace(name="sam"),
        image="classhub/singleuser:latest",
        images=[
            {"name": "classhub/singleuser:latest", "display_name": "Python"},
            {"name": "classhub/datascience:latest", "display_name": "Data science"},
            {"name": "classhub/missing:1", "display_name": "Not built"},
            {"name": "site/vol:1", "display_name": "With a volume"},
        ],
        **kwargs,
    )
    s.inspected = []

    async def docker(method, *args, **kw):
        assert method == "inspect_image"
        s.inspected.append(args[0])
        if args[0] == "classhub/missing:1":
            raise ImageNotFound("no such image")
        if args[0] == "classhub/datascience:latest":
            return {"Config": {"Volumes": None}}
        return {"Config": {"Volumes": {"/data": {}}} if args[0] == "site/vol:1" else {}}

    s.docker = docker
    return s


def test_spawner_catalogue_is_validated():
    from spawner import ClassroomSpawner

    with pytest.raises(Exception, match="ClassroomSpawner.images lists 'a:1' twice"):
        ClassroomSpawner(images=["a:1", "a:1"])
    # without a catalogue: the configured image alone
    s = ClassroomSpawner(user=SimpleNamespace(name="sam"), image="site/one:1")
    assert s.images == [{"name": "site/one:1", "display_name": "site/one:1", "description": ""}]
    assert s.allowed_images == ["site/one:1"]


async def test_spawner_starts_a_catalogue_image():
    s = spawner()
    s.image = "classhub/datascience:latest"  # a class's image, as _apply_class_environment sets
    await s._check_image()
    assert s.inspected == ["classhub/datascience:latest"]


@pytest.mark.parametrize(
    "image, message",
    [
        ("evil/miner:latest", "is not on this hub's list of allowed images"),
        ("classhub/missing:1", "is not installed on this server"),
    ],
)
async def test_spawner_refuses_other_images(image, message):
    s = spawner()
    s.image = image
    with pytest.raises(SpawnError, match=message) as e:
        await s._check_image()
    # a refusal by the admin's policy; a missing image is the server's own trouble
    assert e.value.status_code == (503 if "missing" in image else 403)


async def test_spawner_catalogue_is_fixed_at_construction():
    """The default catalogue is the configured image, never the image a class record or a
    hook sets later (the class's image must be in the admin's catalogue itself)."""
    from spawner import ClassroomSpawner

    s = ClassroomSpawner(user=SimpleNamespace(name="sam"), image="classhub/singleuser:latest")

    async def docker(method, *args, **kw):
        return {"Config": {}}

    s.docker = docker
    s.image = "evil/miner:latest"
    with pytest.raises(SpawnError, match="not on this hub's list of allowed images"):
        await s._check_image()


async def test_spawner_refuses_an_image_with_volumes():
    s = spawner()
    s.image = "site/vol:1"
    with pytest.raises(SpawnError, match=r"declares volumes \(/data\)"):
        await s._check_image()


async def test_allowed_images_may_narrow_the_catalogue():
    s = spawner(allowed_images=["classhub/singleuser:latest"])
    s.image = "classhub/datascience:latest"
    with pytest.raises(SpawnError, match="not on this hub's list"):
        await s._check_image()
