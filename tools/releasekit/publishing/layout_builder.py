"""Assembles a deterministic single-layer OCI image layout: same inputs, same digest.

Standard library only (build actions run it with a bare python3).
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

from releasekit.core.errors import ImageError
from releasekit.publishing.oci import (INDEX_TYPES, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical_json,
                                       sha256_digest)

EPOCH = "1970-01-01T00:00:00Z"


def _tar_info(name, kind, mode, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def make_layer_tar(files):
    """files: list of (path in image, local path). Returns the uncompressed tar bytes."""
    entries = {}
    for image_path, local_path in files:
        clean = os.path.normpath("/" + image_path).lstrip("/")
        if not clean or clean.startswith(".."):
            raise ImageError("'{}' is not a valid path inside an image.".format(image_path))
        entries[clean] = local_path
    directories = set()
    for clean in entries:
        parts = clean.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(directories | set(entries)):
            if name in entries:
                local_path = entries[name]
                executable = os.access(local_path, os.X_OK)
                size = os.path.getsize(local_path)
                with open(local_path, "rb") as handle:
                    tar.addfile(_tar_info(name, tarfile.REGTYPE, 0o755 if executable else 0o644, size), handle)
            else:
                tar.addfile(_tar_info(name + "/", tarfile.DIRTYPE, 0o755))
    return buffer.getvalue()


def _gzip(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as handle:
        handle.write(data)
    return out.getvalue()


def _read_base(base_dir):
    with open(os.path.join(base_dir, "index.json"), "rb") as handle:
        index = json.load(handle)
    entries = index.get("manifests") or []
    if len(entries) != 1 or entries[0].get("mediaType") in INDEX_TYPES:
        raise ImageError("{}: the base must be a layout holding one single-platform image.".format(base_dir))

    def blob(digest):
        with open(os.path.join(base_dir, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as handle:
            return handle.read()

    manifest = json.loads(blob(entries[0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    return manifest, config


def write_blob(layout_dir, data):
    digest = sha256_digest(data)
    path = os.path.join(layout_dir, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as handle:
        handle.write(data)
    return digest


def build_layout(out_dir, files, base_dir=None, entrypoint=None, cmd=None, env=None, labels=None,
                 workdir=None, architecture="amd64", os_name="linux"):
    """Write an OCI layout to out_dir and return the manifest digest."""
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"), exist_ok=True)
    layers, config = [], {
        "architecture": architecture,
        "os": os_name,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if base_dir:
        layers, config = _copy_base(base_dir, out_dir)
    layer_tar = make_layer_tar(files)
    layer_gz = _gzip(layer_tar)
    layers.append({"mediaType": OCI_LAYER + "+gzip", "digest": write_blob(out_dir, layer_gz), "size": len(layer_gz)})
    config["config"] = _image_config(config.get("config") or {}, entrypoint, cmd, env, labels, workdir)
    config["created"] = EPOCH
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"]["diff_ids"] = list(config["rootfs"].get("diff_ids", [])) + [
        "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    ]
    config["history"] = list(config.get("history", [])) + [{"created": EPOCH,
                                                            "created_by": "rules_release image_layout"}]
    return _write_manifest_and_index(out_dir, config, layers)


def _copy_base(base_dir, out_dir):
    """(the base image's layers, its config), its layer blobs copied into out_dir."""
    base_manifest, config = _read_base(base_dir)
    layers = list(base_manifest.get("layers", []))
    for layer in layers:
        name = layer["digest"].split(":", 1)[1]
        shutil.copyfile(os.path.join(base_dir, "blobs", "sha256", name), os.path.join(out_dir, "blobs", "sha256", name))
    return layers, config


def _image_config(base, entrypoint, cmd, env, labels, workdir):
    """The image's config: the base's, with what the rule sets."""
    image_config = dict(base)
    if entrypoint is not None:
        image_config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        image_config["Cmd"] = list(cmd)
    if env:
        merged = dict(item.split("=", 1) for item in image_config.get("Env", []) if "=" in item)
        merged.update(env)
        image_config["Env"] = ["{}={}".format(k, merged[k]) for k in sorted(merged)]
    if labels:
        merged_labels = dict(image_config.get("Labels") or {})
        merged_labels.update(labels)
        image_config["Labels"] = merged_labels
    if workdir:
        image_config["WorkingDir"] = workdir
    return image_config


def _write_manifest_and_index(out_dir, config, layers):
    """The config blob, the manifest that names it and the layers, then index.json and oci-layout; the manifest's
    digest."""
    config_bytes = canonical_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(out_dir, config_bytes), "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_bytes = canonical_json(manifest)
    manifest_digest = write_blob(out_dir, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}],
    }
    with open(os.path.join(out_dir, "index.json"), "wb") as handle:
        handle.write(canonical_json(index))
    with open(os.path.join(out_dir, "oci-layout"), "wb") as handle:
        handle.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return manifest_digest


def build_layout_from_spec(spec_path, out):
    """The image-layout build action: the layout the rule's JSON spec describes."""
    import json

    from releasekit.core.errors import UsageError

    try:
        with open(spec_path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError("Cannot read the image_layout spec {}: {}.".format(spec_path, error)) from None
    build_layout(out, files=spec.get("files", []), base_dir=spec.get("base"), entrypoint=spec.get("entrypoint"),
                 cmd=spec.get("cmd"), env=spec.get("env"), labels=spec.get("labels"), workdir=spec.get("workdir"))
