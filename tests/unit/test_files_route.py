"""Traefik's route from the browser to the S3 store: presigned requests only, and every
answer sandboxed (services/files/route.py)."""

import os
import re
import stat

import pytest
import yaml

from services.files.route import FILE_NAME, route_config, write_route

pytestmark = pytest.mark.unit

NAME = "classhub-files-s3"


@pytest.fixture
def config():
    return route_config(bucket="classhub", s3_url="http://127.0.0.1:9000", entrypoint="web")


def test_two_routers_with_priority(config):
    routers = config["http"]["routers"]
    assert set(routers) == {f"{NAME}-download", f"{NAME}-upload"}
    for router in routers.values():
        assert router["service"] == NAME
        assert router["entryPoints"] == ["web"]
        assert router["middlewares"] == [f"{NAME}-headers"]
        # above the hub's and servers' catch-all routes
        assert isinstance(router["priority"], int) and router["priority"] == 1000


def test_download_rule_is_signed_get_or_head_only(config):
    rule = config["http"]["routers"][f"{NAME}-download"]["rule"]
    assert rule == (
        "PathPrefix(`/classhub/`) && (Method(`GET`) || Method(`HEAD`)) "
        "&& QueryRegexp(`X-Amz-Signature`, `^[0-9a-f]{64}$`)"
    )
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert method not in rule


def test_signature_regexp_accepts_only_a_sigv4_signature(config):
    rule = config["http"]["routers"][f"{NAME}-download"]["rule"]
    pattern = re.search(r"QueryRegexp\(`X-Amz-Signature`, `(.*)`\)$", rule).group(1)
    assert pattern == "^[0-9a-f]{64}$"
    # Traefik uses Go's regexp, where "$" is the end of the text (Python's "\Z")
    pattern = pattern.replace("$", r"\Z")
    assert re.search(pattern, "a" * 64)
    assert re.search(pattern, "0123456789abcdef" * 4)
    for bad in ("", "a" * 63, "a" * 65, "A" * 64, "g" * 64, "a" * 64 + "\n", "x" + "a" * 64):
        assert not re.search(pattern, bad), bad


def test_upload_rule_is_a_signed_put_of_an_object_only(config):
    rule = config["http"]["routers"][f"{NAME}-upload"]["rule"]
    assert rule == (
        "PathPrefix(`/classhub/`) && Method(`PUT`) "
        "&& QueryRegexp(`X-Amz-Signature`, `^[0-9a-f]{64}$`)"
    )
    for method in ("GET", "POST", "DELETE", "PATCH", "OPTIONS"):
        assert method not in rule


def test_headers_that_change_an_upload_are_removed_on_the_way_in(config):
    headers = config["http"]["middlewares"][f"{NAME}-headers"]["headers"]
    stripped = headers["customRequestHeaders"]
    # Traefik removes a request header whose custom value is empty
    assert set(stripped.values()) == {""}
    for name in ("X-Amz-Copy-Source", "X-Amz-Copy-Source-Range", "X-Amz-Tagging", "X-Amz-Acl"):
        assert name in stripped


def test_security_headers(config):
    middlewares = config["http"]["middlewares"]
    assert set(middlewares) == {f"{NAME}-headers"}
    headers = middlewares[f"{NAME}-headers"]["headers"]["customResponseHeaders"]
    csp = headers["Content-Security-Policy"]
    assert csp.split(";")[0].strip() == "sandbox"
    assert "default-src 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in headers["Cache-Control"]


def test_service_passes_the_host_header(config):
    services = config["http"]["services"]
    assert services == {
        NAME: {
            "loadBalancer": {"servers": [{"url": "http://127.0.0.1:9000"}], "passHostHeader": True}
        }
    }


def test_names_follow_the_bucket_entrypoint_and_prefix():
    config = route_config(
        bucket="files-b", s3_url="http://minio:9000", entrypoint="websecure", prefix="ch2"
    )
    routers = config["http"]["routers"]
    assert set(routers) == {"ch2-files-s3-download", "ch2-files-s3-upload"}
    assert routers["ch2-files-s3-download"]["rule"].startswith("PathPrefix(`/files-b/`)")
    assert routers["ch2-files-s3-upload"]["rule"].startswith(
        "PathPrefix(`/files-b/`) && Method(`PUT`)"
    )
    assert routers["ch2-files-s3-upload"]["entryPoints"] == ["websecure"]
    assert routers["ch2-files-s3-upload"]["middlewares"] == ["ch2-files-s3-headers"]
    assert set(config["http"]["services"]) == {"ch2-files-s3"}


def test_write_route_writes_yaml_that_loads_back_equal(tmp_path, config):
    directory = tmp_path / "dynamic"  # created if missing
    path = write_route(str(directory), config)
    assert path == str(directory / FILE_NAME)
    with open(path) as f:
        assert yaml.safe_load(f) == config
    assert os.listdir(directory) == [FILE_NAME]  # no temp file left behind
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_write_route_overwrites_an_earlier_file(tmp_path, config):
    write_route(str(tmp_path), {"http": {"routers": {"old": {"rule": "Path(`/x`)"}}}})
    path = write_route(str(tmp_path), config)
    with open(path) as f:
        assert yaml.safe_load(f) == config
    assert os.listdir(tmp_path) == [FILE_NAME]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_write_route_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, config):
    path = write_route(str(tmp_path), config)
    with pytest.raises(yaml.YAMLError):
        write_route(str(tmp_path), {"http": object()})  # not representable
    with open(path) as f:
        assert yaml.safe_load(f) == config
    assert os.listdir(tmp_path) == [FILE_NAME]
