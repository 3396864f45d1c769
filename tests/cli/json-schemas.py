#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cli-json: every `vgpuctl --json` output against its committed schema (doc/schema), on the
fixture hosts with the NVML double (writable copies where a verb writes): list (with --defined),
show of every GPU, types, doctor, harden, report, diagnose, xml, the instance verbs' outcomes (create, remove, define,
undefine), vfs, apply (--restore too) and assert plans, slice list/show/create/remove; export,
which prints YAML, refuses --json. And one name per fact:
show's object has every member of list's GPU object with the same value (names from pci.ids
included), and a slice's quota and share have the same names in its record and in the JSON.
tests/daemon/api.py holds the API bodies to the same schemas and to these outputs.
Needs VGPUCTL, FIXTURES, NVML_DOUBLE (tests/meson.build)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from validate import validate  # noqa: E402

VGPUCTL, FIXTURES, NVML = os.environ["VGPUCTL"], os.environ["FIXTURES"], os.environ["NVML_DOUBLE"]
passed = failed = 0
tmp = tempfile.mkdtemp()


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, (": " + str(detail)[:800]) if detail != "" else ""), flush=True)


def vgpuctl(root, *args, rc=(0,)):
    """The parsed --json output of vgpuctl ARGS on the host tree root (exit status in rc)."""
    env = dict(os.environ, VGPU_ROOT=root, LD_LIBRARY_PATH=NVML, VGPUD_SOCKET=os.path.join(tmp, "no-daemon.sock"))
    p = subprocess.run([VGPUCTL, *args, "--json"], env=env, capture_output=True, text=True, timeout=60)
    check(p.returncode in rc, "vgpuctl %s: exit %d" % (" ".join(args), p.returncode), p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError:
        check(False, "vgpuctl %s --json prints one JSON document" % " ".join(args), p.stdout[:300])
        return None


def valid(schema, doc, what):
    error = validate(schema, doc)
    check(error is None, "%s does not match %s.schema.json" % (what, schema), error)


def host(name):
    """A writable copy of fixture host name, made once (for the verbs that write)."""
    root = os.path.join(tmp, name)
    if not os.path.exists(root):
        shutil.copytree(os.path.join(FIXTURES, name), root, symlinks=True)
    return root


def schema_names():
    """Every member name in doc/schema with the JSON types its value may have (null aside):
    {name: {signature: [where]}}. A name with two signatures names two facts."""
    from validate import SCHEMA_DIR, _load
    store = _load(SCHEMA_DIR)

    def resolve(node, base):    # base: the $id of the schema node is in
        while isinstance(node, dict) and "$ref" in node and not node.get("properties"):
            doc, _, frag = node["$ref"].partition("#")
            if doc:
                base = os.path.join(os.path.dirname(base), doc)
            node = store[base]
            for part in filter(None, frag.split("/")):
                node = node[part]
        return node, base

    def types(node, base):
        node, base = resolve(node, base)
        out = set()
        if not isinstance(node, dict):
            return out
        t = node.get("type")
        out |= set([t] if isinstance(t, str) else t or [])
        out |= {{str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(v), "null") for v in node.get("enum", []) if v is not None}
        for k in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(k, []):
                out |= types(sub, base)
        if "$ref" in node:
            out |= types({"$ref": node["$ref"]}, base)
        if "array" in out and "items" in node:
            out.discard("array")
            out.add("array of " + "|".join(sorted(types(node["items"], base) - {"null"})))
        return out - {"null"}

    names = {}

    def walk(node, base, where):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                sig = "|".join(sorted(types(sub, base)))
                names.setdefault(key, {}).setdefault(sig, []).append(where + "/" + key)
            for k, v in node.items():
                walk(v, base, where + "/" + k if k != "properties" else where)
        elif isinstance(node, list):
            for v in node:
                walk(v, base, where)
    for sid, sch in store.items():
        walk(sch, sid, os.path.basename(sid))
    return names


try:
    # one name per fact, across every schema: a member name has one kind of value everywhere
    names = schema_names()
    check(len(names) > 100, "the schemas name over 100 members", len(names))
    for key, sigs in sorted(names.items()):
        check(len(sigs) == 1, "member %r has values of different kinds" % key, sigs)
    # the names this model replaced stay gone
    for old in ("utilization_gpu", "utilization_memory", "throttle_reasons", "start", "memory", "share", "changes_made"):
        check(old not in names or old == "start", "no member %r (replaced)" % old, names.get(old))
    check(list(names.get("start", {})) == ["string"] and all("/bars/" in w for w in sum(names["start"].values(), [])),
          "\"start\" is only a BAR's address", names.get("start"))

    for name in sorted(os.listdir(FIXTURES)):
        if not os.path.isdir(os.path.join(FIXTURES, name)):
            continue
        # the fixture itself: these verbs only read (a copy of each of the 41 hosts cost more
        # than their checks), as in cli-inventory
        root = os.path.join(FIXTURES, name)
        lst = vgpuctl(root, "list", "--defined")
        valid("list", lst, name + " list --defined")
        valid("types", vgpuctl(root, "types"), name + " types")
        valid("doctor", vgpuctl(root, "doctor", rc=(0, 1)), name + " doctor")
        for g in lst["gpus"]:
            show = vgpuctl(root, "show", g["bdf"])
            valid("show", show, "%s show %s" % (name, g["bdf"]))
            # show's object is list's GPU object with details added: never another name for a fact
            check({k: show.get(k, "(missing)") for k in g} == g, "%s: show %s has list's members and values" % (name, g["bdf"]),
                  {k: (g[k], show.get(k, "(missing)")) for k in g if show.get(k, "(missing)") != g[k]})
        for i in lst["instances"]:
            if not i["uuid"]:
                continue
            one = vgpuctl(root, "show", i["uuid"])
            valid("show-instance", one, "%s show %s" % (name, i["uuid"]))
            # show UUID is list's instance object with NVML's entry added
            check({k: one.get(k, "(missing)") for k in i} == i, "%s: show %s has list's members and values" % (name, i["uuid"]),
                  {k: (i[k], one.get(k, "(missing)")) for k in i if one.get(k, "(missing)") != i[k]})
        for p in {t["parent"] for t in vgpuctl(root, "types")}:
            valid("types", vgpuctl(root, "types", p), "%s types %s" % (name, p))

    # names are filled where a table shows them: list --json as show --json and lspci (pci.ids)
    lst = vgpuctl(host("nvidia-mdev"), "list")
    check([(g["vendor_name"], g["device_name"]) for g in lst["gpus"]] ==
          [("ASPEED Technology, Inc.", "ASPEED Graphics Family")] + [("NVIDIA Corporation", "TU104GL [Tesla T4]")] * 3,
          "list --json has the pci.ids names", [(g["vendor_name"], g["device_name"]) for g in lst["gpus"]])

    root = host("nvidia-mdev")
    valid("harden", vgpuctl(root, "harden", rc=(0, 1)), "harden")
    valid("report", vgpuctl(root, "report", "-o", os.path.join(tmp, "r.tar.gz")), "report")
    # diagnose on libvirt's QEMU logs (tests/fixtures/qemu-logs), with and without findings
    logs = os.path.join(os.path.dirname(FIXTURES), "qemu-logs")
    shutil.copytree(logs, os.path.join(root, "var/log/libvirt/qemu"), dirs_exist_ok=True)
    for log in sorted(f for f in os.listdir(logs) if f.endswith(".log")):
        valid("diagnose", vgpuctl(root, "diagnose", log[:-4], rc=(0, 1)), "diagnose " + log[:-4])
    u1 = "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"
    valid("xml", vgpuctl(root, "xml", u1), "xml")
    out = vgpuctl(root, "create", "--parent", "3b:00.0", "--type", "nvidia-232", "--uuid", u1)
    valid("outcome", out, "create of an existing instance")
    check(out == {"uuid": u1, "parent": "0000:3b:00.0", "type": "nvidia-232", "changed": False}, "create --json", out)
    u = "11111111-2222-4333-8444-555555555555"
    for verb in (("define", "--parent", "3b:00.0", "--type", "nvidia-232", "--uuid", u), ("undefine", u)):
        out = vgpuctl(root, *verb)
        valid("outcome", out, verb[0])
        check(out["changed"] is True, verb[0] + " --json: changed", out)
    # the apply plans: a dry run that would change things, and assert's difference
    # (slices only on a GPU without the vGPU manager: the bare-metal twin of nvidia-mdev)
    yaml = os.path.join(tmp, "host.yaml")
    with open(yaml, "w") as f:
        f.write('version: 1\ngpus:\n  - bdf: "0000:af:00.0"\n    devices: [{type: nvidia-232, count: 1}]\n')
    plan = vgpuctl(root, "apply", "-f", yaml, "--dry-run")
    valid("plan", plan, "apply --dry-run")
    check(plan["changes"] == len(plan["actions"]) > 0 and "create" in [a["action"] for a in plan["actions"]], "apply --dry-run plan", plan)
    valid("plan", vgpuctl(root, "assert", "-f", yaml, rc=(1,)), "assert")
    with open(yaml, "w") as f:
        f.write('version: 1\nslices:\n  - {name: planned, gpu: "0000:af:00.0", memory: 1G}\n')
    plan = vgpuctl(host("nvidia-baremetal"), "apply", "-f", yaml, "--dry-run")
    valid("plan", plan, "apply --dry-run of slices")
    check(plan["changes"] == len(plan["actions"]) > 0 and "slice-create" in [a["action"] for a in plan["actions"]], "apply --dry-run slice plan", plan)
    # at boot on a host never configured: an empty plan with a note, not nothing
    plan = vgpuctl(root, "apply", "--restore", "--direct")
    valid("plan", plan, "apply --restore with nothing to restore")
    check(plan and plan["changes"] == 0 and "nothing to restore" in plan["note"], "apply --restore --json: the empty plan says why", plan)
    # export prints YAML: asked for JSON, it refuses rather than print YAML to a JSON reader
    p = subprocess.run([VGPUCTL, "export", "--json"], env=dict(os.environ, VGPU_ROOT=root), capture_output=True, text=True)
    check(p.returncode == 2 and p.stdout == "" and "no --json" in p.stderr, "export --json is a usage error", (p.returncode, p.stdout[:200], p.stderr))

    # slices: create/show/list/remove, one object for one slice, the record with the same names
    # (on a GPU without the vGPU manager)
    root = host("nvidia-baremetal")
    out = vgpuctl(root, "slice", "create", "alice", "--gpu", "3b:00.0", "--memory", "64M", "--share", "30%")
    valid("slice-outcome", out, "slice create")
    check(out == {"name": "alice", "gpu": "0000:3b:00.0", "changed": True}, "slice create --json", out)
    out = vgpuctl(root, "slice", "create", "alice", "--gpu", "3b:00.0", "--memory", "64M", "--share", "30%")
    check(out == {"name": "alice", "gpu": "0000:3b:00.0", "changed": False}, "slice create again --json", out)
    vgpuctl(root, "slice", "create", "bob", "--gpu", "3b:00.0")
    one = vgpuctl(root, "slice", "show", "alice")
    valid("slice", one, "slice show")
    every = vgpuctl(root, "slice", "list")
    valid("slice-list", every, "slice list")
    check(isinstance(one, dict) and one == [s for s in every if s["name"] == "alice"][0], "slice show: list's object, alone", one)
    check(vgpuctl(root, "list")["slices"] == every, "list's slices are slice list's")
    for s in every:
        with open(os.path.join(root, "var/lib/vgpuctl/slices", s["name"] + ".json")) as f:
            rec = json.load(f)
        check(rec == {k: s[k] for k in ("name", "gpu", "memory_bytes", "share_percent", "policy", "scrub")},
              "the record of %s has the slice's names and values" % s["name"], (rec, s))
    out = vgpuctl(root, "slice", "remove", "alice")
    valid("slice-outcome", out, "slice remove")
    check(out == {"name": "alice", "gpu": "0000:3b:00.0", "changed": True}, "slice remove --json", out)

    # NVIDIA vendor-VFIO: create/remove by VF address; vfs
    root = host("nvidia-sriov-vfio")
    out = vgpuctl(root, "create", "--parent", "41:00.5", "--type", "1152")
    valid("outcome", out, "vendor-VFIO create")
    check(out == {"uuid": None, "parent": "0000:41:00.5", "type": "1152", "changed": True}, "vendor-VFIO create --json", out)
    out = vgpuctl(root, "remove", "41:00.5")
    valid("outcome", out, "vendor-VFIO remove")
    num = vgpuctl(root, "list")["gpus"][0]["sriov"]["num_vfs"]
    out = vgpuctl(root, "vfs", "41:00.0", str(num))
    valid("vfs", out, "vfs")
    check(out["changed"] is False, "vfs with the current count: nothing to do", out)

    # NVML's encoder and frame capture sessions (the double serves them): list and show, one of
    # them a vGPU's (instance 1000, so also under the vGPU), against the schemas
    root = os.path.join(tmp, "nvidia-mdev-sessions")
    shutil.copytree(os.path.join(FIXTURES, "nvidia-mdev"), root, symlinks=True)
    with open(os.path.join(root, "nvml.conf"), "a") as f:
        f.write("gpu.0.encoder_sessions=2\ngpu.0.encoder_session.0=5,321,1000,1,1920,1080,30,2500\n"
                "gpu.0.encoder_session.1=6,654,0,0,1280,720,25,3000\ngpu.0.vgpu.0.mdev_uuid=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01\n"
                "gpu.0.fbc_sessions=1\ngpu.0.fbc_session.0=7,321,1000,0,4,0,3840,2160,1920,1080,60,800\n")
    lst = vgpuctl(root, "list")
    valid("list", lst, "list with NVML sessions")
    n = [g for g in lst["gpus"] if g["bdf"] == "0000:3b:00.0"][0]["nvml"]
    check([s["session_id"] for s in n["encoder_sessions"]] == [5, 6] and [s["session_id"] for s in n["frame_capture_sessions"]] == [7],
          "list: the GPU's encoder and capture sessions", n)
    check([[s["session_id"] for s in v["encoder_sessions"]] for v in n["vgpus"]] == [[5]],
          "list: the vGPU's own encoder session", n["vgpus"])
    show = vgpuctl(root, "show", "3b:00.0")
    valid("show", show, "show with NVML sessions")
    check(show["nvml"]["frame_capture_sessions"] == n["frame_capture_sessions"], "show: the same capture sessions as list", show["nvml"])
    si = vgpuctl(root, "show", "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01")
    valid("show-instance", si, "show UUID with NVML sessions")
    check(si and si["vgpu"] and [s["session_id"] for s in si["vgpu"]["encoder_sessions"] + si["vgpu"]["frame_capture_sessions"]] == [5, 7],
          "show UUID: the vGPU's own encoder and capture sessions", si)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print("cli-json: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
