"""Dynamic pipelines for the CI engines users already have: one step per shard, releases after tests.

Buildkite: a pipeline YAML to `buildkite-agent pipeline upload`. GitHub Actions: a matrix
JSON for `strategy.matrix` (fromJSON), with the release job depending on the test job.
"""

import json

from .errors import UsageError


def render(kind, shards, base, head, releasekit="releasekit"):
    if shards < 1:
        raise UsageError("--shards must be at least 1.")
    shard_list = ["{}/{}".format(i, shards) for i in range(1, shards + 1)]
    if kind == "github-actions":
        return json.dumps({"include": [{"shard": s, "name": "shard {}".format(s.replace("/", " of "))} for s in shard_list]})
    import yaml

    steps = [{
        "label": ":bazel: tests, shard {}".format(s),
        "key": "tests-{}".format(s.split("/")[0]),
        "command": "{} collect --base {} --head {} --tests-out tests.json --releases-out releases.json && "
                   "{} dispatch --tests tests.json --shard {} --report report-{}.json".format(
                       releasekit, base, head, releasekit, s, s.split("/")[0]),
    } for s in shard_list]
    steps.append("wait")
    steps += [{
        "label": ":package: releases, shard {}".format(s),
        "command": "{} collect --base {} --head {} --tests-out tests.json --releases-out releases.json && "
                   "{} dispatch --releases releases.json --shard {}".format(releasekit, base, head, releasekit, s),
        "env": {"CI": "true"},
    } for s in shard_list]
    return yaml.safe_dump({"steps": steps}, sort_keys=False)
