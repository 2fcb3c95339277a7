"""Selection: from a commit range to the tests and releases it affects.

In: a git repository, two revisions, Bazel, and optionally a store of target graphs. Out: a Selection (selected tests
and releases, each with the reasons that reach it), written as the selection files `releasekit collect` documents.
git runs through gitrepo, Bazel queries through bazelquery (which asks for every edge itself); collect sorts the
changes (change_kinds) and judges each kind: global files by global_files (bazelrc for rc options, externals for
WORKSPACE-level changes), BUILD files by the base_revision's rule definitions, a rule's implementation by its
actions (rule_actions), a change reaching a toolchain by the rules that resolve it (toolchains); selecting turns
the targets reached into the selection. target_graphs reads and records the graphs earlier main-line runs loaded,
under graph_key's key; explain says why a target is selected or not.
"""
