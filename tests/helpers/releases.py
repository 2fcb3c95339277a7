"""Release manifests and runfiles trees as the rules write them, for publisher tests without Bazel."""

import hashlib
import json
import os
import subprocess
import sys

from releasekit.publishing.image import build_plan

from .servers import REPO_ROOT

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def commit_of(name):
    """A commit of its own for each of several releases of one repository: a CI commit tag names one image."""
    return hashlib.sha1(str(name).encode()).hexdigest()


def container_release(root, image_path, repository, channel="dev", tags=(), verify=True):
    """Lay out runfiles like a built release target. Returns (manifest path, runfiles dir)."""
    runfiles = os.path.join(root, "runfiles")
    workspace = os.path.join(runfiles, "ws")
    os.makedirs(workspace, exist_ok=True)
    link = os.path.join(workspace, "image")
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(image_path), link)
    plan = build_plan(image_path, source_path="ws/image", verify=verify, layers_dir=os.path.join(workspace, "layers"))
    with open(os.path.join(workspace, "plan.json"), "w") as handle:
        json.dump(plan, handle)
    manifest = {
        "schema_version": 1,
        "target": "//app:app.{}".format(channel),
        "release": "//app:app",
        "channel": channel,
        "kind": "container",
        "container": {"image": "ws/image", "plan": "ws/plan.json", "layers": "ws/layers", "repository": repository,
                      "tags": list(tags)},
        "depends_on": [],
    }
    manifest_path = os.path.join(workspace, "app.{}.release.json".format(channel))
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    return manifest_path, runfiles


def write_config(path, registry_host, scheme="http"):
    with open(path, "w") as handle:
        handle.write(
            "channels:\n  ci: {{registry: '{0}://{1}/prod'}}\n  dev: {{registry: '{0}://{1}/dev'}}\n".format(scheme,
                                                                                                             registry_host)
        )
    return path


def publish(manifest, runfiles, env, *extra):
    """Run `releasekit publish` as a release target would. Returns the CompletedProcess."""
    run_env = dict(os.environ)
    run_env.pop("CI", None)
    # As dispatch hands every release: the commit and whether the tree is clean, read once per run.
    run_env.setdefault("RELEASEKIT_COMMIT", COMMIT)
    run_env.setdefault("RELEASEKIT_DIRTY", "false")
    run_env.update(env)
    return subprocess.run(
        [sys.executable, ENTRY, "publish", "--manifest", manifest, "--runfiles", runfiles, *extra],
        capture_output=True, text=True, env=run_env, timeout=300,
    )


def make_jar(path, marker):
    """A small, valid jar whose bytes depend only on marker."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, text in (("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"), ("marker.txt", marker)):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 2))
            archive.writestr(info, text)
    return path


def jar_release(root, jar_path, coordinates, channel="ci", deps=(), sources_jar=None, classifier_jars=None, name="lib",
                pom_template=None, release=None):
    """Lay out runfiles like a built jar_release target. Returns (manifest path, runfiles dir).

    name: the runfiles tree's own name. release: the label, by default one per artifact id, as one jar_release
    target publishes the versions of its coordinates (a second label would not own them)."""
    runfiles = os.path.join(root, "runfiles-" + name)
    workspace = os.path.join(runfiles, "ws")
    os.makedirs(workspace, exist_ok=True)

    def link(path, link_name):
        target = os.path.join(workspace, link_name)
        if not os.path.lexists(target):
            os.symlink(os.path.abspath(path), target)
        return "ws/" + link_name

    fields = {"coordinates": coordinates, "jar": link(jar_path, name + ".jar"), "deps": list(deps),
              "classifier_jars": {}}
    if sources_jar:
        fields["sources_jar"] = link(sources_jar, name + "-sources.jar")
    for classifier, path in (classifier_jars or {}).items():
        fields["classifier_jars"][classifier] = link(path, "{}-{}.jar".format(name, classifier))
    if pom_template:
        fields["pom_template"] = link(pom_template, name + ".pom.tpl")
    release = release or "//libs:" + (coordinates.split(":") + [""])[1]
    manifest = {"schema_version": 1, "target": "{}.{}".format(release, channel), "release": release,
                "channel": channel, "kind": "jar", "jar": fields,
                "depends_on": ["//libs:" + dep.split(":")[1] for dep in deps]}  # as jar.bzl lists them
    manifest_path = os.path.join(workspace, "{}.{}.release.json".format(name, channel))
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    return manifest_path, runfiles


def write_store_config(path, ci, dev):
    with open(path, "w") as handle:
        handle.write("channels:\n  ci: {{maven: '{}'}}\n  dev: {{maven: '{}'}}\n".format(ci, dev))
    return path


def file_release(root, path, channel="ci", name="bundle", file_name="fleet-bundle.tar.gz", release=None):
    """Lay out runfiles like a built file_release target in package app. Returns (manifest path, runfiles dir).
    release: its label (by default //app:<name>; a release of another repository is @repo//app:<name>)."""
    runfiles = os.path.join(root, "runfiles-" + name)
    workspace = os.path.join(runfiles, "ws")
    os.makedirs(workspace, exist_ok=True)
    link = os.path.join(workspace, name + ".bin")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.abspath(path), link)
    release = release or "//app:" + name
    manifest = {"schema_version": 1, "target": "{}.{}".format(release, channel), "release": release,
                "channel": channel, "kind": "file", "depends_on": [],
                "file": {"file": "ws/{}.bin".format(name), "file_name": file_name, "name": name, "package": "app"}}
    manifest_path = os.path.join(workspace, "{}.{}.release.json".format(name, channel))
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    return manifest_path, runfiles
