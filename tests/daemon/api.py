#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-api: vgpud on a copy of the NVIDIA mdev fixture host with the NVML double.

Proves: every GET body carries what `vgpuctl --json` prints (GPUs, instances with definitions,
types, doctor results); malformed requests get 400/404/405/413 with a JSON error naming the
fault; a caller who is not root nor in the group (nobody) reads but gets 403 on every change,
logged as an access_denied event, while a group member may change things; 200 concurrent
clients all get complete answers; /metrics parses with promtool and the Prometheus client's
parser; the broker's TCP listener wants the bearer token (401 without) and then serves the
same bodies; the socket gets the configured mode and group; a bad configuration names
FILE:LINE and the key and the daemon refuses to start;
SIGHUP reloads (a bad file is refused and the running configuration kept); a second daemon on
the same socket refuses to start; SIGTERM ends with exit 0 and removes the socket."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from vgpudtest import VGPUD, Checks, Daemon, Host, free_port, request, request_as

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from validate import validate  # noqa: E402

t = Checks("daemon-api")
h = Host("nvidia-mdev")
port, api_port = free_port(), free_port()
# an existing group stands in for `vgpu`: its members may change things
GROUP, GID = "users", 100
TOKEN = "0123456789abcdef-test-token"
os.makedirs(h.path("/etc/vgpuctl"), exist_ok=True)
with open(h.path("/etc/vgpuctl/vgpud.token"), "w") as f:
    f.write(TOKEN + "\n")
d = Daemon(h, "[daemon]\ngroup = %s\npoll-interval = 200ms\nsocket-mode = 0666\n[metrics]\nlisten = 127.0.0.1:%d\n"
           "[api]\nlisten = 127.0.0.1:%d\ntoken-file = /etc/vgpuctl/vgpud.token\n" % (GROUP, port, api_port))
sock = h.sock


def without(obj, key):
    return {k: v for k, v in obj.items() if k != key}


try:
    # ---- GET bodies against vgpuctl --json
    st, gpus, hdr = d.get("/v1/gpus")
    t.equal(st, 200, "GET /v1/gpus status")
    t.equal(hdr.get("Content-Type"), "application/json", "GET /v1/gpus content type")
    cli = h.vgpuctl_json("list", "--defined")
    t.equal([without(g, "health") for g in gpus["gpus"]], cli["gpus"], "/v1/gpus is `vgpuctl list --json`'s gpus plus health")
    t.check(all("health" in g for g in gpus["gpus"]), "every GPU has a health object")
    hot = [g for g in gpus["gpus"] if g["bdf"] == "0000:3b:00.0"][0]
    t.equal((hot["health"]["state"], hot["health"]["thermal"], hot["health"]["temperature_c"]), ("ok", "ok", 41), "health of 3b:00.0")
    st, inst, _ = d.get("/v1/instances")
    t.equal(inst, {"instances": cli["instances"], "definitions": cli["definitions"]},
            "/v1/instances is `vgpuctl list --defined --json` without gpus")
    st, types, _ = d.get("/v1/types")
    t.equal(types, {"types": h.vgpuctl_json("types")}, "/v1/types is {\"types\": `vgpuctl types --json`}")
    st, types, _ = d.get("/v1/types?parent=3b:00.0&available=true")
    t.equal(types, {"types": h.vgpuctl_json("types", "3b:00.0", "--available")}, "/v1/types?parent&available is `types PARENT --available`")
    st, health, _ = d.get("/v1/health")
    t.equal(st, 200, "GET /v1/health")
    t.equal(health["checks"], h.vgpuctl_json("doctor"), "/v1/health checks are `vgpuctl doctor --json`")
    t.equal(health["state"], "ok", "host state ok")
    t.equal(sorted(g["bdf"] for g in health["gpus"]), ["0000:03:00.0", "0000:3b:00.0", "0000:5e:00.0", "0000:af:00.0"], "health lists the PFs")
    st, health, _ = d.get("/v1/health?checks=false")
    t.equal(health["checks"], None, "?checks=false skips the doctor")
    st, ev, _ = d.get("/v1/events")
    t.check(st == 200 and "events" in ev and "next_seq" in ev, "GET /v1/events", ev)

    # ---- every body against its committed schema (doc/schema), and one name per fact: the
    # API's objects are the CLI's, member for member (names from pci.ids included)
    def valid(schema, body, what):
        error = validate(schema, body)
        t.check(error is None, "%s does not match %s.schema.json" % (what, schema), error)
    bodies = {"api-gpus": "/v1/gpus", "api-types": "/v1/types?parent=3b:00.0", "api-instances": "/v1/instances",
              "api-health": "/v1/health", "api-events": "/v1/events", "api-slices": "/v1/slices"}
    for schema, path in bodies.items():
        st, body, _ = d.get(path)
        t.equal(st, 200, "GET " + path)
        valid(schema, body, "GET " + path)
    st, gpus, _ = d.get("/v1/gpus")
    t.check(all(g["vendor_name"] == "NVIDIA Corporation" and g["device_name"] == "TU104GL [Tesla T4]" for g in gpus["gpus"][1:]),
            "/v1/gpus has the pci.ids names", [(g["vendor_name"], g["device_name"]) for g in gpus["gpus"]])
    for g in gpus["gpus"]:
        show = h.vgpuctl_json("show", g["bdf"])
        t.equal({k: show[k] for k in g if k != "health"}, without(g, "health"), "/v1/gpus %s is `vgpuctl show`'s object, as far as it goes" % g["bdf"])
    t.equal(d.get("/v1/slices")[1], {"slices": h.vgpuctl_json("slice", "list")}, "/v1/slices is {\"slices\": `vgpuctl slice list --json`}")
    u1 = "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"
    st, body, _ = request(sock, "POST", "/v1/instances", {"parent": "0000:3b:00.0", "type": "nvidia-232", "uuid": u1})
    t.equal(st, 200, "POST /v1/instances of an existing instance")
    valid("outcome", body, "POST /v1/instances")
    t.equal(body, h.vgpuctl_json("--direct", "create", "--parent", "0000:3b:00.0", "--type", "nvidia-232", "--uuid", u1),
            "POST /v1/instances answers as `vgpuctl create --json`")
    st, body, _ = request(sock, "POST", "/v1/apply?dry_run=true", 'version: 1\ngpus:\n  - bdf: "0000:af:00.0"\n    devices: [{type: nvidia-232}]\n')
    t.check(st == 200 and body["changes"] == 2, "POST /v1/apply?dry_run: create and define", (st, body))
    valid("plan", body, "POST /v1/apply")
    for method, path, body_ in (("DELETE", "/v1/instances/11111111-2222-4333-8444-555555555555", None), ("GET", "/v1/nothing", None),
                                ("POST", "/v1/instances", "{"), ("PUT", "/v1/gpus", None)):
        st, body, _ = request(sock, method, path, body_)
        t.check(st >= 400, "%s %s fails" % (method, path), st)
        valid("api-error", body, "the error of %s %s" % (method, path))

    # ---- the socket: the configured mode, given to the group
    stt = os.stat(sock)
    t.equal((oct(stt.st_mode & 0o777), stt.st_gid), (oct(0o666), GID), "socket mode as configured, given to the group")

    # ---- the broker's TCP listener: bearer token, same API, no /metrics
    def tcp(method, path, token=None, body=None):
        c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        c.request(method, path, body=body, headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data, r.getheader("WWW-Authenticate")
    st, b, auth = tcp("GET", "/v1/gpus")
    t.check(st == 401 and auth and auth.startswith("Bearer") and "bearer token is required" in b, "TCP API without a token: 401", (st, b, auth))
    st, b, _ = tcp("GET", "/v1/gpus", token="wrong")
    t.equal(st, 401, "TCP API with a wrong token: 401")
    st, b, _ = tcp("GET", "/v1/types", token=TOKEN)
    t.check(st == 200 and json.loads(b) == {"types": h.vgpuctl_json("types")}, "TCP API with the token: the same body", st)
    st, b, _ = tcp("POST", "/v1/apply?dry_run=1", token=TOKEN, body="version: 1\ngpus: []\n")
    t.check(st == 200 and json.loads(b)["changes"] == 0, "TCP API with the token may change things", (st, b))
    st, b, _ = tcp("GET", "/metrics", token=TOKEN)
    t.equal(st, 404, "no /metrics on the TCP API")

    # ---- malformed requests: 4xx, JSON error naming the fault
    def bad(method, path, body, status, needle, what, headers=None):
        st, b, _ = request(sock, method, path, body, headers)
        ok = st == status and isinstance(b, dict) and needle in b.get("error", "")
        t.check(ok, what, (st, b))

    bad("POST", "/v1/instances", "{not json", 400, "not valid JSON", "bad JSON body")
    bad("POST", "/v1/instances", '{"parent": "0000:af:00.0"} trailing', 400, "body: ", "trailing data after JSON")
    bad("POST", "/v1/instances", '{"parent": "0000:af:00.0", "typo": 1}', 400, 'unknown member "typo"', "unknown member")
    bad("POST", "/v1/instances", '{"parent": "0000:af:00.0"}', 400, '"parent" and "type" are required', "missing type")
    bad("POST", "/v1/instances", '{"parent": 5, "type": "x"}', 400, '"parent" must be a non-empty string', "wrong member type")
    bad("POST", "/v1/instances", '{"parent": "0000:af:00.0", "type": "nvidia-232", "uuid": "nope"}', 400, "is not a UUID", "bad uuid")
    bad("POST", "/v1/instances", '[1, 2]', 400, "expected a JSON object", "array body")
    # names that become paths, from callers who need not be root: refused before anything is written
    def tree():
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(h.root) for f in fs if "/run/" not in d + "/")
    before = tree()
    st, b, _ = request(sock, "POST", "/v1/instances", '{"parent": "../../../tmp", "type": "nvidia-232", "persist": true}')
    t.check(st >= 400 and "not a device name" in b.get("error", ""), "a parent that is a path is refused", (st, b))
    st, b, _ = request(sock, "POST", "/v1/instances",
                       '{"parent": "0000:af:00.0", "type": "nvidia-232", "attrs": [{"../../../../proc/sys/kernel/core_pattern": "x"}]}')
    t.check(st >= 400 and "not a path below the device" in b.get("error", ""), "an attribute outside the device is refused", (st, b))
    # slices on a GPU the vGPU manager drives (NVML virtualization mode 3): refused with the
    # reason and the slice's place in the file, applied for real, and nothing changed
    bad("POST", "/v1/apply", "version: 1\nslices:\n  - {name: ok1, gpu: af:00.0}\n  - {name: ok2, gpu: 3b:00.0}\n", 409,
        "POST /v1/apply:3:5: slice ok1: 0000:af:00.0: the GPU is in vGPU host mode (NVML virtualization mode 3): "
        "host CUDA cannot run there", "slices on a vGPU host are refused")
    t.check(tree() == before, "the refused requests changed nothing on the host")
    bad("POST", "/v1/instances", "", 400, "expected a JSON object", "empty body")
    bad("DELETE", "/v1/instances/not-a-uuid", None, 400, "neither a UUID nor a PCI address", "DELETE with a bad id")
    bad("DELETE", "/v1/instances/11111111-2222-4333-8444-555555555555", None, 404, "", "DELETE of an absent instance: 404")
    bad("GET", "/v1/gpus?verbose=1", None, 400, "unknown query argument 'verbose'", "unknown query argument")
    bad("POST", "/v1/apply?dry_run=maybe", "version: 1\ngpus: []\n", 400, "expected true or false", "bad boolean")
    bad("POST", "/v1/apply?dry_run=1", "version: 1\ngpus:\n  - bdf: [\n", 400, "POST /v1/apply:", "bad YAML names the body and line")
    # a slice name CDI refuses (it would make podman refuse every slice's spec), with its place
    bad("POST", "/v1/apply?dry_run=1", "version: 1\nslices:\n  - gpu: 3b:00.0\n    name: trail-\n", 400,
        "POST /v1/apply:4:11: field 'name': 'trail-' is not a slice name", "a slice name CDI refuses")
    bad("GET", "/v1/nothing", None, 404, "no such resource", "unknown path")
    bad("PUT", "/v1/gpus", None, 405, "method not allowed", "wrong method")
    st, b, hdr = request(sock, "PUT", "/v1/gpus")
    t.equal(hdr.get("Allow"), "GET", "405 names the allowed methods")
    bad("GET", "/v1/events?since=-1", None, 400, "expected an event number", "bad since")
    # a body announced over 1 MiB (16 MiB, host.yaml's limit, for /v1/apply): refused before it is sent
    for path, size, words in (("/v1/instances", 1024 * 1024 + 1, b"larger than 1 MiB"),
                              ("/v1/apply", 16 * 1024 * 1024 + 1, b"larger than 16 MiB, the limit for host.yaml")):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.settimeout(10)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), size))
        reply = s.recv(4096)
        s.close()
        t.check(reply.startswith(b"HTTP/1.1 413") and words in reply, "body announced over the limit of %s: 413" % path, reply[:200])
    # one sent in chunks without a length: cut off at 1 MiB
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.settimeout(10)
    s.sendall(b"POST /v1/instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunk = b"x" * 65536
    try:
        for _ in range(20):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    try:
        reply = s.recv(4096)
    except OSError:
        reply = b""
    s.close()
    t.check(reply.startswith(b"HTTP/1.1 413"), "chunked body over 1 MiB: 413", reply[:200])
    bad("GET", "/metrics?x=1", None, 400, "unknown query argument", "query on /metrics")
    # a raw request with a broken request line: MHD answers 400 and the daemon lives on
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"GARBAGE\r\n\r\n")
    s.settimeout(5)
    try:
        reply = s.recv(200)
    except OSError:
        reply = b""
    s.close()
    t.check(reply.startswith(b"HTTP/1.1 400") or reply == b"", "garbage request line is refused", reply)
    t.equal(d.get("/v1/events")[0], 200, "daemon alive after malformed requests")

    # ---- who may do what (SO_PEERCRED)
    dry = "version: 1\ngpus:\n  - bdf: \"0000:af:00.0\"\n    devices: []\n"
    if os.geteuid() == 0:
        since = d.get("/v1/events")[1]["next_seq"]
        st, b = request_as(sock, 65534, 65534, [], "GET", "/v1/types")
        t.equal(st, 200, "nobody may read")
        for method, path, body in (("POST", "/v1/apply?dry_run=1", dry), ("POST", "/v1/instances", '{"parent": "0000:af:00.0", "type": "nvidia-232"}'),
                                   ("DELETE", "/v1/instances/b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01", None)):
            st, b = request_as(sock, 65534, 65534, [], method, path, body)
            t.check(st == 403 and "permission denied" in b.get("error", "") and "uid 65534" in b["error"],
                    "nobody gets 403 on %s %s" % (method, path), (st, b))
            t.check(validate("api-error", b) is None and b.get("group") == GROUP, "the 403 body names the group", b)
        e = d.wait_event("access_denied", since)
        t.check(e is not None and "uid 65534" in e["message"], "the denial is logged as an event", e)
        t.check("denied POST /v1/apply?dry_run" in d.logtext() or "denied POST /v1/apply" in d.logtext(), "the denial is in the log")
        st, b = request_as(sock, 65534, 65534, [GID], "POST", "/v1/apply?dry_run=1", dry)
        t.check(st == 200 and b.get("changes") == 0, "a member of the group (supplementary) may apply", (st, b))
        st, b = request_as(sock, 65534, GID, [], "POST", "/v1/apply?dry_run=1", dry)
        t.check(st == 200, "a member of the group (primary) may apply", (st, b))
        t.equal(len(h.vgpuctl_json("list")["instances"]), 3, "nothing changed by the refused calls")
    else:
        print("skip: not root, cannot run clients as other users (tests/unit/test-vgpud covers the decision)")

    # ---- 200 concurrent clients
    results, errors = [], []
    start = threading.Barrier(200)

    def client(i):
        try:
            start.wait(10)
            path = ["/v1/events", "/v1/health?checks=false", "/v1/gpus", "/v1/types", "/metrics"][i % 5]
            st, b, _ = request(sock, "GET", path, timeout=60)
            results.append((path, st, b))
        except Exception as ex:         # noqa: BLE001 - every failure counts
            errors.append(repr(ex))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    took = time.monotonic() - t0
    t.equal(errors, [], "200 concurrent clients: no connection errors")
    t.equal(len(results), 200, "200 concurrent clients: 200 answers")
    t.check(all(st == 200 for _, st, _ in results), "200 concurrent clients: all 200 OK", [r[:2] for r in results if r[1] != 200][:5])
    t.check(all((isinstance(b, (dict, list)) if p != "/metrics" else "vgpu_events_total" in b) for p, _, b in results),
            "200 concurrent clients: every body complete")
    print("200 concurrent clients answered in %.2f s" % took)

    # ---- /metrics: Prometheus text that real parsers accept
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    for series in ('vgpu_gpu_temperature_celsius{gpu="1",bdf="0000:3b:00.0",uuid="GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34",model="Tesla T4"} 41',
                   'vgpu_gpu_power_watts{gpu="1",bdf="0000:3b:00.0",',
                   'vgpu_gpu_framebuffer_total_bytes{gpu="1",bdf="0000:3b:00.0",uuid="GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34",model="Tesla T4"} 16106127360',
                   'vgpu_gpu_pcie_link_width{gpu="1",bdf="0000:3b:00.0",uuid="GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34",model="Tesla T4"} 16',
                   'vgpu_type_available_instances{parent="0000:3b:00.0",type="nvidia-232",name="GRID T4-4Q"} 2',
                   'vgpu_instance_info{uuid="c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4",type="nvidia-233",parent="0000:5e:00.0",domain=""} 1',
                   'vgpu_gpu_throttle{gpu="1",bdf="0000:3b:00.0",uuid="GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34",model="Tesla T4",reason="sw_power_cap"} 1',
                   'vgpu_gpu_utilization_ratio{gpu="1",bdf="0000:3b:00.0",uuid="GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34",model="Tesla T4"} 0.12',
                   'vgpu_events_total{kind="access_denied"}'):
        t.check(series in text, "metrics has " + series[:70])
    t.promtool(text)
    try:
        import sys
        sys.path.append("/usr/lib/python3/dist-packages")      # Debian's python3-prometheus-client
        from prometheus_client.parser import text_string_to_metric_families
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        t.check({"vgpu_gpu_temperature_celsius", "vgpu_type_available_instances", "vgpu_instance_info", "vgpu_events"} <= set(fams),
                "the Prometheus client parses the families", sorted(fams))
        temps = {s.labels["bdf"]: s.value for s in fams["vgpu_gpu_temperature_celsius"].samples}
        t.equal(temps, {"0000:3b:00.0": 41, "0000:5e:00.0": 47, "0000:af:00.0": 33}, "parsed temperatures")
    except ImportError:
        print("skip: python3-prometheus-client not installed")

    # ---- configuration: errors name FILE:LINE and the key; the daemon refuses to start
    conf = os.path.join(h.tmp, "bad.conf")
    for text_, want in (("[daemon]\npoll-interval = 10s\n[thermal]\nwarn = hot\n", ":4: [thermal] warn = 'hot': expected degrees C"),
                        ("[daemon]\nlisten = relative.sock\n", ":2: [daemon] listen = 'relative.sock': expected an absolute path"),
                        ("\n[metrics]\nlisten = localhost:9835\n", ":3: [metrics] listen = 'localhost:9835': expected"),
                        ("[thermal]\nwarn = 90\ncritical = 80\n", ":3: [thermal] warn 90, critical 80"),
                        ('[thermal "Tesla T4"]\nhysteresis = 80\n', ":2: [thermal \"Tesla T4\"] hysteresis = '80'"),
                        ("[daemon]\nfoo = 1\n", ":2: [daemon] unknown key 'foo'"),
                        ("[colectors]\nnvml = yes\n", ":2: unknown section [colectors]"),
                        ("[daemon]\nthis line has no equals sign\n", ":2: syntax error"),
                        ("[api]\nlisten = 127.0.0.1:9836\n", "[api] listen is on but token-file is not set")):
        open(conf, "w").write(text_)
        p = subprocess.run([VGPUD, "--check-config", "--config", conf], env=h.env, capture_output=True, text=True)
        t.check(p.returncode == 1 and (conf + want) in p.stderr if want.startswith(":") else want in p.stderr,
                "bad config refused: " + want, (p.returncode, p.stderr))
    p = subprocess.run([VGPUD, "--config", conf], env=h.env, capture_output=True, text=True, timeout=10)
    t.check(p.returncode == 1 and "token-file" in p.stderr, "the daemon refuses to start on a bad config", (p.returncode, p.stderr))
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([VGPUD, "--check-config", "--config", os.path.join(here, "..", "..", "data", "vgpud.conf")], env=h.env,
                       capture_output=True, text=True)
    t.check(p.returncode == 0, "the shipped data/vgpud.conf is valid", p.stderr)

    # ---- a second daemon on the same socket refuses
    p = subprocess.run([VGPUD, "--config", d.conf], env=h.env, capture_output=True, text=True, timeout=10)
    t.check(p.returncode == 1 and "another vgpud answers" in p.stderr, "a second daemon refuses to start", p.stderr)

    # ---- SIGHUP: reload; a bad file is refused and the old configuration kept
    since = d.get("/v1/events")[1]["next_seq"]
    with open(d.conf, "a") as f:
        f.write("[thermal]\nwarn = 70\ncritical = 80\n")
    d.signal(signal.SIGHUP)
    e = d.wait_event("config_reloaded", since)
    t.check(e is not None and "warn 70 C, critical 80 C" in e["message"], "SIGHUP reloads", e)
    time.sleep(0.5)
    st, health, _ = d.get("/v1/health?checks=false")
    t.equal({g["warn_c"] for g in health["gpus"]}, {70}, "reloaded thresholds apply")
    with open(d.conf, "a") as f:
        f.write("[thermal]\nwarn = cold\n")
    d.signal(signal.SIGHUP)
    e = d.wait_event("config_rejected", since)
    t.check(e is not None and "warn = 'cold'" in e["message"] and "keeping the running configuration" in e["message"],
            "a bad reload is refused with FILE:LINE", e)
    t.equal(d.get("/v1/events")[0], 200, "daemon alive after a refused reload")
finally:
    rc = d.stop()
t.equal(rc, 0, "SIGTERM: exit status 0")
t.check(not os.path.exists(sock), "SIGTERM: the socket is removed")
t.check("stopped" in d.logtext(), "SIGTERM: logged stop")
h.cleanup()
t.done()
