"""``python3 -I -m classhub_singleuser.homeremote``: :mod:`.homectl` for a helper that runs
where the services cannot reach its files.

On one machine the files and grades services put the job and its inputs into the homes
helper's ``/mnt/io`` with Docker's ``put_archive`` and take the outputs back with
``get_archive``. On a Docker Swarm a home's volume lives on one worker node, where the
services' Docker API cannot copy files in or out, so the helper runs there as a one-shot
Swarm service and this module carries the files instead, through presigned S3 URLs that
the service made for this job alone:

1. GET the job from ``$CLASSHUB_HOMES_JOB_URL`` (at most :data:`JOB_MAX` bytes). It is
   homectl's job plus two keys::

       "inputs": {"<sha256 hex>.zip": "<GET url>", ...},
       "outputs": {"results.jsonl": "<PUT url>", "<id>.zip": "<PUT url>",
                   "<id>.bin": "<PUT url>", ...}

   Input names are ``<sha256 of the bytes>.zip``; output names are ``results.jsonl`` (which
   must be there) and ``<digits>.zip`` or ``<digits>.bin``; every URL is ``http(s)://``.
   ``out`` must be ``/tmp/io/out``.
2. Write the job without those two keys to ``/tmp/io/job.json`` and check it with
   :func:`.homectl.read_job`; then download each input to ``/tmp/io/in/<name>`` (read-only,
   at most :data:`INPUT_MAX` bytes, its sha256 checked against its name).
3. Run :func:`.homectl.run`. As soon as an item's result line is written, PUT its
   ``<id>.zip`` / ``<id>.bin`` (if made and given a URL), delete each local file after its
   upload (the tmpfs holds one output at a time), then PUT ``results.jsonl`` as it stands,
   so a helper killed at its time limit has already handed back the results it had. A
   failed upload is one line on stderr and the run goes on: the service treats a missing
   output as "try again".
4. PUT ``results.jsonl`` once more.

Exit status: 0 once the job was read and run (whatever its items' outcomes or the
intermediate uploads), 2 for a job that cannot be fetched or read (nothing is uploaded),
3 when the final upload of ``results.jsonl`` failed, 4 when an input could not be
downloaded (nothing is run, nothing uploaded: likely transient, and an apply item without
its zip would otherwise be reported as a bad zip), 1 for anything unexpected. stderr gets a
line per failed upload and a one-line summary, never a URL: a presigned URL is a credential
for its object until it expires.

Trust model: the same as homectl's (uid 1000:100, ``-I``, a read-only root, no
capabilities, no student code run, only the O_NOFOLLOW code of snapshot.py and
material.py on the homes), except that the container has a network. It holds no secret of
the service: only presigned URLs for this job's own objects (its job, its inputs, its
outputs), each short-lived and good for one object and one method. Everything read from a
home leaves only through those PUT URLs; redirects are never followed. Python's standard
library only (no pip in the helper image).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from . import fsutil, homectl

#: the job's folder in the helper (a parameter for the tests)
#: the job's folder: in the task's private /tmp (a tmpfs; Docker gives a tmpfs the mode of
#: the folder it covers, and only /tmp is open to uid 1000 in the image)
IO = "/tmp/io"
JOB_URL_ENV = "CLASSHUB_HOMES_JOB_URL"
JOB_MAX = 16 << 20
INPUT_MAX = 512 << 20
CHUNK = 1 << 20
TIMEOUT = 60
EXIT_BAD_JOB = 2
EXIT_RESULTS_LOST = 3
EXIT_NO_INPUT = 4

INPUT_NAME = re.compile(r"[0-9a-f]{64}\.zip")
OUTPUT_NAME = re.compile(r"[0-9]+\.(zip|bin)")
URL = re.compile(r"https?://[^\x00-\x20\x7f]+")


class Failed(Exception):
    """A transfer that did not go through; its message never holds a URL."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A presigned URL answers directly: a 3xx is an error, never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _open(request, what: str):
    """urlopen, its failures as :class:`Failed` without the URL (an exception's text may
    hold it, so only a status, an errno's text or a type name is kept)."""
    # built per call: the proxy settings of the environment at the time of the call
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        e.close()
        raise Failed(f"{what} failed (HTTP {e.code})") from None
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, OSError) else e
        raise Failed(f"{what} failed ({_why(reason)})") from None
    except Exception as e:
        raise Failed(f"{what} failed ({_why(e)})") from None


def _why(e: BaseException) -> str:
    return (isinstance(e, OSError) and e.strerror) or type(e).__name__


def _read(response, what: str, limit: int, write=None) -> bytes | int:
    """The body (``write`` None) or its size (each chunk given to ``write``), at most
    ``limit`` bytes."""
    parts, size = [], 0
    try:
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Failed(f"{what} failed (more than {limit >> 20} MiB)")
            if write is None:
                parts.append(chunk)
            else:
                write(chunk)
    except Failed:
        raise
    except Exception as e:
        raise Failed(f"{what} failed ({_why(e)})") from None
    return size if write is not None else b"".join(parts)


def fetch_job(url: str) -> dict:
    """The remote job, checked for its two extra keys; :class:`homectl.BadJob` if not."""
    try:
        with _open(url, "fetching the job") as response:
            body = _read(response, "fetching the job", JOB_MAX)
    except Failed as e:
        raise homectl.BadJob(str(e)) from None
    try:
        job = json.loads(body)
    except ValueError:
        raise homectl.BadJob("the job is not JSON") from None
    if not isinstance(job, dict):
        raise homectl.BadJob("the job must be an object")
    for key, pattern in (("inputs", INPUT_NAME), ("outputs", OUTPUT_NAME)):
        places = job.get(key)
        if not isinstance(places, dict):
            raise homectl.BadJob(f"{key} must be an object")
        for name, url in places.items():
            if not (pattern.fullmatch(name) or (key == "outputs" and name == homectl.RESULTS)):
                raise homectl.BadJob(f"{key} has a bad name {name[:100]!r}")
            if not isinstance(url, str) or not URL.fullmatch(url):
                raise homectl.BadJob(f"the URL of {name} is not an http(s) URL")
            if not urllib.parse.urlsplit(url).hostname:
                raise homectl.BadJob(f"the URL of {name} has no host")
    if homectl.RESULTS not in job["outputs"]:
        raise homectl.BadJob(f"outputs has no {homectl.RESULTS}")
    return job


def download(url: str, name: str, folder: str) -> None:
    """One input into ``<folder>/<name>``, read-only, streamed, its sha256 checked against
    its name; :class:`Failed` (and no file) if not."""
    target = os.path.join(folder, name)
    what = f"downloading {name}"
    digest = hashlib.sha256()
    try:
        fd = os.open(target, fsutil.O_NEW, 0o444)
    except OSError as e:
        raise Failed(f"{what} failed ({_why(e)})") from None
    ok = False
    try:
        with os.fdopen(fd, "wb") as out, _open(url, what) as response:

            def write(chunk: bytes) -> None:
                digest.update(chunk)
                out.write(chunk)

            _read(response, what, INPUT_MAX, write)
        if digest.hexdigest() != name.removesuffix(".zip"):
            raise Failed(f"{what} failed (its bytes are not what its name says)")
        ok = True
    except OSError as e:
        raise Failed(f"{what} failed ({_why(e)})") from None
    finally:
        if not ok:
            try:
                os.unlink(target)
            except OSError:
                pass


def upload(url: str, path: str, name: str) -> None:
    """PUT one file, streamed, with its Content-Length; :class:`Failed` if not 2xx."""
    what = f"uploading {name}"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # the URL was checked to be http(s) (fetch_job's URL pattern)
            request = urllib.request.Request(  # noqa: S310
                url,
                data=f,
                method="PUT",
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                },
            )
            with _open(request, what) as response:
                response.read(1 << 16)
    except Failed:
        raise
    except Exception as e:  # reading the file, or the answer (http.client's own errors)
        raise Failed(f"{what} failed ({_why(e)})") from None


class Uploader:
    """Hands each item's outputs back as soon as they exist (the ``after`` of
    :func:`homectl.run`)."""

    def __init__(self, outputs: dict[str, str], out_dir: str):
        self.outputs = outputs
        self.out_dir = out_dir
        self.sent = 0
        self.failed = 0

    def put(self, name: str) -> bool:
        try:
            upload(self.outputs[name], os.path.join(self.out_dir, name), name)
        except Failed as e:
            sys.stderr.write(f"homeremote: {e}\n")
            self.failed += 1
            return False
        self.sent += 1
        return True

    def __call__(self, result: dict) -> None:
        for ext in ("zip", "bin"):
            name = f"{result['id']}.{ext}"
            path = os.path.join(self.out_dir, name)
            if not os.path.lexists(path):
                continue
            try:
                if name in self.outputs:
                    self.put(name)
                else:
                    sys.stderr.write(f"homeremote: {name} has no place to go; dropped\n")
            finally:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self.put(homectl.RESULTS)


def main() -> int:
    try:
        return _main()
    except Exception as e:  # a traceback could show a URL: one line instead
        sys.stderr.write(f"homeremote: internal error ({type(e).__name__})\n")
        return 1


def _main() -> int:
    os.umask(0o022)
    url = os.environ.get(JOB_URL_ENV, "")
    try:
        if not url:
            raise homectl.BadJob(f"{JOB_URL_ENV} is not set")
        if not URL.fullmatch(url):
            raise homectl.BadJob(f"{JOB_URL_ENV} is not an http(s) URL")
        remote = fetch_job(url)
        inputs, outputs = remote.pop("inputs"), remote.pop("outputs")
        os.makedirs(IO, 0o700, exist_ok=True)
        path = os.path.join(IO, "job.json")
        with os.fdopen(os.open(path, fsutil.O_NEW, 0o600), "w", encoding="utf-8") as f:
            json.dump(remote, f, ensure_ascii=True)
        job = homectl.read_job(path)
        out_dir = os.path.join(IO, "out")
        if job["out"] != out_dir:
            raise homectl.BadJob(f"out must be {out_dir}")
    except homectl.BadJob as e:
        sys.stderr.write(f"homeremote: {e}\n")
        return EXIT_BAD_JOB
    in_dir = os.path.join(IO, "in")
    os.makedirs(in_dir, 0o700, exist_ok=True)
    for name, source in inputs.items():
        try:
            download(source, name, in_dir)
        except Failed as e:
            sys.stderr.write(f"homeremote: {e}; nothing was done\n")
            return EXIT_NO_INPUT
    uploader = Uploader(outputs, out_dir)
    done, failed = homectl.run(job, after=uploader)
    final = uploader.put(homectl.RESULTS)
    sys.stderr.write(
        f"homeremote: {job['op']}: {done} done, {failed} failed; "
        f"{uploader.sent} uploads, {uploader.failed} failed"
        + ("" if final else "; the results were not handed back")
        + "\n"
    )
    return 0 if final else EXIT_RESULTS_LOST


if __name__ == "__main__":
    sys.exit(main())
