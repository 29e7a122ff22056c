"""classhub-token: its tokens verify with verify_token; bad input exits 2 with a fix-it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authenticator.jwt_keys import StaticKey
from authenticator.jwt_verify import TokenRejected, VerifySettings, verify_token
from authenticator.token_cli import UsageError, main, parse_ttl

pytestmark = pytest.mark.unit

SECRET = "0123456789abcdef0123456789abcdef-secret"
DEFAULTS = VerifySettings(issuer="classhub", audience="classhub")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CLASSHUB_JWT_"):
            monkeypatch.delenv(name)


def write_keys(tmp_path: Path, private_key) -> tuple[Path, bytes]:
    path = tmp_path / "signing.pem"
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def minted(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == 1
    return out.strip()


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("45", 45), ("24h", 86400)]
)
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["25h", "86401", "0", "0s", "abc", "1d", "-5", "1.5h", ""])
def test_parse_ttl_refused(text):
    with pytest.raises(UsageError, match="--ttl"):
        parse_ttl(text)


async def test_hs256_round_trip(capsys, monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    tok = minted(capsys, "--user", "Alice@A.edu", "--role", "teacher", "--groups", "m1, cs.2")
    ident = await verify_token(tok, StaticKey.from_secret(SECRET.encode()), DEFAULTS, time.time())
    assert (ident.username, ident.role) == ("alice@a.edu", "teacher")
    groups = VerifySettings(issuer="classhub", audience="classhub", groups_claim="groups")
    ident = await verify_token(tok, StaticKey.from_secret(SECRET), groups, time.time())
    assert ident.groups == ("m1", "cs.2")
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert {"iat", "exp", "jti", "iss", "aud", "sub", "role", "groups"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 600  # default ttl 10m
    assert jwt.get_unverified_header(tok)["alg"] == "HS256"


async def test_rs256_round_trip_with_key_file(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)  # --key-file wins over the env secret
    path, public = write_keys(
        tmp_path, rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    tok = minted(capsys, "--user", "bob", "--key-file", str(path), "--ttl", "90s", "--kid", "k-1")
    assert jwt.get_unverified_header(tok) == {"alg": "RS256", "kid": "k-1", "typ": "JWT"}
    keys = StaticKey.from_public_pem(public, "RS256")
    ident = await verify_token(tok, keys, DEFAULTS, time.time())
    assert (ident.username, ident.role, ident.groups) == ("bob", "student", None)


async def test_es256_round_trip_from_env(capsys, tmp_path, monkeypatch):
    path, public = write_keys(tmp_path, ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.setenv("CLASSHUB_JWT_PRIVATE_KEY_FILE", str(path))
    monkeypatch.setenv("CLASSHUB_JWT_ALGORITHM", "ES256")
    monkeypatch.setenv("CLASSHUB_JWT_ISSUER", "https://portal.example.edu")
    monkeypatch.setenv("CLASSHUB_JWT_AUDIENCE", "hub.example.edu")
    tok = minted(capsys, "--user", "carol", "--role", "admin", "--username-claim", "email")
    settings = VerifySettings(
        issuer="https://portal.example.edu", audience="hub.example.edu", username_claim="email"
    )
    ident = await verify_token(
        tok, StaticKey.from_public_pem(public, "ES256"), settings, time.time()
    )
    assert (ident.username, ident.role) == ("carol", "admin")
    # a hub expecting the default issuer ("classhub") refuses it
    other = VerifySettings(issuer="classhub", audience="hub.example.edu", username_claim="email")
    with pytest.raises(TokenRejected, match="issuer"):
        await verify_token(tok, StaticKey.from_public_pem(public, "ES256"), other, time.time())


async def test_flag_overrides_env_issuer(capsys, monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    monkeypatch.setenv("CLASSHUB_JWT_ISSUER", "env-issuer")
    tok = minted(capsys, "--user", "dan", "--issuer", "flag-issuer", "--audience", "aud-x")
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("flag-issuer", "aud-x")


def test_jti_is_random(capsys, monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    jtis = {
        jwt.decode(minted(capsys, "--user", "eve"), options={"verify_signature": False})["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5


def test_no_key_is_a_fix_it(capsys):
    code, out, err = run(capsys, "--user", "alice")
    assert (code, out) == (2, "")
    assert "no signing key: set CLASSHUB_JWT_SECRET" in err


@pytest.mark.parametrize(
    "argv, env, word",
    [
        (["--user", "alice"], {"CLASSHUB_JWT_SECRET": "short"}, "at least 32 bytes"),
        (["--user", "ali\u200bce"], {}, "invisible"),
        (["--user", "a/b"], {}, "slash"),
        (["--user", ""], {}, "empty"),
        (["--user", "alice", "--ttl", "25h"], {}, "at most 24h"),
        (["--user", "alice", "--ttl", "soon"], {}, "--ttl"),
        (["--user", "alice", "--groups", "ok,no way"], {}, "--groups"),
        (["--user", "alice", "--kid", "../x"], {}, "--kid"),
        (["--user", "alice", "--key-file", "/nonexistent/key.pem"], {}, "cannot read"),
        (["--user", "alice", "--algorithm", "RS256"], {}, "HS256"),
        (["--user", "alice"], {"CLASSHUB_JWT_ALGORITHM": "none"}, "HS256"),
    ],
)
def test_errors_exit_2(capsys, monkeypatch, argv, env, word):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("classhub-token: error:")
    assert word in err


@pytest.mark.parametrize("argv", [["--user", "a", "--role", "root"], ["--role", "student"]])
def test_argparse_errors_exit_2(capsys, monkeypatch, argv):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "classhub-token" in err


def test_long_ttl_notes_max_age_on_stderr(capsys, monkeypatch):
    monkeypatch.setenv("CLASSHUB_JWT_SECRET", SECRET)
    code, out, err = run(capsys, "--user", "alice", "--ttl", "2h")
    assert code == 0 and out.count(".") == 2
    assert "max_age" in err


def test_installed_script_prints_only_the_token(tmp_path):
    script = Path(sys.executable).parent / "classhub-token"
    env = {**os.environ, "CLASSHUB_JWT_SECRET": SECRET}
    done = subprocess.run(
        [str(script), "--user", "alice"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    token = done.stdout.strip()
    assert done.stdout == token + "\n" and token.count(".") == 2
    assert SECRET not in done.stdout
