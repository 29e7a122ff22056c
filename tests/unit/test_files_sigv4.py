"""SigV4 query signing with signed headers (services/base/sigv4.py): the same URL as the
minio SDK for what it can sign, AWS's published example, and the signed headers in the
canonical request."""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from minio import Minio

from services.base import sigv4

pytestmark = pytest.mark.unit

NOW = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "key", ["plain", "users/a b/ü+x.txt", "users/x/(1)~!'*.txt", "a/b%20c/d=e&f"]
)
def test_host_only_signature_matches_the_minio_sdk(key):
    sdk = Minio("127.0.0.1:9000", access_key="AK", secret_key="SK", secure=False, region="r1")
    expected = sdk.get_presigned_url(
        "PUT", "bucket-x", key, expires=datetime.timedelta(seconds=600), request_date=NOW
    )
    ours = sigv4.presign(
        method="PUT",
        scheme="http",
        host="127.0.0.1:9000",
        path=f"/bucket-x/{key}",
        access_key="AK",
        secret_key="SK",
        region="r1",
        expires=600,
        now=NOW,
    )
    assert ours == expected


def test_aws_documented_example():
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", example
    url = sigv4.presign(
        method="GET",
        scheme="https",
        host="examplebucket.s3.amazonaws.com",
        path="/test.txt",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        expires=86400,
        now=datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC),
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Signature"] == [
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    ]


def _sign(**overrides):
    args = dict(
        method="PUT",
        scheme="http",
        host="hub.example:8000",
        path="/b/k",
        access_key="AK",
        secret_key="SK",
        region="us-east-1",
        expires=60,
        now=NOW,
        headers={"Content-Length": "10", "content-type": "application/octet-stream"},
    )
    return sigv4.presign(**{**args, **overrides})


def test_signed_headers_are_listed_sorted_and_change_the_signature():
    url = _sign()
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    signature = query["X-Amz-Signature"][0]
    other_size = _sign(headers={"content-length": "11", "content-type": "application/octet-stream"})
    assert parse_qs(urlsplit(other_size).query)["X-Amz-Signature"][0] != signature
    other_host = _sign(host="hub.example:8001")
    assert parse_qs(urlsplit(other_host).query)["X-Amz-Signature"][0] != signature
    assert _sign() == url  # deterministic for the same moment


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        _sign(now=datetime.datetime(2026, 12, 1))  # naive
    for expires in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError):
            _sign(expires=expires)
