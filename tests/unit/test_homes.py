"""Student homes with a size limit: the btrfs ioctl structs, the home volume rules, the
homes filesystem helpers, the hub settings and the My classes view (pure parts)."""

import struct

import pytest
from traitlets.config import Config

from hub.config import ConfigError, configure_homes
from hub.homes_api import HomeUsageAPIHandler
from services.classes.views import home_views
from spawner import ClassroomSpawner, btrfs, homes
from spawner.homesfs import GiB, HomesFsError, auto_size, mounted_at, parse_fs_size, tree_summary

pytestmark = pytest.mark.unit


def test_ioctl_numbers_are_the_kernels():
    # the values strace prints for btrfs-progs' calls (include/uapi/linux/btrfs.h)
    assert btrfs.IOC_SUBVOL_CREATE == 0x5000940E
    assert btrfs.IOC_SNAP_DESTROY == 0x5000940F
    assert btrfs.IOC_TREE_SEARCH == 0xD0009411
    assert btrfs.IOC_INO_LOOKUP == 0xD0009412
    assert btrfs.IOC_QUOTA_CTL == 0xC0109428
    assert btrfs.IOC_QGROUP_ASSIGN == 0x40189429
    assert btrfs.IOC_QGROUP_CREATE == 0x4010942A
    assert btrfs.IOC_QGROUP_LIMIT == 0x8030942B
    assert btrfs.IOC_RESIZE == 0x50009403
    assert btrfs.IOC_SYNC == 0x9408


def test_qgroup_ids():
    assert btrfs.qgroupid(0, 256) == 256
    assert btrfs.qgroupid(1, 260) == (1 << 48) | 260
    assert btrfs.qgroup_text(btrfs.qgroupid(1, 260)) == "1/260"
    with pytest.raises(ValueError):
        btrfs.qgroupid(0, 1 << 48)


def test_vol_args():
    args = btrfs.vol_args("classhub-home-sam-1a2b")
    assert len(args) == 4096
    fd, name = struct.unpack("=q4088s", args)
    assert fd == 0 and name.rstrip(b"\0") == b"classhub-home-sam-1a2b"
    for bad in ("", ".", "..", "a/b", "x\0y", "n" * 256):
        with pytest.raises(ValueError):
            btrfs.vol_args(bad)


def test_qgroup_limit_args():
    args = btrfs.qgroup_limit_args(btrfs.qgroupid(1, 300), 64 << 20)
    assert len(args) == 48
    group, flags, max_rfer, max_excl, _, _ = struct.unpack("=6Q", args)
    assert (group, flags, max_rfer, max_excl) == ((1 << 48) | 300, 1, 64 << 20, 0)
    assert struct.unpack("=6Q", btrfs.qgroup_limit_args(5, None))[2] == 2**64 - 1
    with pytest.raises(ValueError):
        btrfs.qgroup_limit_args(5, 0)


def _answer(args: bytearray, item_type: int, offset: int, data: bytes) -> bytearray:
    """What the kernel writes back for one found item."""
    struct.pack_into("=I", args, 64, 1)
    struct.pack_into("=QQQII", args, 104, 7, 0, offset, item_type, len(data))
    args[136 : 136 + len(data)] = data
    return args


def test_tree_search_of_one_qgroup():
    group = btrfs.qgroupid(1, 300)
    args = btrfs.search_args(btrfs.QUOTA_TREE_OBJECTID, 0, btrfs.QGROUP_INFO_KEY, group)
    assert len(args) == 4096
    key = struct.unpack_from("=QQQQQQQIIII", args)
    assert key == (8, 0, 0, group, group, 0, 2**64 - 1, 242, 242, 1, 0)
    assert btrfs.search_result(args, btrfs.QGROUP_INFO_KEY, group) is None  # nothing found
    info = struct.pack("<5Q", 9, 5 << 20, 5 << 20, 4 << 20, 4 << 20)
    found = _answer(args, btrfs.QGROUP_INFO_KEY, group, info)
    assert btrfs.search_result(found, btrfs.QGROUP_INFO_KEY, group) == info
    # an item of another qgroup is not this one's
    assert btrfs.search_result(found, btrfs.QGROUP_INFO_KEY, group + 1) is None
    limit = struct.pack("<5Q", btrfs.QGROUP_LIMIT_MAX_RFER, 64 << 20, 0, 0, 0)
    assert btrfs.parse_qgroup(info, limit) == btrfs.QgroupUsage(5 << 20, 4 << 20, 64 << 20)
    assert btrfs.parse_qgroup(info, None).max_referenced is None
    unlimited = struct.pack("<5Q", btrfs.QGROUP_LIMIT_MAX_RFER, 2**64 - 1, 0, 0, 0)
    assert btrfs.parse_qgroup(info, unlimited).max_referenced is None
    assert btrfs.parse_qgroup(None, limit) is None


def test_home_paths_and_volume_options():
    assert (
        homes.subvolume_path("/srv/homes", "classhub-home-sam-ab")
        == "/srv/homes/classhub-home-sam-ab"
    )
    for bad in ("", "a/b", ".new-x", "x" * 256):
        with pytest.raises(ValueError):
            homes.subvolume_path("/srv/homes", bad)
    path = "/srv/homes/classhub-home-sam-ab"
    assert homes.volume_options(path) == {"type": "none", "o": "bind", "device": path}


@pytest.mark.parametrize(
    ("info", "kind"),
    [
        ({"Driver": "local", "Options": None}, homes.PLAIN),
        ({"Driver": "local", "Options": {}}, homes.PLAIN),
        (
            {"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/h/v"}},
            homes.BIND,
        ),
        (
            {"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/x/v"}},
            homes.OTHER,
        ),
        ({"Driver": "local", "Options": {"type": "nfs", "device": ":/v"}}, homes.OTHER),
        ({"Driver": "rexray", "Options": None}, homes.OTHER),
    ],
)
def test_volume_kind(info, kind):
    assert homes.volume_kind(info, "/h/v") == kind


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2G", 2 << 30),
        ("512m", 512 << 20),
        ("1.5GiB", 3 << 29),
        ("1T", 1 << 40),
        ("1048576", 1 << 20),
    ],
)
def test_parse_size(text, size):
    assert homes.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "lots", "2X", "100", "0.5K"])
def test_parse_size_refuses_with_example(text):
    with pytest.raises(ValueError, match="2G|1M"):
        homes.parse_size(text)


def test_usage_json():
    assert homes.HomeUsage(5, 10).as_json() == {"used": 5, "quota": 10, "limited": True}
    assert homes.HomeUsage(None, None).as_json()["limited"] is False


def test_homes_filesystem_size():
    assert auto_size(100 * GiB + 5) == 50 * GiB
    assert auto_size(GiB) == GiB  # never below 1 GiB
    assert parse_fs_size("auto", 10 * GiB) == 5 * GiB
    assert parse_fs_size("200G", 0) == 200 * GiB
    with pytest.raises(HomesFsError, match="at least 256M"):
        parse_fs_size("10M", 0)


def test_mounted_at_reads_mountinfo():
    info = (
        "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "90 22 0:50 / /var/lib/classhub/homes rw,noatime shared:40 - btrfs /dev/loop3 rw\n"
        "91 22 0:51 / /var/lib/with\\040space rw - tmpfs tmpfs rw\n"
    )
    assert mounted_at("/var/lib/classhub/homes", info) == ("btrfs", "/dev/loop3")
    assert mounted_at("/var/lib/with space", info) == ("tmpfs", "tmpfs")
    assert mounted_at("/var/lib/classhub", info) is None


def test_tree_summary_sees_a_missing_or_changed_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "f.txt").write_text("hello")
        (root / "link").symlink_to("sub")
    assert tree_summary(str(a)) == tree_summary(str(b))
    assert tree_summary(str(a))["sub/f.txt"] == ("file", 5)
    assert tree_summary(str(a))["link"] == ("link", 0)
    (b / "sub" / "f.txt").write_text("hell")
    assert tree_summary(str(a)) != tree_summary(str(b))


def test_configure_homes():
    c = Config()
    configure_homes(c)
    configure_homes(c)
    handlers = [h for h in c.JupyterHub.extra_handlers if h[1] is HomeUsageAPIHandler]
    assert handlers == [(r"/api/classhub/homes/([^/]+)", HomeUsageAPIHandler)]


def test_the_homes_variables_feed_the_spawner(monkeypatch):
    from common.settings import check_environment
    from spawner.spawner import SPAWNER_TABLE

    monkeypatch.delenv("CLASSHUB_HOMES_DIR", raising=False)
    monkeypatch.delenv("CLASSHUB_HOME_QUOTA", raising=False)
    spawner = ClassroomSpawner()
    assert spawner.homes_root == "" and spawner.home_quota == "2G"
    monkeypatch.setenv("CLASSHUB_HOMES_DIR", "/var/lib/classhub/homes")
    monkeypatch.setenv("CLASSHUB_HOME_QUOTA", "500M")
    spawner = ClassroomSpawner()
    assert spawner.homes_root == "/var/lib/classhub/homes"
    assert spawner.home_quota == "500M"
    with pytest.raises(ConfigError, match="absolute path"):
        check_environment({"CLASSHUB_HOMES_DIR": "homes"}, SPAWNER_TABLE)
    with pytest.raises(ConfigError, match="CLASSHUB_HOME_QUOTA"):
        check_environment({"CLASSHUB_HOME_QUOTA": "big"}, SPAWNER_TABLE)


def test_home_views_for_my_classes():
    views = home_views(
        [
            {"server": "bio", "used": 3 << 29, "quota": 2 << 30, "limited": True},
            {"server": "", "used": 2 << 30, "quota": 2 << 30, "limited": True},
            {"server": "old", "used": None, "quota": None, "limited": False},
        ],
        {"bio": "Biology"},
    )
    assert [v["label"] for v in views] == ["Your own server", "Biology (bio)", "old"]
    own, bio, old = views
    assert (own["used_text"], own["quota_text"], own["percent"], own["full"]) == (
        "2.0 GB",
        "2.0 GB",
        100,
        True,
    )
    assert (bio["used_text"], bio["percent"], bio["full"]) == ("1.5 GB", 75, False)
    assert (old["used_text"], old["quota_text"], old["percent"]) == ("unknown", "no limit", None)


def test_no_home_is_made_outside_a_btrfs_filesystem(tmp_path):
    """The homes filesystem not mounted: the folder underneath is on the host's disk, and
    the hub must refuse to make a home there (never a home without a limit)."""
    assert not btrfs.is_subvolume(str(tmp_path))
    with pytest.raises(btrfs.BtrfsError, match="not a btrfs filesystem"):
        homes.ensure_home(str(tmp_path), "classhub-home-sam-ab", 64 << 20)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "classhub-home-tom-cd").mkdir()
    with pytest.raises(homes.HomeError, match="not a btrfs subvolume"):
        homes.ensure_home(str(tmp_path), "classhub-home-tom-cd", 64 << 20)
    assert homes.home_usage(str(tmp_path), "classhub-home-tom-cd") is None
