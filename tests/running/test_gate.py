"""The release gate on a fixture monorepo, with real Bazel, git, registry, stores and run history: a run publishes
only what passed its tests, in dependency order, in `ci`, `dispatch` and sharded runs; quarantine cannot hide a
regression; and a gate or quarantine setting that does not parse publishes nothing."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from helpers.releases import make_jar
from helpers.servers import REPO_ROOT
from helpers.workspace import git, rules_monorepo

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = ('load("@rules_release//rules:defs.bzl", "artifact_ci_release", "container_release", "deploy_release", '
        '"file_release", "image_layout", "jar_release")\n\n')
FLAKY_TEST = """#!/bin/sh
# While q.sh works: fails its first attempt, passes the second (the marker outlives the attempt). Once q.sh is
# broken: fails every attempt.
grep -q works "$(dirname "$0")/q.sh" || exit 1
marker="$FLAKY_MARKER_DIR/flaky"
if [ -e "$marker" ]; then exit 0; fi
touch "$marker"
exit 1
"""
FILES = {
    ".gitignore": "/bazel-*\n",
    # A library whose file an image in another package packages.
    "libs/lib/BUILD.bazel": 'exports_files(["lib.sh"])\n\nsh_test(name = "lib_test", srcs = ["lib_test.sh"], '
                            'data = ["lib.sh"])\n',
    "libs/lib/lib.sh": "#!/bin/sh\necho works\n",
    "libs/lib/lib_test.sh": '#!/bin/sh\ngrep -q works "$(dirname "$0")/lib.sh"\n',
    "apps/app/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"//libs/lib:lib.sh": "/lib.sh", '
                                   '"run.sh": "/run.sh"})\n\ncontainer_release(name = "app", image = ":image", '
                                   'repository = "gate/app", remote_tags = ["stable"], visibility = '
                                   '["//visibility:public"])\n',
    "apps/app/run.sh": "#!/bin/sh\n. /lib.sh\n",
    "apps/other/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"run.sh": "/run.sh"})\n\n'
                                     'container_release(name = "other", image = ":image", repository = "gate/other", '
                                     'remote_tags = ["stable"])\n\nsh_test(name = "other_test", srcs = '
                                     '["other_test.sh"], data = ["run.sh"])\n',
    "apps/other/run.sh": "#!/bin/sh\necho other\n",
    "apps/other/other_test.sh": '#!/bin/sh\ngrep -q other "$(dirname "$0")/run.sh"\n',
    "deploy/BUILD.bazel": LOAD + 'deploy_release(name = "app_deploy", manifests = ["app.yaml"], platform = "generic", '
                                 'images = {"app-image": "//apps/app"})\n',
    "deploy/app.yaml": "services:\n  - {name: app, image: app-image}\n",
    # A library a quarantined test tests, and the image that packages it.
    "libs/q/BUILD.bazel": 'exports_files(["q.sh"])\n\n# Reaches outside the sandbox (its marker): never cached.\n'
                          'sh_test(name = "flaky_test", srcs = ["flaky.sh"], data = ["q.sh"], tags = ["external"])\n',
    "libs/q/q.sh": "#!/bin/sh\necho works\n",
    "libs/q/flaky.sh": FLAKY_TEST,
    "apps/qapp/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"//libs/q:q.sh": "/q.sh"})\n\n'
                                    'container_release(name = "qapp", image = ":image", repository = "gate/qapp")\n',
    # Jars, the second depending on the first, and a release of another kind (a raw rule) that waits for the first.
    "jars/BUILD.bazel": LOAD + 'jar_release(name = "base", jar = "base.jar", coordinates = '
                               '"com.example.gate:base:1.0.0")\n\njar_release(name = "top", jar = "top.jar", '
                               'coordinates = "com.example.gate:top:1.0.0", deps = [":base"])\n\nfile_release(name = '
                               '"notes", src = "notes.txt")\n\nartifact_ci_release(name = "notes_after_base.ci", '
                               'artifact = ":notes", release_deps = [":base.ci"])\n',
    "jars/notes.txt": "release notes\n",
    # A library in another repository of the monorepo (a local_repository), tested here and packaged by an image.
    "corelib/WORKSPACE": 'workspace(name = "corelib")\n',
    "corelib/BUILD.bazel": 'exports_files(["core.sh"])\n',
    "corelib/core.sh": "#!/bin/sh\necho works\n",
    "libs/core/BUILD.bazel": 'sh_test(name = "core_test", srcs = ["core_test.sh"], data = ["@corelib//:core.sh"])\n',
    "libs/core/core_test.sh": '#!/bin/sh\ngrep -q works "$TEST_SRCDIR/corelib/core.sh"\n',
    "apps/coreapp/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"@corelib//:core.sh": "/core.sh"})\n\n'
                                      'container_release(name = "coreapp", image = ":image", repository = '
                                      '"gate/coreapp")\n',
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    def jars_and_markers(workspace):
        os.makedirs(os.path.join(workspace.path, "jars"), exist_ok=True)
        make_jar(os.path.join(workspace.path, "jars", "base.jar"), "base 1")
        make_jar(os.path.join(workspace.path, "jars", "top.jar"), "top 1")
        workspace.markers = str(tmp_path_factory.mktemp("gate-markers"))

    yield from rules_monorepo(tmp_path_factory, "gate", FILES, ['local_repository(name = "corelib", path = "corelib")'],
                              jars_and_markers)


def config(tmp_path, registry, namespace, extra=""):
    """A releasekit.yaml: the registry under its own namespace, directory stores under tmp_path."""
    stores = {kind: "file://{}".format(tmp_path / "stores" / kind) for kind in ("maven", "deploy", "files")}
    path = tmp_path / "releasekit.yaml"
    path.write_text("channels:\n  ci: {{registry: 'http://{0}/{1}', maven: '{2}', deploy: '{3}', files: '{4}'}}\n"
                    "  dev: {{registry: 'http://{0}/{1}-dev'}}\n{5}".format(
                        registry.host, namespace, stores["maven"], stores["deploy"], stores["files"], extra))
    return {"RELEASEKIT_CONFIG": str(path)}


def selection(tmp_path, name, labels, kind="tests"):
    path = tmp_path / name
    path.write_text(json.dumps({"format_version": 1, "kind": kind, "targets": [
        {"label": label, "kind": "sh_test" if kind == "tests" else "artifact_ci_release", "reasons": []}
        for label in labels]}))
    return str(path)


def outcomes_of(report):
    return {t["label"]: t for t in json.load(open(report))["targets"]}


def test_a_failing_library_test_holds_back_every_release_that_packages_the_library(repo, registry, tmp_path):
    """Hole 1. Before: `ci` held back only releases in the failing test's package, so the image that packages
    lib.sh from another package was published, `stable` and the deploy `latest` moved to the broken commit."""
    base = git(repo.path, "rev-parse", "HEAD").strip()
    repo.change({"libs/lib/lib.sh": "#!/bin/sh\necho broke\n", "apps/other/run.sh": "#!/bin/sh\necho other v2\n"},
                "break the library, change another app")
    env = config(tmp_path, registry, "hole1")

    # The default gate: all or nothing.
    result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--logs", str(tmp_path / "logs"), "--report",
                             str(tmp_path / "all.json"), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = outcomes_of(tmp_path / "all.json")
    assert outcomes["//libs/lib:lib_test"]["status"] == "failed"
    assert outcomes["//apps/other:other_test"]["status"] == "passed"
    held = "held back (gate all): 1 test of the run did not pass: //libs/lib:lib_test failed"
    assert {label: (o["status"], o["reason"]) for label, o in outcomes.items() if o["kind"] == "release"} == {
        label: ("held back", held) for label in ("//apps/app:app.ci", "//apps/other:other.ci",
                                                 "//deploy:app_deploy.ci")}
    assert "gate: all (all or nothing" in result.stdout and "chosen by default" in result.stdout
    assert "gate: 3 releases held back:" in result.stdout and "  //apps/app:app.ci: " + held in result.stdout
    assert not [name for name in registry.catalog() if name.startswith("hole1/")]
    assert not os.path.exists(tmp_path / "stores" / "deploy")
    report = json.load(open(tmp_path / "all.json"))
    assert report["gate"]["mode"] == "all" and report["gate"]["failing_tests"] == ["//libs/lib:lib_test"]

    # The narrower gate, from releasekit.yaml: the release that shares no dependency with the failing test runs.
    env = config(tmp_path, registry, "hole1", "gate: deps\n")
    result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--logs", str(tmp_path / "logs"), "--report",
                             str(tmp_path / "deps.json"), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gate: deps (by dependencies" in result.stdout
    assert "chosen by {}: gate".format(env["RELEASEKIT_CONFIG"]) in result.stdout
    outcomes = outcomes_of(tmp_path / "deps.json")
    shares = "held back (gate deps): //libs/lib:lib_test failed (shares //libs/lib:lib.sh)"
    assert outcomes["//apps/app:app.ci"]["reason"] == shares and outcomes["//deploy:app_deploy.ci"]["reason"] == shares
    assert outcomes["//apps/other:other.ci"]["status"] == "published"
    assert registry.image_tags("hole1/gate/other") == sorted([git(repo.path, "rev-parse", "HEAD").strip(), "stable"])
    assert registry.tags("hole1/gate/app") == [] and not os.path.exists(tmp_path / "stores" / "deploy")

    # --gate wins over the file.
    result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--gate", "all", "--logs", str(tmp_path / "logs"),
                             "--report", str(tmp_path / "flag.json"), env=env)
    assert "chosen by --gate" in result.stdout
    assert outcomes_of(tmp_path / "flag.json")["//apps/other:other.ci"]["reason"] == held
    repo.change({"libs/lib/lib.sh": FILES["libs/lib/lib.sh"]}, "mend the library")


def test_dispatch_publishes_only_what_passed_its_tests(repo, registry, tmp_path):
    """Hole 2. Before: `dispatch --tests ... --releases ...`, the README's first example, published whatever
    the tests said, and `dispatch --releases` alone published untested."""
    repo.change({"apps/other/run.sh": "#!/bin/sh\necho broke\n"}, "break the other app")
    env = config(tmp_path, registry, "hole2")
    tests = selection(tmp_path, "tests.json", ["//libs/lib:lib_test", "//apps/other:other_test"])
    releases = selection(tmp_path, "releases.json", ["//apps/app:app.ci", "//apps/other:other.ci"], "releases")
    result = repo.releasekit("dispatch", "--tests", tests, "--releases", releases, "--logs", str(tmp_path / "logs"),
                             env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = outcomes_of(tmp_path / "logs" / "report.json")
    assert outcomes["//apps/other:other_test"]["status"] == "failed"
    assert {outcomes[label]["status"] for label in ("//apps/app:app.ci", "//apps/other:other.ci")} == {"held back"}
    assert not [name for name in registry.catalog() if name.startswith("hole2/")]
    junit = ElementTree.parse(tmp_path / "logs" / "junit.xml").getroot()
    skipped = {c.get("name"): c.find("skipped").get("message")
               for s in junit for c in s if c.find("skipped") is not None}
    assert skipped == {label: "held back (gate all): 1 test of the run did not pass: //apps/other:other_test failed"
                       for label in ("//apps/app:app.ci", "//apps/other:other.ci")}

    alone = repo.releasekit("dispatch", "--releases", releases, "--logs", str(tmp_path / "alone"), env=env)
    assert alone.returncode == 2 and "pass --tests" in alone.stderr and "Traceback" not in alone.stderr
    assert not os.path.exists(tmp_path / "alone") and not [n for n in registry.catalog() if n.startswith("hole2/")]
    repo.change({"apps/other/run.sh": FILES["apps/other/run.sh"]}, "mend the other app")


def test_the_deps_gate_follows_what_build_files_name_into_other_repositories(repo, registry, tmp_path):
    """A library of another repository that a failing test tests and an image packages is a shared dependency; the
    rules' own machinery there (test runners, the release rules' tools), which every test and release has, is not.
    Before: only this repository's targets counted, and the image was published."""
    repo.change({"corelib/core.sh": "#!/bin/sh\necho broke\n"}, "break the other repository's library")
    env = config(tmp_path, registry, "external", "gate: deps\n")
    tests = selection(tmp_path, "tests.json", ["//libs/core:core_test", "//apps/other:other_test"])
    releases = selection(tmp_path, "releases.json", ["//apps/coreapp:coreapp.ci", "//apps/other:other.ci"], "releases")
    result = repo.releasekit("dispatch", "--tests", tests, "--releases", releases, "--logs", str(tmp_path / "logs"),
                             env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = outcomes_of(tmp_path / "logs" / "report.json")
    assert outcomes["//libs/core:core_test"]["status"] == "failed"
    assert outcomes["//apps/coreapp:coreapp.ci"]["reason"] == ("held back (gate deps): //libs/core:core_test failed "
                                                               "(shares @corelib//:core.sh)")
    assert outcomes["//apps/other:other.ci"]["status"] == "published"
    assert registry.tags("external/gate/coreapp") == [] and registry.tags("external/gate/other")
    repo.change({"corelib/core.sh": FILES["corelib/core.sh"]}, "mend it")


def test_a_quarantined_test_cannot_hide_a_regression(repo, registry, tmp_path):
    """Hole 3. Before: a test quarantined after real flakes that then failed every attempt left CI green and its
    releases publishing, and a `pr` run at the same commit made its failure count as one more flake."""
    history = "file://{}".format(tmp_path / "history")
    env = config(tmp_path, registry, "hole3",
                 "history: '{}'\nauto_quarantine: {{flakes: 2, window: 10, clean_runs: 2}}\n"
                 .format(history))
    tests = selection(tmp_path, "tests.json", ["//libs/q:flaky_test", "//apps/other:other_test"])
    releases = selection(tmp_path, "releases.json", ["//apps/qapp:qapp.ci", "//apps/other:other.ci"], "releases")
    flags = ["--", "--test_env=FLAKY_MARKER_DIR=" + repo.markers]
    marker = os.path.join(repo.markers, "flaky")

    def dispatch(name, *args, command="dispatch"):
        if os.path.exists(marker):
            os.unlink(marker)
        selected = ["--tests", tests] if command == "dispatch" else []
        result = repo.releasekit(command, *selected, "--quarantine", "auto", "--flaky-test-attempts", "2", "--logs",
                                 str(tmp_path / name), *args, *flags, env=env)
        return result, outcomes_of(tmp_path / name / "report.json")

    for number in (1, 2):  # it flakes twice: quarantined from the third run on
        result, outcomes = dispatch("run{}".format(number))
        assert result.returncode == 0 and outcomes["//libs/q:flaky_test"]["status"] == "flaky", result.stdout
    broken_at = repo.change({"libs/q/q.sh": "#!/bin/sh\necho broke\n"}, "break q")

    # Every attempt fails: a failure (in the report, in JUnit), quarantined (the run stays green), and the release
    # that packages what it tests is held back; the other, by the deps gate, publishes.
    result, outcomes = dispatch("run3", "--releases", releases, "--gate", "deps")
    assert result.returncode == 0, result.stdout + result.stderr
    flaky = outcomes["//libs/q:flaky_test"]
    assert flaky["status"] == "failed" and flaky["quarantined"] and flaky["attempts"] == 2
    assert outcomes["//apps/qapp:qapp.ci"]["status"] == "held back"
    assert outcomes["//apps/qapp:qapp.ci"]["reason"] == ("held back (gate deps): //libs/q:flaky_test failed "
                                                         "(quarantined) (shares //libs/q:q.sh)")
    assert outcomes["//apps/other:other.ci"]["status"] == "published"
    failure = [c for s in ElementTree.parse(tmp_path / "run3" / "junit.xml").getroot() for c in s
               if c.get("name") == "//libs/q:flaky_test"][0].find("failure")
    assert failure is not None and failure.get("type") == "failed (quarantined)"
    assert "failed every attempt, at 1 consecutive commit (broken at 2)" in result.stdout
    assert registry.tags("hole3/gate/qapp") == []

    # A pull request's run of an uncommitted fix at the same commit is not a run of that commit.
    repo.write("libs/q/q.sh", "#!/bin/sh\necho works, mended in a pull request\n", executable=True)
    result, outcomes = dispatch("pr", "--base", broken_at, command="pr")
    assert outcomes["//libs/q:flaky_test"]["status"] in ("passed", "flaky"), result.stdout + result.stderr
    git(repo.path, "checkout", "--", "libs/q/q.sh")

    # The next commit fails every attempt too: broken, not flaky. Out of quarantine, and the run fails.
    repo.change({"libs/q/q.sh": "#!/bin/sh\necho broke again\n"}, "still broken")
    result, outcomes = dispatch("run4", "--releases", releases, "--gate", "deps")
    assert result.returncode == 1, result.stdout + result.stderr
    flaky = outcomes["//libs/q:flaky_test"]
    assert flaky["status"] == "failed" and not flaky["quarantined"]
    assert flaky["reason"].startswith("broken, not flaky: failed every attempt at 2 consecutive commits")
    assert outcomes["//apps/qapp:qapp.ci"]["status"] == "held back" and registry.tags("hole3/gate/qapp") == []
    decision = {d["label"]: d for d in json.load(open(tmp_path / "run4" / "report.json"))["quarantine"]}
    assert decision["//libs/q:flaky_test"]["broken"] and not decision["//libs/q:flaky_test"]["quarantined"]

    # The history shows it: each run green or red, the held-back release with its reason, the test in red.
    out = tmp_path / "insight.html"
    insight = subprocess.run([sys.executable, ENTRY, "insight", "--history", history, "--out", str(out), "--json",
                              str(tmp_path / "insight.json")], capture_output=True, text=True, timeout=300)
    assert insight.returncode == 0, insight.stdout + insight.stderr
    figures = json.load(open(tmp_path / "insight.json"))
    assert [r["red"] for r in figures["outcomes"]["per_run"]] == [False, False, False, False, True]
    assert figures["periods"] == ["run"] and figures["outcomes"]["held_back"]["releases"] == 2
    assert {h["release"] for h in figures["outcomes"]["held_back"]["recent"]} == {"//apps/qapp:qapp.ci"}
    shown = {t["label"]: t for t in figures["flaky"]["tests"]}["//libs/q:flaky_test"]
    assert shown["broken"] and shown["failing_at_last_runs"] == 2 and shown["last_statuses"][-2:] == ["failed",
                                                                                                      "failed"]
    page = out.read_text()
    assert "<tr class='red'><td>//libs/q:flaky_test</td>" in page
    assert "held back (gate deps): //libs/q:flaky_test" in page
    assert os.stat(out).st_mode & 0o777 == 0o644
    repo.change({"libs/q/q.sh": FILES["libs/q/q.sh"]}, "mend q")


def test_a_release_whose_dependency_release_did_not_publish_is_held_back(repo, registry, tmp_path):
    """Hole 4. Before: jar releases did not wait for their deps, so a jar whose dependency release was refused in
    the same run was published (and Maven resolved an app that failed with NoSuchMethodError)."""
    env = config(tmp_path, registry, "hole4")
    tests = selection(tmp_path, "tests.json", ["//apps/other:other_test"])
    base_only = selection(tmp_path, "base.json", ["//jars:base.ci"], "releases")
    first = repo.releasekit("dispatch", "--tests", tests, "--releases", base_only, "--logs", str(tmp_path / "one"),
                            env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    make_jar(os.path.join(repo.path, "jars", "base.jar"), "base 2: other classes, the same version")
    make_jar(os.path.join(repo.path, "jars", "top.jar"), "top 2")
    repo.commit("new jars, base's version unchanged")
    releases = selection(tmp_path, "releases.json", ["//jars:base.ci", "//jars:top.ci", "//jars:notes_after_base.ci"],
                         "releases")
    result = repo.releasekit("dispatch", "--tests", tests, "--releases", releases, "--logs", str(tmp_path / "two"),
                             env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = outcomes_of(tmp_path / "two" / "report.json")
    assert outcomes["//jars:base.ci"]["status"] == "refused", outcomes["//jars:base.ci"]
    for label in ("//jars:top.ci", "//jars:notes_after_base.ci"):
        assert outcomes[label]["status"] == "held back"
        assert outcomes[label]["reason"] == "held back: its dependency //jars:base.ci (refused) did not publish"
    # The report's gate lists them too: every release the run held back, with its reason.
    assert json.load(open(tmp_path / "two" / "report.json"))["gate"]["held_back"] == {
        label: "held back: its dependency //jars:base.ci (refused) did not publish"
        for label in ("//jars:top.ci", "//jars:notes_after_base.ci")}
    maven = tmp_path / "stores" / "maven" / "com" / "example" / "gate"
    assert os.listdir(maven) == ["base"] and not os.path.exists(tmp_path / "stores" / "files")
    git(repo.path, "checkout", "HEAD~1", "--", "jars/base.jar", "jars/top.jar")
    repo.commit("the jars as released")


def test_release_shards_learn_the_test_shards_outcome(repo, registry, tmp_path):
    """A release shard publishes only when every test shard's report of its commit says the tests passed; a release
    and the releases it depends on share a shard. Before: release shards had no gate at all."""
    env = config(tmp_path, registry, "shards")
    tests = selection(tmp_path, "tests.json", ["//libs/lib:lib_test", "//apps/other:other_test"])
    releases = selection(tmp_path, "releases.json", ["//apps/app:app.ci", "//apps/other:other.ci", "//jars:base.ci",
                                                     "//jars:top.ci"], "releases")

    def test_shards(reports, selected=tests):
        for index in (1, 2):
            result = repo.releasekit("dispatch", "--tests", selected, "--shard", "{}/2".format(index), "--logs",
                                     str(tmp_path / "logs"), "--report",
                                     str(reports / "report-tests-{}.json".format(index)), env=env)
            assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr

    def release_shards(name, *args, gated=("--tests-selection", tests)):
        results = []
        for index in (1, 2):
            report = tmp_path / "{}-{}.json".format(name, index)
            results.append((repo.releasekit("dispatch", "--releases", releases, "--shard", "{}/2".format(index), *args,
                                            *gated, "--logs", str(tmp_path / "logs"), "--report", str(report), env=env),
                            outcomes_of(report) if report.exists() else None))
        return results

    # No --test-reports, or reports without the selection they must cover: refused before anything runs.
    for result, outcomes in release_shards("blind"):
        assert result.returncode == 2 and "pass --test-reports DIR" in result.stderr and outcomes is None
    for result, outcomes in release_shards("unchecked", "--test-reports", str(tmp_path), gated=()):
        assert result.returncode == 2 and "pass --tests-selection FILE" in result.stderr and outcomes is None

    # A failing test in one shard holds back every release of every release shard.
    repo.change({"libs/lib/lib.sh": "#!/bin/sh\necho broke\n"}, "break the library")
    failing = tmp_path / "failing"
    failing.mkdir()
    test_shards(failing)
    for result, outcomes in release_shards("failing", "--test-reports", str(failing)):
        assert result.returncode == 1, result.stdout + result.stderr
        assert {o["status"] for o in outcomes.values()} == {"held back"}
        assert all("//libs/lib:lib_test failed" in o["reason"] for o in outcomes.values())

    # Reports of another commit, or of one shard of two, say nothing of this commit's tests.
    repo.change({"libs/lib/lib.sh": FILES["libs/lib/lib.sh"]}, "mend the library")
    for result, outcomes in release_shards("stale", "--test-reports", str(failing)):
        assert result.returncode == 1 and {o["status"] for o in outcomes.values()} == {"held back"}
        assert all("tested commit" in o["reason"] and "not this run's" in o["reason"] for o in outcomes.values())
    passing = tmp_path / "passing"
    passing.mkdir()
    test_shards(passing)
    one = tmp_path / "one"
    one.mkdir()
    os.link(passing / "report-tests-1.json", one / "report-tests-1.json")
    for result, outcomes in release_shards("one", "--test-reports", str(one)):
        assert result.returncode == 1 and {o["status"] for o in outcomes.values()} == {"held back"}
        assert all("shards 1 of 2 (missing: 2)" in o["reason"] for o in outcomes.values())
    assert not [name for name in registry.catalog() if name.startswith("shards/")]

    # Reports of a narrower selection at this commit, which passed, say nothing of the library's test.
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    test_shards(narrow, selection(tmp_path, "narrow.json", ["//apps/other:other_test"]))
    for result, outcomes in release_shards("narrow", "--test-reports", str(narrow)):
        assert result.returncode == 1 and {o["status"] for o in outcomes.values()} == {"held back"}
        assert all("the reports did not run 1 of the 2 tests of --tests-selection {}: //libs/lib:lib_test".format(tests)
                   in o["reason"] for o in outcomes.values()), outcomes
    assert not [name for name in registry.catalog() if name.startswith("shards/")]

    # Every test shard passed: each release shard publishes its share; the jar and its dependency share one.
    shares = []
    for result, outcomes in release_shards("passing", "--test-reports", str(passing)):
        assert result.returncode == 0, result.stdout + result.stderr
        assert {o["status"] for o in outcomes.values()} == {"published"}
        shares.append(set(outcomes))
    assert shares[0] | shares[1] == {"//apps/app:app.ci", "//apps/other:other.ci", "//jars:base.ci", "//jars:top.ci"}
    assert any({"//jars:base.ci", "//jars:top.ci"} <= share for share in shares) and not shares[0] & shares[1]


@pytest.mark.parametrize("args, yaml, message", [
    (["--gate", "dep"], "", "argument --gate: invalid choice: 'dep'"),
    ([], "gate: sometimes\n", "gate 'sometimes' is not a gate. Use all"),
    ([], "auto_quarantine: {broken_after: 0}\n", "auto_quarantine.broken_after is 0"),
    (["--flaky-test-attempts", "0"], "", "--flaky-test-attempts 0 must be at least 1"),
    (["--quarantine", "missing.txt"], "", "Cannot read the quarantine file missing.txt (--quarantine)"),
    (["--quarantine", "auto"], "", "--quarantine auto reads the run history, and none is set"),
])
def test_a_gate_or_quarantine_setting_that_does_not_parse_is_a_usage_error(repo, registry, tmp_path, args, yaml,
                                                                           message):
    base = git(repo.path, "rev-list", "--max-parents=0", "HEAD").strip()
    result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--logs", str(tmp_path / "logs"), *args,
                             env=config(tmp_path, registry, "badoption", yaml))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "logs")  # nothing ran: no collect, no test, no release
    assert not [name for name in registry.catalog() if name.startswith("badoption/")]


def test_test_reports_tell_the_outcome_only_when_they_are_every_shard_of_this_commit(tmp_path):
    """What a release shard accepts as its commit's tests' outcome, and the reason it gives when it does not."""
    from releasekit.core.versioning import SourceVersion
    from releasekit.running.run_report import Outcome, write_report
    from releasekit.running.tests_outcome import UnknownOutcome, facts_of_test_run, read_test_reports

    commit, tests = "c" * 40, ["//a:one_test", "//b:two_test", "//c:three_test"]
    clean = SourceVersion(commit, False, "ci")

    def reports(name, shards, version=clean, selection=tests, extra=None):
        directory = tmp_path / name
        directory.mkdir()
        for index, share in shards.items():
            outcomes = [Outcome(label, "test", "failed" if label == "//b:two_test" else "passed") for label in share]
            shard = "{}/2".format(index) if index else None
            write_report(str(directory / "report-tests-{}.json".format(index)), outcomes,
                         {"test_run": facts_of_test_run(selection, shard, version)})
        for file_name, content in (extra or {}).items():
            (directory / file_name).write_text(content)
        return str(directory)

    complete = reports("complete", {1: tests[:2], 2: tests[2:]})
    outcomes = read_test_reports(complete, commit)
    assert sorted((o.label, o.status) for o in outcomes) == [
        ("//a:one_test", "passed"), ("//b:two_test", "failed"), ("//c:three_test", "passed")]
    assert [o.label for o in read_test_reports(reports("unsharded", {0: tests}), commit)] == tests
    for name, kwargs, why in [
        ("missing", {"shards": {2: tests[2:]}}, "the reports are shards 2 of 2 (missing: 1)"),
        ("dirty", {"shards": {1: tests[:2], 2: tests[2:]}, "version": SourceVersion(commit, True, "ci")},
         "tested a tree with uncommitted changes"),
        ("other", {"shards": {1: tests[:2], 2: tests[2:]}, "version": SourceVersion("d" * 40, False, "ci")},
         "tested commit dddddddddddd"),
        ("short", {"shards": {1: tests[:1], 2: tests[2:]}}, "the reports list 2 tests; their selection has 3"),
        ("release", {"shards": {1: tests[:2], 2: tests[2:]},
                     "extra": {"report-releases-1.json": json.dumps({"format_version": 1, "targets": [],
                                                                     "test_run": None})}},
         "report-releases-1.json is not the report of a run that tested (it has no test_run)"),
        ("foreign", {"shards": {1: tests[:2], 2: tests[2:]}, "extra": {"x.json": "[1, 2]"}},
         "x.json is not the report of a run that tested"),
    ]:
        with pytest.raises(UnknownOutcome, match=why.replace("(", r"\(").replace(")", r"\)")):
            read_test_reports(reports(name, **kwargs), commit)
    with pytest.raises(UnknownOutcome, match="does not exist"):
        read_test_reports(str(tmp_path / "nowhere"), commit)
    mixed = reports("mixed", {1: tests[:2]}, selection=tests)
    write_report(os.path.join(mixed, "report-tests-2.json"), [Outcome(tests[2], "test", "passed")],
                 {"test_run": facts_of_test_run(tests[1:], "2/2", clean)})
    with pytest.raises(UnknownOutcome, match="different test selections"):
        read_test_reports(mixed, commit)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_releases_that_depend_on_each_other_share_a_shard_and_every_release_lands_once(count):
    from releasekit.running.sharding import shard_groups

    groups = [["//j:base.ci", "//j:top.ci", "//j:app.ci"], ["//d:deploy.ci", "//i:image.ci"]]
    groups += [["//s{}:r.ci".format(i)] for i in range(9)]
    durations = {"//j:base.ci": 5.0, "//s3:r.ci": 9.0}
    parts = [shard_groups(groups, index, count, durations) for index in range(1, count + 1)]
    flat = [label for part in parts for label in part]
    assert sorted(flat) == sorted(label for group in groups for label in group) and len(flat) == len(set(flat))
    for group in groups:
        assert sum(set(group) <= set(part) for part in parts) == 1, group
