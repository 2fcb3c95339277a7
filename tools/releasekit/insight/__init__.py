"""Insight: what the CI platform team sees of its CI, and how it steers it.

In: the run report of every `dispatch`, `ci` and `pr` run (outcomes, durations, attempts, cache hits from Bazel's
build events, and with `--profile` Bazel's JSON trace), and the history store those runs append to (any store of
core/stores whose HTTP servers serve directory indexes). Out: one immutable history object per run (run_record.py,
history.py), the quarantine set `--quarantine auto` derives from the history with the evidence for each decision
(quarantine.py), and `releasekit insight`: P50/P90/P99 of run wall time per day and week, before and after a date
or commit, slowest targets and their trend, critical paths, cache hit rate, flaky tests and release lead time
(statistics.py), CPU per run and per release where runs measured it (cpu_figures.py), drawn into one
self-contained HTML page (report_page.py).
"""
