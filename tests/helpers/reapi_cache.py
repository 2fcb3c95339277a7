"""A real REAPI (gRPC) remote cache for tests: BuildGrid's `bgd server` with a CAS on disk, an action cache and the
ByteStream service, on a free loopback port, stopped when the test is done."""

import os
import socket
import shutil
import subprocess
import sys
import time

from helpers.servers import _stop, free_port

_CONFIG = """server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
storages:
  - !disk-storage &cas
    path: {storage}
caches:
  - !lru-action-cache &action-cache
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: "{instance}"
    services:
      - !action-cache
        cache: *action-cache
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


def _bgd():
    """BuildGrid's command, installed beside the Python that runs the tests (the checkout's .venv) or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "bgd")
    return beside if os.path.exists(beside) else (shutil.which("bgd") or "bgd")


class BuildGridCache:
    """BuildGrid serving one instance (`instance`, "" for none): url is grpc://127.0.0.1:PORT. Blobs lie on disk under
    `storage`, one file per digest, so a test can evict or damage one as a real cache's disk would."""

    def __init__(self, workdir, instance=""):
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.url = "grpc://127.0.0.1:{}".format(self.port)
        self.storage = os.path.join(workdir, "storage")
        config = os.path.join(workdir, "bgd.yml")
        with open(config, "w") as handle:
            handle.write(_CONFIG.format(port=self.port, storage=self.storage, instance=instance))
        self.log = open(os.path.join(workdir, "bgd.log"), "w")
        self.process = subprocess.Popen([_bgd(), "server", "start", config], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("bgd exited early: " + open(self.log.name).read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("bgd did not come up; log: " + open(self.log.name).read()[-2000:])

    def blob_path(self, digest):
        """The file BuildGrid's disk storage keeps blob `digest` (sha256:...) in."""
        hex_digest = digest.split(":", 1)[1]
        return os.path.join(self.storage, "cas", "objects", hex_digest[:2], hex_digest[2:])

    def stop(self):
        _stop(self.process, self.log)
