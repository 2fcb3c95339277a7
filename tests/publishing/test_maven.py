"""jar_release publishing to real stores (nginx WebDAV, moto S3, a directory), resolved by real Maven."""

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import time

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.servers import MavenClient, free_port

FAST_FAIL = {"RELEASEKIT_RETRY_ATTEMPTS": "2", "RELEASEKIT_RETRY_TOTAL_SECONDS": "5"}


@pytest.fixture(scope="module")
def maven(tmp_path_factory):
    return MavenClient(str(tmp_path_factory.mktemp("maven")))


class Stores:
    """The three store kinds, each with its ci and dev locations and what the publisher needs to reach them."""

    def __init__(self, nginx, moto, tmp_path):
        self.nginx, self.moto, self.tmp = nginx, moto, tmp_path

    def config(self, kind, name="releasekit.yaml"):
        if kind == "http":
            ci, dev = self.nginx.url + "/releases", self.nginx.url + "/snapshots"
            env = {"RELEASEKIT_MAVEN_USERNAME": TEST_USER, "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD}
        elif kind == "s3":
            ci, dev = "s3://{}/releases".format(self.moto.bucket), "s3://{}/snapshots".format(self.moto.bucket)
            env = dict(self.moto.environ)
        else:
            ci, dev = "file://{}/releases".format(self.tmp / "store"), "file://{}/snapshots".format(self.tmp / "store")
            env = {}
        env["RELEASEKIT_CONFIG"] = releases.write_store_config(str(self.tmp / name), ci, dev)
        return env

    def read(self, kind, path):
        if kind == "http":
            full = self.nginx.path(path)
            return open(full, "rb").read() if os.path.exists(full) else None
        if kind == "s3":
            return self.moto.get(path)
        full = self.tmp / "store" / path
        return full.read_bytes() if full.exists() else None


@pytest.fixture
def stores(nginx, moto, tmp_path, isolated_home):
    return Stores(nginx, moto, tmp_path)


def publish(tmp_path, jar, coordinates, env, channel="ci", version=None, name="lib", **kwargs):
    manifest, runfiles = releases.jar_release(str(tmp_path), jar, coordinates, channel, name=name, **kwargs)
    run_env = dict(env, RELEASEKIT_REPORT=str(tmp_path / "{}.record.json".format(name)))
    if channel == "ci":
        run_env["CI"] = "true"
    if version:
        run_env["RELEASEKIT_VERSION"] = version
    result = releases.publish(manifest, runfiles, run_env)
    record_path = tmp_path / "{}.record.json".format(name)
    result.record = json.loads(record_path.read_text()) if result.returncode == 0 else None
    return result


def test_release_with_dependencies_resolves_with_strict_checksums(stores, maven, tmp_path):
    env = stores.config("http")
    base = releases.make_jar(str(tmp_path / "base.jar"), "base")
    app = releases.make_jar(str(tmp_path / "app.jar"), "app")
    sources = releases.make_jar(str(tmp_path / "app-sources.jar"), "app sources")
    first = publish(tmp_path, base, "com.example.resolve:base", env, version="1.0.0", name="base")
    assert first.returncode == 0, first.stderr
    second = publish(tmp_path, app, "com.example.resolve:app", env, version="1.0.0", name="app",
                     deps=["com.example.resolve:base"], sources_jar=sources)
    assert second.returncode == 0, second.stderr
    assert second.record["status"] == "published" and second.record["version"] == "1.0.0"
    directory = "releases/com/example/resolve/app/1.0.0/"
    for name in ("app-1.0.0.pom", "app-1.0.0.jar", "app-1.0.0-sources.jar"):
        for suffix in ("", ".md5", ".sha1", ".sha256", ".sha512"):
            assert stores.read("http", directory + name + suffix) is not None, name + suffix
    pom = stores.read("http", directory + "app-1.0.0.pom").decode()
    assert "<artifactId>base</artifactId>" in pom and "<version>1.0.0</version>" in pom
    metadata = stores.read("http", "releases/com/example/resolve/app/maven-metadata.xml").decode()
    assert "<release>1.0.0</release>" in metadata
    result = maven.get("com.example.resolve:app:1.0.0", stores.nginx.url + "/releases")
    assert result.returncode == 0, result.stdout[-3000:]
    resolved = os.path.join(result.repo, "com/example/resolve")
    assert os.path.exists(os.path.join(resolved, "app/1.0.0/app-1.0.0.jar"))
    assert os.path.exists(os.path.join(resolved, "base/1.0.0/base-1.0.0.jar"))  # through the pom's dependency
    sources_result = maven.get("com.example.resolve:app:1.0.0:jar:sources", stores.nginx.url + "/releases")
    assert sources_result.returncode == 0, sources_result.stdout[-3000:]


def test_pom_template_and_classifier_jars_reach_the_store_and_resolve(stores, maven, tmp_path):
    env = stores.config("http")
    jar = releases.make_jar(str(tmp_path / "tpl.jar"), "templated")
    javadoc = releases.make_jar(str(tmp_path / "tpl-javadoc.jar"), "templated javadoc")
    template = tmp_path / "pom.tpl"
    template.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n  <groupId>{groupId}</groupId>\n  "
        "<artifactId>{artifactId}</artifactId>\n  <version>{version}</version>\n  <packaging>{type}</packaging>\n"
        "  <description>Templated by the team &amp; checked by Maven</description>\n"
        "  <licenses><license><name>Apache-2.0</name></license></licenses>\n{dependencies}</project>\n")
    result = publish(tmp_path, jar, "com.example.templated:lib", env, version="2.1.0", name="tpl",
                     classifier_jars={"javadoc": javadoc}, pom_template=str(template))
    assert result.returncode == 0, result.stderr
    directory = "releases/com/example/templated/lib/2.1.0/"
    pom = stores.read("http", directory + "lib-2.1.0.pom").decode()
    assert "<description>Templated by the team &amp; checked by Maven</description>" in pom
    assert "<groupId>com.example.templated</groupId>" in pom and "<version>2.1.0</version>" in pom
    for suffix in ("", ".md5", ".sha1", ".sha256", ".sha512"):
        assert stores.read("http", directory + "lib-2.1.0-javadoc.jar" + suffix) is not None, suffix
    assert stores.read("http", directory + "lib-2.1.0-javadoc.jar") == open(javadoc, "rb").read()
    resolved = maven.get("com.example.templated:lib:2.1.0:jar:javadoc", stores.nginx.url + "/releases")
    assert resolved.returncode == 0, resolved.stdout[-3000:]


def test_maven_rejects_a_bad_checksum(stores, maven, tmp_path):
    """The resolution above is only meaningful if -C really checks: a wrong .sha1 must fail it."""
    env = stores.config("http")
    jar = releases.make_jar(str(tmp_path / "c.jar"), "checked")
    assert publish(tmp_path, jar, "com.example.checked:lib:1.0.0", env).returncode == 0
    with open(stores.nginx.path("releases/com/example/checked/lib/1.0.0/lib-1.0.0.jar.sha1"), "w") as handle:
        handle.write("0" * 40)
    result = maven.get("com.example.checked:lib:1.0.0", stores.nginx.url + "/releases")
    assert result.returncode != 0


def test_snapshots_get_timestamps_and_increasing_build_numbers(stores, maven, tmp_path):
    env = stores.config("http")
    first_jar = releases.make_jar(str(tmp_path / "s1.jar"), "snapshot one")
    second_jar = releases.make_jar(str(tmp_path / "s2.jar"), "snapshot two")
    first = publish(tmp_path, first_jar, "com.example.snap:lib", env, channel="dev", version="2.1.0", name="one")
    second = publish(tmp_path, second_jar, "com.example.snap:lib", env, channel="dev", version="2.1.0", name="two")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert re.match(r"^2\.1\.0-\d{8}\.\d{6}-1$", first.record["version"])
    assert re.match(r"^2\.1\.0-\d{8}\.\d{6}-2$", second.record["version"])
    metadata = stores.read("http", "snapshots/com/example/snap/lib/2.1.0-SNAPSHOT/maven-metadata.xml").decode()
    assert "<buildNumber>2</buildNumber>" in metadata
    assert "<value>{}</value>".format(second.record["version"]) in metadata
    assert "<extension>pom</extension>" in metadata
    jar_name = "snapshots/com/example/snap/lib/2.1.0-SNAPSHOT/lib-{}.jar".format(second.record["version"])
    assert stores.read("http", jar_name) == open(second_jar, "rb").read()
    result = maven.get("com.example.snap:lib:2.1.0-SNAPSHOT", stores.nginx.url + "/snapshots")
    assert result.returncode == 0, result.stdout[-3000:]
    resolved = os.path.join(result.repo, "com/example/snap/lib/2.1.0-SNAPSHOT")
    jars = [n for n in os.listdir(resolved) if n.endswith(".jar")]
    assert any(open(os.path.join(resolved, n), "rb").read() == open(second_jar, "rb").read() for n in jars)


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_concurrent_releases_of_different_versions_all_reach_the_metadata(stores, tmp_path, kind):
    env = stores.config(kind)
    versions = ["3.0.{}".format(i) for i in range(4)]
    jars = [releases.make_jar(str(tmp_path / "v{}.jar".format(i)), "v" + v) for i, v in enumerate(versions)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(versions)) as pool:
        results = list(pool.map(
            lambda i: publish(tmp_path, jars[i], "com.example.race:lib", env, version=versions[i],
                              name="v{}".format(i)),
            range(len(versions))))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    prefix = "releases/com/example/race/lib/" if kind != "s3" else "releases/com/example/race/lib/"
    metadata = stores.read(kind, prefix + "maven-metadata.xml").decode()
    for version in versions:
        assert "<version>{}</version>".format(version) in metadata, metadata
    assert "<release>3.0.3</release>" in metadata


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_redeploy_identical_is_skipped_and_different_is_refused(stores, tmp_path, kind):
    env = stores.config(kind)
    jar = releases.make_jar(str(tmp_path / "r.jar"), "release")
    assert publish(tmp_path, jar, "com.example.immutable:lib:4.0.0", env).returncode == 0
    again = publish(tmp_path, jar, "com.example.immutable:lib:4.0.0", env)
    assert again.returncode == 0, again.stderr
    assert again.record["status"] == "already published" and again.record["bytes_uploaded"] == 0
    different = releases.make_jar(str(tmp_path / "other.jar"), "something else")
    refused = publish(tmp_path, different, "com.example.immutable:lib:4.0.0", env, name="other")
    assert refused.returncode == 3
    assert "ImmutableVersionError" in refused.stderr and "already published with different content" in refused.stderr
    stored = stores.read(kind, "releases/com/example/immutable/lib/4.0.0/lib-4.0.0.jar")
    assert stored == open(jar, "rb").read()


def test_snapshots_on_s3_and_file_stores(stores, tmp_path):
    for kind in ("s3", "file"):
        env = stores.config(kind, name=kind + ".yaml")
        jar = releases.make_jar(str(tmp_path / "{}.jar".format(kind)), kind)
        for build in (1, 2):
            result = publish(tmp_path, jar, "com.example.snap{}:lib:5.0.0".format(kind), env, channel="dev", name=kind)
            assert result.returncode == 0, result.stderr
            assert result.record["version"].endswith("-{}".format(build))
        metadata = stores.read(kind, "snapshots/com/example/snap{}/lib/5.0.0-SNAPSHOT/maven-metadata.xml".format(kind))
        assert b"<buildNumber>2</buildNumber>" in metadata
        top = stores.read(kind, "snapshots/com/example/snap{}/lib/maven-metadata.xml".format(kind))
        assert b"<version>5.0.0-SNAPSHOT</version>" in top


@pytest.mark.parametrize("status", [400, 403, 409])
def test_a_store_refusing_redeploy_is_reported_as_already_published(stores, tmp_path, status):
    """Nexus answers 400, Artifactory 403 or 409, to a PUT over a file it has: reported, not retried."""
    location = "refusing" if status == 409 else "refusing-{}".format(status)
    env = {"RELEASEKIT_CONFIG": releases.write_store_config(
        str(tmp_path / "refusing.yaml"), stores.nginx.url + "/" + location, stores.nginx.url + "/snapshots"),
        "RELEASEKIT_MAVEN_USERNAME": TEST_USER, "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD}
    # A run that died left the jar and its .sha1 but not its other checksums: the re-run writes it again.
    jar = releases.make_jar(str(tmp_path / "x.jar"), "x")
    existing = stores.nginx.path("{}/com/example/refused/lib/1.0.{}/lib-1.0.{}.jar".format(location, status, status))
    os.makedirs(os.path.dirname(existing), exist_ok=True)
    shutil.copyfile(jar, existing)
    with open(jar, "rb") as handle, open(existing + ".sha1", "w") as sha1:
        sha1.write(hashlib.sha1(handle.read()).hexdigest())
    started = time.monotonic()
    result = publish(tmp_path, jar, "com.example.refused:lib:1.0.{}".format(status), env)
    assert result.returncode != 0
    assert "lib-1.0.{}.jar (HTTP {}): it is already published".format(status, status) in result.stderr
    assert time.monotonic() - started < 5  # a refusal is an answer, not retried


@pytest.mark.parametrize("kind", ["maven", "deploy"])
def test_a_bearer_token_publishes_and_is_never_printed(stores, tmp_path, kind):
    """RELEASEKIT_MAVEN_TOKEN and RELEASEKIT_DEPLOY_TOKEN are sent as `Authorization: Bearer`; a wrong one is
    refused."""
    from helpers.servers import STORE_TOKEN

    from releasekit.core.destinations import parse_store
    from releasekit.core.http import RetryPolicy
    from releasekit.core.stores import open_store

    destination = parse_store(stores.nginx.url + "/bearer/" + kind, kind, "ci")
    policy = RetryPolicy(attempts=1, total_seconds=5)
    if kind == "maven":
        jar = releases.make_jar(str(tmp_path / "t.jar"), "token")
        env = {"RELEASEKIT_CONFIG": releases.write_store_config(str(tmp_path / "bearer.yaml"), destination.text,
                                                                stores.nginx.url + "/bearer/snapshots"),
               "RELEASEKIT_MAVEN_TOKEN": STORE_TOKEN}
        result = publish(tmp_path, jar, "com.example.token:lib:1.0.0", env)
        assert result.returncode == 0, result.stderr
        assert STORE_TOKEN not in result.stdout + result.stderr + json.dumps(result.record)
        assert os.path.exists(stores.nginx.path("bearer/maven/com/example/token/lib/1.0.0/lib-1.0.0.jar"))
        wrong = publish(tmp_path, jar, "com.example.token:lib:1.0.1", dict(env, RELEASEKIT_MAVEN_TOKEN="wrong-token"),
                        name="wrong")
        assert wrong.returncode != 0 and "HTTP 401" in wrong.stderr and "wrong-token" not in wrong.stderr
    else:
        open_store(destination, policy, {"RELEASEKIT_DEPLOY_TOKEN": STORE_TOKEN}).put("app/1/app.yaml", b"a: 1\n")
        assert open(stores.nginx.path("bearer/deploy/app/1/app.yaml"), "rb").read() == b"a: 1\n"
        from releasekit.core.errors import AuthError

        with pytest.raises(AuthError, match="HTTP 401"):
            open_store(destination, policy, {"RELEASEKIT_DEPLOY_TOKEN": "wrong-token"}).put("app/2/app.yaml", b"a: 2\n")


def test_missing_credentials_fail_clearly(stores, tmp_path):
    env = stores.config("http")
    env.pop("RELEASEKIT_MAVEN_USERNAME"), env.pop("RELEASEKIT_MAVEN_PASSWORD")
    jar = releases.make_jar(str(tmp_path / "x.jar"), "x")
    result = publish(tmp_path, jar, "com.example.nocreds:lib:1.0.0", env)
    assert result.returncode != 0
    assert "AuthError" in result.stderr and "RELEASEKIT_MAVEN_USERNAME" in result.stderr
    assert "Traceback" not in result.stderr
    assert stores.read("http", "releases/com/example/nocreds/lib/1.0.0/lib-1.0.0.pom") is None


def test_wrong_password_is_never_printed(stores, tmp_path):
    env = stores.config("http")
    env["RELEASEKIT_MAVEN_PASSWORD"] = "wrong-" + TEST_PASSWORD
    jar = releases.make_jar(str(tmp_path / "x.jar"), "x")
    result = publish(tmp_path, jar, "com.example.wrongpw:lib:1.0.0", env, )
    assert result.returncode != 0 and "AuthError" in result.stderr
    assert TEST_PASSWORD not in result.stdout + result.stderr


def test_unreachable_store(stores, tmp_path):
    url = "http://127.0.0.1:{}".format(free_port())
    env = {"RELEASEKIT_CONFIG": releases.write_store_config(str(tmp_path / "down.yaml"), url + "/r", url + "/s"),
           **FAST_FAIL}
    jar = releases.make_jar(str(tmp_path / "x.jar"), "x")
    result = publish(tmp_path, jar, "com.example.down:lib:1.0.0", env)
    assert result.returncode != 0
    assert "connection refused" in result.stderr and "Traceback" not in result.stderr


def test_jar_that_does_not_exist(stores, tmp_path):
    env = stores.config("file")
    manifest, runfiles = releases.jar_release(str(tmp_path), str(tmp_path / "missing.jar"),
                                              "com.example.gone:lib:1.0.0")
    result = releases.publish(manifest, runfiles, dict(env, CI="true"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_ci_needs_a_release_version(stores, tmp_path):
    env = stores.config("file")
    jar = releases.make_jar(str(tmp_path / "x.jar"), "x")
    result = publish(tmp_path, jar, "com.example.noversion:lib", env)
    assert result.returncode == 2 and "RELEASEKIT_VERSION" in result.stderr
    snapshot = publish(tmp_path, jar, "com.example.noversion:lib", env, version="1.0.0-SNAPSHOT")
    assert snapshot.returncode != 0 and "SNAPSHOT" in snapshot.stderr


# -- the rules, with real Bazel ----------------------------------------------------------------

def test_jar_release_macro_and_bazel_run(example_workspace, stores, maven, tmp_path):
    from helpers.workspace import git

    kinds = example_workspace.query("kind(artifact_ci_release, //libs/...)")
    assert kinds == ["artifact_ci_release rule //libs/greeting:greeting.ci",
                     "artifact_ci_release rule //libs/shout:shout.ci"]
    env = dict(stores.config("http"), CI="true", RELEASEKIT_VERSION="1.4.0", XDG_CACHE_HOME=str(tmp_path / "cache"))
    for target in ("//libs/greeting:greeting.ci", "//libs/shout:shout.ci"):
        example_workspace.bazel("run", target, env=env)
    result = maven.get("com.example:shout:1.4.0", stores.nginx.url + "/releases")
    assert result.returncode == 0, result.stdout[-3000:]
    assert os.path.exists(os.path.join(result.repo, "com/example/greeting/1.4.0/greeting-1.4.0.jar"))
    assert stores.read("http", "releases/com/example/greeting/1.4.0/greeting-1.4.0-sources.jar") is not None
    dev = example_workspace.bazel("run", "//libs/greeting:greeting.dev", env=dict(env, CI=""))
    assert "1.4.0-" in dev.stdout and git(example_workspace.path, "status", "--porcelain", "--untracked-files=no") == ""


@pytest.mark.parametrize(
    "package,build,files,expected",
    [
        ("bad_coordinates", 'jar_release(name = "lib", jar = "lib.jar", coordinates = "com.example/lib")',
         {"lib.jar": ""}, "//bad_coordinates:lib: attribute coordinates: 'com.example/lib' must be group:artifact"),
        ("dotdot_coordinates", 'jar_release(name = "lib", jar = "lib.jar", coordinates = "com..example:lib:1.0")',
         {"lib.jar": ""}, "attribute coordinates: 'com..example:lib:1.0' must be"),
        ("not_a_jar", 'jar_release(name = "lib", jar = "notes.txt", coordinates = "com.example:lib")',
         {"notes.txt": ""}, "//not_a_jar:lib: attribute jar: //not_a_jar:notes.txt must produce exactly one .jar"),
        ("dep_not_jar", 'filegroup(name = "other", srcs = ["lib.jar"])\n'
                        'jar_release(name = "lib", jar = "lib.jar", coordinates = "com.example:lib", '
                        'deps = [":other"])',
         {"lib.jar": ""}, "//dep_not_jar:lib: attribute deps: //dep_not_jar:other is not a jar_release"),
        ("corrupt_jar", 'jar_release(name = "lib", jar = "lib.jar", coordinates = "com.example:lib")',
         {"lib.jar": "not a zip"}, "//corrupt_jar:lib: lib.jar is not a readable jar"),
    ],
)
def test_bad_jar_inputs_fail_the_build(broken_workspace, package, build, files, expected):
    assert expected in broken_workspace.build_package_expecting_failure(package, build, files)


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_a_pom_naming_an_unpublished_dependency_version_is_refused_before_anything_is_written(stores, tmp_path, kind):
    """Before: only the dependent selected, `top-2.0.0.pom` named `base:2.0.0`, which nobody published; a dependent
    released alone to a fresh store named an absent `absent:1.0.0`."""
    env = stores.config(kind)
    group = "com.example.unpublished{}".format(kind)
    base = releases.make_jar(str(tmp_path / "base.jar"), "base")
    top = releases.make_jar(str(tmp_path / "top.jar"), "top")
    assert publish(tmp_path, base, group + ":base", env, version="1.0.0", name="base").returncode == 0

    refused = publish(tmp_path, top, group + ":top", env, version="2.0.0", name="top", deps=[group + ":base"])
    assert refused.returncode == 3, refused.stderr
    assert "UnpublishedDependencyError: //libs:top: its pom would name a dependency version that the Maven store " \
           "does not hold: {}:base:2.0.0 (released by //libs:base;".format(group) in refused.stderr
    assert "lists 1.0.0)" in refused.stderr and "Traceback" not in refused.stderr
    assert TEST_PASSWORD not in refused.stdout + refused.stderr
    top_directory = "releases/{}/top/".format(group.replace(".", "/"))
    for written in ("2.0.0/top-2.0.0.pom", "2.0.0/top-2.0.0.jar", "maven-metadata.xml", ".releasekit-owner"):
        assert stores.read(kind, top_directory + written) is None, written
    # A version given in the dependency's coordinates is checked alike, in a store that never had the artifact.
    absent = publish(tmp_path, top, group + ":top", env, version="2.0.0", name="top-absent",
                     deps=[group + ":absent:1.0.0"])
    assert absent.returncode == 3 and "{}:absent:1.0.0 (released by //libs:absent;".format(group) in absent.stderr
    assert "lists no version" in absent.stderr
    # A dry run cannot know whether its run publishes the dependency first: it says so and goes on.
    dry = publish(tmp_path, top, group + ":top", dict(env, RELEASEKIT_DRY_RUN="true"), version="2.0.0",
                  name="top-dry", deps=[group + ":base"])
    assert dry.returncode == 0, dry.stderr
    assert any("unless its run publishes them first" in check for check in dry.record["checks"])
    # Once the dependency is published at that version (as a run that selects both does first), the pom may name it.
    assert publish(tmp_path, base, group + ":base", env, version="2.0.0", name="base2").returncode == 0
    published = publish(tmp_path, top, group + ":top", env, version="2.0.0", name="top2", deps=[group + ":base"])
    assert published.returncode == 0, published.stderr
    assert "<version>2.0.0</version>" in stores.read(kind, top_directory + "2.0.0/top-2.0.0.pom").decode()
