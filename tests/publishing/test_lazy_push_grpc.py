"""Lazy push from a gRPC (REAPI) remote cache: a fresh agent builds under a warm BuildGrid cache (instance name, a
header) with real Bazel, and its releases stream the image blobs the registry lacks with ByteStream.Read, nothing
written to the agent's disk; a blob evicted from the cache; a cache entry damaged on the server's disk, served as is;
the header's secret never printed.

One agent (one Bazel server) serves the module's tests in order, to keep them cheap: the first releases `app` from
what the build left in the cache, the second evicts a layer of `other`, the third damages a layer of `app`, which the
first left in the cache only."""

import json
import os

import pytest
import requests

from helpers.lazy_push import (Agent, dispatch, everything_said, fresh_agent, layer_files, write_registry,
                                write_workspace)
from helpers.reapi_cache import BuildGridCache
from helpers.servers import Registry
from helpers.workspace import BAZEL

HEADER_SECRET = "grpc-cache-header-never-printed-5e1a"
INSTANCE = "main"
LAYER_BYTES = 1 << 20



def use_registry(lazy, name):
    """A registry of the test's own, which lacks every blob; the fixture stops it."""
    lazy["registry"].stop()
    registry = Registry(os.path.join(lazy["root"], name))
    lazy["registry"] = registry
    write_registry(lazy["workspace"], registry)
    lazy["workspace"].commit("registry " + name)
    return registry


@pytest.fixture(scope="module")
def lazy(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("lazy-grpc"))
    cache = BuildGridCache(os.path.join(root, "cache"), instance=INSTANCE)
    registry = Registry(os.path.join(root, "registry"))
    state = {"root": root, "cache": cache, "registry": registry, "agents": []}
    try:
        workspace = write_workspace(root, registry, [("one", 11, LAYER_BYTES), ("two", 12, LAYER_BYTES),
                                                     ("three", 13, LAYER_BYTES * 3 // 2)],
                                    [("base", None, "one"), ("app_image", "base", "two"),
                                     ("other_image", "base", "three")])
        flags = ["--remote_cache=" + cache.url, "--remote_instance_name=" + INSTANCE,
                 "--remote_header=x-cache-token=" + HEADER_SECRET, "--noshow_progress"]
        state.update(workspace=workspace, flags=flags)
        builder = Agent(workspace, root, "builder")
        state["agents"].append(builder)
        warm = builder.run("build", *flags, "//:app.ci", "//:other.ci")  # the cache is warm before the agent starts
        assert warm.returncode == 0, warm.stderr[-3000:]
        builder.shutdown()
        state["agent"] = fresh_agent(state, "agent")
        yield state
    finally:
        for agent in state["agents"]:
            agent.shutdown()
        cache.stop()
        state["registry"].stop()


def test_a_fresh_agent_streams_missing_layers_from_the_grpc_cache_with_bytestream(lazy):
    result, outcomes = dispatch(lazy, lazy["agent"], "//:app.ci", "logs-one")
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = outcomes["//:app.ci"]
    record = outcome["record"]
    assert outcome["status"] == "published", outcome
    assert record.get("remote_cache") == "{} (instance {})".format(lazy["cache"].url, INSTANCE), record
    assert "lazy push" in result.stdout and "--remote_download_minimal" in result.stdout
    # Two layers of 1 MiB and a config: every byte the registry took came from the cache, and no more.
    assert record["blobs_uploaded"] == 3 and record["blobs_from_cache"] == 3
    assert record["bytes_downloaded"] == record["bytes_uploaded"] > 2 * LAYER_BYTES
    assert layer_files(lazy["agent"], "app_image") == []  # never written to the agent's disk
    inspected = lazy["registry"].inspect("prod/lazy/app:" + record["commit"])
    assert inspected["Digest"] == record["digest"] and len(inspected["Layers"]) == 2
    assert HEADER_SECRET not in everything_said(lazy, "logs-one", result)


def test_a_blob_evicted_from_the_grpc_cache_after_the_build_is_built_here_and_published(lazy):
    agent = lazy["agent"]
    built = agent.run("build", *lazy["flags"], "--remote_download_minimal", "--build_runfile_links", "//:other.ci")
    assert built.returncode == 0, built.stderr[-3000:]
    plan = json.load(open(agent.bin("other.ci.local/lazy/other.image_plan.json")))
    layer = max(plan["blobs"], key=lambda blob: blob["size"])["digest"]  # other's own layer, three.bin
    registry = use_registry(lazy, "registry-evicted")
    # BuildGrid drops an action result whose blobs are gone, and Bazel 4.2.3 asks for it again when the run builds:
    # evicted before that, the layer is rebuilt by Bazel itself. Evicted once dispatch's build is done, the release
    # finds it gone: the agent's Bazel evicts it as its build of the releases returns.
    original = open(agent.bazel).read()
    with open(agent.bazel, "w") as handle:
        handle.write('#!/bin/sh\n{} --output_base={} "$@"\ncode=$?\ncase "$*" in *releases.bep.json*) rm -f {};; '
                     'esac\nexit $code\n'.format(BAZEL, agent.output_base, lazy["cache"].blob_path(layer)))
    try:
        result, outcomes = dispatch(lazy, agent, "//:other.ci", "logs-evicted")
    finally:
        with open(agent.bazel, "w") as handle:
            handle.write(original)
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = outcomes["//:other.ci"]
    assert outcome["status"] == "published"
    assert "1 blob(s) were no longer in the remote cache: built here and run again" in (outcome["reason"] or "")
    log = open(outcome["log"]).read()
    assert "is not in the remote cache" in log and layer in log and "Traceback" not in log
    assert registry.inspect("prod/lazy/other:" + outcome["record"]["commit"])["Digest"] == plan["root"]["digest"]
    assert HEADER_SECRET not in everything_said(lazy, "logs-evicted", result)


def test_a_damaged_grpc_cache_entry_is_refused_and_nothing_is_committed(lazy):
    # BuildGrid serves its disk's bytes as they are: a damaged entry reaches the reader unchecked.
    plan = json.load(open(lazy["agent"].bin("app.ci.local/lazy/app.image_plan.json")))
    layer = max(plan["blobs"], key=lambda blob: blob["size"])
    registry = use_registry(lazy, "registry-damaged")
    path = lazy["cache"].blob_path(layer["digest"])
    with open(path, "r+b") as handle:  # same size, other bytes
        handle.seek(layer["size"] // 2)
        handle.write(b"\xffdamaged\xff")

    result, outcomes = dispatch(lazy, lazy["agent"], "//:app.ci", "logs-damaged")
    outcome = outcomes["//:app.ci"]
    assert result.returncode != 0 and outcome["status"] == "refused", result.stdout + result.stderr
    assert "CacheIntegrityError" in outcome["reason"] and layer["digest"] in outcome["reason"]
    assert "nothing was committed" in outcome["reason"]
    for kind, reference in (("manifests", plan["root"]["digest"]), ("blobs", layer["digest"])):
        answer = requests.head("{}/v2/prod/lazy/app/{}/{}".format(registry.url, kind, reference), timeout=10)
        assert answer.status_code == 404
    assert registry.tags("prod/lazy/app") == []
    assert HEADER_SECRET not in everything_said(lazy, "logs-damaged", result)
