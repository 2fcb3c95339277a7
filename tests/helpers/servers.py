"""Real servers for tests, on free loopback ports, stopped when the test is done."""

import os
import socket
import subprocess
import time

import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, process, log_path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early: " + open(log_path).read()[-2000:])
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("server at {} did not come up; log: {}".format(url, open(log_path).read()[-2000:]))


class Registry:
    """The CNCF distribution registry (Debian docker-registry), optionally with htpasswd basic auth."""

    def __init__(self, workdir, username=None, password=None):
        self.workdir = workdir
        self.port = free_port()
        self.host = "127.0.0.1:{}".format(self.port)
        self.url = "http://" + self.host
        self.username, self.password = username, password
        os.makedirs(workdir, exist_ok=True)
        auth = ""
        if username:
            htpasswd = os.path.join(workdir, "htpasswd")
            line = subprocess.run(
                ["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True
            ).stdout.strip()
            with open(htpasswd, "w") as handle:
                handle.write(line + "\n")
            auth = "auth:\n  htpasswd:\n    realm: releasekit-test\n    path: {}\n".format(htpasswd)
        config = os.path.join(workdir, "config.yml")
        with open(config, "w") as handle:
            handle.write(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n"
                "http:\n  addr: {}\n{}".format(os.path.join(workdir, "data"), self.host, auth)
            )
        self.log_path = os.path.join(workdir, "registry.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", config], stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for_http(self.url + "/v2/", self.process, self.log_path)

    def skopeo_args(self):
        args = ["--tls-verify=false"]
        if self.username:
            args.append("--creds={}:{}".format(self.username, self.password))
        return args

    def inspect(self, reference):
        """skopeo inspect of host/reference; None when the image is not there."""
        result = subprocess.run(
            ["skopeo", "inspect", *self.skopeo_args(), "docker://{}/{}".format(self.host, reference)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            return None
        import json

        return json.loads(result.stdout)

    def tags(self, repository):
        auth = (self.username, self.password) if self.username else None
        response = requests.get("{}/v2/{}/tags/list".format(self.url, repository), auth=auth, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def catalog(self):
        auth = (self.username, self.password) if self.username else None
        response = requests.get(self.url + "/v2/_catalog", auth=auth, timeout=10)
        response.raise_for_status()
        return response.json().get("repositories") or []

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
