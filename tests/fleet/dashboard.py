#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fleet dashboard in a real browser: Debian's chromium, headless, driven by chromium-driver
through python3-selenium, against a real vgpu-broker (TCP loopback) on a real 1-member etcd with
synthetic hosts written into etcd as vgpud would.

What it proves: the broker serves the page (right Content-Type, nothing outside the page's own
files, whatever the URL); /v1/whoami tells a good token from a wrong one; the numbers on the page
(hosts, GPUs, VRAM claimed/total and host-reported use per GPU, sessions per GPU and host,
temperature classes at 75/85 C, health) are the API's; a session placed through the API appears
without a reload within 2 s; cordon by keyboard (focus, Enter) writes cordon/<host> in etcd and
shows in the page and in the host's recent events (/v1/events); at 420 px every table cell is
labelled by its column and nothing scrolls sideways; the browser logged no error. A screenshot is
kept in the build directory (tests/fleet/dashboard.png) as the test's artifact. /v1/events has
the placements, the cordon, a claim gone BOUND and a host that left.
Run with /usr/bin/python3 (Debian's selenium); exits 77 (skip) saying why without it.
"""

import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from etcdcluster import EtcdCluster, free_port, skip_without_etcd  # noqa: E402
from fleetsim import GiB, PREFIX, Broker, Gateway, SyntheticHost, t4_gpu  # noqa: E402
from validate import validate  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    print("skip: python3-selenium not importable by %s (scripts/install-deps.sh --test; run with "
          "/usr/bin/python3)" % sys.executable)
    sys.exit(77)

CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD_DIR = os.environ.get("DASHBOARD_DIR", os.path.join(SRCDIR, "data", "dashboard"))
ARTIFACT = os.environ.get("DASHBOARD_SCREENSHOT", "dashboard.png")

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def wait_for(fn, timeout, step=0.05):
    """fn() until it is truthy; (value, seconds taken), or (None, timeout)"""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            v = fn()
        except Exception:  # noqa: BLE001 — a stale element between two redraws: try again
            v = None
        if v:
            return v, time.monotonic() - t0
        time.sleep(step)
    return None, timeout


def http(port, method, path, token=None, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw_get(port, path):
    """GET with the path sent as written (urllib would not normalize, but be sure: a socket)"""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def static_checks(port, tport, token):
    for path, ctype, marker in [("/", "text/html", b"<title>vGPU fleet</title>"),
                                ("/index.html", "text/html", b"<title>vGPU fleet</title>"),
                                ("/dashboard.js", "text/javascript", b"function refresh"),
                                ("/dashboard.css", "text/css", b"@media")]:
        st, hdr, body = http(port, "GET", path)
        check(st == 200 and hdr.get("Content-Type", "").startswith(ctype) and marker in body,
              "GET %s: 200, %s (%s, %d bytes)" % (path, ctype, hdr.get("Content-Type"), len(body)))
    with open(os.path.join(DASHBOARD_DIR, "dashboard.js"), "rb") as f:
        check(http(port, "GET", "/dashboard.js")[2] == f.read(), "dashboard.js served byte for byte")
    # nothing but the page's own files, however the URL is spelled
    for path in ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/dashboard.js/../../etc/passwd",
                 "/..%2f..%2fetc%2fpasswd", "/etc/passwd", "/index.html/", "//etc/passwd",
                 "/dashboard.css/", "/meson.build", "/.", "/./index.html"]:
        st, body = raw_get(port, path)
        check(st in (400, 404) and b"root:" not in body, "GET %s refused (%d)" % (path, st))
    st, _, _ = http(port, "POST", "/index.html", body={})
    check(st == 405, "POST /index.html: 405 (%d)" % st)
    # the token-protected broker: the page loads without the token, the API does not
    st, _, body = http(tport, "GET", "/")
    check(st == 200 and b"vGPU fleet" in body, "the page loads without a token (%d)" % st)
    st, _, _ = http(tport, "GET", "/v1/hosts")
    check(st == 401, "GET /v1/hosts without the token: 401 (%d)" % st)
    for tok, want in [(None, False), ("wrong", False), (token, True)]:
        st, _, body = http(tport, "GET", "/v1/whoami", token=tok)
        who = json.loads(body) if st == 200 else {}
        error = validate("broker-whoami", who)
        check(error is None, "whoami matches broker-whoami.schema.json: %s" % error)
        check(st == 200 and who.get("can_write") is want and who.get("token_required") is True
              and who.get("via") == "tcp",
              "whoami with token %r: can_write %s (%s)" % (tok, want, who))
    st, _, body = http(port, "GET", "/v1/whoami")
    check(st == 200 and json.loads(body).get("can_write") is True, "whoami on a tokenless TCP broker: can_write")


def api(b, method, path, body=None):
    st, _, parsed = b.request(method, path, body)
    if st >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, st, parsed))
    return parsed


# One snapshot of what the overview shows, taken inside the page: its script redraws every 1.5 s,
# and a script runs to its end before the page's next redraw, so nothing goes stale half-read.
SNAPSHOT_JS = """
const cells = tr => Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.label, td]));
const text = id => document.getElementById(id).textContent;
return {
  totals: {hosts: text('total-hosts'), gpus: text('total-gpus'), vram: text('total-vram')},
  hosts: [...document.querySelectorAll('#hosts tr[data-host]')].map(tr => {
    const c = cells(tr);
    return {host: tr.dataset.host, gpus: c.GPUs.textContent, sessions: c.Sessions.textContent,
            state: c.State.textContent};
  }),
  gpus: [...document.querySelectorAll('#gpus tr[data-gpu]')].map(tr => {
    const c = cells(tr), m = c.VRAM.querySelector('meter'), t = c.Temperature.querySelector('span');
    return {gpu: tr.dataset.gpu, used: Number(m.dataset.used), total: Number(m.dataset.total),
            vram: c.VRAM.textContent, host_used: Number(c.VRAM.querySelector('small').dataset.hostUsed),
            sessions: c.Sessions.textContent, temp_class: t.className, celsius: Number(t.dataset.celsius),
            health: c.Health.textContent, model: c.Model.textContent};
  }),
};"""


def page_matches_api(driver, b):
    """every number the overview shows, against GET /v1/hosts and /v1/gpus"""
    hosts = api(b, "GET", "/v1/hosts")
    gpus = api(b, "GET", "/v1/gpus")
    page = driver.execute_script(SNAPSHOT_JS)
    alive = sum(1 for h in hosts if h["alive"])
    total = sum(g["vram_total_bytes"] for g in gpus)
    claimed = sum(g["vram_claimed_bytes"] for g in gpus)
    want = {"hosts": "%d / %d" % (alive, len(hosts)), "gpus": str(len(gpus)),
            "vram": "%.1f GiB / %.1f GiB" % (claimed / GiB, total / GiB)}
    check(page["totals"] == want, "the totals are the API's: %s" % page["totals"])
    check(sorted(h["host"] for h in page["hosts"]) == sorted(h["host"] for h in hosts)
          and sorted(g["gpu"] for g in page["gpus"]) == sorted(g["gpu"] for g in gpus),
          "one row per host and per GPU of the API")
    rows = {h["host"]: h for h in page["hosts"]}
    for h in hosts:
        r = rows.get(h["host"], {})
        state = "down" if not h["alive"] else "draining" if h["draining"] else "cordoned" if h["cordoned"] else "up"
        check(r.get("gpus") == str(h["gpus_total"]) and r.get("sessions") == str(h["sessions"])
              and r.get("state") == state,
              "host %s: %s GPUs, %s sessions, %s" % (h["host"], r.get("gpus"), r.get("sessions"), r.get("state")))
    rows = {g["gpu"]: g for g in page["gpus"]}
    for g in gpus:
        r = rows.get(g["gpu"], {})
        t = g["temperature_celsius"]
        want_cls = "crit" if t >= 85 else "warn" if t >= 75 else "ok"
        want_health = ("degraded: " + ", ".join(g["health_reasons"])) if g["degraded"] else "ok"
        pct = int(100 * g["vram_claimed_bytes"] / g["vram_total_bytes"] + 0.5)  # as JS rounds
        vram = "%.1f GiB / %.1f GiB (%d%%)" % (g["vram_claimed_bytes"] / GiB, g["vram_total_bytes"] / GiB, pct)
        ok = (r.get("used") == g["vram_claimed_bytes"] and r.get("total") == g["vram_total_bytes"]
              and vram in r.get("vram", "") and r.get("host_used") == g["vram_used_bytes"]
              and r.get("sessions") == str(g["sessions"]) and r.get("temp_class") == want_cls
              and r.get("celsius") == t and r.get("health") == want_health and r.get("model") == g["model"])
        check(ok, "GPU %s: VRAM %r, %s sessions, %s C as %s, health %r" % (
            g["gpu"], r.get("vram"), r.get("sessions"), t, r.get("temp_class"), r.get("health")))


def main():
    skip_without_etcd()
    for exe in (CHROMEDRIVER, "/usr/bin/chromium"):
        if not os.access(exe, os.X_OK):
            print("skip: %s not installed (chromium, chromium-driver: scripts/install-deps.sh --test)" % exe)
            return 77
    broker_exe = os.environ["VGPU_BROKER"]
    tmp = tempfile.mkdtemp(prefix="vgpu-dashboard.")
    with EtcdCluster(1) as cluster:
        gw = Gateway(cluster.endpoints)
        # four temperatures around the thresholds: 74 ok, 75 warn, 84 warn, 85 critical
        hot = t4_gpu("gpu-b", "GPU-b-0", temperature=85, health="degraded")
        hot["health_reasons"] = ["thermal"]
        hosts = [
            SyntheticHost(gw, "gpu-a", [t4_gpu("gpu-a", "GPU-a-0", temperature=74),
                                        t4_gpu("gpu-a", "GPU-a-1", temperature=75, total=24 * GiB,
                                               model="NVIDIA A10")], ttl=5),
            SyntheticHost(gw, "gpu-b", [t4_gpu("gpu-b", "GPU-b-1", temperature=84), hot], ttl=5),
        ]
        # the host's own measure of VRAM in use, which the page shows under the bar
        g = t4_gpu("gpu-a", "GPU-a-0", temperature=74)
        g["vram_used_bytes"] = 3 * GiB
        gw.put(PREFIX + "gpus/gpu-a/GPU-a-0", g, hosts[0].lease)
        port, tport = free_port(), free_port()
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as f:
            f.write("s3cret-token\n")
        b = Broker(broker_exe, cluster.endpoints, tmp, "b0", "--listen", "127.0.0.1:%d" % port,
                   "--dashboard-dir", DASHBOARD_DIR, "--seed", "7")
        bt = Broker(broker_exe, cluster.endpoints, tmp, "b1", "--listen", "127.0.0.1:%d" % tport,
                    "--dashboard-dir", DASHBOARD_DIR, "--token-file", token_file)
        nodir = Broker(broker_exe, cluster.endpoints, tmp, "b2",
                       "--dashboard-dir", os.path.join(tmp, "nowhere"))
        driver = None
        try:
            static_checks(port, tport, "s3cret-token")
            st, _, body = nodir.request("GET", "/index.html")
            check(st == 404 and "not installed" in str(body), "no dashboard dir: 404 saying so (%d %s)" % (st, body))
            for i, size in enumerate([4, 2]):
                api(b, "POST", "/v1/sessions", {"user": "alice", "tenant": "lab", "vram_bytes": size * GiB,
                                                "idempotency_key": "pre-%d" % i})

            opts = webdriver.ChromeOptions()
            for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--window-size=1280,900", "--user-data-dir=" + os.path.join(tmp, "chromium")]:
                opts.add_argument(a)
            opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            t0 = time.monotonic()
            driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
            print("chromium started in %.1f s" % (time.monotonic() - t0))
            driver.get("http://127.0.0.1:%d/" % port)
            _, took = wait_for(lambda: int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates")
                                           or 0) >= 1, 10)
            check(took < 10, "the page drew the fleet (%.2f s)" % took)
            check(driver.title == "vGPU fleet", "title %r" % driver.title)
            page_matches_api(driver, b)

            # an update without a reload: a marker in the page's JS survives only if no reload happens
            driver.execute_script("window.__noReload = 42;")
            before = driver.find_element(By.CSS_SELECTOR, '#gpus tr[data-gpu="GPU-b-1"] td[data-label="Sessions"]').text
            placed = api(b, "POST", "/v1/sessions", {"user": "bob", "tenant": "lab", "vram_bytes": 8 * GiB,
                                                     "prefer": ["gpu-b"], "models": ["Tesla T4"],
                                                     "idempotency_key": "live-1"})
            t0 = time.monotonic()
            gsel = '#gpus tr[data-gpu="%s"] td[data-label="Sessions"]' % placed["gpu"]
            want = str(next(x["sessions"] for x in api(b, "GET", "/v1/gpus") if x["gpu"] == placed["gpu"]))
            _, took = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, gsel).text == want, 5)
            took = time.monotonic() - t0
            check(took <= 2.0 and driver.execute_script("return window.__noReload") == 42,
                  "the session placed on %s shows without a reload in %.2f s (sessions %s -> %s)"
                  % (placed["gpu"], took, before, want))
            page_matches_api(driver, b)

            # cordon by keyboard: focus the button, press Enter
            btn = driver.find_element(By.CSS_SELECTOR, 'button[data-action="cordon"][data-host="gpu-a"]')
            driver.execute_script("arguments[0].focus();", btn)
            check(driver.switch_to.active_element.get_attribute("data-key") == "action:cordon:gpu-a",
                  "the cordon button of gpu-a has the focus")
            driver.switch_to.active_element.send_keys(Keys.ENTER)
            cordon, took = wait_for(lambda: gw.get(PREFIX + "cordon/gpu-a"), 3)
            check(cordon is not None and cordon.get("draining") is False,
                  "Enter on cordon: cordon/gpu-a in etcd in %.2f s: %s" % (took, cordon))
            _, took = wait_for(lambda: driver.find_element(
                By.CSS_SELECTOR, '#hosts tr[data-host="gpu-a"] td[data-label="State"]').text == "cordoned", 3)
            check(took < 3, "the page shows gpu-a cordoned (%.2f s)" % took)
            # the host page: its GPUs, its sessions, the cordon among its recent events
            driver.get("http://127.0.0.1:%d/#/host/gpu-a" % port)
            _, took = wait_for(lambda: "gpu-a cordoned" in driver.find_element(By.ID, "host-events").text, 4)
            events = api(b, "GET", "/v1/events")
            check(took < 4 and any(e["host"] == "gpu-a" and e["text"] == "host gpu-a cordoned" for e in events),
                  "host page and /v1/events: 'host gpu-a cordoned' (%s)" % [e["text"] for e in events][-4:])
            check(any(e["text"].startswith("session ") and "placed on GPU" in e["text"] for e in events),
                  "/v1/events has the placements")
            for name, doc in (("broker-events", events), ("broker-gpus", api(b, "GET", "/v1/gpus"))):
                error = validate(name, doc)
                check(error is None, "matches %s.schema.json: %s" % (name, error))
            mine = [s for s in api(b, "GET", "/v1/sessions") if s["host"] == "gpu-a"]
            rows = driver.find_elements(By.CSS_SELECTOR, "#host-instances tbody tr")
            check(len(rows) == len(mine) and len(mine) > 0, "host page: %d sessions, API %d" % (len(rows), len(mine)))
            # the sessions page's filter
            driver.get("http://127.0.0.1:%d/#/sessions" % port)
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#sessions tr[data-session]"), 4)
            driver.find_element(By.ID, "filter").send_keys("bob")
            rows = driver.find_elements(By.CSS_SELECTOR, "#sessions tr[data-session]")
            check(len(rows) == 1 and rows[0].get_attribute("data-session") == placed["session"],
                  "the filter 'bob' leaves bob's session (%d rows)" % len(rows))

            # the screenshot: the overview at desktop width
            driver.get("http://127.0.0.1:%d/#/" % port)
            wait_for(lambda: int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates") or 0) >= 1, 5)
            driver.save_screenshot(ARTIFACT)
            check(os.path.getsize(ARTIFACT) > 10000, "screenshot kept: %s" % os.path.abspath(ARTIFACT))

            # a narrow window: rows become cards, every cell says its column, nothing scrolls sideways
            driver.set_window_size(420, 900)
            time.sleep(0.3)
            for view in ["#/", "#/host/gpu-b", "#/sessions"]:
                driver.get("http://127.0.0.1:%d/%s" % (port, view))
                wait_for(lambda: int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates") or 0) >= 1, 5)
                bad = driver.execute_script("""
                    const out = [];
                    for (const td of document.querySelectorAll('main section:not([hidden]) td')) {
                      if (td.colSpan > 1) continue;
                      const label = td.getAttribute('data-label') || '';
                      const before = getComputedStyle(td, '::before').content;
                      if (!label || before !== '"' + label + ': "') out.push(td.textContent + ' [' + before + ']');
                    }
                    return out;""")
                n = driver.execute_script("return document.querySelectorAll('main section:not([hidden]) td').length")
                width = driver.execute_script("return document.documentElement.scrollWidth")
                inner = driver.execute_script("return window.innerWidth")
                check(n > 0 and not bad and width <= inner,
                      "420 px, %s: %d cells all labelled, width %d <= %d %s" % (view, n, width, inner, bad[:3]))
            # the watch's other events: a claim its host realized (PENDING -> BOUND), a host gone
            ckey = next(k for k, v in gw.range(PREFIX + "claims/")[0].items() if v[0]["session"] == placed["session"])
            claim = gw.get(ckey)
            claim.update(state="BOUND", instance="00000000-0000-4000-8000-000000000001")
            gw.put(ckey, claim)
            hosts[1].stop()
            gw.revoke(hosts[1].lease)
            want = ["session %s on GPU %s: PENDING -> BOUND" % (placed["session"], placed["gpu"]), "host gpu-b left (its lease ended)"]
            got, _ = wait_for(lambda: all(w in [e["text"] for e in api(b, "GET", "/v1/events")] for w in want), 5)
            check(got, "/v1/events: %s" % want)
            driver.get("http://127.0.0.1:%d/#/" % port)
            _, took = wait_for(lambda: driver.execute_script(SNAPSHOT_JS)["totals"]["hosts"] == "1 / 1", 4)
            check(took < 4, "the page shows one host after gpu-b left (%.2f s)" % took)
            logs = driver.get_log("browser")
            errors = [e for e in logs if e.get("level") == "SEVERE"]
            check(not errors, "no console errors (%d log entries): %s" % (len(logs), errors[:3]))
        finally:
            if driver:
                driver.quit()
            for x in (b, bt, nodir):
                x.stop()
            for h in hosts:
                h.stop()
            if failures:
                for x in (b, bt):
                    print("--- %s log:\n%s" % (x.socket, x.logtext()))
    if failures:
        print("%d check(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
