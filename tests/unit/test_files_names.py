"""File names and S3 keys: hostile names never leave their area (services/base/names.py)."""

import pytest

from common.usernames import normalize_username
from services.base import names as n
from services.base.names import BadName
from services.classes import model

pytestmark = pytest.mark.unit

LABEL = "2026-12-01 10.30"
TAG = f" (teacher's version {LABEL})"


def nbytes(text):
    return len(text.encode("utf-8"))


def path_of(size):
    """A valid path of exactly ``size`` UTF-8 bytes (segments of 99 bytes)."""
    parts, left = [], size
    while left > 0:
        part = min(99, left)
        parts.append("x" * part)
        left -= part + 1
    path = "/".join(parts)
    return path + "y" * (size - nbytes(path))


# --- validate_path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "a",
        "folder/sub/file.ipynb",
        "my notebook (1).ipynb",
        "Übung 1/Aufgabe ä.txt",
        ".env",
        "a/.gitignore",
        "...",
        "..a/b..",
        "name.",
        "数据/分析.ipynb",
        "emoji 😀.md",
        "x" * 255,
        "/".join(["d"] * 32),
        ".classhu",
        "my.classhub",
    ],
)
def test_valid_paths_are_returned_unchanged(path):
    assert n.validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("..", '".." is not allowed'),
        ("../secret", '".." is not allowed'),
        ("a/../b", '".." is not allowed'),
        ("a/..", '".." is not allowed'),
        (".", '"." is not allowed'),
        ("a/./b", '"." is not allowed'),
        ("/etc/passwd", 'cannot start with "/"'),
        ("//server/share", 'cannot start with "/"'),
        ("a\\b", "backslash"),
        ("..\\..\\evil", "backslash"),
        ("C:\\x", "backslash"),
        ("a//b", "empty part"),
        ("a/", 'cannot end with "/"'),
        ("", "cannot be empty"),
        ("a\x00b", "invisible"),
        ("\x1b[31mred", "invisible"),
        ("a\nb", "invisible"),
        ("a\tb", "invisible"),
        ("del\x7f", "invisible"),
        ("c1\x85", "invisible"),
        ("c1\x9b", "invisible"),
        ("evil\u202etxt.exe", "invisible"),
        ("rtl\u2067mark", "invisible"),
        ("zero\u200bwidth", "invisible"),
        ("joiner\u200d", "invisible"),
        ("\ufeffbom", "invisible"),
        ("line\u2028break", "invisible"),
        ("surrogate\ud800", "invisible"),
        (".classhub", "reserved"),
        (".classhub-x", "reserved"),
        ("a/.classhub/manifest.json", "reserved"),
        (".CLASSHUB-x", "reserved"),
        (" a", "space"),
        ("a ", "space"),
        ("dir /a", "space"),
        ("a/ b", "space"),
        ("\u00a0a", "space"),
        ("a\u3000", "space"),
        ("x" * 256, "at most 255 bytes"),
        ("é" * 128, "at most 255 bytes"),
        ("a/" + "😀" * 64, "at most 255 bytes"),
        (path_of(901), "at most 900 bytes"),
        ("/".join(["d"] * 33), "at most 32 folders deep"),
    ],
)
def test_hostile_paths_are_refused(path, problem):
    with pytest.raises(BadName) as caught:
        n.validate_path(path)
    assert problem in str(caught.value)
    assert caught.value.problem in str(caught.value)


@pytest.mark.parametrize("path", [None, b"a.txt", 1, ["a"]])
def test_a_path_must_be_text(path):
    with pytest.raises(BadName, match="must be text"):
        n.validate_path(path)


def test_the_message_quotes_the_name_and_says_what_is_wrong():
    with pytest.raises(BadName) as caught:
        n.validate_path("a/../b")
    assert str(caught.value) == '"a/../b": ".." is not allowed in a file name'
    assert isinstance(caught.value, ValueError)
    assert caught.value.name == "a/../b"


def test_the_message_shows_invisible_characters_escaped_and_long_names_cut():
    with pytest.raises(BadName) as caught:
        n.validate_path("evil\u202etxt.exe")
    assert "\u202e" not in str(caught.value)
    assert "\\u202e" in str(caught.value)
    with pytest.raises(BadName) as caught:
        n.validate_path("x" * 1000)
    assert len(str(caught.value)) < 200


def test_limits_are_exact():
    assert n.validate_path("x" * 255)
    assert n.validate_path("é" * 127)  # 254 bytes
    assert nbytes(path_of(900)) == 900
    assert n.validate_path(path_of(900)) == path_of(900)
    assert n.validate_path("/".join(["d"] * 32))


def test_max_depth_can_be_lowered():
    assert n.validate_path("a/b", max_depth=2) == "a/b"
    with pytest.raises(BadName, match="at most 2 folders deep"):
        n.validate_path("a/b/c", max_depth=2)


def test_nfc_normalisation_comes_first():
    decomposed, composed = "cafe\u0301/re\u0301sume\u0301.txt", "caf\u00e9/r\u00e9sum\u00e9.txt"
    assert decomposed != composed
    assert n.validate_path(decomposed) == composed == n.validate_path(composed)
    # 100 decomposed é are 300 bytes, but the 200-byte composed form is what is measured
    assert n.validate_path("e\u0301" * 100) == "\u00e9" * 100


# --- validate_folder -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("", ""), ("a", "a"), ("a/", "a"), ("a/b", "a/b"), ("a/b/", "a/b"), ("cafe\u0301/", "café")],
)
def test_folders(folder, expected):
    assert n.validate_folder(folder) == expected


@pytest.mark.parametrize(
    "folder",
    ["/", "//", "a//", "/a", "../x", "a/..", "a\\b", ".classhub/", " a/", "a\u200b/", None],
)
def test_hostile_folders_are_refused(folder):
    with pytest.raises(BadName):
        n.validate_folder(folder)


# --- usernames, class codes, assignments ----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["sam", "alice@a.edu", "jürgen", "a.b", "x" * 128, "数据", "a-b_c"]
)
def test_valid_usernames(name):
    assert n.validate_username(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "1 to 128"),
        ("x" * 129, "1 to 128"),
        (".", '"." or ".."'),
        ("..", '"." or ".."'),
        ("Sam", "lower case"),
        ("JÜRGEN", "lower case"),
        ("ju\u0308rgen", "NFC"),
        ("a b", "spaces"),
        ("a\tb", "spaces"),
        ("sam\n", "spaces"),
        ("a\u200bb", "invisible"),
        ("\u202esam", "invisible"),
        ("a\x00", "invisible"),
        (None, "must be text"),
    ]
    + [(f"a{ch}b", "cannot contain") for ch in "/\\?#%\"'`<>:;,&"],
)
def test_hostile_usernames_are_refused(name, problem):
    with pytest.raises(BadName) as caught:
        n.validate_username(name)
    assert problem in str(caught.value)


@pytest.mark.parametrize("raw", ["Sam", "Alice@A.edu", "JU\u0308RGEN", "Ωmega", "x" * 128])
def test_every_username_the_authenticator_makes_is_valid(raw):
    name = normalize_username(raw)
    assert n.validate_username(name) == name


@pytest.mark.parametrize("code", ["a", "0", "bio101", "bio-101-a", "a1", "x" * 32])
def test_valid_codes(code):
    assert n.validate_code(code) == code


@pytest.mark.parametrize(
    "code",
    ["", "-a", "a-", "Bio", "bio_101", "bio 101", "x" * 33, "bio101\n", "../a", "é", None, 101],
)
def test_bad_codes_are_refused(code):
    with pytest.raises(BadName, match="class code"):
        n.validate_code(code)


@pytest.mark.parametrize(
    "code",
    ["a", "0", "ab", "a-b", "a--b", "-", "-a", "a-", "x" * 32, "x" * 33, "A", "a_b", "a\n", ""],
)
def test_the_code_rule_is_the_classes_service_rule(code):
    # one rule (common.groups.CODE_RE) for the classes service and the bucket's names
    def accepts(check, error) -> bool:
        try:
            check(code)
        except error:
            return False
        return True

    assert accepts(n.validate_code, BadName) == accepts(model.check_code, model.InvalidClass)


@pytest.mark.parametrize("slug", ["hw1", "0", "week-1_task", "a" * 64, "a_"])
def test_valid_assignments(slug):
    assert n.validate_assignment(slug) == slug


@pytest.mark.parametrize(
    "slug", ["", "_a", "-a", "HW1", "a" * 65, "a/b", "..", "hw1\n", "hw 1", "é", None]
)
def test_bad_assignments_are_refused(slug):
    with pytest.raises(BadName, match="assignment name"):
        n.validate_assignment(slug)


# --- keys ------------------------------------------------------------------------------------


def test_keys_and_prefixes():
    assert n.user_key("sam", "notes/a.ipynb") == "users/sam/notes/a.ipynb"
    assert n.user_prefix("sam") == "users/sam/"
    assert n.user_prefix("sam", "notes") == "users/sam/notes/"
    assert n.user_prefix("sam", "notes/week 1/") == "users/sam/notes/week 1/"
    assert n.material_key("bio101", "week1/x.ipynb") == "classes/bio101/material/week1/x.ipynb"
    assert n.material_prefix("bio101") == "classes/bio101/material/"
    assert n.material_prefix("bio101", "week1/") == "classes/bio101/material/week1/"
    assert n.submission_prefix("bio101", "hw-1", "sam", 3) == "submissions/bio101/hw-1/sam/3/"
    assert (
        n.submission_key("bio101", "hw_1", "alice@a.edu", 12, "sol/a.py")
        == "submissions/bio101/hw_1/alice@a.edu/12/sol/a.py"
    )


def test_keys_hold_the_normalised_path():
    assert n.user_key("sam", "cafe\u0301.txt") == "users/sam/caf\u00e9.txt"
    assert n.material_prefix("bio101", "cafe\u0301") == "classes/bio101/material/caf\u00e9/"


@pytest.mark.parametrize(
    "build",
    [
        lambda: n.user_key("../x", "a"),
        lambda: n.user_key("Sam", "a"),
        lambda: n.user_key("sam", "../users/tina/a"),
        lambda: n.user_key("sam", ""),
        lambda: n.user_key("sam", "a/"),
        lambda: n.user_prefix("sam", "/etc"),
        lambda: n.user_prefix("sam/..", ""),
        lambda: n.material_key("../b", "a"),
        lambda: n.material_key("bio101", "../../other/material/a"),
        lambda: n.material_prefix("Bio101"),
        lambda: n.material_prefix("bio101", ".."),
        lambda: n.submission_prefix("bio101", "../hw", "sam", 1),
        lambda: n.submission_prefix("bio101", "hw1/x", "sam", 1),
        lambda: n.submission_prefix("bio/101", "hw1", "sam", 1),
        lambda: n.submission_prefix("bio101", "hw1", "..", 1),
        lambda: n.submission_key("bio101", "hw1", "sam", 1, "/etc/passwd"),
        lambda: n.submission_key("bio101", "hw1", "sam", 1, ".classhub/state"),
    ],
)
def test_every_part_of_a_key_is_validated(build):
    with pytest.raises(BadName):
        build()


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0, None])
def test_a_submission_version_is_a_whole_number_from_one(version):
    with pytest.raises(BadName, match="version"):
        n.submission_prefix("bio101", "hw1", "sam", version)


def test_a_key_never_exceeds_the_s3_limit():
    wide_user = "中" * 128  # 384 bytes
    assert nbytes(n.user_key(wide_user, path_of(600))) <= 1024
    with pytest.raises(BadName, match="too long"):
        n.user_key(wide_user, path_of(900))
    with pytest.raises(BadName, match="too long"):
        n.submission_key("x" * 32, "a" * 64, wide_user, 10**6, path_of(600))
    with pytest.raises(BadName, match="too long"):
        n.user_prefix(wide_user, path_of(700))


def test_relative_to():
    assert n.relative_to("users/sam/", "users/sam/a/b.txt") == "a/b.txt"
    path = "week 1/caf\u00e9.ipynb"
    assert n.relative_to(n.material_prefix("bio101"), n.material_key("bio101", path)) == path
    prefix = n.submission_prefix("bio101", "hw1", "sam", 2)
    assert n.relative_to(prefix, n.submission_key("bio101", "hw1", "sam", 2, "a.py")) == "a.py"


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("users/sam/", "users/samuel/x"),
        ("users/sam/", "users/sam/"),
        ("users/sam/", "users/tina/x"),
        ("users/sam/", "users/sam"),
        ("users/sam", "users/sam/x"),
        ("", "users/sam/x"),
    ],
)
def test_relative_to_refuses_keys_outside_the_prefix(prefix, key):
    with pytest.raises(ValueError):
        n.relative_to(prefix, key)


# --- conflict_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("dir/notebook.ipynb", f"dir/notebook{TAG}.ipynb"),
        ("notebook.ipynb", f"notebook{TAG}.ipynb"),
        ("README", f"README{TAG}"),
        ("dir/sub/README", f"dir/sub/README{TAG}"),
        (".env", f".env{TAG}"),
        ("a/.gitignore", f"a/.gitignore{TAG}"),
        (".config.yml", f".config{TAG}.yml"),
        ("data.tar.gz", f"data.tar{TAG}.gz"),
        ("name.", f"name.{TAG}"),
        ("cafe\u0301.txt", f"caf\u00e9{TAG}.txt"),
    ],
)
def test_conflict_names(path, expected):
    assert n.conflict_name(path, LABEL) == expected
    assert n.validate_path(expected) == expected


@pytest.mark.parametrize(
    "label", ["10:30", "2026/12/01", "a\\b", "", " x", "x ", "x\u202e", "x\n", "x" * 65, None]
)
def test_bad_labels_are_refused(label):
    with pytest.raises(BadName, match="label"):
        n.conflict_name("a.txt", label)


@pytest.mark.parametrize("path", ["../a.txt", "/a.txt", "a/", ""])
def test_conflict_name_validates_the_path(path):
    with pytest.raises(BadName):
        n.conflict_name(path, LABEL)


def check_cut(result, original_stem, suffix):
    """``result`` is a valid path whose last name is a start of the stem, the tag, the suffix."""
    assert n.validate_path(result) == result
    name = result.rpartition("/")[2]
    assert nbytes(name) <= 255
    assert name.endswith(TAG + suffix)
    stem = name[: -len(TAG + suffix)]
    assert stem and original_stem.startswith(stem)
    return stem


def test_a_long_stem_is_shortened_never_the_label_or_suffix():
    result = n.conflict_name("d/" + "x" * 249 + ".ipynb", LABEL)
    stem = check_cut(result, "x" * 249, ".ipynb")
    assert nbytes(result.rpartition("/")[2]) == 255
    assert stem == "x" * (255 - nbytes(TAG) - 6)


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_a_long_stem_is_cut_between_characters(char):
    count = (255 - 6) // nbytes(char)
    result = n.conflict_name(char * count + ".ipynb", LABEL)
    room = 255 - nbytes(TAG) - 6
    stem = check_cut(result, char * count, ".ipynb")
    assert stem == char * (room // nbytes(char))


def test_a_cut_never_leaves_a_character_without_its_combining_mark():
    unit = "x\u0301"  # no precomposed form: stays two code points (1 + 2 bytes) under NFC
    result = n.conflict_name(unit * 80 + ".txt", LABEL)
    stem = check_cut(result, unit * 80, ".txt")
    assert stem == unit * ((255 - nbytes(TAG) - 4) // 3)


def test_the_whole_path_limit_shortens_the_stem_too():
    folder = "/".join(["d" * 210] * 4)  # 843 bytes
    result = n.conflict_name(f"{folder}/{'a' * 40}.ipynb", LABEL)
    assert nbytes(result) == 900
    assert check_cut(result, "a" * 40, ".ipynb") == "a" * (900 - 844 - nbytes(TAG) - 6)


def test_no_room_for_the_label_is_refused():
    folder = "/".join(["d" * 215] * 4)  # 863 bytes
    with pytest.raises(BadName, match="too long"):
        n.conflict_name(f"{folder}/notebook.ipynb", LABEL)


def test_an_absurdly_long_suffix_counts_as_part_of_the_name():
    result = n.conflict_name("a." + "b" * 240, LABEL)
    check_cut(result, "a." + "b" * 240, "")
