#!/usr/bin/env python3
"""Change selection: `releasekit collect` against the floor of one bare rdeps query.

Generates a synthetic monorepo under git: --layers layers of --width packages, each
package with a py_library (depending on two libraries of the layer below; in the bottom layer,
on one of --libraries third-party libraries of a lock file that a repository rule reads, as
maven_install.json is read), a py_test, a filegroup, a genrule and an sh_test; the top layer
also declares container releases.
For changes of 1, 10 and 100 files it times, on the same warm Bazel server:
`releasekit collect` (the whole command) and the floor, the fastest bare query that gives
the same answer, as a competent user would write it: the affected tests and CI releases in
one query, label output, `--order_output=no`, each round the faster of sky query mode
(`--universe_scope=//...`, as collect uses) and the plain mode. It reports the share of all tests
selected, and checks the selected tests and releases against an independent oracle: a content hash of each
target over its transitive inputs (its definition, the bytes of its source files, its dependencies'
hashes) at both revisions, from one full `deps` query of each; a target whose hash changed
is affected, and must be selected. Global changes are timed once each, with the share of
tests they select: a `.bazelrc` option that changes no result, a test option, a dependency
bump (one library of the lock file, checked against the oracle too) and a WORKSPACE refactor.
Ends with one JSON line; `ratio` is the 1-file collect time / the floor's.
Targets: collect <= 1.5x the floor; <= 2% of tests for a 1-file leaf change.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
BAZEL = os.environ.get("RELEASEKIT_BAZEL") or os.path.join(REPO_ROOT, "tests", "bazel", "bazel")
ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")


def package_name(layer, index):
    return "layer{}/p{}".format(layer, index)


LOCK_RULE = """def _locked_libraries_impl(rctx):
    build = []
    for name, version in json.decode(rctx.read(rctx.attr.lock)).items():
        rctx.file(name + ".py", "VERSION = '%s'\\n" % version)
        build.append('py_library(name = "%s", srcs = ["%s.py"], visibility = ["//visibility:public"])' % (name, name))
    rctx.file("BUILD.bazel", "\\n".join(build) + "\\n")

locked_libraries = repository_rule(implementation = _locked_libraries_impl, attrs = {"lock": attr.label()})
"""


def lock_file(libraries, bumped=None):
    versions = {"lib{}".format(i): "1.{}".format(1 if i == bumped else 0) for i in range(libraries)}
    return json.dumps(versions, indent=1) + "\n"


def generate(root, layers, width, releases, libraries):
    def write(path, text):
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)

    write("WORKSPACE", 'workspace(name = "bench")\n\nlocal_repository(name = "rules_release", path = "{}")\n\n'
                       'load("//third_party:lock.bzl", "locked_libraries")\n\n'
                       'locked_libraries(name = "deps", lock = "//third_party:deps.json")\n'.format(REPO_ROOT))
    write("third_party/BUILD", 'exports_files(["deps.json"])\n')
    write("third_party/lock.bzl", LOCK_RULE)
    write("third_party/deps.json", lock_file(libraries))
    write(".bazelrc", "build --announce_rc\n")
    for layer in range(layers):
        for index in range(width):
            package = package_name(layer, index)
            deps = ['"@deps//:lib{}"'.format(index % libraries)]
            if layer:
                deps = ['"//{}:lib"'.format(package_name(layer - 1, index)),
                        '"//{}:lib"'.format(package_name(layer - 1, (index + 1) % width))]
            build = [
                'py_library(name = "lib", srcs = ["lib.py"], deps = [{}], visibility = ["//visibility:public"])'.format(
                    ", ".join(deps)),
                'py_test(name = "lib_test", srcs = ["lib_test.py"], deps = [":lib"])',
                'filegroup(name = "data", srcs = ["data.txt"])',
                'genrule(name = "gen", srcs = [":data"], outs = ["gen.txt"], cmd = "cp $< $@")',
                'sh_test(name = "gen_test", srcs = ["gen_test.sh"], data = [":gen"])',
            ]
            if layer == layers - 1 and index < releases:
                build.insert(0, 'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")')
                build += ['image_layout(name = "image", files = {":lib": "/app"})',
                          'container_release(name = "app", image = ":image", repository = "bench/app{}")'.format(index)]
            write(package + "/BUILD", "\n\n".join(build) + "\n")
            write(package + "/lib.py", "VALUE = {}\n".format(index))
            write(package + "/lib_test.py", "print('ok')\n")
            write(package + "/data.txt", "data\n")
            write(package + "/gen_test.sh", "#!/bin/sh\n")
            os.chmod(os.path.join(root, package, "gen_test.sh"), 0o755)


def git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def timed(command, cwd, env=None):
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit("benchmark: {} failed:\n{}".format(" ".join(command[:3]), result.stderr[-3000:]))
    return elapsed, result.stdout


def floor_commands(files):
    """The bare queries that answer what collect answers (the affected tests and CI releases), in both query modes;
    the floor is the faster of the two in each round."""
    expression = ("let affected = rdeps(//..., set({})) in tests($affected) + kind(artifact_ci_release, "
                  "$affected)".format(" ".join(files)))
    plain = [BAZEL, "query", expression, "--order_output=no", "--output=label"]
    return [plain + ["--universe_scope=//..."], plain]


def content_hashes(root):
    """{label: hash of the target over its transitive inputs}, and the CI-selectable tests and releases.

    Independent of releasekit's own query reading: one `deps` query of every test and release in XML,
    each rule's attributes as Bazel prints them, each source file's bytes, and the hashes of its inputs.
    """
    import hashlib
    import xml.etree.ElementTree as ElementTree

    xml = subprocess.run([BAZEL, "query", "deps(tests(//...) + kind(artifact_ci_release, //...))", "--output=xml",
                          "--noxml:line_numbers", "--order_output=no"], cwd=root, capture_output=True,
                         check=True).stdout
    xml = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
    elements = {element.get("name"): element for element in ElementTree.fromstring(xml)}
    hashes = {}

    def hash_of(label):
        if label in hashes:
            return hashes[label]
        element = elements.get(label)
        digest = hashlib.sha256(label.encode())
        if element is None:  # outside the graph (an external repository's target): constant between revisions
            pass
        elif element.tag == "source-file":
            # Its location names the BUILD file (in the fetched repository for an external one); the label, the file.
            path = os.path.join(os.path.dirname(element.get("location")), label.split(":", 1)[1])
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    digest.update(handle.read())
        elif element.tag == "generated-file":
            digest.update(hash_of(element.get("generating-rule")).encode())
        elif element.tag == "rule":
            for child in element:
                if child.tag == "rule-input":
                    digest.update(hash_of(child.get("name")).encode())
                elif child.get("name") not in ("generator_location",):
                    digest.update(ElementTree.tostring(child))
        hashes[label] = digest.hexdigest()
        return hashes[label]

    selectable = set()
    for label, element in elements.items():
        if element.tag != "rule" or label.startswith("@"):
            continue
        kind = element.get("class")
        tags = {item.get("value") for child in element if child.get("name") == "tags" for item in child}
        if (kind.endswith("_test") or kind == "artifact_ci_release") and not tags & {"manual", "no-ci"}:
            selectable.add(label)
    sys.setrecursionlimit(100000)
    return {label: hash_of(label) for label in selectable}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--libraries", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-collect-")
    root = os.path.join(workdir, "monorepo")
    env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=os.path.join(workdir, "cache"))
    try:
        generate(root, args.layers, args.width, args.releases, args.libraries)
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "bench@example.com")
        git(root, "config", "user.name", "bench")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "base")
        base = git(root, "rev-parse", "HEAD").strip()
        started = time.perf_counter()
        all_tests = set(timed([BAZEL, "query", "tests(//...)", "--order_output=no"], root)[1].split())
        rule_count = len(timed([BAZEL, "query", "kind(rule, //...)", "--order_output=no"], root)[1].split())
        warmup = time.perf_counter() - started
        base_hashes = content_hashes(root)
        rng = random.Random(7)
        packages = [(layer, index) for layer in range(args.layers) for index in range(args.width)]
        results = {}
        for count in (1, 10, 100):
            git(root, "reset", "-q", "--hard", base)
            # One file: a leaf package's library in the bottom layer (the widest fan-out of a leaf).
            chosen = [(0, args.width // 2)] if count == 1 else rng.sample(packages, count)
            files = ["{}/lib.py".format(package_name(*p)) for p in chosen]
            for path in files:
                with open(os.path.join(root, path), "a") as handle:
                    handle.write("# changed\n")
            git(root, "commit", "-q", "-am", "change {}".format(count))
            floors = floor_commands(files)
            collect_command = [sys.executable, ENTRY, "collect", "--base", base, "--head", "HEAD",
                               "--tests-out", os.path.join(workdir, "tests.json"),
                               "--releases-out", os.path.join(workdir, "releases.json")]
            # Interleaved, so that both see the same state of the server and the machine; the first round
            # of each is not counted (the server has just seen the files change, and its JIT has not yet
            # compiled the code of either output format).
            floor_times, collect_times = [], []
            for _ in range(args.rounds + 1):
                floor_times.append(min(timed(floor, root)[0] for floor in floors))
                collect_times.append(timed(collect_command, root, env)[0])
            floor_times, collect_times = floor_times[1:], collect_times[1:]
            floor_s = statistics.median(floor_times)
            tests = {t["label"] for t in json.load(open(os.path.join(workdir, "tests.json")))["targets"]}
            releases = {t["label"] for t in json.load(open(os.path.join(workdir, "releases.json")))["targets"]}
            head_hashes = content_hashes(root)
            truth = {label for label, digest in head_hashes.items() if base_hashes.get(label) != digest}
            selected = tests | releases
            results[count] = {
                "collect_s": round(statistics.median(collect_times), 3),
                "floor_s": round(floor_s, 3),
                "ratio": round(statistics.median(collect_times) / floor_s, 3),
                "tests_selected": len(tests),
                "releases_selected": len(releases),
                "share_of_tests": round(len(tests) / len(all_tests), 4),
                "missed": len(truth - selected),
                "extra": len(selected - truth),
            }
            print("{:>3} files: collect {collect_s}s, floor {floor_s}s, ratio {ratio}; {tests_selected} tests "
                  "({share_of_tests:.2%}), {releases_selected} releases; against content hashes: missed {missed}, "
                  "extra {extra}".format(count, **results[count]), flush=True)
        # Global changes: .bazelrc options (one that changes no result; a test option: every test, no release),
        # a dependency bump and a WORKSPACE refactor that changes no repository.
        global_cases = {}
        for name, path, text in (
                ("bazelrc_ui_option", ".bazelrc", "build --announce_rc\nbuild --verbose_failures\n"),
                ("bazelrc_test_option", ".bazelrc", "build --announce_rc\ntest --test_env=LANG=C\n"),
                ("dependency_bump", "third_party/deps.json", lock_file(args.libraries, bumped=0)),
                ("workspace_refactor", "WORKSPACE",
                 open(os.path.join(root, "WORKSPACE")).read() + "\n# repositories\n")):
            git(root, "reset", "-q", "--hard", base)
            with open(os.path.join(root, path), "w") as handle:
                handle.write(text)
            git(root, "commit", "-q", "-am", name)
            elapsed, _ = timed([sys.executable, ENTRY, "collect", "--base", base, "--head", "HEAD",
                                "--tests-out", os.path.join(workdir, "tests.json"),
                                "--releases-out", os.path.join(workdir, "releases.json")], root, env)
            tests = json.load(open(os.path.join(workdir, "tests.json")))
            releases = json.load(open(os.path.join(workdir, "releases.json")))
            selected = {t["label"] for t in tests["targets"] + releases["targets"]}
            head_hashes = content_hashes(root)
            truth = {label for label, digest in head_hashes.items() if base_hashes.get(label) != digest}
            global_cases[name] = {"collect_s": round(elapsed, 3),
                                  "share_of_tests": round(len(tests["targets"]) / len(all_tests), 4),
                                  "releases_selected": len(releases["targets"]), "everything": tests["everything"],
                                  "missed": len(truth - selected), "extra": len(selected - truth)}
            print("{}: {} tests ({:.2%}), {} releases in {}s; against content hashes: missed {}, extra {}".format(
                name, len(tests["targets"]), global_cases[name]["share_of_tests"], len(releases["targets"]),
                global_cases[name]["collect_s"], global_cases[name]["missed"], global_cases[name]["extra"]), flush=True)
        # A BUILD edit that changes one test's definition: the exact answer is that test alone, where
        # selecting the whole package and its reverse dependencies would take many more.
        git(root, "reset", "-q", "--hard", base)
        package = package_name(0, args.width // 2)
        build_path = os.path.join(root, package, "BUILD")
        text = open(build_path).read().replace('srcs = ["lib_test.py"]', 'srcs = ["lib_test.py"], size = "small"')
        with open(build_path, "w") as handle:
            handle.write(text)
        git(root, "commit", "-q", "-am", "build edit")
        elapsed, _ = timed([sys.executable, ENTRY, "collect", "--base", base, "--head", "HEAD",
                            "--tests-out", os.path.join(workdir, "tests.json")], root, env)
        selected = {t["label"] for t in json.load(open(os.path.join(workdir, "tests.json")))["targets"]}
        answer = timed([BAZEL, "query", "tests(rdeps(//..., //{}:all))".format(package), "--order_output=no"], root)
        package_level = set(answer[1].split())
        build_edit = {"collect_s_cold_base_server": round(elapsed, 3), "tests_selected": len(selected),
                      "exact": selected == {"//{}:lib_test".format(package)},
                      "package_level_selection": len(package_level)}
        print("BUILD edit of one test: {} selected (exact: {}), a package-level selection would take {}; {}s "
              "including a cold Bazel server for the base revision".format(
                  len(selected), build_edit["exact"], len(package_level), build_edit["collect_s_cold_base_server"]))
        summary = {
            "benchmark": "collect",
            "packages": args.layers * args.width,
            "rule_targets": rule_count,
            "tests": len(all_tests),
            "warmup_s": round(warmup, 1),
            "ratio": results[1]["ratio"],
            "ratio_10": results[10]["ratio"],
            "ratio_100": results[100]["ratio"],
            "share_of_tests_1_leaf": results[1]["share_of_tests"],
            "missed": sum(r["missed"] for r in list(results.values()) + list(global_cases.values())),
            "by_change": results,
            "build_edit": build_edit,
            "global_changes": global_cases,
        }
        print(json.dumps(summary))
    finally:
        subprocess.run([BAZEL, "shutdown"], cwd=root, capture_output=True)
        base_checkouts = os.path.join(workdir, "cache", "releasekit", "base-checkouts")
        for name in os.listdir(base_checkouts) if os.path.isdir(base_checkouts) else []:
            subprocess.run([BAZEL, "shutdown"], cwd=os.path.join(base_checkouts, name), capture_output=True)
        if not os.environ.get("RELEASEKIT_BENCH_KEEP"):
            subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
