"""Image inputs: layouts and docker-save tarballs become plans; corrupt inputs are caught."""

import json
import os

import pytest

from helpers.images import corrupt_one_layer, make_docker_archive, make_layout
from releasekit.core.errors import ImageError
from releasekit.publishing.image import build_plan


def test_layout_builder_is_deterministic(tmp_path):
    files = {"/app/run.sh": b"#!/bin/sh\necho hi\n", "/app/data/a.txt": b"a"}
    first = make_layout(str(tmp_path / "one"), files, entrypoint=["/app/run.sh"], env={"A": "1"})
    second = make_layout(str(tmp_path / "two"), files, entrypoint=["/app/run.sh"], env={"A": "1"})
    changed = make_layout(str(tmp_path / "three"), files, entrypoint=["/app/run.sh"], env={"A": "2"})
    assert first == second
    assert first != changed


def test_layout_with_base_keeps_base_layers(tmp_path):
    make_layout(str(tmp_path / "base"), {"/etc/base": b"base"}, env={"PATH": "/bin"})
    make_layout(str(tmp_path / "app"), {"/app/x": b"x"}, base_dir=str(tmp_path / "base"), env={"APP": "1"})
    plan = build_plan(str(tmp_path / "app"))
    layers = [b for b in plan["blobs"] if "layer" in b["mediaType"]]
    assert len(layers) == 2
    config_blob = next(b for b in plan["blobs"] if "config" in b["mediaType"])
    config = json.load(open(os.path.join(str(tmp_path / "app"), config_blob["location"]["file"])))
    assert config["config"]["Env"] == ["APP=1", "PATH=/bin"]
    assert len(config["rootfs"]["diff_ids"]) == 2


def test_plan_of_layout_lists_blobs_then_root(tmp_path):
    digest = make_layout(str(tmp_path / "img"), {"/a": b"a" * 1000})
    plan = build_plan(str(tmp_path / "img"), source_path="ws/img")
    assert plan["root"]["digest"] == digest
    assert plan["manifests"][-1]["digest"] == digest
    assert plan["source"] == "ws/img"
    assert len(plan["blobs"]) == 2


def test_docker_archive_plan_matches_the_layout_content(tmp_path):
    make_layout(str(tmp_path / "img"), {"/a": b"hello"}, entrypoint=["/a"])
    tar = make_docker_archive(str(tmp_path / "img"), str(tmp_path / "img.tar"))
    plan = build_plan(tar)
    assert plan["format"] == "docker-archive"
    assert len(plan["blobs"]) == 2
    assert "content" in plan["manifests"][-1]["location"]
    manifest = json.loads(plan["manifests"][-1]["location"]["content"])
    assert manifest["layers"][0]["mediaType"].startswith("application/vnd.oci.image.layer.v1.tar")


def test_corrupt_layer_is_reported_with_its_digest(tmp_path):
    make_layout(str(tmp_path / "img"), {"/a": b"payload" * 100})
    bad = corrupt_one_layer(str(tmp_path / "img"))
    with pytest.raises(ImageError, match="{} does not match its digest".format(bad)):
        build_plan(str(tmp_path / "img"), display="//pkg:app_image (attribute image)")


def test_truncated_blob_is_reported(tmp_path):
    make_layout(str(tmp_path / "img"), {"/a": b"payload" * 100})
    blobs = tmp_path / "img" / "blobs" / "sha256"
    largest = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[:10])
    with pytest.raises(ImageError, match="truncated"):
        build_plan(str(tmp_path / "img"))


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: None, "no oci-layout file"),
        (lambda d: (d / "oci-layout").write_text("{}") and (d / "index.json").write_text("{nope"), "not valid JSON"),
        (lambda d: (d / "oci-layout").write_text("{}") and (d / "index.json").write_text('{"manifests": []}'),
         "lists no image"),
    ],
)
def test_bad_layouts(tmp_path, setup, message):
    directory = tmp_path / "layout"
    directory.mkdir()
    setup(directory)
    with pytest.raises(ImageError, match=message):
        build_plan(str(directory))


def test_file_that_is_not_a_tarball(tmp_path):
    path = tmp_path / "image.tar"
    path.write_text("not a tar")
    with pytest.raises(ImageError, match="not a docker-save tarball"):
        build_plan(str(path))
