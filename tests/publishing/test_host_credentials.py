"""One credential pair for a server: releasekit.yaml's `credentials`, against the real registry and nginx store.

The registry (htpasswd) and the nginx WebDAV store (basic auth) both listen on 127.0.0.1 and take the same user, as
one Artifactory or Nexus serves a Docker registry and Maven, deploy and file repositories under one login.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.servers import REPO_ROOT
from releasekit.core.config import RESOLVED_CONFIG_VARIABLE, load_config, parse_config
from releasekit.core.errors import ConfigError
from releasekit.core.redact import without_secrets

ONE_LOGIN = {"SERVER_USER": TEST_USER, "SERVER_PASSWORD": TEST_PASSWORD}
ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")


def write_config(tmp_path, registry, store, extra=""):
    path = tmp_path / "releasekit.yaml"
    path.write_text(
        "channels:\n"
        "  dev:\n"
        "    registry: 'http://{registry}/dev'\n"
        "    maven: '{store}/maven-dev'\n"
        "    files: '{store}/files-dev'\n"
        "credentials:\n"
        "  127.0.0.1: {{username: SERVER_USER, password: SERVER_PASSWORD}}\n{extra}".format(
            registry=registry.host, store=store.url, extra=extra))
    return str(path)


def test_one_entry_gives_every_destination_on_the_host_its_credentials(auth_registry, nginx, tmp_path,
                                                                        isolated_home):
    """Before: no store or registry read `credentials`; each refused the anonymous request (HTTP 401)."""
    config = write_config(tmp_path, auth_registry, nginx)
    env = dict(ONE_LOGIN, RELEASEKIT_CONFIG=config, RELEASEKIT_REPORT=str(tmp_path / "record.json"))
    outputs = []

    digest = make_layout(str(tmp_path / "img"), {"/app": b"one login\n"})
    image = releases.container_release(str(tmp_path / "image"), str(tmp_path / "img"), "one/app", "dev")
    result = releases.publish(*image, env)
    assert result.returncode == 0, result.stderr
    tag = json.load(open(tmp_path / "record.json"))["tags"][0]
    assert auth_registry.inspect("dev/one/app:" + tag)["Digest"] == digest
    outputs.append(result.stdout + result.stderr)

    jar = releases.jar_release(str(tmp_path / "jar"), releases.make_jar(str(tmp_path / "lib.jar"), "one"),
                               "com.example:onelogin:1.0.0", "dev")
    result = releases.publish(*jar, env)
    assert result.returncode == 0, result.stderr
    assert os.listdir(nginx.path("maven-dev/com/example/onelogin/1.0.0-SNAPSHOT"))
    outputs.append(result.stdout + result.stderr)

    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(b"bundle of one login")
    files = releases.file_release(str(tmp_path / "file"), str(bundle), "dev", name="onelogin")
    result = releases.publish(*files, env)
    assert result.returncode == 0, result.stderr
    version = json.load(open(tmp_path / "record.json"))["version"]
    assert open(nginx.path("files-dev/app/onelogin/{}/fleet-bundle.tar.gz".format(version)), "rb").read() == \
        bundle.read_bytes()
    outputs.append(result.stdout + result.stderr + (tmp_path / "record.json").read_text())
    assert all(TEST_PASSWORD not in output for output in outputs)

    shown = subprocess.run([sys.executable, ENTRY, "config", "--config", config], capture_output=True, text=True,
                           env=dict(os.environ, **ONE_LOGIN))
    assert "  dev.files: {}/files-dev (credentials.127.0.0.1 (SERVER_USER, SERVER_PASSWORD))".format(nginx.url) in \
        shown.stdout, shown.stdout + shown.stderr
    assert TEST_PASSWORD not in shown.stdout + shown.stderr


def test_a_store_s_own_variables_win_over_the_host_entry(auth_registry, nginx, tmp_path, isolated_home):
    config = write_config(tmp_path, auth_registry, nginx)
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(b"own variables")
    files = releases.file_release(str(tmp_path / "file"), str(bundle), "dev", name="ownvariables")
    wrong = TEST_PASSWORD + "-wrong"
    result = releases.publish(*files, dict(ONE_LOGIN, RELEASEKIT_CONFIG=config, RELEASEKIT_FILES_USERNAME=TEST_USER,
                                           RELEASEKIT_FILES_PASSWORD=wrong))
    assert result.returncode != 0
    assert "refused the credentials (RELEASEKIT_FILES_USERNAME; HTTP 401)" in result.stderr, result.stderr
    assert wrong not in result.stderr + result.stdout and TEST_PASSWORD not in result.stderr + result.stdout


def test_an_entry_with_unset_variables_says_which_it_read(auth_registry, nginx, tmp_path, isolated_home):
    config = write_config(tmp_path, auth_registry, nginx)
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(b"unset")
    files = releases.file_release(str(tmp_path / "file"), str(bundle), "dev", name="unset")
    result = releases.publish(*files, {"RELEASEKIT_CONFIG": config, "SERVER_USER": TEST_USER})
    assert result.returncode != 0
    assert "credentials.127.0.0.1 (SERVER_USER, SERVER_PASSWORD): only one of SERVER_USER and SERVER_PASSWORD is " \
           "set" in result.stderr, result.stderr


def test_the_entry_of_a_host_and_port_wins_over_the_host_alone_and_s3_and_file_take_none():
    config = parse_config(
        "channels:\n"
        "  ci: {registry: 'repo.example.com:8443/prod', maven: 'https://repo.example.com/maven',\n"
        "       deploy: 's3://repo.example.com/deploy', files: 'file:///srv/files'}\n"
        "history: 'https://REPO.example.com/history'\n"
        "target_graphs: 'https://other.example.com/graphs'\n"
        "credentials:\n"
        "  repo.example.com: {username: REPO_USER, password: REPO_PASSWORD}\n"
        "  repo.example.com:8443: {token: REGISTRY_PORT_TOKEN}\n", "releasekit.yaml")
    assert config.destination("ci", "registry").credentials.token == "REGISTRY_PORT_TOKEN"
    assert config.destination("ci", "maven").credentials.username == "REPO_USER"
    assert config.history.credentials.password == "REPO_PASSWORD"  # host names in any case
    assert config.destination("ci", "deploy").credentials is None
    assert config.destination("ci", "files").credentials is None
    assert config.target_graphs.credentials is None
    # What dispatch hands its releases carries the entries: a release reads the same credentials.
    resolved = load_config(None, {RESOLVED_CONFIG_VARIABLE: config.to_json()})
    assert resolved.channels == config.channels and resolved.credentials == config.credentials
    # Bazel never sees the variables an entry names for secrets (it records its client environment).
    kept = without_secrets({"REPO_USER": "u", "REPO_PASSWORD": "p", "REGISTRY_PORT_TOKEN": "t", "PATH": "/bin"})
    assert kept == {"REPO_USER": "u", "PATH": "/bin"}


@pytest.mark.parametrize("entry,expected", [
    ("{username: U, password: 'hunter2 secret'}", "credentials.repo.example.com.password must be the name of an "
                                                  "environment variable"),
    ("{username: U}", "names only one of username and password"),
    ("{user: U, password: P}", "must name the variables that hold the credentials"),
    ("REPO_TOKEN", "must name the variables that hold the credentials"),
])
def test_a_bad_entry_is_refused_without_showing_its_values(entry, expected):
    text = "channels:\n  ci: {maven: 'https://repo.example.com/m'}\ncredentials:\n  repo.example.com: " + entry + "\n"
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "releasekit.yaml")
    assert expected in str(refused.value) and "hunter2" not in str(refused.value)


def test_the_run_history_takes_the_entry_of_its_host(nginx, tmp_path):
    """A CI run appends its record with the same login as the destinations (insight/history.py)."""
    from releasekit.core.http import RetryPolicy
    from releasekit.core.run_context import RunContext
    from releasekit.insight.ci_runs import run_history
    from releasekit.insight.history import RUN_UPLOAD_POLICY, record_run

    config = parse_config("channels:\n  ci: {{maven: '{0}/maven'}}\nhistory: '{0}/history'\ncredentials:\n  "
                          "127.0.0.1: {{username: SERVER_USER, password: SERVER_PASSWORD}}\n".format(nginx.url),
                          "releasekit.yaml")
    settings = run_history(RunContext(config, RetryPolicy(), ONE_LOGIN))
    record = {"format_version": 1, "command": "ci", "commit": "c" * 40, "start": 1767225600.0, "end": 1767225601.0,
              "id": "one-login"}
    line = record_run(lambda: settings.open(RUN_UPLOAD_POLICY), record, str(tmp_path / "logs"))
    assert line.startswith("history: " + nginx.url + "/history/runs/"), line
    written = [name for _, _, names in os.walk(nginx.path("history")) for name in names]
    assert len(written) == 1 and TEST_PASSWORD not in line
