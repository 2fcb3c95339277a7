"""Image inputs for tests: deterministic layouts, and docker-save tarballs written by skopeo."""

import os
import subprocess

from releasekit.publishing.layout_builder import build_layout


def make_layout(directory, files, **config):
    """files: {path in image: bytes}. Returns the manifest digest."""
    source_dir = directory + ".src"
    os.makedirs(source_dir, exist_ok=True)
    entries = []
    for index, (image_path, content) in enumerate(sorted(files.items())):
        local = os.path.join(source_dir, "f{}".format(index))
        with open(local, "wb") as handle:
            handle.write(content)
        entries.append((image_path, local))
    return build_layout(directory, entries, **config)


def make_docker_archive(layout_dir, tar_path, name="example/app:latest"):
    """A real docker-save tarball, converted from a layout by skopeo."""
    subprocess.run(
        ["skopeo", "copy", "--quiet", "oci:" + layout_dir, "docker-archive:{}:{}".format(tar_path, name)],
        check=True, capture_output=True,
    )
    return tar_path


def corrupt_one_layer(layout_dir):
    """Flip bytes in the largest blob (a layer) while keeping its size."""
    blobs = os.path.join(layout_dir, "blobs", "sha256")
    largest = max(os.listdir(blobs), key=lambda name: os.path.getsize(os.path.join(blobs, name)))
    path = os.path.join(blobs, largest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        data = bytearray(handle.read())
        data[len(data) // 2] ^= 0xFF
        handle.seek(0)
        handle.write(bytes(data))
    return "sha256:" + largest
