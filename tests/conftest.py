import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))

from helpers.servers import REPO_ROOT, Registry  # noqa: E402
from helpers.workspace import Workspace  # noqa: E402

# Known credentials: no output, log, record or report may ever contain them.
TEST_USER = "releaser"
TEST_PASSWORD = "Pa55-w0rd-never-printed-7f3a"


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
    yield workspace
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
