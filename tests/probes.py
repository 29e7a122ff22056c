"""Scripts run inside a student container to probe what it can reach."""

import contextlib
import socket

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
