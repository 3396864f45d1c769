# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the daemon tests share: a vgpud started on a copy of a fixture host, an HTTP client
for its UNIX socket (optionally run as another user), and pass/fail bookkeeping that ends
with the "N passed, M failed" line.

Environment (set by tests/meson.build): VGPUD, VGPUCTL, FIXTURES, NVML_DOUBLE."""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unixhttp import UnixHTTPConnection  # noqa: E402

VGPUD = os.environ["VGPUD"]
VGPUCTL = os.environ["VGPUCTL"]
FIXTURES = os.environ["FIXTURES"]
NVML_DOUBLE = os.environ["NVML_DOUBLE"]


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, (": " + str(detail)[:600]) if detail != "" else ""), flush=True)
        return cond

    def equal(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def promtool(self, text):
        """The Prometheus text exposition as Prometheus itself checks it (Debian's prometheus)."""
        if not shutil.which("promtool"):
            print("skip: promtool not installed (Debian package prometheus)")
            return
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.check(p.returncode == 0 and not (p.stdout + p.stderr).strip(), "promtool check metrics is clean", p.stdout + p.stderr)

    def done(self):
        # every daemon of the run: stopped cleanly, no sanitizer report (the ASan+UBSan build)
        for d in Daemon.started:
            rc = d.stop()
            log = d.logtext()
            self.check(rc == 0, "vgpud (%s) exited with %s" % (d.conf, rc), log[-1500:])
            self.check("Sanitizer" not in log and "runtime error:" not in log, "vgpud (%s): sanitizer report" % d.conf, log[-3000:])
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def request(sock, method, path, body=None, headers=None, timeout=30):
    """(status, parsed JSON or text, headers) of one request on the UNIX socket."""
    c = UnixHTTPConnection(sock, timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read().decode()
        try:
            data = json.loads(data) if r.getheader("Content-Type", "").startswith("application/json") else data
        except ValueError:
            pass
        return r.status, data, dict(r.getheaders())
    finally:
        c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_user(uid, gid, groups=()):
    """preexec_fn: become uid/gid with exactly these supplementary groups."""
    def drop():
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
    return drop


CLIENT = r"""
import json, socket, sys
method, path, body = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[4] if len(sys.argv) > 4 else SOCK)
req = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
if body is not None: req += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body.encode())
s.sendall((req + "\r\n" + (body or "")).encode())
data = b""
while True:
    d = s.recv(65536)
    if not d: break
    data += d
head, _, payload = data.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode()); print(payload.decode())
"""


def request_as(sock, uid, gid, groups, method, path, body=None):
    """(status, body) of a request made by a process running as uid/gid/groups."""
    code = CLIENT.replace("SOCK", repr(sock))
    # the system's python: one under root's home (pyenv) is not executable for nobody
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    args = [python, "-c", code, method, path] + ([body] if body is not None else [])
    p = subprocess.run(args, preexec_fn=as_user(uid, gid, groups), capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return None, p.stderr
    status, _, payload = p.stdout.partition("\n")
    try:
        payload = json.loads(payload)
    except ValueError:
        pass
    return int(status), payload


class Host:
    """A writable copy of a fixture host, in a directory anyone may traverse (the tests connect
    as nobody too)."""

    def __init__(self, fixture):
        self.tmp = tempfile.mkdtemp(prefix="vgpud-")
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "host")
        shutil.copytree(os.path.join(FIXTURES, fixture), self.root, symlinks=True)
        self.sock = os.path.join(self.root, "run/vgpud/vgpud.sock")
        self.env = dict(os.environ, VGPU_ROOT=self.root, LD_LIBRARY_PATH=NVML_DOUBLE)
        self.env.pop("NOTIFY_SOCKET", None)

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def vgpuctl(self, *args):
        p = subprocess.run([VGPUCTL] + list(args), env=self.env, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def vgpuctl_json(self, *args):
        rc, out, err = self.vgpuctl(*args, "--json")
        return json.loads(out) if rc in (0, 1) and out else None

    def set_nvml(self, index, key, value):
        """Change one line of the NVML double's nvml.conf (it re-reads it on every scan)."""
        p = self.path("nvml.conf")
        lines = open(p).read().splitlines()
        k = "gpu.%d.%s=" % (index, key)
        lines = [(k + str(value)) if line.startswith(k) else line for line in lines]
        tmp = p + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(tmp, p)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Daemon:
    """vgpud on a Host with a configuration written from text."""
    started = []

    def __init__(self, host, conf="", args=()):
        self.host = host
        self.conf = os.path.join(host.tmp, "vgpud.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.log = os.path.join(host.tmp, "vgpud-%d.log" % len(Daemon.started))
        self.proc = subprocess.Popen([VGPUD, "--config", self.conf, "-v"] + list(args), env=host.env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        Daemon.started.append(self)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vgpud exited with %s: %s" % (self.proc.returncode, self.logtext()))
            if os.path.exists(host.sock):
                try:
                    request(host.sock, "GET", "/v1/events")
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("vgpud did not start: " + self.logtext())

    def get(self, path):
        return request(self.host.sock, "GET", path)

    def logtext(self):
        try:
            return open(self.log).read()
        except OSError:
            return self.saved_log

    def events(self, since=0):
        return self.get("/v1/events?since=%d" % since)[1]["events"]

    def wait_event(self, kind, since=0, timeout=10, bdf=None):
        """The first event of kind after seq since; None when none came within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events(since):
                if e["kind"] == kind and (bdf is None or e["bdf"] == bdf):
                    return e
            time.sleep(0.05)
        return None

    def signal(self, sig):
        self.proc.send_signal(sig)

    saved_log = ""

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.saved_log:
            self.saved_log = self.logtext()     # the host's directory may go before done() looks
        return self.proc.returncode


@atexit.register
def stop_leftover_daemons():
    """A test that dies of an exception (its finish never ran) leaves no vgpud running."""
    for d in Daemon.started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
