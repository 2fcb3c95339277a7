"""Running: the selected tests and releases, in parallel, sharded across CI machines.

In: selection files (or a fresh selection), the previous run's report. Out: a run report (per target: outcome,
duration, attempts), logs, and the pipelines (pipeline.py, with pipeline_github.py and pipeline_buildkite.py) that
run shards of it on GitHub Actions or Buildkite as they are written. Releases run after
the tests, images before the deploy YAML that pins them; each release is a `bazel run` of its target, which hands
over to the publishing wing.
"""
