"""file_release end to end: a tarball with its checksum to nginx WebDAV, S3 and a directory; and the kind plugin API
it is built on, which a third-party kind uses through the releasekit.kinds entry point group."""

import hashlib
import json
import os

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.servers import REPO_ROOT
from helpers.workspace import git
from releasekit.core.errors import ImmutableVersionError


class Store:
    """One store kind: its ci and dev URLs, what the publisher needs to reach it, and how to read it back."""

    def __init__(self, kind, nginx, moto, tmp_path):
        self.kind, self.nginx, self.moto, self.tmp = kind, nginx, moto, tmp_path
        if kind == "http":
            self.ci, self.dev = nginx.url + "/files/prod", nginx.url + "/files/dev"
            self.env = {"RELEASEKIT_FILES_USERNAME": TEST_USER, "RELEASEKIT_FILES_PASSWORD": TEST_PASSWORD}
        elif kind == "s3":
            self.ci, self.dev = "s3://{}/prod".format(moto.bucket), "s3://{}/dev".format(moto.bucket)
            self.env = dict(moto.environ)
        else:
            self.ci, self.dev = "file://{}/prod".format(tmp_path / "store"), "file://{}/dev".format(tmp_path / "store")
            self.env = {}
        config = tmp_path / "releasekit-{}.yaml".format(kind)
        config.write_text("channels:\n  ci: {{files: '{}'}}\n  dev: {{files: '{}'}}\n".format(self.ci, self.dev))
        self.env["RELEASEKIT_CONFIG"] = str(config)

    def read(self, channel, path):
        if self.kind == "http":
            full = self.nginx.path("files/{}/{}".format(channel, path))
            return open(full, "rb").read() if os.path.exists(full) else None
        if self.kind == "s3":
            return self.moto.get("{}/{}".format(channel, path))
        full = self.tmp / "store" / channel / path
        return full.read_bytes() if full.exists() else None


def publish(tmp_path, content, store, channel="ci", version=None, name="bundle"):
    bundle = tmp_path / "{}-{}.tar.gz".format(name, hashlib.sha256(content).hexdigest()[:8])
    bundle.write_bytes(content)
    manifest, runfiles = releases.file_release(str(tmp_path), str(bundle), channel, name=name)
    env = dict(store.env, RELEASEKIT_REPORT=str(tmp_path / "record.json"))
    if channel == "ci":
        env["CI"] = "true"
    if version:
        env["RELEASEKIT_VERSION"] = version
    result = releases.publish(manifest, runfiles, env)
    result.record = json.loads((tmp_path / "record.json").read_text()) if result.returncode == 0 else None
    return result


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_a_ci_version_is_published_once_with_its_checksum_and_never_changed(nginx, moto, tmp_path, kind):
    store = Store(kind, nginx, moto, tmp_path)
    first = publish(tmp_path, b"bundle v1" * 1000, store, version="1.4.0")
    assert first.returncode == 0, first.stderr
    assert first.record["status"] == "published" and first.record["kind"] == "file"
    digest = hashlib.sha256(b"bundle v1" * 1000).hexdigest()
    assert store.read("prod", "app/bundle/1.4.0/fleet-bundle.tar.gz") == b"bundle v1" * 1000
    checksum = store.read("prod", "app/bundle/1.4.0/fleet-bundle.tar.gz.sha256")
    assert checksum == "{}  fleet-bundle.tar.gz\n".format(digest).encode()
    assert json.loads(store.read("prod", "app/bundle/1.4.0/release.json"))["sha256"] == digest
    assert store.read("prod", "app/bundle/latest") == b"1.4.0\n"

    again = publish(tmp_path, b"bundle v1" * 1000, store, version="1.4.0")
    assert again.returncode == 0 and again.record["status"] == "already published"

    changed = publish(tmp_path, b"bundle v2" * 1000, store, version="1.4.0")
    assert changed.returncode == 3
    assert "ImmutableVersionError" in changed.stderr
    assert "a CI version is immutable, so nothing was written" in changed.stderr
    assert store.read("prod", "app/bundle/1.4.0/fleet-bundle.tar.gz") == b"bundle v1" * 1000
    assert store.read("prod", "app/bundle/latest") == b"1.4.0\n"


def test_a_dev_version_is_replaced_and_latest_follows(nginx, moto, tmp_path):
    store = Store("http", nginx, moto, tmp_path)
    for content in (b"first", b"second"):
        result = publish(tmp_path, content, store, channel="dev", name="devbundle")
        assert result.returncode == 0, result.stderr
    version = result.record["version"]
    assert version.startswith("dev-") and version.endswith("-" + releases.COMMIT[:12])
    assert store.read("dev", "app/devbundle/{}/fleet-bundle.tar.gz".format(version)) == b"second"
    assert store.read("dev", "app/devbundle/latest") == (version + "\n").encode()
    assert store.read("prod", "app/devbundle/latest") is None


def test_a_dry_run_writes_nothing_and_says_what_it_would(nginx, moto, tmp_path):
    store = Store("http", nginx, moto, tmp_path)
    bundle = tmp_path / "dry.tar.gz"
    bundle.write_bytes(b"dry")
    manifest, runfiles = releases.file_release(str(tmp_path), str(bundle), "ci", name="dry")
    result = releases.publish(manifest, runfiles, dict(store.env, CI="true", RELEASEKIT_VERSION="2.0.0"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would write file, checksum, metadata, provenance, pointer" in result.stdout
    assert store.read("prod", "app/dry/latest") is None


def test_the_example_bundle_publishes_through_bazel(example_workspace, nginx, moto, tmp_path):
    """The example's file_release, built and run by Bazel: the published bytes are the built tarball's."""
    store = Store("http", nginx, moto, tmp_path)
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    env = dict(store.env, CI="true", RELEASEKIT_USER="tester", XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = example_workspace.bazel("run", "//services/fleet:fleet_bundle.ci", env=env)
    built = open(os.path.join(example_workspace.path, "bazel-bin/services/fleet/fleet-bundle.tar.gz"), "rb").read()
    assert "published fleet-bundle.tar.gz " + head in result.stdout
    published = store.read("prod", "services/fleet/fleet_bundle/{}/fleet-bundle.tar.gz".format(head))
    assert published == built
    assert store.read("prod", "services/fleet/fleet_bundle/latest") == (head + "\n").encode()


def register_kind(tmp_path, monkeypatch, distribution, files, entry_point):
    """A package on sys.path that declares a releasekit.kinds entry point, as `pip install` of it would. files:
    {path below site-packages: text}."""
    package = tmp_path / "site"
    for path, text in files.items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(text)
    info = package / "{}-1.0.dist-info".format(distribution.replace("-", "_"))
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n".format(distribution))
    (info / "entry_points.txt").write_text("[releasekit.kinds]\n{}\n".format(entry_point))
    monkeypatch.syspath_prepend(str(package))


def test_a_kind_registered_through_an_entry_point_publishes_through_the_runner(tmp_path, monkeypatch):
    """A third-party kind: a package that declares a releasekit.kinds entry point and subclasses ArtifactKind."""
    register_kind(tmp_path, monkeypatch, "notes-kind", {"notes_kind/__init__.py": (
        "from releasekit.publishing.kinds import ArtifactKind\n\n"
        "class NotesKind(ArtifactKind):\n"
        "    name = 'notes'\n\n"
        "    def publish(self, release):\n"
        "        destination = release.destination('files')\n"
        "        store = release.open_store(destination)\n"
        "        text = open(release.runfile(release.fields['notes'])).read().upper().encode()\n"
        "        if not release.dry_run:\n"
        "            store.put('notes/' + release.version(), text)\n"
        "        return {'status': 'published', 'bytes_uploaded': len(text)}\n")}, "notes = notes_kind:NotesKind")

    from releasekit.publishing.publisher import PublishOptions, publish as run_release

    runfiles = tmp_path / "runfiles" / "ws"
    runfiles.mkdir(parents=True)
    (runfiles / "notes.txt").write_text("release notes\n")
    manifest = runfiles / "notes.dev.release.json"
    manifest.write_text(json.dumps({"schema_version": 1, "target": "//docs:notes.dev", "release": "//docs:notes",
                                    "channel": "dev", "kind": "notes", "notes": {"notes": "ws/notes.txt"}}))
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {{files: 'file://{}'}}\n".format(tmp_path / "store"))
    environ = {"RELEASEKIT_COMMIT": releases.COMMIT, "RELEASEKIT_DIRTY": "false", "USER": "tester"}
    record = run_release(str(manifest), PublishOptions(runfiles_dir=str(tmp_path / "runfiles"), config_path=str(config),
                                                      environ=environ))
    assert record["kind"] == "notes" and record["status"] == "published" and record["release"] == "//docs:notes"
    assert (tmp_path / "store" / "notes" / ("dev-tester-" + releases.COMMIT[:12])).read_text() == "RELEASE NOTES\n"


def test_the_plugin_example_of_the_docs_publishes_versioned_files(tmp_path, monkeypatch):
    """docs/extending.md's kind of another rule set, as written there: a version directory, then `latest`; a re-run
    writes nothing; another chart under the same CI version is refused, nothing written."""
    import re

    from releasekit.publishing.publisher import PublishOptions, publish as run_release

    text = open(os.path.join(REPO_ROOT, "docs", "extending.md"), encoding="utf-8").read()
    example = re.search(r"<!-- plugin-example -->\n```python\n(.*?)```", text, re.DOTALL).group(1)
    name, target = re.search(r'\[project.entry-points."releasekit.kinds"\]\n(\w+) = "([^"]+)"', text).groups()
    module = target.split(":")[0].replace(".", "/") + ".py"
    register_kind(tmp_path, monkeypatch, "rules-helm-release", {"rules_helm_release/__init__.py": "", module: example},
                  "{} = {}".format(name, target))
    runfiles = tmp_path / "runfiles" / "ws"
    runfiles.mkdir(parents=True)
    manifest = runfiles / "chart.ci.release.json"
    manifest.write_text(json.dumps({"schema_version": 1, "target": "//charts:web.ci", "release": "//charts:web",
                                    "channel": "ci", "kind": "helm_chart", "helm_chart": {
                                        "chart": "ws/web.tgz", "package": "charts", "name": "web"}}))
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{files: 'file://{}'}}\n".format(tmp_path / "store"))
    environ = {"RELEASEKIT_COMMIT": releases.COMMIT, "RELEASEKIT_DIRTY": "false", "CI": "true",
               "RELEASEKIT_VERSION": "1.2.0"}

    def publish(chart):
        (runfiles / "web.tgz").write_bytes(chart)
        return run_release(str(manifest), PublishOptions(runfiles_dir=str(tmp_path / "runfiles"),
                                                         config_path=str(config), environ=environ))

    record = publish(b"chart v1")
    assert record["kind"] == "helm_chart" and record["status"] == "published"
    version = tmp_path / "store" / "charts" / "web" / "1.2.0"
    assert (version / "chart.tgz").read_bytes() == b"chart v1"
    assert (version / "chart.tgz.sha256").read_text().startswith(hashlib.sha256(b"chart v1").hexdigest())
    assert (tmp_path / "store" / "charts" / "web" / "latest").read_text() == "1.2.0\n"
    assert publish(b"chart v1")["status"] == "already published"
    with pytest.raises(ImmutableVersionError, match="already published with different content"):
        publish(b"chart v2")
    assert (version / "chart.tgz").read_bytes() == b"chart v1"


def test_a_kind_nobody_registered_is_a_clear_error(tmp_path):
    runfiles = tmp_path / "runfiles" / "ws"
    runfiles.mkdir(parents=True)
    manifest = runfiles / "x.dev.release.json"
    manifest.write_text(json.dumps({"schema_version": 1, "target": "//x:x.dev", "release": "//x:x", "channel": "dev",
                                    "kind": "helm_chart", "helm_chart": {}}))
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {{files: 'file://{}'}}\n".format(tmp_path / "store"))
    result = releases.publish(str(manifest), str(tmp_path / "runfiles"), {"RELEASEKIT_CONFIG": str(config)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "release kind 'helm_chart' is neither built in (container, deploy, file, jar) nor registered under the " \
           "'releasekit.kinds' entry point group" in result.stderr


@pytest.mark.parametrize("package,build,files,expected", [
    ("two_files", 'filegroup(name = "two", srcs = ["a.tar", "b.tar"])\nfile_release(name = "bundle", src = ":two")',
     {"a.tar": "a", "b.tar": "b"}, "//two_files:bundle: attribute src: expected exactly one file, got 2"),
    ("bad_file_name", 'file_release(name = "bundle", src = "a.tar", file_name = "../a.tar")',
     {"a.tar": "a"}, "//bad_file_name:bundle: attribute file_name: '../a.tar' contains '/'"),
    ("misspelt", 'file_release(name = "bundle", srcs = "a.tar")',
     {"a.tar": "a"}, "//misspelt:bundle: file_release has no attribute 'srcs'. Did you mean 'src'?"),
])
def test_bad_file_release_inputs_fail_the_build(broken_workspace, package, build, files, expected):
    assert expected in broken_workspace.build_package_expecting_failure(package, build, files)
