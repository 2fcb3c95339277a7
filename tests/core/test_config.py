"""releasekit.yaml parsing: destinations, transport safety and the dev/ci overlap check."""

import json
import os

import pytest

from helpers.servers import REPO_ROOT
from releasekit.core.config import RESOLVED_CONFIG_VARIABLE, load_config, parse_config
from releasekit.core.errors import ConfigError


def config(text):
    return parse_config(text, "releasekit.yaml")


def test_destinations_per_channel():
    parsed = config(
        "channels:\n"
        "  ci: {registry: 'registry.example.com/prod', maven: 'https://repo.example.com/releases'}\n"
        "  dev: {registry: 'registry.example.com/dev', maven: 's3://bucket/snapshots'}\n"
    )
    ci = parsed.destination("ci", "registry")
    assert (ci.scheme, ci.host, ci.path) == ("https", "registry.example.com", "prod")
    dev_maven = parsed.destination("dev", "maven")
    assert (dev_maven.scheme, dev_maven.host, dev_maven.path) == ("s3", "bucket", "/snapshots")


def test_missing_destination_names_the_key():
    parsed = config("channels:\n  ci: {registry: 'r.example.com/prod'}\n")
    with pytest.raises(ConfigError, match=r"channels.dev.registry"):
        parsed.destination("dev", "registry")


@pytest.mark.parametrize(
    "ci,dev",
    [
        ("r.example.com/prod", "r.example.com/prod"),
        ("r.example.com/prod", "r.example.com/prod/dev"),
        ("r.example.com/prod", "r.example.com"),
        ("https://r.example.com/prod", "r.example.com/prod"),
        ("R.Example.COM/prod", "r.example.com/prod"),
        ("r.example.com:443/prod", "r.example.com/prod"),
        ("http://127.0.0.1:5000/prod", "http://localhost:5000/prod"),
        ("http://127.0.0.1:5000/prod", "http://127.0.0.2:5000/prod"),
        ("http://[::1]:5000/prod", "http://localhost:5000/prod/dev"),
        ("docker.io/team", "index.docker.io/team"),
        ("docker.io/nginx", "registry-1.docker.io/library/nginx"),
    ],
)
def test_dev_overlapping_ci_is_refused(ci, dev):
    with pytest.raises(ConfigError, match="overlaps"):
        config("channels:\n  ci: {registry: '%s'}\n  dev: {registry: '%s'}\n" % (ci, dev))


@pytest.mark.parametrize(
    "ci,dev",
    [
        ("http://127.0.0.1:8088/deploy/prod", "http://localhost:8088/deploy/prod"),
        ("http://127.0.0.1:8088/deploy/prod", "http://LOCALHOST:8088/deploy/prod/"),
        ("https://repo.example.com/deploy", "https://repo.example.com:443/deploy/dev"),
        ("http://localhost/deploy", "http://127.0.0.1:80/deploy"),
        ("s3://bucket/deploy", "s3://bucket/deploy/"),
    ],
)
def test_a_store_reached_by_another_name_is_refused(ci, dev):
    with pytest.raises(ConfigError, match=r"channels.dev.deploy .* overlaps channels.ci.deploy"):
        config("channels:\n  ci: {deploy: '%s'}\n  dev: {deploy: '%s'}\n" % (ci, dev))


def test_a_name_that_resolves_to_the_same_address_is_the_same_host():
    import socket

    name = socket.gethostname()
    try:
        address = socket.getaddrinfo(name, None)[0][4][0]
    except OSError:
        pytest.skip("this machine's own name does not resolve")
    with pytest.raises(ConfigError, match="overlaps"):
        config("channels:\n  ci: {registry: '%s:5000/prod'}\n  dev: {registry: '%s:5000/prod'}\n"
               % (name, address if ":" not in address else "[%s]" % address))


def test_file_stores_are_compared_by_their_real_paths(tmp_path):
    (tmp_path / "stores").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "stores")
    with pytest.raises(ConfigError, match="overlaps"):
        config("channels:\n  ci: {deploy: 'file://%s/stores/prod'}\n  dev: {deploy: 'file://%s/link/prod'}\n"
               % (tmp_path, tmp_path))


def test_other_ports_and_hosts_are_other_destinations():
    parsed = config("channels:\n  ci: {registry: 'http://127.0.0.1:5000/prod', deploy: 's3://prod-bucket/deploy'}\n"
                    "  dev: {registry: 'http://127.0.0.1:5001/prod', deploy: 's3://dev-bucket/deploy'}\n")
    assert parsed.destination("dev", "registry").host == "127.0.0.1:5001"


def test_store_overlap_across_kinds_is_refused():
    with pytest.raises(ConfigError, match=r"channels.dev.deploy .* overlaps channels.ci.maven"):
        config(
            "channels:\n  ci: {maven: 'https://repo.example.com/releases'}\n"
            "  dev: {deploy: 'https://repo.example.com/releases/deploy'}\n"
        )


def test_sibling_paths_do_not_overlap():
    parsed = config("channels:\n  ci: {registry: 'r.example.com/prod'}\n"
                    "  dev: {registry: 'r.example.com/production'}\n")
    assert parsed.destination("dev", "registry").path == "production"


def test_plain_http_refused_unless_loopback_or_insecure():
    with pytest.raises(ConfigError, match="plain HTTP"):
        config("channels:\n  ci: {registry: 'http://r.example.com/prod'}\n")
    loopback = config("channels:\n  ci: {registry: 'http://127.0.0.1:5000/prod'}\n")
    assert loopback.destination("ci", "registry").is_plain_http
    localhost = config("channels:\n  ci: {registry: 'http://localhost:5000'}\n")
    assert localhost.destination("ci", "registry").host == "localhost:5000"
    insecure = config("channels:\n  ci: {registry: {url: 'http://r.example.com/prod', insecure: true}}\n")
    assert insecure.destination("ci", "registry").insecure


@pytest.mark.parametrize(
    "registry,message",
    [
        ("r.example.com/../prod", "not allowed"),
        ("r.example.com/Prod", "not allowed"),
        ("ftp://r.example.com", "scheme"),
        ("bad host/x", "host"),
    ],
)
def test_bad_registry_values(registry, message):
    with pytest.raises(ConfigError, match=message):
        config("channels:\n  ci: {registry: '%s'}\n" % registry)


def test_bad_store_values():
    with pytest.raises(ConfigError, match="contains '..'"):
        config("channels:\n  ci: {maven: 'file:///srv/../etc'}\n")
    with pytest.raises(ConfigError, match="three slashes"):
        config("channels:\n  ci: {maven: 'file://srv/repo'}\n")


def test_the_target_graph_store_is_a_store_url():
    parsed = config("channels:\n  ci: {registry: 'r.example.com'}\ntarget_graphs: {url: 's3://ci-cache/graphs'}\n")
    assert (parsed.target_graphs.scheme, parsed.target_graphs.host, parsed.target_graphs.path) == (
        "s3", "ci-cache", "/graphs")
    with pytest.raises(ConfigError, match=r"releasekit.yaml: target_graphs 'http://cache.example.com/g' is plain HTTP"):
        config("channels:\n  ci: {registry: 'r.example.com'}\ntarget_graphs: 'http://cache.example.com/g'\n")


def test_unknown_channel_and_bad_yaml():
    with pytest.raises(ConfigError, match="unknown channel 'prod'"):
        config("channels:\n  prod: {registry: 'r.example.com'}\n")
    with pytest.raises(ConfigError, match=r"releasekit.yaml line \d+: not valid YAML"):
        config("channels:\n  ci: [unclosed\n")


def test_config_location_precedence(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "releasekit.yaml").write_text("channels:\n  ci: {registry: 'a.example.com/prod'}\n")
    other = tmp_path / "other.yaml"
    other.write_text("channels:\n  ci: {registry: 'b.example.com/prod'}\n")
    environ = {"BUILD_WORKSPACE_DIRECTORY": str(workspace)}
    assert load_config(environ=environ).destination("ci", "registry").host == "a.example.com"
    environ["RELEASEKIT_CONFIG"] = str(other)
    assert load_config(environ=environ).destination("ci", "registry").host == "b.example.com"
    with pytest.raises(ConfigError, match="chosen by RELEASEKIT_CONFIG"):
        load_config(environ={"RELEASEKIT_CONFIG": str(tmp_path / "missing.yaml")})


def test_dispatch_hands_releases_the_configuration_it_read(tmp_path):
    """Releases under dispatch read RELEASEKIT_RESOLVED_CONFIG: the same destinations, the same source in errors,
    no YAML parser loaded; only --config overrides it."""
    import subprocess
    import sys

    original = tmp_path / "releasekit.yaml"
    original.write_text("channels:\n  ci: {registry: 'registry.example.com/prod', maven: {url: "
                        "'https://r.example.com/m', ca_bundle: /etc/ca.pem}}\n  dev: {insecure: true, registry: "
                        "'http://10.0.0.5:5000/dev'}\n")
    read = load_config(str(original), {})
    environ = {RESOLVED_CONFIG_VARIABLE: read.to_json(), "RELEASEKIT_CONFIG": str(tmp_path / "gone.yaml")}
    assert load_config(None, environ) == read
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ).destination("ci", "deploy")
    assert str(refused.value).startswith(str(original) + ": channel 'ci' has no 'deploy' destination")

    other = tmp_path / "other.yaml"
    other.write_text("channels:\n  dev: {registry: 'localhost:5000/elsewhere'}\n")
    assert load_config(str(other), environ).destination("dev", "registry").path == "elsewhere"

    script = ("import sys; from releasekit.core.config import load_config; c = load_config(); "
              "print(c.destination('dev', 'registry').host, 'yaml' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(
        environ, PYTHONPATH=os.path.join(REPO_ROOT, "tools")))
    assert shown.stdout.split() == ["10.0.0.5:5000", "False"], shown.stderr


def test_a_release_does_not_look_up_again_the_host_names_its_dispatch_checked_apart(tmp_path):
    """Before: every release of a run checked the channels apart again, with a DNS look-up per host name, although
    dispatch had. A configuration no dispatch checked is still checked."""
    import subprocess
    import sys

    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {registry: 'ci.registry.invalid/prod'}\n"
                      "  dev: {registry: 'dev.registry.invalid/dev'}\n")
    script = ("import socket, sys; looked_up = []; real = socket.getaddrinfo\n"
              "socket.getaddrinfo = lambda host, *a, **k: looked_up.append(host) or real(host, *a, **k)\n"
              "from releasekit.core.config import load_config; load_config()\n"
              "print(' '.join(sorted(set(looked_up))))")

    def looked_up(environ):
        shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                               env=dict(environ, PYTHONPATH=os.path.join(REPO_ROOT, "tools")))
        assert shown.returncode == 0, shown.stderr
        return shown.stdout.split()

    assert looked_up({"RELEASEKIT_CONFIG": str(config)}) == ["ci.registry.invalid", "dev.registry.invalid"]
    resolved = load_config(str(config), {}).to_json()
    assert looked_up({RESOLVED_CONFIG_VARIABLE: resolved}) == []
    unchecked = json.dumps(dict(json.loads(resolved), channels_apart=False))
    assert looked_up({RESOLVED_CONFIG_VARIABLE: unchecked}) == ["ci.registry.invalid", "dev.registry.invalid"]


def test_a_resolved_configuration_that_is_not_json_names_the_variable():
    with pytest.raises(ConfigError, match=r"RELEASEKIT_RESOLVED_CONFIG is not the configuration .* Unset it"):
        load_config(None, {RESOLVED_CONFIG_VARIABLE: "channels: {}"})


def test_each_releasekit_variable_is_spelled_once_and_the_configuration_page_lists_the_table():
    """One owner for the contract with CI jobs and users: the table in core/environment.py."""
    import re

    from releasekit.core import environment

    package = os.path.join(REPO_ROOT, "tools", "releasekit")
    table = os.path.join(package, "core", "environment.py")
    spelled = {}
    for directory, _, names in os.walk(package):
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".py") and path != table:
                for found in re.findall(r"RELEASEKIT_[A-Z][A-Z_]*", open(path, encoding="utf-8").read()):
                    spelled.setdefault(found, []).append(os.path.relpath(path, package))
    assert spelled == {}, "spell these through core/environment.py: {}".format(spelled)
    names = [variable.name for variable in environment.VARIABLES]
    assert len(names) == len(set(names))
    page = open(os.path.join(REPO_ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    assert environment.markdown_table() in page


def test_a_deploy_registry_is_a_registry_destination_and_kept_apart_from_the_other_channel():
    parsed = config("channels:\n  ci: {registry: 'r.example.com/prod', deploy_registry: 'r.example.com/prod-deploy'}\n"
                    "  dev: {registry: 'r.example.com/dev'}\n")
    deploy = parsed.destination("ci", "deploy_registry")
    assert (deploy.kind, deploy.scheme, deploy.host, deploy.path) == ("deploy_registry", "https", "r.example.com",
                                                                      "prod-deploy")
    for dev in ("r.example.com/prod-deploy/dev", "R.EXAMPLE.COM:443/prod"):  # nested in the CI one, or the CI registry
        with pytest.raises(ConfigError, match="channels.dev.deploy_registry .* overlaps"):
            config("channels:\n  ci: {registry: 'r.example.com/prod', deploy_registry: 'r.example.com/prod-deploy'}\n"
                   "  dev: {registry: 'r.example.com/dev', deploy_registry: '%s'}\n" % dev)
    with pytest.raises(ConfigError, match="channels.ci.deploy_registry 'ftp://x' uses the scheme 'ftp'"):
        config("channels:\n  ci: {deploy_registry: 'ftp://x'}\n")
