#!/usr/bin/env python3
"""Change selection on target-determinator's public corpus: precision and recall of `releasekit collect`.

The corpus is bazel-contrib/target-determinator-testdata: each of its commits is a small Bazel workspace, and
bazel-contrib/target-determinator's integration tests (Tests.java) name pairs of them with the targets a change
between them affects. Neither is copied here: pass a snapshot of each (a clone or a bare git directory):

    python3 benchmarks/collect_corpus.py --testdata DIR --expectations DIR

The test methods are read from Tests.java as written: the commits of `class Commits`, and in each method the
checkouts, files created, modes changed and `doTest(before, after, expected[, forbidden])` calls, in order, on
Linux. Each call is one case: the after commit checked out in a clone (submodules from the snapshot itself), then
`collect --base before --head HEAD` (`--head WORKTREE` where the method changed a file's mode), with a fresh
Collector on the clone's one Bazel server.

Two measures, summed over the cases:
- tests: what collect selects (tests and CI releases; the corpus declares no releases) against the expected targets
  that are tests at the after commit. This is collect's own output.
- targets: the same selection machinery with every rule counted as selectable, against every expected target: how
  exactly the change is traced, libraries included.
precision = |selected & expected| / |selected|, recall = |selected & expected| / |expected|; a forbidden target
selected counts as an extra. The corpus's workspaces ask for Bazel 6 and 7 (.bazelversion); the Bazel here runs
them (tests/bazel/bazel, 4.2.3), with the Java tools that Bazel would download replaced by local stand-ins: query
and cquery read their targets, nothing is compiled.

Ends with one JSON line; --out writes the whole result (every case, what was selected, missed and extra).
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

BAZEL = os.environ.get("RELEASEKIT_BAZEL") or os.path.join(REPO_ROOT, "tests", "bazel", "bazel")
TESTS_JAVA = "tests/integration/java/com/github/bazel_contrib/target_determinator/integration/Tests.java"


def git(cwd, *args, check=True):
    result = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError("git {} failed in {}: {}".format(" ".join(args), cwd, result.stderr.strip()))
    return result.stdout


# -- the cases, read from Tests.java ---------------------------------------------------------------------------------

def _read_text(snapshot, path):
    """A file of a snapshot: a checkout's file, else the file at HEAD of its git directory."""
    if os.path.isfile(os.path.join(snapshot, path)):
        with open(os.path.join(snapshot, path)) as handle:
            return handle.read()
    return git(snapshot, "show", "HEAD:" + path)


def _statements(body):
    """Top-level statements of a Java block: `if (...) {...}` blocks stay whole."""
    statements, depth, current, index = [], 0, "", 0
    while index < len(body):
        char = body[index]
        if char == '"':
            end = body.index('"', index + 1)
            current += body[index:end + 1]
            index = end + 1
            continue
        current += char
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
            if depth == 0 and char == "}" and current.strip().startswith("if"):
                statements.append(current.strip())
                current = ""
        elif char == ";" and depth == 0:
            statements.append(current.strip())
            current = ""
        index += 1
    return [s for s in statements if s and not s.startswith("//")]


def _block_of(text, open_brace):
    depth = 0
    for index in range(open_brace, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[open_brace + 1:index]
    raise ValueError("unbalanced braces")


def _strings(text):
    return re.findall(r'"([^"]*)"', text)


def read_cases(tests_java):
    """([case], [the names of test methods skipped]): each case a dict of name, steps before it (checkout, create,
    chmod, branch), before, after, expected, forbidden. A @Test method with a step this reader does not know is
    skipped, and named."""
    commits = dict(re.findall(r'public static final String (\w+)\s*=\s*"([^"]+)"', tests_java))
    cases, skipped = [], []
    for match in re.finditer(r"@Test\s+public void (\w+)\(\)[^{]*\{", tests_java):
        name = match.group(1)
        body = re.sub(r"(?m)^\s*//.*$", "", _block_of(tests_java, match.end() - 1))  # line comments
        variables, steps, index = {}, [], 0

        def value(expression, variables=variables):  # this method's variables
            expression = expression.strip()
            if expression.startswith("Commits."):
                return commits[expression[len("Commits."):]]
            if expression.startswith('"'):
                return expression.strip('"')
            return variables[expression]

        pending = _statements(body)
        known = True
        while pending:
            statement = pending.pop(0)
            conditional = re.match(r"if \((!?)(isLinux|isWindows)\(\)\)\s*\{", statement)
            if conditional:
                negated, test = conditional.groups()
                holds = (test == "isLinux") != bool(negated)
                if holds:
                    pending = _statements(_block_of(statement, statement.index("{"))) + pending
                continue
            assignment = re.match(r"(?:String |Path )?(\w+)\s*=\s*(.+)$", statement.rstrip(";"))
            call = re.match(r"(\w+)\((.*)\);$", statement, re.S)
            if assignment and not call:
                target, expression = assignment.groups()
                path = re.match(r'Path\.of\("([^"]+)"\)', expression)
                resolved = re.findall(r'resolve\("([^"]+)"\)', expression) if expression.startswith("testDir") else []
                joined = os.path.join(*resolved) if resolved else value(expression)
                variables[target] = path.group(1) if path else joined
            elif call and call.group(1) == "doTest":
                arguments = re.split(r",\s*(?=Set\.of)", call.group(2), maxsplit=2)
                before, after = [value(a) for a in arguments[0].split(",")[:2]]
                sets = [re.findall(r'"([^"]*)"', a) + [variables[v] for v in re.findall(r"\b(changedDepTarget)\b", a)]
                        for a in re.findall(r"Set\.of\(([^)]*)\)", call.group(2))]
                index += 1
                cases.append({"name": "{}#{}".format(name, index), "steps": list(steps), "before": before,
                              "after": after, "expected": sets[0], "forbidden": sets[1] if len(sets) > 1 else []})
                steps = []
            elif call and call.group(1) == "gitCheckout":
                steps.append(("checkout", value(call.group(2))))
            elif call and call.group(1) == "gitCheckoutBranch":
                steps.append(("branch", value(call.group(2))))
            elif call and call.group(1) == "changeFileMode":
                path, mode = [a.strip() for a in call.group(2).split(",")]
                steps.append(("chmod", variables[path], mode.strip('"')))
            elif statement.startswith("Files.createFile("):
                parts = re.findall(r'resolve\("([^"]+)"\)', statement)
                created = statement[len("Files.createFile("):-2].strip()
                steps.append(("create", os.path.join(*parts) if parts else variables[created]))
            elif call and call.group(1) in ("allowOverBuilds", "assertThat", "assertEquals"):
                continue
            else:
                known = False
                break
        if not known:
            cases = [c for c in cases if not c["name"].startswith(name + "#")]
            skipped.append(name)
    return cases, skipped


def normalize(label):
    label = label if label.startswith("//") else "//" + label.lstrip("/")
    return label if ":" in label else "{}:{}".format(label, label.rsplit("/", 1)[-1])


# -- Java tools Bazel would download, as local stand-ins ------------------------------------------------------------

_JAVA_TOOL_FILES = ["GenClass", "TurbineDirect", "Turbine", "JavaBuilder", "VanillaJavaBuilder", "ijar", "singlejar",
                    "javac_jar", "java_compiler_jar", "jdk_compiler_jar", "jacoco_coverage_runner_filegroup",
                    "proguard", "Runner"]
_JAVA_TOOL_JARS = ["GenClass_deploy.jar", "JacocoCoverage_jarjar_deploy.jar", "JavaBuilder_deploy.jar",
                   "Runner_deploy.jar", "bazel-singlejar_deploy.jar", "turbine_deploy.jar",
                   "turbine_direct_binary_deploy.jar"]
_REMOTE_JDKS = ["remotejdk11_linux", "remotejdk11_win", "remotejdk11_macos", "remotejdk11_macos_aarch64",
                "remotejdk11_linux_aarch64", "remotejdk11_linux_ppc64le", "remotejdk11_linux_s390x"]


def stand_ins(root, testdata):
    """What Bazel 4.2 would download for the corpus, made locally; returns the rc file that points Bazel at it:
    repositories standing in for the Java tools and JDKs (their targets over empty files), @platforms with the
    `incompatible` constraint newer releases have, and a --distdir of the corpus's own `rules/` tags, archived as
    GitHub archives them (`git archive` gives the same bytes, so the WORKSPACE's sha256 checks pass)."""
    with open("/usr/share/bazel/embedded_tools/tools/jdk/java_toolchain_default.bzl.java_tools") as handle:
        toolchain_macro = handle.read()
    java_home = os.path.realpath(os.path.dirname(os.path.dirname(shutil.which("javac") or "/usr/bin/javac")))
    repositories = []
    for system in ("linux", "windows", "darwin"):
        directory = os.path.join(root, "remote_java_tools_" + system)
        os.makedirs(os.path.join(directory, "java_tools"), exist_ok=True)
        build = ['package(default_visibility = ["//visibility:public"])',
                 'load(":java_toolchain_default.bzl", "JAVABUILDER_TOOLCHAIN_CONFIGURATION", "java_toolchain_default")',
                 'java_toolchain_default(name = "toolchain", configuration = JAVABUILDER_TOOLCHAIN_CONFIGURATION)',
                 'exports_files(glob(["**/*.jar"]))']
        for name in _JAVA_TOOL_FILES:
            with open(os.path.join(directory, name + ".bin"), "w") as handle:
                handle.write("#!/bin/sh\n")
            os.chmod(os.path.join(directory, name + ".bin"), 0o755)
            build.append('filegroup(name = "{0}", srcs = ["{0}.bin"])'.format(name))
        for jar in _JAVA_TOOL_JARS:
            open(os.path.join(directory, "java_tools", jar), "w").close()
        files = {"WORKSPACE": "", "BUILD": "\n".join(build) + "\n", "java_toolchain_default.bzl": toolchain_macro}
        for name, text in files.items():
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(text)
        repositories.append(directory)
    for name in _REMOTE_JDKS:
        directory = os.path.join(root, name)
        os.makedirs(directory, exist_ok=True)
        open(os.path.join(directory, "WORKSPACE"), "w").close()
        with open(os.path.join(directory, "BUILD"), "w") as handle:
            handle.write('package(default_visibility = ["//visibility:public"])\n'
                         'java_runtime(name = "jdk", java_home = "{}")\n'.format(java_home))
        repositories.append(directory)
    platforms = os.path.join(root, "platforms")
    shutil.copytree("/usr/share/bazel/platforms", platforms)
    with open(os.path.join(platforms, "BUILD"), "a") as handle:
        handle.write('\nconstraint_setting(name = "incompatible_setting")\n\n'
                     'constraint_value(name = "incompatible", constraint_setting = ":incompatible_setting")\n')
    repositories.append(platforms)
    distdir = os.path.join(root, "distdir")
    os.makedirs(distdir)
    for tag in git(testdata, "tag", "--list", "rules/*").split():
        prefix = "target-determinator-testdata-{}/".format(tag.replace("/", "-"))
        archive = os.path.join(distdir, tag.rsplit("/", 1)[-1] + ".tar.gz")
        git(testdata, "archive", "--format=tar.gz", "--prefix=" + prefix, "-o", archive, tag)
    rc = os.path.join(root, "stand-ins.bazelrc")
    with open(rc, "w") as handle:
        for command in ("build", "query", "fetch", "sync"):
            handle.write("{} --distdir={}\n".format(command, distdir))
            for directory in repositories:
                handle.write("{} --override_repository={}={}\n".format(command, os.path.basename(directory), directory))
    return rc


# -- running the cases ----------------------------------------------------------------------------------------------

class Clone:
    """One clone of the testdata snapshot, reused by every case (so its Bazel server stays warm)."""

    def __init__(self, snapshot, path):
        self.path = path
        git(os.path.dirname(path), "clone", "-q", "--no-checkout", snapshot, path)
        git(path, "config", "user.email", "bench@example.com")
        git(path, "config", "user.name", "bench")
        self.snapshot = os.path.abspath(snapshot)
        for ref in git(path, "for-each-ref", "--format=%(refname:short)", "refs/remotes/origin").split():
            if ref != "origin/HEAD" and not ref.endswith("/HEAD"):
                git(path, "branch", "-q", "-f", ref.split("/", 1)[1], ref, check=False)

    def _submodules(self):
        return {line.split("\t", 1)[1] for line in git(self.path, "ls-tree", "-r", "HEAD").splitlines()
                if line.startswith("160000")}

    def checkout(self, revision, clean=False):
        """As the corpus's tests check out (untracked files stay, a submodule the commit lacks goes), or clean: as
        the clone was."""
        before = self._submodules()
        git(self.path, "checkout", "-q", "--force", revision)
        for gone in before - self._submodules():  # git leaves a removed submodule's checkout behind; JGit does not
            shutil.rmtree(os.path.join(self.path, gone), ignore_errors=True)
        if clean:
            git(self.path, "clean", "-q", "-ffdx", "-e", "/bazel-*")
        # The corpus's submodule is the corpus itself: cloned from the snapshot, never from the network.
        git(self.path, "submodule", "init", "-q")
        for key in git(self.path, "config", "--get-regexp", r"^submodule\..*\.url$", check=False).splitlines():
            git(self.path, "config", key.split()[0], self.snapshot)
        git(self.path, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--force", "--recursive")
        if clean:
            git(self.path, "submodule", "foreach", "-q", "--recursive", "git clean -q -ffdx")

    def reset(self):
        self.checkout(git(self.path, "rev-parse", "HEAD").strip(), clean=True)


def run_case(case, clone, bazel_command, cache, every_rule):
    """(selected labels, notes, seconds) of collect on one case."""
    from releasekit.selection import graph, selecting
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    for step in case["steps"]:
        if step[0] == "checkout":
            clone.checkout(step[1])
        elif step[0] == "branch":
            git(clone.path, "checkout", "-q", "-B", step[1])
        elif step[0] == "create":
            open(os.path.join(clone.path, step[1]), "w").close()
        elif step[0] == "chmod":
            os.chmod(os.path.join(clone.path, step[1]), _mode(step[2]))
    chmodded = any(step[0] == "chmod" for step in case["steps"])
    if not chmodded and case["after"] != "HEAD":
        clone.checkout(case["after"])
    original = graph.selectable, selecting.RELEASE_KIND
    if every_rule:
        # Every rule counts, and "everything" is every rule of //...: the machinery as collect runs it otherwise.
        graph.selectable = lambda target: target.is_rule
        selecting.RELEASE_KIND = ".*"
    collector = Collector(clone.path, bazel=Bazel(clone.path, command=bazel_command),
                          base_checkout_dir=os.path.join(cache, "base"))
    started = time.perf_counter()
    try:
        selection = collector.collect(case["before"], "WORKTREE" if chmodded else "HEAD")
    finally:
        graph.selectable, selecting.RELEASE_KIND = original
        collector.close()
    seconds = time.perf_counter() - started
    return {t.label for t in selection.tests + selection.releases}, selection.notes, seconds


def _mode(text):
    bits = 0
    for index, char in enumerate(text):
        if char != "-":
            bits |= 1 << (8 - index)
    return bits


def tests_at_head(clone, bazel_command):
    result = subprocess.run(shlex.split(bazel_command) + ["query", "--output=label", "tests(//...)"], cwd=clone.path,
                            capture_output=True, text=True)
    return set(result.stdout.split())


def measure(rows, key):
    hits = sum(len(row[key]["selected"] & row[key]["expected"]) for row in rows)
    selected = sum(len(row[key]["selected"]) for row in rows)
    expected = sum(len(row[key]["expected"]) for row in rows)
    return {"precision": round(hits / selected, 4) if selected else 1.0,
            "recall": round(hits / expected, 4) if expected else 1.0,
            "selected": selected, "expected": expected, "hits": hits,
            "cases_missing": sum(1 for row in rows if row[key]["expected"] - row[key]["selected"]),
            "cases_over": sum(1 for row in rows if row[key]["selected"] - row[key]["expected"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--testdata", required=True, help="a snapshot of bazel-contrib/target-determinator-testdata")
    parser.add_argument("--expectations", required=True, help="a snapshot of bazel-contrib/target-determinator")
    parser.add_argument("--out", help="write every case's result here (JSON)")
    parser.add_argument("--case", action="append", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases, skipped = read_cases(_read_text(args.expectations, TESTS_JAVA))
    if args.case:
        cases = [c for c in cases if any(part in c["name"] for part in args.case)]
    workdir = tempfile.mkdtemp(prefix="releasekit-corpus-")
    cache = os.path.join(workdir, "cache")
    os.environ["XDG_CACHE_HOME"] = cache
    bazel_command = "{} --bazelrc={}".format(BAZEL, stand_ins(os.path.join(workdir, "stand-ins"), args.testdata))
    clone = Clone(args.testdata, os.path.join(workdir, "testdata"))
    rows = []
    try:
        for case in cases:
            row = {"name": case["name"], "before": case["before"], "after": case["after"]}
            expected = {normalize(label) for label in case["expected"]}
            forbidden = {normalize(label) for label in case["forbidden"]}
            try:
                selected, notes, seconds = run_case(case, clone, bazel_command, cache, every_rule=False)
                tests = tests_at_head(clone, bazel_command)
                every, _, _ = run_case(case, clone, bazel_command, cache, every_rule=True)
            except Exception as error:  # a case that fails is reported, and counts as selecting nothing
                row["error"] = str(error)[:500]
                selected, notes, seconds, tests, every = set(), [], 0.0, set(), set()
            clone.reset()
            for key, chosen, wanted in (("tests", selected, expected & tests), ("targets", every, expected)):
                row[key] = {"selected": chosen, "expected": wanted,
                            "missed": sorted(wanted - chosen), "extra": sorted(chosen - wanted),
                            "forbidden_selected": sorted(chosen & forbidden)}
            row["notes"], row["seconds"] = notes, round(seconds, 2)
            rows.append(row)
            print("{:60s} tests missed {} extra {} | targets missed {} extra {}{}".format(
                case["name"], row["tests"]["missed"], row["tests"]["extra"], row["targets"]["missed"],
                row["targets"]["extra"], " ERROR " + row["error"] if "error" in row else ""), file=sys.stderr,
                flush=True)
    finally:
        subprocess.run(shlex.split(bazel_command) + ["shutdown"], cwd=clone.path, capture_output=True)
        base = os.path.join(cache, "base")
        if os.path.isdir(base):
            subprocess.run(shlex.split(bazel_command) + ["shutdown"], cwd=base, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"benchmark": "collect_corpus", "corpus": "bazel-contrib/target-determinator-testdata",
               "testdata_commit": git(args.testdata, "rev-parse", "HEAD").strip(),
               "expectations_commit": git(args.expectations, "rev-parse", "HEAD").strip(),
               "cases": len(rows), "errors": sum(1 for r in rows if "error" in r), "skipped_methods": skipped,
               "tests": measure(rows, "tests"), "targets": measure(rows, "targets")}
    if args.out:
        for row in rows:
            for key in ("tests", "targets"):
                row[key]["selected"], row[key]["expected"] = sorted(row[key]["selected"]), sorted(row[key]["expected"])
        with open(args.out + ".tmp", "w") as handle:
            json.dump(dict(summary, by_case=rows), handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(args.out + ".tmp", args.out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
