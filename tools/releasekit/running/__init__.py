"""Running: the selected tests and releases, in parallel, sharded across CI machines.

In: selection files (or a fresh selection), the run context (core/run_context.py: releasekit.yaml read once), the
previous run's report. Out: a run report (per target: outcome, duration, attempts), logs, the run's record in the
history (through insight), and the pipelines (pipeline.py, with pipeline_github.py and
pipeline_buildkite.py) that run shards of it on GitHub Actions or Buildkite as they are written. whole_run runs one
dispatch, ci or pr; dispatch runs the tests with one `bazel test`, which builds the release targets too, then, past
the gate, the releases: images before the deploy YAML that pins them, each release's executable run directly
(release_run), or forked by the fork server that has already imported the publisher (forkserver), never a second
`bazel run`. Each hands over to the publishing wing. carry_over adds to a selection what the branch's last run left
undone (from its reports or the run history); the gate (gate, gate_graph) decides which releases may run, from the
tests' outcome (tests_outcome reads other runs' reports, test_suites expands a suite a tests file names).
"""
