"""Checking provenance with tools that are not releasekit's: securesystemslib checks the DSSE signature, the
in-toto attestation framework's own bindings parse the statement and the SLSA v1 predicate (strictly: an unknown
field fails), skopeo finds an image's referrers through the tag-schema fallback and copies them."""

import hashlib
import json
import os
import subprocess


def key_id(public_pem_path):
    """The key id a signature names: sha256 of the public key's SubjectPublicKeyInfo (releasekit's convention)."""
    from cryptography.hazmat.primitives import serialization

    with open(public_pem_path, "rb") as handle:
        key = serialization.load_pem_public_key(handle.read())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(der).hexdigest()


def verified_statement(envelope_bytes, public_pem_path):
    """The statement (dict) of a DSSE envelope, after securesystemslib verified its signature with the key and the
    in-toto attestation bindings validated it as a Statement v1 with a SLSA Provenance v1 predicate."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    public_key, keyid = key_id(public_pem_path)
    envelope = Envelope.from_dict(json.loads(envelope_bytes))
    envelope.verify([SSlibKey.from_crypto(public_key, keyid=keyid)], 1)  # raises VerificationError otherwise
    parsed = json_format.Parse(envelope.payload.decode("utf-8"), statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    statement = json.loads(envelope.payload)
    json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    return statement


def skopeo_referrers(registry, repository, digest):
    """The referrers index skopeo reads at the tag-schema fallback's tag of digest ({} when there is none)."""
    result = subprocess.run(["skopeo", "inspect", "--raw", *registry.skopeo_args(),
                             "docker://{}/{}:{}".format(registry.host, repository, digest.replace(":", "-"))],
                            capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def skopeo_copy(registry, reference, directory):
    """skopeo copy of host/reference into an OCI layout; returns {digest: bytes} of its blobs."""
    result = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", *registry.skopeo_args()[1:],
                             "docker://{}/{}".format(registry.host, reference), "oci:" + str(directory)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    blobs = os.path.join(str(directory), "blobs", "sha256")
    return {"sha256:" + name: open(os.path.join(blobs, name), "rb").read() for name in os.listdir(blobs)}


def image_provenance(registry, repository, digest):
    """[(referrer manifest, envelope bytes)] of an image's in-toto referrers, found and copied by skopeo."""
    import tempfile

    found = []
    for entry in skopeo_referrers(registry, repository, digest).get("manifests", []):
        if entry.get("artifactType") != "application/vnd.in-toto+json":
            continue
        blobs = skopeo_copy(registry, "{}@{}".format(repository, entry["digest"]), tempfile.mkdtemp())
        manifest = json.loads(blobs[entry["digest"]])
        assert manifest["subject"]["digest"] == digest
        found.append((manifest, blobs[manifest["layers"][0]["digest"]]))
    return found
