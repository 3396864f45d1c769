# SPDX-License-Identifier: LGPL-2.1-or-later
"""The mdev ABI's kernel side, played on a fixture tree: a thread that watches every type's
`create` file and every device's `remove` file, and makes the device appear (or go) as the
kernel would: the device directory with its mdev_type link and remove file, the
/sys/bus/mdev/devices link, available_instances one less (or more).

It lets the daemon tests run real applies (create, define, rollback) on fixture hosts.
`delay` makes each creation take that long; `refuse` is a set of UUIDs whose creation fails
(the device never appears, as when a driver rejects it); `busy` a set of UUIDs whose removal
fails (their `remove` attribute refuses writes, EISDIR here, as a device in use refuses it) until
taken out of the set; `files` are attributes (relative paths, e.g. "nvidia/vgpu_params") each new
device gets, empty."""

import os
import threading
import time


class FakeKernel(threading.Thread):
    def __init__(self, root, delay=0.0, refuse=(), limit=120.0, files=()):
        super().__init__(daemon=True)
        self.root, self.delay, self.refuse, self.files = root, delay, set(refuse), list(files)
        self.deadline = time.monotonic() + limit       # stops by itself, whatever happens
        self.stopping = False
        self.created, self.removed = [], []
        self.busy = set()

    def _p(self, rel):
        return os.path.join(self.root, rel)

    def _parents(self):
        d = self._p("sys/class/mdev_bus")
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            yield name, os.path.realpath(os.path.join(d, name))

    @staticmethod
    def _take(path):
        """The text written to a sysfs-like file since last time ('' when none)."""
        try:
            if os.path.getsize(path) == 0:
                return ""
            with open(path, "r+") as f:
                text = f.read().strip()
                f.seek(0)
                f.truncate()
            return text
        except OSError:
            return ""

    def _adjust(self, type_dir, delta):
        p = os.path.join(type_dir, "available_instances")
        try:
            n = int(open(p).read()) + delta
            # replaced, never rewritten in place: the test's own thread, the kernel thread and
            # the daemon read it concurrently, and a read between truncate and write sees ''
            tmp = p + ".new"
            with open(tmp, "w") as f:
                f.write("%d\n" % max(n, 0))
            os.chmod(tmp, 0o644)
            os.replace(tmp, p)
        except OSError:
            pass

    def _create(self, parent_dir, tid, uuid):
        if uuid in self.refuse:
            return
        time.sleep(self.delay)
        dev = os.path.join(parent_dir, uuid)
        os.makedirs(dev, exist_ok=True)
        os.symlink("../mdev_supported_types/" + tid, os.path.join(dev, "mdev_type"))
        open(os.path.join(dev, "remove"), "w").close()
        for rel in self.files:
            os.makedirs(os.path.dirname(os.path.join(dev, rel)), exist_ok=True)
            open(os.path.join(dev, rel), "w").close()
        bus = self._p("sys/bus/mdev/devices")
        os.makedirs(bus, exist_ok=True)
        # recorded before the bus link makes it visible: a caller that sees the device appear
        # and returns at once must find it in the record (this thread may not run again first)
        self.created.append(uuid)
        self._adjust(os.path.join(parent_dir, "mdev_supported_types", tid), -1)
        os.symlink(os.path.relpath(dev, bus), os.path.join(bus, uuid))

    def _remove(self, uuid):
        link = self._p("sys/bus/mdev/devices/" + uuid)
        dev = os.path.realpath(link)
        tid = os.path.basename(os.readlink(os.path.join(dev, "mdev_type")))
        self.removed.append(uuid)      # before it disappears, as in _create
        os.unlink(link)
        for name in os.listdir(dev):
            p = os.path.join(dev, name)
            if os.path.isdir(p) and not os.path.islink(p):
                for sub in os.listdir(p):
                    os.unlink(os.path.join(p, sub))
                os.rmdir(p)
            else:
                os.unlink(p)
        os.rmdir(dev)
        self._adjust(os.path.join(os.path.dirname(dev), "mdev_supported_types", tid), +1)

    def step(self):
        for name, pdir in self._parents():
            tdir = os.path.join(pdir, "mdev_supported_types")
            for tid in sorted(os.listdir(tdir)) if os.path.isdir(tdir) else ():
                uuid = self._take(os.path.join(tdir, tid, "create"))
                if uuid:
                    self._create(pdir, tid, uuid)
        bus = self._p("sys/bus/mdev/devices")
        for uuid in sorted(os.listdir(bus)) if os.path.isdir(bus) else ():
            self._busy(os.path.join(bus, uuid, "remove"), uuid in self.busy)
            if self._take(os.path.join(bus, uuid, "remove")) == "1":
                self._remove(uuid)

    @staticmethod
    def _busy(path, busy):
        """A busy device's remove attribute is a directory: every write to it fails."""
        try:
            if busy and not os.path.isdir(path):
                os.unlink(path)
                os.mkdir(path)
            elif not busy and os.path.isdir(path):
                os.rmdir(path)
                open(path, "w").close()
        except OSError:
            pass

    def run(self):
        while not self.stopping and time.monotonic() < self.deadline:
            self.step()
            time.sleep(0.005)

    def stop(self):
        self.stopping = True
        self.join(5)
