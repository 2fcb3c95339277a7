"""Running: the selected tests and releases, in parallel, sharded across CI machines.

In: selection files (or a fresh selection), the previous run's report. Out: a run report (per target: outcome,
duration, attempts), logs, and the pipelines (GitHub Actions, Buildkite) that run shards of it. carry_over adds to a
selection what the branch's last run left undone (from its reports or the run history); the gate (gate, gate_graph)
decides which releases may run, from the tests' outcome (tests_outcome reads other runs' reports). Releases run after
the tests, images before the deploy YAML that pins them; each release is a `bazel run` of its target, which hands
over to the publishing wing.
"""
