"""Running `bazel query`, `bazel cquery` and `bazel aquery` in one workspace; query_answers.py reads what they
answer."""

import os
import re
import shlex
import tempfile
import threading

from releasekit.core.errors import BazelError, ReleasekitError
from releasekit.core import environment, process
from releasekit.core.redact import without_secrets
from releasekit.selection.query_answers import decode_query_proto, parse_query_xml_tree

# Every edge selection follows, asked for on every query, cquery and aquery: an rc file (the workspace's .bazelrc, the
# user's, the system's, a --bazelrc) may turn any of them off for the user's own queries, and `query --notool_deps`
# would hide every tool a genrule runs from rdeps. `--tool_deps` is also what Bazel 4 reads `--host_deps` as.
EDGE_OPTIONS = ("--tool_deps", "--implicit_deps", "--nodep_deps", "--aspect_deps=conservative")
# The shape of the answers the readers rely on, likewise fixed: one label a line, locations as absolute paths, rule
# inputs in the proto answer, and no universe but the one a query names.
ANSWER_OPTIONS = ("--noline_terminator_null", "--norelative_locations", "--proto:rule_inputs_and_outputs",
                  "--proto:flatten_selects", "--noinfer_universe_scope")
# Query options collect sets itself (above, and the output options of each query): an rc file's value for one of them
# cannot change what collect selects. bazelrc.py judges rc lines by this list.
FIXED_QUERY_OPTIONS = frozenset([
    "tool_deps", "host_deps", "implicit_deps", "nodep_deps", "aspect_deps", "line_terminator_null", "null",
    "relative_locations", "proto:rule_inputs_and_outputs", "proto:flatten_selects", "infer_universe_scope",
    "universe_scope", "output", "order_output", "order_results", "query_file", "xml:default_values",
    "xml:line_numbers", "proto:output_rule_attrs", "proto:default_values", "proto:locations", "starlark:expr",
    "include_commandline", "include_artifacts", "include_aspects", "include_param_files",
])

_BAZEL_CRASHED = 37  # Bazel's exit code for an internal error

# Where the exec configuration's outputs go: bazel-out/host/ (the host configuration of Bazel before 6) or
# bazel-out/<cpu>-<mode>-exec-<hash>/ (Bazel 6 and later).
_EXEC_OUTPUT_RE = re.compile(r"^bazel-out/(host|[^/]*-exec(-[^/]*)?)/")


class Bazel:
    """One Bazel client for one workspace. The command comes from --bazel, environment.BAZEL, then PATH."""

    def __init__(self, workspace, command=None, environ=None, reads_other_checkouts=True):
        """reads_other_checkouts: False where the server must keep the packages it has loaded (a persistent agent,
        whose base revision has a server of its own): no --package_path pointing elsewhere, which drops them."""
        environ = os.environ if environ is None else environ
        self.workspace = workspace
        self.reads_other_checkouts = reads_other_checkouts
        self.command = shlex.split(command or environment.BAZEL.get(environ) or "bazel")
        self.queries_run = 0
        self.loaded_workspace = False  # a query has loaded every package of //... (and what it depends on)

    def run(self, args, env=None, binary=False, timeout=None):
        """One Bazel command in this workspace, to completion: the CompletedProcess, whatever its exit code. Bazel
        never sees the publishers' credentials (an rc file may send its client environment to a build event
        service)."""
        env = without_secrets(os.environ) if env is None else env
        return process.run(self.command + args, BazelError(
            "Bazel is not installed or not on PATH ('{}' was not found). Install Bazel (or bazelisk), or point {} or "
            "--bazel at it.".format(self.command[0], environment.BAZEL)), cwd=self.workspace, binary=binary, env=env,
            timeout=timeout)

    def _run(self, args, what, binary=False, retry_crash=False):
        result = self.run(args, binary=True)
        if retry_crash and result.returncode == _BAZEL_CRASHED:  # the crash restarted the server: ask it again
            result = self.run(args, binary=True)
        if result.returncode != 0:
            summary = _error_summary(result.stderr.decode("utf-8", "replace"))
            error = BazelError(
                "{} failed in {} (bazel exit code {}): {} Fix the workspace so that it loads at this revision "
                "(`bazel query //...` shows the same error).".format(what, self.workspace, result.returncode, summary))
            # What Bazel said alone, for a note on labels a run was handed (which may not load while //... does).
            error.bazel_said = "{} failed (bazel exit code {}): {}".format(what, result.returncode, summary)
            raise error
        return result.stdout if binary else result.stdout.decode("utf-8")

    def query(self, expression, output="xml", universe_scope=None, package_root=None):
        """One query; the expression goes through --query_file, so its length is unbounded. package_root: read the
        main repository's packages from that directory instead of the workspace.

        Returns text, or bytes for output="proto".
        """
        with tempfile.NamedTemporaryFile("w", suffix=".query", delete=False) as handle:
            handle.write(expression)
            path = handle.name
        try:
            args = ["query", "--query_file=" + path, "--order_output=no", "--output=" + output, *EDGE_OPTIONS,
                    *ANSWER_OPTIONS]
            if output == "xml":
                # Defaults written out: `flaky = False` is the same definition as no flaky at all.
                args += ["--xml:default_values", "--noxml:line_numbers"]
            elif output == "proto":
                # Only what selection reads: five attributes, when set, and the rule inputs (the edges). A rule
                # class's default tags go unread: only test rules and releases are selected, and theirs are empty.
                # A toolchain() rule's toolchain and toolchain_type say which rules resolve what (toolchains.py).
                args += ["--proto:output_rule_attrs=tags,tests,target_compatible_with,toolchain,toolchain_type",
                         "--noproto:default_values",
                         "--noproto:locations"]
            args.append("--universe_scope=" + (universe_scope or ""))
            if package_root:
                args.append("--package_path=" + package_root)
            self.queries_run += 1
            answer = self._run(args, "bazel query", binary=output == "proto")
            self.loaded_workspace = self.loaded_workspace or bool(universe_scope) or "//..." in expression
            return answer
        finally:
            os.unlink(path)

    def query_targets(self, expression, universe_scope=None, definitions=False, external_inputs=False):
        """Targets by label. With definitions, each rule's canonical definition too (a slower, full XML read).
        With external_inputs, rule inputs in other repositories are kept."""
        if definitions:
            return parse_query_xml_tree(self.query(expression, "xml", universe_scope), definitions=True)
        return decode_query_proto(self.query(expression, "proto", universe_scope), external_inputs)

    def base_package_definitions(self, expression, package_root):
        """Targets with definitions, as the packages under package_root (another checkout of this workspace) define
        them, read by this workspace's server; None when that answer cannot be trusted, and then the caller asks a
        server in package_root itself.

        None when the query fails (a Bazel without --package_path, which is deprecated in Bazel 8), when any
        target's BUILD file is not under package_root (a Bazel that ignored the option), or when this server does not
        read other checkouts.
        """
        if ":" in package_root or not self.reads_other_checkouts:  # the option is a colon-separated list
            return None
        try:
            text = self.query(expression, "xml", package_root=package_root)
        except BazelError:
            return None
        root = os.path.realpath(package_root) + os.sep
        build_files = {re.sub(r":\d+(:\d+)?$", "", path) for path in re.findall(r' location="([^"]*)"', text)}
        if not all(os.path.realpath(path).startswith(root) for path in build_files):
            return None
        return parse_query_xml_tree(text, definitions=True)

    def incompatible(self, expression):
        """Labels among the targets of expression that are incompatible with the target platform (one cquery).

        The expression must reach its targets through wildcard patterns: cquery fails on an incompatible target
        named explicitly. It goes on the command line (cquery has no --query_file before Bazel 7), so it is
        kept to the few targets that set target_compatible_with.
        """
        return {label for label, incompatible in self._cquery_lines(
            expression, "str(target.label) + ' ' + str('IncompatiblePlatformProvider' in providers(target))")
            if incompatible == "True"}

    def built_for_execution(self, expression):
        """Labels among the configured targets of expression built in the exec (host) configuration, as tools the
        build runs (one cquery): their outputs land in an exec output directory."""
        return {label for label, paths in self._cquery_lines(
            expression, "str(target.label) + ' ' + ' '.join([f.path for f in target.files.to_list()])")
            if any(_EXEC_OUTPUT_RE.match(path) for path in paths.split())}

    def configured_rdeps(self, labels):
        """Labels of this repository's configured targets of //... that depend on one of labels, in any configuration
        (one cquery: toolchain resolution is an edge there; it analyses every target of //...)."""
        self.queries_run += 1
        expression = "rdeps(//..., set({}))".format(" ".join(quote(label) for label in labels))
        # Bazel 4's cquery rdeps can crash on a configured target that a BUILD change removed since the server analysed
        # it ("was unavailable in the query environment graph"); the server the crash restarts answers.
        output = self._run(["cquery", "--output=label", *EDGE_OPTIONS, *ANSWER_OPTIONS, "--universe_scope=//...", "--",
                            expression], "bazel cquery", retry_crash=True)
        found = {re.sub(r"^@@?(?=//)", "", line.strip().partition(" ")[0])
                 for line in output.splitlines() if line.strip()}
        return {label for label in found if label.startswith("//")}

    def _cquery_lines(self, expression, starlark_expr):
        """(label, the rest of its line) for each configured target of expression: one cquery with starlark output
        whose expression starts with str(target.label) and a space."""
        self.queries_run += 1
        output = self._run(["cquery", "--output=starlark", "--starlark:expr=" + starlark_expr, *EDGE_OPTIONS,
                            *ANSWER_OPTIONS, "--universe_scope=", "--", expression], "bazel cquery")
        lines = (line.strip().partition(" ") for line in output.splitlines() if line.strip())
        # Bazel 7+ writes main-repository labels as @@//pkg:name.
        return [(re.sub(r"^@@?(?=//)", "", label), rest) for label, _, rest in lines]

    def aquery(self, expression, package_root=None):
        """The actions of the targets of expression (one aquery, JSON): their command lines, inputs and outputs.
        package_root: read the main repository's packages from that directory instead of the workspace."""
        import json  # here: only a rule implementation's change asks for actions

        args = ["aquery", "--output=jsonproto", "--include_commandline", "--include_artifacts", "--include_aspects",
                "--include_param_files", *EDGE_OPTIONS, *ANSWER_OPTIONS, "--universe_scope="]
        if package_root:
            args.append("--package_path=" + package_root)
        self.queries_run += 1
        text = self._run(args + ["--", expression], "bazel aquery")
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError as error:
            raise BazelError("bazel aquery in {} gave an answer that is not JSON ({}).".format(
                self.workspace, error)) from None

    def not_a_target(self, label):
        """Bazel's own words when label is not a target here (no such target or package), else None. A workspace that
        does not load is a BazelError, as for any query."""
        result = self.run(["query", quote(label), "--output=label"])
        if result.returncode == 0:
            return None
        errors = _error_summary(result.stderr)
        if _NOT_A_TARGET_RE.search(errors):
            return errors
        raise BazelError("bazel query {} failed in {} (bazel exit code {}): {} Fix the workspace so that it loads at "
                         "this revision (`bazel query //...` shows the same error).".format(
                             label, self.workspace, result.returncode, errors))

    def query_labels(self, expression, universe_scope=None):
        return [line for line in self.query(expression, "label", universe_scope).splitlines() if line.strip()]

    def shutdown(self):
        try:
            self.run(["shutdown"], timeout=120)
        except (ReleasekitError, OSError, process.TimeoutExpired):
            pass

    def shutdown_in_background(self):
        """Start the shutdown and return its thread: join it before the process ends, so no server outlives it."""
        thread = threading.Thread(target=self.shutdown, name="bazel-shutdown")
        thread.start()
        return thread


# How Bazel says a label names nothing: no target of that name, or no package (no BUILD file) at all.
_NOT_A_TARGET_RE = re.compile(r"no such target '|no such package '[^']*': BUILD file not found")


def _error_summary(stderr):
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR")]
    text = " ".join(errors[:3]) if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    return text[:1500]


def quote(text):
    """A query word in double quotes; the query language takes quoted words literally, without escapes."""
    if '"' in text:
        raise BazelError("Cannot pass {!r} to bazel query: it contains a double quote.".format(text))
    return '"' + text + '"'
