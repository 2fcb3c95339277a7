"""Selection: from a commit range to the tests and releases it affects.

In: a git repository, two revisions, and Bazel. Out: a Selection (selected tests and releases, each with the reasons
that reach it), written as the selection files `releasekit collect` documents. git runs through gitrepo, Bazel
queries through bazelquery; collect judges each change kind, with bazelrc for `.bazelrc` options and externals for
WORKSPACE-level changes; explain says why a target is selected or not.
"""
