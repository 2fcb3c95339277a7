#!/usr/bin/env python3
"""Jar publishing: releasekit against `mvn deploy:deploy-file`, to the same nginx PUT store.

A 50 MB jar (random content, stored) is published as a fresh release version by each
tool, alternating which goes first, median of --rounds; both upload the jar, a pom and checksums, then
maven-metadata.xml. Maven's plugins are resolved once before timing starts. Ends with
one JSON line; `ratio` = releasekit / Maven. Target: ratio <= 0.5.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from helpers import releases
from helpers.servers import NginxStore

USER, PASSWORD = "deployer", "bench-password"
DEPLOY_FILE = "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file"


def make_big_jar(path, megabytes):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        archive.writestr("data/random.bin", os.urandom(megabytes << 20))
    return path


def timed(command, env=None, cwd=None):
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit("benchmark: {} failed:\n{}{}".format(command[0], result.stdout[-2000:], result.stderr[-2000:]))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-maven-")
    store = NginxStore(os.path.join(workdir, "nginx"), USER, PASSWORD)
    try:
        jar = make_big_jar(os.path.join(workdir, "big.jar"), args.megabytes)
        settings = os.path.join(workdir, "settings.xml")
        with open(settings, "w") as handle:
            handle.write(
                "<settings><servers><server><id>store</id><username>{}</username><password>{}</password></server>"
                "</servers><mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf>"
                "<url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>\n".format(USER, PASSWORD))
        local_repo = os.path.join(workdir, "m2")

        def maven(version):
            return ["mvn", "-B", "-q", "-s", settings, "-Dmaven.repo.local=" + local_repo, DEPLOY_FILE,
                    "-Durl={}/releases".format(store.url), "-DrepositoryId=store", "-Dfile=" + jar,
                    "-DgroupId=com.example.bench", "-DartifactId=maven", "-Dversion=" + version, "-Dpackaging=jar",
                    "-DgeneratePom=true"]

        timed(maven("0.0.1"))  # resolves the deploy plugin into the local repository, untimed
        config = releases.write_store_config(os.path.join(workdir, "releasekit.yaml"),
                                             store.url + "/releases", store.url + "/snapshots")
        ours, theirs = [], []
        for round_index in range(args.rounds):
            version = "1.0.{}".format(round_index)
            manifest, runfiles = releases.jar_release(os.path.join(workdir, "rk{}".format(round_index)), jar,
                                                      "com.example.bench:releasekit:" + version)
            env = dict(os.environ, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_COMMIT=releases.COMMIT,
                       RELEASEKIT_DIRTY="false",
                       RELEASEKIT_MAVEN_USERNAME=USER, RELEASEKIT_MAVEN_PASSWORD=PASSWORD)
            ours_command = [sys.executable, releases.ENTRY, "publish", "--manifest", manifest, "--runfiles", runfiles]
            runs = [lambda command=ours_command, env=env: ours.append(timed(command, env)),
                    lambda version=version: theirs.append(timed(maven(version)))]
            for run in runs if round_index % 2 == 0 else reversed(runs):  # who goes first alternates
                run()
        for tool in ("releasekit", "maven"):
            for round_index in range(args.rounds):
                jar_path = store.path("releases/com/example/bench/{0}/1.0.{1}/{0}-1.0.{1}.jar".format(tool,
                                                                                                      round_index))
                assert os.path.getsize(jar_path) == os.path.getsize(jar), jar_path
        result = {
            "benchmark": "maven",
            "jar_mb": args.megabytes,
            "releasekit_s": round(statistics.median(ours), 3),
            "maven_s": round(statistics.median(theirs), 3),
            "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
            "rounds": args.rounds,
        }
        print("releasekit {releasekit_s}s, mvn deploy:deploy-file {maven_s}s, ratio {ratio}".format(**result))
        print(json.dumps(result))
    finally:
        store.stop()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
