"""Scripts run inside a student container to probe what it can reach."""

import contextlib
import socket
import subprocess

#: argv[1]: JSON list of [label, host, port]; argv[2]: a URL that should answer.
#: Prints {"ports": {label: "open" | error name}, "hub": status or error}.
REACH = r"""
import json, socket, sys, urllib.request
results = {}
for label, host, port in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        results[label] = "open"
    except OSError as e:
        results[label] = type(e).__name__
    finally:
        s.close()
try:
    hub = urllib.request.urlopen(sys.argv[2], timeout=5).status
except Exception as e:
    hub = repr(e)
print(json.dumps({"ports": results, "hub": hub}))
"""


def run_reach_probe(container, targets, url) -> dict:
    """Run :data:`REACH` in ``container`` (a docker-py Container) and return its result."""
    import json

    code, out = container.exec_run(["python3", "-c", REACH, json.dumps(targets), url])
    assert code == 0, out
    return json.loads(out.decode().strip().splitlines()[-1])


@contextlib.contextmanager
def open_host_port():
    """A TCP listener on all host interfaces, like an SSH server or a careless database."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


#: The link-local range hosts cloud metadata services (machine credentials).
METADATA = ("metadata", "169.254.169.254", 80)


def host_ipv4_addresses() -> list[str]:
    """Every IPv4 address of this host (a student may try any of them)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if ":" not in a]


def assert_reaches_only_hub(container, targets, hub_url) -> None:
    """From inside ``container``: none of ``targets`` nor the metadata address answers,
    and ``hub_url`` (the hub API, which single-user servers need) does."""
    before = set(host_ipv4_addresses())
    result = run_reach_probe(container, [*targets, METADATA], hub_url)
    # an address that stopped being this host's meanwhile (another test's network went
    # away) is no longer a host address; what answers there is outside this test
    vanished = before - set(host_ipv4_addresses())
    host_of = {label: host for label, host, _ in targets}
    opened = [
        label
        for label, state in result["ports"].items()
        if state == "open" and host_of.get(label) not in vanished
    ]
    assert opened == [], f"student container reached {opened}"
    assert result["hub"] == 200, result["hub"]


#: argv[1]: base URL; argv[2]: JSON list of [label, method, path, headers, body or null].
#: "$TOKEN" in a header value is replaced by the server's own JUPYTERHUB_API_TOKEN (read
#: inside the container). Prints {label: [status, first 300 characters of the body]};
#: redirects are not followed.
HTTP = r"""
import json, os, sys, urllib.error, urllib.request
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(NoRedirect)
out = {}
for label, method, path, headers, body in json.loads(sys.argv[2]):
    headers = {k: v.replace("$TOKEN", os.environ.get("JUPYTERHUB_API_TOKEN", ""))
               for k, v in headers.items()}
    data = body.encode() if body is not None else None
    req = urllib.request.Request(sys.argv[1] + path, data=data, method=method, headers=headers)
    try:
        with opener.open(req, timeout=10) as r:
            out[label] = [r.status, r.read(300).decode("utf-8", "replace")]
    except urllib.error.HTTPError as e:
        out[label] = [e.code, e.read(300).decode("utf-8", "replace")]
    except Exception as e:
        out[label] = [0, repr(e)]
print(json.dumps(out))
"""


def run_http_probe(container, base_url, requests_) -> dict:
    """Run :data:`HTTP` in ``container``: ``{label: [status, body start]}``."""
    import json

    code, out = container.exec_run(["python3", "-c", HTTP, base_url, json.dumps(requests_)])
    assert code == 0, out
    return json.loads(out.decode().strip().splitlines()[-1])
