"""Lazy push: a fresh agent builds under a warm HTTP remote cache (nginx) and its releases stream the image blobs the
registry lacks straight from the cache, with real Bazel and a real registry; an evicted blob; a cache that serves wrong
bytes; credentials of the cache never printed."""

import json
import os
import re
import subprocess

import pytest
import requests

from conftest import TEST_PASSWORD, TEST_USER
from helpers.lazy_push import (Agent, dispatch, everything_said, fresh_agent, layer_files, write_registry,
                               write_workspace)
from helpers.servers import NginxStore, Registry

HEADER_SECRET = "cache-header-never-printed-81d4"
LAYER_BYTES = 1 << 20



@pytest.fixture(scope="module")
def lazy(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("lazy"))
    cache = NginxStore(os.path.join(root, "cache"), TEST_USER, TEST_PASSWORD)
    registry = Registry(os.path.join(root, "registry"))
    workspace = write_workspace(root, registry, [("one", 1, LAYER_BYTES), ("two", 2, LAYER_BYTES),
                                                 ("three", 3, LAYER_BYTES), ("four", 4, LAYER_BYTES)],
                                [("base", None, "one"), ("middle", "base", "two"), ("app_image", "middle", "three"),
                                 ("other_image", "middle", "four")])
    url = cache.url.replace("http://", "http://{}:{}@".format(TEST_USER, TEST_PASSWORD)) + "/cache"
    flags = ["--remote_cache=" + url, "--remote_header=X-Cache-Token=" + HEADER_SECRET, "--noshow_progress"]
    builder = Agent(workspace, root, "builder")
    warm = builder.run("build", *flags, "//:app.ci", "//:other.ci")  # the cache is warm before any agent starts
    assert warm.returncode == 0, warm.stderr[-3000:]
    builder.shutdown()
    state = {"root": root, "cache": cache, "registry": registry, "workspace": workspace, "flags": flags, "agents": []}
    yield state
    for agent in state["agents"]:
        agent.shutdown()
    cache.stop()
    registry.stop()
    state["registry"].stop()  # the registry a test put in its place, if any


def test_a_fresh_agent_streams_missing_layers_from_the_cache_and_downloads_nothing_the_registry_has(lazy):
    agent = fresh_agent(lazy, "agent-one")
    result, outcomes = dispatch(lazy, agent, "//:app.ci", "logs-one")
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = outcomes["//:app.ci"]
    record = outcome["record"]
    assert outcome["status"] == "published" and record["remote_cache"].endswith("/cache")
    assert "lazy push" in result.stdout and "--remote_download_minimal" in result.stdout
    # Three layers of 1 MiB and a config: every byte the registry took came from the cache, and no more.
    assert record["blobs_uploaded"] == 4 and record["blobs_from_cache"] == 4
    assert record["bytes_downloaded"] == record["bytes_uploaded"] > 3 * LAYER_BYTES
    assert layer_files(agent, "app_image") == []  # never written to the agent's disk
    inspected = lazy["registry"].inspect("prod/lazy/app:" + record["commit"])
    assert inspected["Digest"] == record["digest"] and len(inspected["Layers"]) == 3
    said = everything_said(lazy, "logs-one", result)
    assert TEST_PASSWORD not in said and HEADER_SECRET not in said

    # A second image shares two layers with the first: they are mounted, and only its own layer and config move.
    other, outcomes = dispatch(lazy, agent, "//:other.ci", "logs-two")
    record = outcomes["//:other.ci"]["record"]
    assert other.returncode == 0, other.stdout + other.stderr
    assert record["blobs_mounted"] == 2 and record["blobs_from_cache"] == 2
    assert LAYER_BYTES < record["bytes_downloaded"] < 2 * LAYER_BYTES

    # Released again from another fresh agent: the registry has every blob, nothing is downloaded or uploaded.
    again, outcomes = dispatch(lazy, fresh_agent(lazy, "agent-two"), "//:app.ci", "logs-three")
    record = outcomes["//:app.ci"]["record"]
    assert again.returncode == 0, again.stdout + again.stderr
    assert record["bytes_downloaded"] == 0 and record["bytes_uploaded"] == 0 and record["blobs_skipped"] == 4


def cas_entry(lazy, digest):
    return lazy["cache"].path("cache/cas/" + digest.split(":", 1)[1])


def test_a_blob_evicted_from_the_cache_after_the_build_is_built_here_and_published(lazy):
    agent = fresh_agent(lazy, "agent-evicted")
    built = agent.run("build", *lazy["flags"], "--remote_download_minimal", "--build_runfile_links", "//:app.ci")
    assert built.returncode == 0, built.stderr[-3000:]
    plan = json.load(open(agent.bin("app.ci.local/lazy/app.image_plan.json")))
    layer = max(plan["blobs"], key=lambda blob: blob["size"])["digest"]
    lazy["registry"].stop()  # a registry of its own: it lacks every blob
    registry = Registry(os.path.join(lazy["root"], "registry-evicted"))
    lazy["registry"] = registry
    write_registry(lazy["workspace"], registry)
    lazy["workspace"].commit("a registry that lacks every blob")
    os.unlink(cas_entry(lazy, layer))  # evicted between the build and the release

    # Run by hand, without the cache dispatch hands its releases: the layers are not here, and it says how to fix it.
    by_hand = subprocess.run([agent.bin("app.ci")], cwd=lazy["workspace"].path, capture_output=True, text=True,
                             env=dict(os.environ, CI="true"), timeout=300)
    assert by_hand.returncode == 1 and "Traceback" not in by_hand.stderr
    assert "is not on this machine" in by_hand.stderr and "--remote_download_outputs=all" in by_hand.stderr
    assert registry.tags("prod/lazy/app") == []

    result, outcomes = dispatch(lazy, agent, "//:app.ci", "logs-evicted")
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = outcomes["//:app.ci"]
    assert outcome["status"] == "published"
    assert "1 blob(s) were no longer in the remote cache: built here and run again" in outcome["reason"]
    log = open(outcome["log"]).read()
    assert "is not in the remote cache" in log and layer in log and "Traceback" not in log
    assert registry.inspect("prod/lazy/app:" + outcome["record"]["commit"])["Digest"] == plan["root"]["digest"]


def test_a_cache_that_serves_wrong_bytes_is_refused_and_nothing_is_committed(lazy):
    agent = fresh_agent(lazy, "agent-corrupt")
    built = agent.run("build", *lazy["flags"], "--remote_download_minimal", "--build_runfile_links", "//:other.ci")
    assert built.returncode == 0, built.stderr[-3000:]
    plan = json.load(open(agent.bin("other.ci.local/lazy/other.image_plan.json")))
    layer = max(plan["blobs"], key=lambda blob: blob["size"])
    registry = Registry(os.path.join(lazy["root"], "registry-corrupt"))
    try:
        write_registry(lazy["workspace"], registry)
        lazy["workspace"].commit("a registry of its own")
        path = cas_entry(lazy, layer["digest"])
        os.chmod(path, 0o644)
        with open(path, "r+b") as handle:  # same size, other bytes
            handle.seek(layer["size"] // 2)
            handle.write(b"\xffdamaged\xff")

        result, outcomes = dispatch(lazy, agent, "//:other.ci", "logs-corrupt")
        outcome = outcomes["//:other.ci"]
        assert result.returncode != 0 and outcome["status"] == "refused", result.stdout + result.stderr
        assert "CacheIntegrityError" in outcome["reason"] and layer["digest"] in outcome["reason"]
        assert "nothing was committed" in outcome["reason"]
        for reference in (plan["root"]["digest"], layer["digest"]):
            kind = "manifests" if reference == plan["root"]["digest"] else "blobs"
            answer = requests.head("{}/v2/prod/lazy/other/{}/{}".format(registry.url, kind, reference), timeout=10)
            assert answer.status_code == 404
        assert registry.tags("prod/lazy/other") == []
    finally:
        registry.stop()


def test_a_persistent_agent_keeps_bazels_analysis_cache_from_one_run_to_the_next(lazy):
    """Before: the question of which remote cache the build has was a `bazel build` without the lazy flags nor the
    rc files' `test` options, asked between two runs' `bazel test` that had them: on a persistent agent Bazel discarded
    its analysis cache in every run. And a download mode the workspace chooses later is still the build's own."""
    workspace = lazy["workspace"]
    workspace.write("check.sh", "#!/bin/sh\ntest \"$LAZY_LEVEL\" = 1\n", executable=True)
    build = open(os.path.join(workspace.path, "BUILD.bazel")).read()
    workspace.write("BUILD.bazel", build + '\nsh_test(name = "check", srcs = ["check.sh"])\n')
    workspace.write(".bazelrc", "test --test_env=LAZY_LEVEL=1\n")  # an option of the configuration `build` lacks
    write_registry(workspace, lazy["registry"])  # a registry that runs (the test before stopped its own)
    workspace.commit("a test, and a test option")
    agent = fresh_agent(lazy, "agent-persistent")
    for logs in ("logs-persistent-one", "logs-persistent-two"):
        result, outcomes = dispatch(lazy, agent, "//:app.ci", logs, tests=["//:check"])
        assert result.returncode == 0, result.stdout + result.stderr
        assert outcomes["//:check"]["status"] == "passed" and outcomes["//:app.ci"]["status"] == "published"
    first, second = (open(os.path.join(lazy["root"], logs, "bazel-test.log")).read()
                     for logs in ("logs-persistent-one", "logs-persistent-two"))
    assert "discarding analysis cache" not in second, second
    # The second run's analysis reuses the first's: a few targets configured again at most, not the whole graph.
    assert 0 <= targets_configured(second) * 4 < targets_configured(first), second
    assert "--remote_download_minimal" in result.stdout
    remembered = open(os.path.join(agent.output_base + "-xdg", "releasekit", "remote-build.json")).read()
    assert HEADER_SECRET not in remembered and TEST_PASSWORD not in remembered

    workspace.write(".bazelrc", "test --test_env=LAZY_LEVEL=1\ntest --remote_download_toplevel\n")
    workspace.commit("the workspace chooses a download mode")
    result, outcomes = dispatch(lazy, agent, "//:app.ci", "logs-persistent-three", tests=["//:check"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lazy push" in result.stdout and "--remote_download_minimal" not in result.stdout
    assert outcomes["//:app.ci"]["status"] == "published"


def targets_configured(log):
    """N of Bazel's "Analyzed ... (P packages loaded, N targets configured)"."""
    found = re.search(r"Analyzed \d+ targets? \(\d+ packages? loaded, (\d+) targets? configured\)", log)
    assert found, log
    return int(found.group(1))


def test_the_run_reads_the_cache_from_the_options_bazel_took():
    from releasekit.running.remote_build import LAZY_FLAGS, decide

    http = decide([("remote_cache", "https://ci:pw@cache.example.com/bazel"), ("remote_header", "X-Token=abc"),
                   ("remote_cache_header", "X-Team=payments"), ("tls_certificate", "/etc/ca.pem")])
    assert http.cache.url == "https://ci:pw@cache.example.com/bazel" and http.cache.ca_bundle == "/etc/ca.pem"
    assert http.cache.headers == (("X-Token", "abc"), ("X-Team", "payments")) and http.flags == list(LAZY_FLAGS)
    assert "https://cache.example.com/bazel" in http.note and "pw" not in http.note
    chosen = decide([("remote_cache", "http://cache:8080"), ("remote_download_outputs", "toplevel")])
    assert chosen.cache is not None and chosen.flags == ["--build_runfile_links"]
    grpc = decide([("remote_cache", "grpcs://cache.example.com"), ("remote_instance_name", "main"),
                   ("remote_header", "x-token=abc"), ("tls_certificate", "/etc/ca.pem")])
    assert grpc.cache.instance == "main" and grpc.cache.headers == (("x-token", "abc"),) and grpc.cache.is_grpc
    assert grpc.flags == list(LAZY_FLAGS) and "grpcs://cache.example.com (instance main)" in grpc.note
    assert decide([("remote_cache", "cache.example.com:443")]).cache.display == "grpcs://cache.example.com:443"
    for options, why in (([("remote_cache", "unix:/run/cache.sock")], "neither an HTTP nor a TCP gRPC cache"),
                         ([("remote_cache", "grpcs://c"), ("tls_client_certificate", "/c.pem")], "--tls_client_cert"),
                         ([("remote_cache", "https://c"), ("google_default_credentials", "true")], "--google_default"),
                         ([("remote_cache", "https://c"), ("digest_function", "BLAKE3")], "digest function is blake3")):
        off = decide(options)
        assert off.cache is None and off.flags == [] and why in off.note
    assert decide([]).cache is None and decide([]).note is None


def original_command_line(*options):
    """Build events whose original command line holds these (name, value) options."""
    listed = [{"optionName": name, "optionValue": value, "combinedForm": "--{}={}".format(name, value) if value
               else "--" + name} for name, value in options]
    return [{"structuredCommandLine": {"commandLineLabel": "original", "sections": [
        {"sectionLabel": "command options", "optionList": {"option": listed}}]}}]


def test_what_chose_the_download_mode_is_remembered_as_a_digest_of_that_alone(tmp_path):
    from releasekit.running.remote_build import LAZY_FLAGS, LastDecision, download_mode_said

    rc = [("rc_source", "client"), ("rc_source", "/ws/.bazelrc"), ("default_override", "2:test=--test_env=A=1")]
    said = download_mode_said(original_command_line(*rc, ("remote_header", "X-Token=" + HEADER_SECRET)))
    # A header's value, a run's own build metadata: they choose no download mode, and change nothing remembered.
    assert said == download_mode_said(original_command_line(*rc, ("remote_header", "X-Token=rotated"),
                                                             ("default_override", "2:build=--build_metadata=SHA=1")))
    assert said == download_mode_said(original_command_line(*rc, ("remote_download_minimal", "")), added=LAZY_FLAGS)
    for chosen in (("default_override", "2:test=--remote_download_toplevel"),
                   ("default_override", "2:build:ci=--remote_download_outputs=all"),
                   ("default_override", "2:build=--config=ci"), ("config", "ci"), ("remote_download_toplevel", "")):
        assert download_mode_said(original_command_line(*rc, chosen)) != said, chosen
    assert download_mode_said(original_command_line(("default_override", "2:test=--test_env=A=1"))) is None

    path = str(tmp_path / "remote-build.json")
    memory = LastDecision("/ws", ["bazel", "test"], path=path)
    assert memory.flags() == [] and memory.said() is None
    memory.remember(list(LAZY_FLAGS), said)
    again = LastDecision("/ws", ["bazel", "test"], path=path)
    assert again.flags() == list(LAZY_FLAGS) and again.said() == said
    assert LastDecision("/ws", ["bazel", "build"], path=path).flags() == []  # another command: not this decision
    assert HEADER_SECRET not in open(path).read()
    for damaged in ("not json", "[1, 2]", json.dumps({os.path.realpath("/ws"): {"key": again.key, "flags": ["--x"]}})):
        with open(path, "w") as handle:
            handle.write(damaged)
        assert LastDecision("/ws", ["bazel", "test"], path=path).flags() == []  # nothing but the two known lists
    for index in range(LastDecision.KEPT + 5):
        LastDecision("/ws{}".format(index), ["bazel", "test"], path=path).remember([], said)
    assert len(json.load(open(path))) == LastDecision.KEPT
