# SPDX-License-Identifier: LGPL-2.1-or-later
"""http.client over a UNIX socket: how the tests and benches talk to vgpud's and vgpu-broker's API
sockets. Imports nothing of the daemon tests' environment, so bench/fleet.py can use it too."""

import http.client
import socket


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)
