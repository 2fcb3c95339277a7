"""An image's commit tag is immutable in the CI channel, as a jar's or a file's version is: the real registry, the
publisher run as a release target runs it."""

import json
import os

from helpers import releases
from helpers.images import make_layout


def _layout(path, content):
    return make_layout(path, {"/data/stamp.txt": content, "/app/run": b"#!/bin/sh\n"}, entrypoint=["/app/run"])


def test_a_commit_tag_holding_another_image_refuses_the_release_and_moves_nothing(registry, tmp_path, isolated_home):
    """Before: an image that is not reproducible, released again at the same commit from another checkout, moved the
    commit tag (and `stable`) to its own digest, and its record said "moved"."""
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    env = {"RELEASEKIT_CONFIG": config, "CI": "true", "RELEASEKIT_REPORT": str(tmp_path / "record.json")}
    first_digest = _layout(str(tmp_path / "first-image"), b"built at 1700000000\n")
    manifest, runfiles = releases.container_release(str(tmp_path / "first"), str(tmp_path / "first-image"),
                                                    "immutable/app", "ci", ["stable"])
    first = releases.publish(manifest, runfiles, env)
    assert first.returncode == 0, first.stderr
    assert registry.inspect("prod/immutable/app:" + releases.COMMIT)["Digest"] == first_digest

    # The same commit built again elsewhere: a timestamp makes another image.
    second_digest = _layout(str(tmp_path / "second-image"), b"built at 1700000999\n")
    assert second_digest != first_digest
    manifest, runfiles = releases.container_release(str(tmp_path / "second"), str(tmp_path / "second-image"),
                                                    "immutable/app", "ci", ["stable"])
    os.remove(tmp_path / "record.json")
    second = releases.publish(manifest, runfiles, env)
    assert second.returncode == 3, second.stdout + second.stderr
    assert "ImmutableVersionError" in second.stderr and "Traceback" not in second.stderr
    assert "prod/immutable/app:{} already names another image ({}".format(releases.COMMIT, first_digest[:19]) \
        in second.stderr
    assert "reproducible" in second.stderr
    # Nothing moved, and nothing of the second image was pushed.
    assert registry.inspect("prod/immutable/app:" + releases.COMMIT)["Digest"] == first_digest
    assert registry.inspect("prod/immutable/app:stable")["Digest"] == first_digest
    assert registry.inspect("prod/immutable/app@" + second_digest) is None

    # A dry run refuses alike; the dev channel, whose tags are the developer's own, is not checked.
    dry = releases.publish(manifest, runfiles, env, "--dry-run")
    assert dry.returncode == 3 and "ImmutableVersionError" in dry.stderr, dry.stdout + dry.stderr
    # The first image again (a re-run) is no change and succeeds.
    manifest, runfiles = releases.container_release(str(tmp_path / "first"), str(tmp_path / "first-image"),
                                                    "immutable/app", "ci", ["stable"])
    again = releases.publish(manifest, runfiles, env)
    assert again.returncode == 0, again.stderr
    assert json.load(open(tmp_path / "record.json"))["bytes_uploaded"] == 0
