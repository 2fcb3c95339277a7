"""Running: the selected tests and releases, in parallel, sharded across CI machines.

In: selection files (or a fresh selection), the previous run's report. Out: a run report (per target: outcome,
duration, attempts), logs, and the pipelines (GitHub Actions, Buildkite) that run shards of it. Releases run after
the tests, images before the deploy YAML that pins them; each release is a `bazel run` of its target, which hands
over to the publishing wing.
"""
