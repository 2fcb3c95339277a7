"""The replayed monorepo and its history of commits, generated from a seed.

Services (each: a library, sleeping tests made by a macro, an image, a container_release, a deploy_release; every
sixth a jar_release of a Java client), shared libraries used by many services, a `.bzl` macro, third-party
libraries as an external repository that a repository rule generates from a lock file, a `.bazelrc`, docs.
Test durations are lognormal (median 0.6 s, sigma 1.0, cut to 0.1-20 s): mostly short, a long tail. Tests
sleep rather than work, so the figures measure the CI's shape, not this machine's two cores; the `.bazelrc` runs
eight at a time.
"""

import json
import math
import os
import random
import subprocess

from helpers.workspace import Workspace

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_LIBRARIES = 4
THIRD_PARTY = 8
TESTS_PER_SERVICE = 2
JAR_EVERY = 6
# The mix of change kinds the history is drawn from: weights, and what each does.
MIX = {
    "service source": (30, "a comment line in one service's library"),
    "shared library": (10, "one shared library that several services use"),
    "BUILD edit": (10, "one test's duration in a service's BUILD file"),
    ".bzl edit": (8, "the test macro: a refactor with identical expansion, or (one time in three) a new attribute"),
    "dependency bump": (10, "one third-party library's version in the lock file"),
    "config change": (10,
                      "`.bazelrc` (an option that changes no result, or `test --test_env`) or a WORKSPACE refactor"),
    "multi-service": (12, "three services' libraries at once"),
    "docs only": (10, "the docs"),
}

LOCK_RULE = '''def _locked_libraries_impl(rctx):
    build = []
    for name, version in json.decode(rctx.read(rctx.attr.lock)).items():
        rctx.file(name + ".sh", "# %s %s\\n" % (name, version))
        build.append('sh_library(name = "%s", srcs = ["%s.sh"], visibility = ["//visibility:public"])' % (name, name))
    rctx.file("BUILD.bazel", "\\n".join(build) + "\\n")

locked_libraries = repository_rule(implementation = _locked_libraries_impl, attrs = {"lock": attr.label()})
'''

MACRO = '''"""The services' test macro: one sleeping sh_test per entry of `tests` (name: seconds)."""

def service_tests(name, tests, deps):
    """Declares the tests of a service.

    Args:
      name: unused; the tests are named by `tests`.
      tests: test name to the seconds it sleeps.
      deps: what every test depends on.
    """
    for test, seconds in tests.items():
        native.sh_test(
            name = test,
            srcs = ["//tools:sleep_test.sh"],
            args = [seconds],
            deps = deps,
{extra}        )
'''

SLEEP_TEST = "#!/bin/sh\n# A test that takes the seconds it is given, sleeping.\nsleep \"$1\"\n"


class Monorepo:
    def __init__(self, root, services, seed):
        self.root, self.services, self.rng = root, services, random.Random(seed)
        self.durations = {}  # "svcNN": {test: seconds}
        self.uses = {}  # "svcNN": [shared library indices]
        self.lock = {"lib{}".format(i): "1.0.0" for i in range(THIRD_PARTY)}
        self.macro_version = 0
        self.counter = 0

    def write(self, path, text, executable=False):
        Workspace(self.root).write(path, text, executable)

    def read(self, path):
        with open(os.path.join(self.root, path)) as handle:
            return handle.read()

    def append(self, path, line):
        self.write(path, self.read(path) + line + "\n")

    def duration(self):
        return round(min(20.0, max(0.1, self.rng.lognormvariate(math.log(0.6), 1.0))), 1)

    def generate(self):
        self.write("WORKSPACE", 'workspace(name = "replay")\n\nlocal_repository(name = "rules_release", path = '
                                '"{}")\n\nload("//third_party:lock.bzl", "locked_libraries")\n\n'
                                'locked_libraries(name = "deps", lock = "//third_party:deps.json")\n'.format(REPO_ROOT))
        self.write(".gitignore", "/bazel-*\n/releasekit-logs/\n")
        # The tests sleep: eight at a time whatever the cores, as a team with IO-bound tests would set it.
        # Eight at a time: --local_test_jobs alone leaves them at --jobs, whose default is one per core.
        self.write(".bazelrc", "build --announce_rc\nbuild --jobs=8\ntest --local_test_jobs=8\n")
        self.write("third_party/BUILD.bazel", 'exports_files(["deps.json"])\n')
        self.write("third_party/lock.bzl", LOCK_RULE)
        self.write_lock()
        self.write("tools/BUILD.bazel", 'exports_files(["sleep_test.sh", "javac_jar.sh", "service.bzl"])\n')
        self.write("tools/sleep_test.sh", SLEEP_TEST, executable=True)
        with open(os.path.join(REPO_ROOT, "examples", "tools", "javac_jar.sh")) as handle:
            self.write("tools/javac_jar.sh", handle.read(), executable=True)
        self.write_macro()
        self.write("docs/README.md", "# The replayed monorepo\n")
        for index in range(SHARED_LIBRARIES):
            package = "libs/shared{}".format(index)
            third_party = ['"@deps//:lib{}"'.format((index * 2 + k) % THIRD_PARTY) for k in range(2)]
            self.write(package + "/lib.sh", "# shared library {}\n".format(index))
            self.write(package + "/BUILD.bazel", (
                'exports_files(["lib.sh"])\n\n'
                'sh_library(name = "lib", srcs = ["lib.sh"], deps = [{}], visibility = ["//visibility:public"])\n\n'
                'sh_test(name = "lib_test", srcs = ["//tools:sleep_test.sh"], args = ["{}"], deps = [":lib"])\n'
            ).format(", ".join(third_party), self.duration()))
        for index in range(self.services):
            self.write_service(index)

    def write_lock(self):
        self.write("third_party/deps.json", json.dumps(self.lock, indent=1, sort_keys=True) + "\n")

    def write_macro(self):
        extra = '            size = "small",\n' if self.macro_version % 3 == 2 else ""
        self.write("tools/service.bzl", MACRO.replace("{extra}", extra) + "# revision {}\n".format(self.macro_version))

    def service_name(self, index):
        return "svc{:02d}".format(index)

    def write_service(self, index):
        name = self.service_name(index)
        package = "services/" + name
        if name not in self.durations:
            self.durations[name] = {"{}_test{}".format(name, k): self.duration() for k in range(TESTS_PER_SERVICE)}
            self.uses[name] = sorted(self.rng.sample(range(SHARED_LIBRARIES), 2))
            self.write(package + "/lib.sh", "# service {}\n".format(name))
            self.write(package + "/run.sh", "#!/bin/sh\nexec /app/lib.sh\n", executable=True)
            self.write(package + "/deploy.yaml", "service: {}\nimage: svc-image\nreplicas: 2\n".format(name))
            if index % JAR_EVERY == 0:
                self.write(package + "/client/Client.java", "package replay;\npublic class Client {{ String name() {{ "
                                                            "return \"{}\"; }} }}\n".format(name))
        shared = ["//libs/shared{}:lib".format(i) for i in self.uses[name]]
        files = {"run.sh": "/app/run.sh", "lib.sh": "/app/lib.sh"}
        files.update({"//libs/shared{}:lib.sh".format(i): "/app/shared{}.sh".format(i) for i in self.uses[name]})
        build = [
            'load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout", '
            '"jar_release")',
            'load("//tools:service.bzl", "service_tests")',
            'sh_library(name = "lib", srcs = ["lib.sh"], deps = [{}])'.format(
                ", ".join('"{}"'.format(s) for s in shared)),
            'service_tests(\n    name = "tests",\n    tests = {{\n{}    }},\n    deps = [":lib"],\n)'.format("".join(
                '        "{}": "{}",\n'.format(t, s) for t, s in sorted(self.durations[name].items()))),
            ('image_layout(\n    name = "image",\n    entrypoint = ["/app/run.sh"],\n    files = {{\n{}    }},\n'
             ')').format(
                "".join('        "{}": "{}",\n'.format(k, v) for k, v in sorted(files.items()))),
            'container_release(name = "{0}", image = ":image", repository = "replay/{0}")'.format(name),
            'deploy_release(name = "deploy", images = {{"svc-image": ":{}"}}, manifests = ["deploy.yaml"], '
            'platform = "generic")'.format(name),
        ]
        if index % JAR_EVERY == 0:
            build += ['genrule(name = "client_jar", srcs = ["client/Client.java"], outs = ["client.jar"], '
                      'cmd = "$(location //tools:javac_jar.sh) $@ \'\' $(SRCS)", tools = ["//tools:javac_jar.sh"])',
                      'jar_release(name = "client", coordinates = "com.example.replay:{}-client", jar = ":client_jar")'
                      .format(name)]
        self.write(package + "/BUILD.bazel", "\n\n".join(build) + "\n")

    # -- the history ------------------------------------------------------------------------

    def change(self, kind):
        """Apply one change of this kind to the tree; returns what it did, for the commit message."""
        self.counter += 1
        rng = self.rng
        if kind == "service source":
            name = self.service_name(rng.randrange(self.services))
            self.append("services/{}/lib.sh".format(name), "# change {}".format(self.counter))
            return "change {}'s library".format(name)
        if kind == "shared library":
            index = rng.randrange(SHARED_LIBRARIES)
            self.append("libs/shared{}/lib.sh".format(index), "# change {}".format(self.counter))
            return "change shared library {}".format(index)
        if kind == "BUILD edit":
            index = rng.randrange(self.services)
            name = self.service_name(index)
            test = rng.choice(sorted(self.durations[name]))
            self.durations[name][test] = self.duration()
            self.write_service(index)
            return "{}: {} now takes {} s".format(name, test, self.durations[name][test])
        if kind == ".bzl edit":
            self.macro_version += 1
            self.write_macro()
            return "test macro revision {}{}".format(self.macro_version,
                                                     " (size = small)" if self.macro_version % 3 == 2
                                                       else " (a refactor: same expansion)")
        if kind == "dependency bump":
            library = "lib{}".format(rng.randrange(THIRD_PARTY))
            major, minor, patch = self.lock[library].split(".")
            self.lock[library] = "{}.{}.{}".format(major, minor, int(patch) + 1)
            self.write_lock()
            return "bump {} to {}".format(library, self.lock[library])
        if kind == "config change":
            choice = self.counter % 3
            if choice == 0:
                self.append(".bazelrc", "build --verbose_failures  # change {}".format(self.counter))
                return ".bazelrc: build --verbose_failures (changes no result)"
            if choice == 1:
                self.append(".bazelrc", "test --test_env=REPLAY_LEVEL={}".format(self.counter))
                return ".bazelrc: test --test_env (every test)"
            self.append("WORKSPACE", "# a WORKSPACE refactor {}".format(self.counter))
            return "WORKSPACE: a comment (changes no repository)"
        if kind == "multi-service":
            names = [self.service_name(i) for i in sorted(rng.sample(range(self.services), 3))]
            for name in names:
                self.append("services/{}/lib.sh".format(name), "# change {}".format(self.counter))
            return "change " + ", ".join(names)
        self.append("docs/README.md", "A note {}.".format(self.counter))
        return "docs"

    def kinds(self, count):
        """`count` change kinds in MIX's proportions (largest remainders, so every kind with a weight appears in a
        history long enough for it), in a random order."""
        total = sum(weight for weight, _ in MIX.values())
        shares = {name: count * weight / total for name, (weight, _) in MIX.items()}
        counts = {name: int(share) for name, share in shares.items()}
        for name in sorted(shares, key=lambda n: (counts[n] - shares[n], n))[:count - sum(counts.values())]:
            counts[name] += 1
        kinds = sorted(name for name, number in counts.items() for _ in range(number))
        self.rng.shuffle(kinds)
        return kinds


def git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def make_history(root, services, commits, seed):
    """Generate the monorepo and its history under git; [(sha, kind, description)], the first the initial tree."""
    repo = Monorepo(root, services, seed)
    os.makedirs(root)
    repo.generate()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "replay@example.com")
    git(root, "config", "user.name", "Replay")
    history = []
    timestamp = 1790000000

    def commit(kind, message):
        nonlocal timestamp
        timestamp += 600
        git(root, "add", "-A")
        env = dict(os.environ, GIT_AUTHOR_DATE="@{} +0000".format(timestamp),
                   GIT_COMMITTER_DATE="@{} +0000".format(timestamp))
        subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, env=env, check=True)
        history.append((git(root, "rev-parse", "HEAD"), kind, message))

    commit("initial", "the monorepo")
    for kind in repo.kinds(commits):
        commit(kind, repo.change(kind))
    return history, repo
