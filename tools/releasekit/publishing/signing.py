"""Signing keys and DSSE envelopes (the in-toto attestation framework's envelope, v1).

A key is a PEM private key, Ed25519 or ECDSA P-256 (PKCS#8 or the "EC PRIVATE KEY" form), read from an environment
variable or a file named by one (environment.SIGNING_KEY / SIGNING_KEY_FILE for CI, DEV_SIGNING_KEY /
DEV_SIGNING_KEY_FILE for dev). Its text is registered as a secret as soon as it is read, so redact() hides it
wherever it might show. A key's id is the sha256 of its public key (SubjectPublicKeyInfo, DER), in hex: the same for
the private and the public half, so a verifier knows which key a signature claims.

The cryptography package does the signing (Ed25519; ECDSA with SHA-256, signatures DER-encoded, as cosign and
securesystemslib write them); the envelope is the DSSE spec's JSON and its pre-authentication encoding.
"""

import base64
import hashlib
import json

from releasekit.core import environment
from releasekit.core.errors import ProvenanceError, UsageError
from releasekit.core.redact import register_secret

PAYLOAD_TYPE = "application/vnd.in-toto+json"
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type, payload):
    """DSSE's pre-authentication encoding: what is signed, so that the payload type is signed too."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key):
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _key_kind(key):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == "secp256r1":
        return "ecdsa-p256"
    return None


class Signer:
    """A private key and where it came from (never its text)."""

    def __init__(self, private_key, source, channel):
        self.private_key, self.source, self.channel = private_key, source, channel
        self.kind = _key_kind(private_key)
        self.keyid = key_id(private_key.public_key())

    def sign(self, payload, payload_type=PAYLOAD_TYPE):
        """A DSSE envelope (dict) of payload, signed with this key."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        message = pae(payload_type, payload)
        if self.kind == "ed25519":
            signature = self.private_key.sign(message)
        else:
            signature = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
        return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode("ascii"),
                "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(signature).decode("ascii")}]}


def unsigned(payload, payload_type=PAYLOAD_TYPE):
    """An envelope without signatures: what a release without a key writes, saying so."""
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode("ascii"), "signatures": []}


def _read_key_text(text_variable, file_variable, environ):
    """(PEM text, where it came from) of a key given by a variable or a file a variable names; (None, None)."""
    text = text_variable.get(environ)
    if text:
        register_secret(text)
        return text, str(text_variable)
    path = file_variable.get(environ)
    if not path:
        return None, None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError("Cannot read the signing key file {} ({}): {}. Point {} at a PEM private key (Ed25519 or "
                         "ECDSA P-256).".format(path, file_variable, getattr(error, "strerror", None) or error,
                                                file_variable)) from None
    register_secret(text)
    return text, "{} ({})".format(file_variable, path)


def _register_key_lines(text):
    # A line of the key's base64 body could show on its own (a log that wraps a message): hide each one too.
    for line in text.splitlines():
        if line.strip() and not line.startswith("-----"):
            register_secret(line.strip())


def load_private_key(text, source):
    from cryptography.hazmat.primitives import serialization

    _register_key_lines(text)
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError) as error:
        # The library's message never quotes the key; ours names only where it came from.
        raise UsageError("The signing key from {} is not an unencrypted PEM private key ({}). Give an Ed25519 or "
                         "ECDSA P-256 key: openssl genpkey -algorithm ed25519 -out key.pem.".format(
                             source, type(error).__name__)) from None
    if _key_kind(key) is None:
        raise UsageError("The signing key from {} is neither Ed25519 nor ECDSA P-256; provenance is signed with one "
                         "of those.".format(source))
    return key


def signer_for(channel, environ):
    """The Signer of a release of channel, or None (unsigned). A dev release signs only with the dev key, and
    refuses a dev key that is the CI key (when both are where it runs)."""
    if channel == "ci":
        text, source = _read_key_text(environment.SIGNING_KEY, environment.SIGNING_KEY_FILE, environ)
        return Signer(load_private_key(text, source), source, channel) if text else None
    text, source = _read_key_text(environment.DEV_SIGNING_KEY, environment.DEV_SIGNING_KEY_FILE, environ)
    if not text:
        return None
    signer = Signer(load_private_key(text, source), source, channel)
    ci_text, ci_source = _read_key_text(environment.SIGNING_KEY, environment.SIGNING_KEY_FILE, environ)
    if ci_text and key_id(load_private_key(ci_text, ci_source).public_key()) == signer.keyid:
        raise UsageError("The dev signing key from {} is the CI signing key ({}); a dev release never signs with the "
                         "CI key, so nothing was published. Give dev releases a key of their own.".format(
                             source, ci_source))
    return signer


def load_public_key(path):
    """The public key in a PEM file (a public key, or the private key's file, whose public half is taken)."""
    from cryptography.hazmat.primitives import serialization

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UsageError("Cannot read the public key {}: {}.".format(path, error.strerror)) from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise UsageError("{} is not a PEM public key (openssl pkey -in key.pem -pubout -out key.pub).".format(
            path)) from None
    if _key_kind(key) is None:
        raise UsageError("{} is neither an Ed25519 nor an ECDSA P-256 public key.".format(path))
    return key


def verify_envelope(envelope, public_key, where):
    """The payload (bytes) of a DSSE envelope signed by public_key; ProvenanceError naming why not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        raise ProvenanceError("{}: the provenance is not a DSSE envelope.".format(where))
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ProvenanceError("{}: the envelope's payload type is {!r}, not {}.".format(
            where, envelope.get("payloadType"), PAYLOAD_TYPE))
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except ValueError:
        raise ProvenanceError("{}: the envelope's payload is not base64.".format(where)) from None
    signatures = envelope.get("signatures") or []
    if not signatures:
        raise ProvenanceError("{}: the provenance is unsigned.".format(where))
    wanted = key_id(public_key)
    message = pae(PAYLOAD_TYPE, payload)
    for entry in signatures:
        try:
            signature = base64.b64decode(entry.get("sig", ""), validate=True)
            if _key_kind(public_key) == "ed25519":
                public_key.verify(signature, message)
            else:
                public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return payload
        except (InvalidSignature, ValueError, TypeError, AttributeError):
            continue
    keyids = ", ".join(sorted({str(entry.get("keyid", "?"))[:16] for entry in signatures if isinstance(entry, dict)}))
    raise ProvenanceError("{}: the provenance is signed by another key (key id {}), not by the given key {}.".format(
        where, keyids or "?", wanted[:16]))


def envelope_bytes(envelope):
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_envelope(data, where):
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProvenanceError("{}: the provenance is not JSON.".format(where)) from None
    return envelope
