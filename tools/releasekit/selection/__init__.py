"""Selection: from a commit range to the tests and releases it affects.

In: a git repository, two revisions, Bazel, and optionally a store of target graphs. Out: a Selection (selected tests and releases, each with the reasons
that reach it), written as the selection files `releasekit collect` documents. git runs through gitrepo, Bazel
queries through bazelquery; collect judges each change kind, with bazelrc for `.bazelrc` options and externals for
WORKSPACE-level changes; target_graphs reads and records the graphs earlier runs loaded; explain says why a target
is selected or not.
"""
