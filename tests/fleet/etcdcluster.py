# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real etcd cluster for the fleet tests: N members of Debian's etcd (/usr/bin/etcd) on free
loopback ports >= 20000, data on /dev/shm, each member a process the test can stop, kill -9 and
restart by PID.

    from etcdcluster import EtcdCluster, skip_without_etcd
    with EtcdCluster(3) as c:
        c.endpoints            # ["http://127.0.0.1:P1", ...]
        c.leader()             # index of the member that leads, or None
        c.kill(i); c.restart(i); c.wait_leader(); c.pause(i); c.resume(i); c.pid(i); c.move_leader(i)
        c.etcdctl("put", "k", "v")

Why not the defaults 2379/2380: a host's own etcd may use them. Why --heartbeat-interval 100
--election-timeout 1000: the fleet tests measure failover in seconds, and these are etcd's
defaults written out so a distribution default cannot change them."""

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
import urllib.request

ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
ETCDCTL = os.environ.get("ETCDCTL", "/usr/bin/etcdctl")

_taken = set()


def skip_without_etcd():
    """Exit 77 (meson's skip) saying why when etcd is not installed."""
    if not (os.access(ETCD, os.X_OK) and os.access(ETCDCTL, os.X_OK)):
        print("skip: etcd not installed (Debian packages etcd-server etcd-client; scripts/install-deps.sh --test)")
        sys.exit(77)


def free_port():
    """A loopback TCP port >= 20000 nobody listens on (and that this process has not handed out)."""
    for _ in range(2000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port >= 20000 and port not in _taken:
            _taken.add(port)
            return port
    # the kernel's ephemeral range may start below 20000: walk upwards from a random place
    base = 20000 + (os.getpid() * 37) % 30000
    for port in range(base, 65000):
        if port in _taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _taken.add(port)
        return port
    raise RuntimeError("no free port >= 20000")


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, made by
    openssl in directory d: {"ca": path, "server": (cert, key), "client": (cert, key)}."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", "/CN=vgpu-test-ca")
    out = {"ca": ca}
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[server]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
                "[client]\nextendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        key, csr, crt = (os.path.join(d, who + s) for s in (".key", ".csr", ".pem"))
        # the client's without CN: etcd's gateway refuses a client certificate with a CN when auth is on
        subject = "/CN=vgpu-server" if who == "server" else "/O=vgpu-client"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
                "-days", "2", "-extfile", ext, "-extensions", who)
        out[who] = (crt, key)
    return out


class Member:
    def __init__(self, cluster, index):
        self.cluster, self.index = cluster, index
        self.name = "m%d" % (index + 1)
        self.client_port, self.peer_port = free_port(), free_port()
        self.data_dir = os.path.join(cluster.dir, self.name)
        self.proc = None
        self.log = None

    @property
    def endpoint(self):
        return "%s://127.0.0.1:%d" % ("https" if self.cluster.tls else "http", self.client_port)

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, state="new"):
        c = self.cluster
        argv = [ETCD, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", ",".join("%s=%s" % (m.name, m.peer_url) for m in c.members),
                "--initial-cluster-state", state, "--initial-cluster-token", c.token,
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--listen-metrics-urls", "http://127.0.0.1:%d" % c.metrics_ports[self.index],
                "--logger", "zap", "--log-outputs", "stderr"]
        if c.tls:
            argv += ["--cert-file", c.tls["cert"], "--key-file", c.tls["key"]]
            if c.tls.get("ca"):
                argv += ["--trusted-ca-file", c.tls["ca"], "--client-cert-auth"]
        argv += c.extra_args
        self.log = open(os.path.join(c.dir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy(self, timeout=0.5):
        """True when the member answers /health with "health":"true" (it has a leader)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.cluster.metrics_ports[self.index],
                                        timeout=timeout) as r:
                return json.loads(r.read().decode()).get("health") == "true"
        except Exception:
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=10):
        if self.proc:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def logtext(self):
        try:
            with open(os.path.join(self.cluster.dir, self.name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class EtcdCluster:
    """size members; tls = {"cert","key","ca"} serves https with client certificates when ca is set;
    extra_args go to every member (e.g. ["--auto-compaction-retention", "1"])."""

    def __init__(self, size=3, tls=None, extra_args=None, start=True):
        self.dir = tempfile.mkdtemp(prefix="vgpu-etcd-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.token = os.path.basename(self.dir)
        self.tls = tls
        self.extra_args = list(extra_args or [])
        self.metrics_ports = [free_port() for _ in range(size)]
        self.members = [Member(self, i) for i in range(size)]
        # a test that dies of an exception before its cleanup leaves no member running
        atexit.register(self.close)
        if start:
            self.start()

    @property
    def endpoints(self):
        return [m.endpoint for m in self.members]

    def start(self, timeout=15):
        for m in self.members:
            m.start()
        self.wait_leader(timeout)

    def wait_leader(self, timeout=15):
        """Wait until every running member reports a leader; return the leader's index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [m for m in self.members if m.alive()]
            if running and all(m.healthy() for m in running):
                i = self.leader()
                if i is not None:
                    return i
            time.sleep(0.1)
        raise RuntimeError("etcd cluster has no leader after %.0f s:\n%s" % (
            timeout, "\n".join(m.logtext()[-1500:] for m in self.members)))

    def etcdctl(self, *args, endpoints=None, check=True, user=None, timeout=10):
        """Run etcdctl (API v3) against the cluster; return its stdout."""
        argv = [ETCDCTL, "--endpoints", ",".join(endpoints or [m.endpoint for m in self.members if m.alive()])]
        if self.tls:
            if self.tls.get("ca"):
                argv += ["--cacert", self.tls["ca"]]
            if self.tls.get("client_cert"):
                argv += ["--cert", self.tls["client_cert"], "--key", self.tls["client_key"]]
        if user:
            argv += ["--user", user]
        env = dict(os.environ, ETCDCTL_API="3")
        p = subprocess.run(argv + list(args), capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("etcdctl %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def status(self):
        """etcdctl endpoint status of the running members as parsed JSON (list)."""
        out = self.etcdctl("endpoint", "status", "-w", "json", check=False)
        try:
            return json.loads(out)
        except ValueError:
            return []

    def leader(self):
        """Index of the member that is the leader now, or None."""
        for s in self.status():
            h = s.get("Status", {}).get("header", {})
            if h.get("member_id") and h.get("member_id") == s["Status"].get("leader"):
                for i, m in enumerate(self.members):
                    if s.get("Endpoint") == m.endpoint:
                        return i
        return None

    def member_id(self, i):
        """Member i's id as etcdctl prints it (hex)."""
        out = json.loads(self.etcdctl("member", "list", "-w", "json"))
        for m in out.get("members", []):
            if m.get("name") == self.members[i].name:
                return "%x" % m["ID"]
        raise RuntimeError("member %s not in the member list" % self.members[i].name)

    def move_leader(self, to):
        """Make member `to` the leader (etcdctl move-leader, sent to the current leader)."""
        lead = self.wait_leader()
        if lead != to:
            self.etcdctl("move-leader", self.member_id(to), endpoints=[self.members[lead].endpoint])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.leader() != to:
            time.sleep(0.1)
        return self.leader() == to

    def stop(self, i, sig=signal.SIGTERM):
        self.members[i].signal(sig)
        self.members[i].wait()

    def kill(self, i):
        """kill -9 member i and reap it."""
        self.stop(i, signal.SIGKILL)

    def pause(self, i):
        """SIGSTOP member i (a member that hangs: its connections stay open, nothing answers)."""
        self.members[i].signal(signal.SIGSTOP)

    def resume(self, i):
        self.members[i].signal(signal.SIGCONT)

    def pid(self, i):
        return self.members[i].pid

    def restart(self, i):
        """Start member i again on its data dir (it rejoins the cluster it was part of)."""
        m = self.members[i]
        if m.alive():
            self.stop(i)
        m.start(state="existing")

    def close(self):
        for i, m in enumerate(self.members):
            if m.alive():
                m.signal(signal.SIGCONT)
                self.stop(i, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    # smoke: python3 etcdcluster.py — start 3, kill the leader, see a new one, restart it
    skip_without_etcd()
    with EtcdCluster(3) as c:
        lead = c.wait_leader()
        print("endpoints", c.endpoints, "leader", lead)
        c.etcdctl("put", "/k", "v")
        t = time.monotonic()
        c.kill(lead)
        print("new leader", c.wait_leader(), "after %.2f s" % (time.monotonic() - t))
        c.restart(lead)
        c.wait_leader()
        print("get", c.etcdctl("get", "/k", endpoints=[c.members[lead].endpoint]).split())
