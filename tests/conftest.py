import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))

from helpers.servers import REPO_ROOT, MotoS3, NginxStore, Registry
from helpers.workspace import Workspace

# Known credentials: no output, log, record or report may ever contain them.
TEST_USER = "releaser"
TEST_PASSWORD = "Pa55-w0rd-never-printed-7f3a"


def _new_key(kind):
    """A fresh PEM private key: the CI and dev signing keys of the test session, which nothing may ever show."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


TEST_SIGNING_KEY = _new_key("ed25519")
TEST_DEV_SIGNING_KEY = _new_key("ecdsa-p256")


def public_key_file(private_pem, path):
    """Write the public half of a PEM private key to path (what a CD pipeline is given); returns path."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    with open(path, "wb") as handle:
        handle.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


def key_secrets(private_pem):
    """The key's text and each line of its body: none may appear anywhere a release writes or prints."""
    return [private_pem] + [line for line in private_pem.splitlines() if line and not line.startswith("-----")]


def _bazel_servers_under(root):
    """Process ids of Bazel servers whose workspace lies below root."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/{}/cmdline".format(pid), "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith("--workspace_directory=") and arg.split("=", 1)[1].startswith(root):
                found.append(int(pid))
    return found


@pytest.fixture(scope="session", autouse=True)
def no_bazel_server_left_behind(tmp_path_factory):
    """Fixtures shut down the servers they start; this catches any a failing test left running."""
    yield
    import signal
    import time

    root = str(tmp_path_factory.getbasetemp())
    for pid in _bazel_servers_under(root):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _bazel_servers_under(root) and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    server = Registry(str(tmp_path_factory.mktemp("registry")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    server = Registry(str(tmp_path_factory.mktemp("auth-registry")), TEST_USER, TEST_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_workspace(tmp_path_factory):
    """The examples/ monorepo, copied under git, using rules_release from this checkout."""
    workspace = Workspace.copy_of(os.path.join(REPO_ROOT, "examples"), str(tmp_path_factory.mktemp("ws") / "examples"))
    try:
        yield workspace
    finally:
        workspace.shutdown()


@pytest.fixture(scope="session")
def broken_workspace(tmp_path_factory):
    """A workspace for bad inputs, kept apart so a failing package cannot break the example."""
    path = tmp_path_factory.mktemp("broken") / "ws"
    path.mkdir()
    (path / "WORKSPACE").write_text('local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    (path / ".gitignore").write_text("/bazel-*\n")
    workspace = Workspace(str(path))
    workspace.init_git()
    try:
        yield workspace
    finally:
        workspace.shutdown()


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """No Docker config or blob cache of the machine leaks into a test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    for name in ("RELEASEKIT_REGISTRY_USERNAME", "RELEASEKIT_REGISTRY_PASSWORD", "RELEASEKIT_REGISTRY_TOKEN", "CI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """An nginx WebDAV store with basic auth, one per test module."""
    server = NginxStore(str(tmp_path_factory.mktemp("nginx")), TEST_USER, TEST_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto's S3 server with one bucket, one per test module."""
    server = MotoS3(str(tmp_path_factory.mktemp("moto")))
    yield server
    server.stop()
