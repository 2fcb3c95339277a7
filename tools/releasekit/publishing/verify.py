"""`releasekit verify`: what a CD pipeline runs before it rolls a release out.

Given a release (an image reference; a Maven coordinate group:artifact:version; a deploy or file release's label with
its channel and version) and a public key, it finds the release's provenance where the release attached it
(provenance.py), and checks, in order: the DSSE signature is the key's; the statement is an in-toto Statement v1 with
SLSA Provenance v1; its subject is the digest of what it is attached to (every file of a deploy version, read back and
hashed); it was written by a CI release (not a dev one); and its source is the expected repository and branch. For
deploy YAML, every image the YAML pins (any `name@sha256:...` in it) must pass the same checks. Returns the lines it
verified, or raises ProvenanceError with the one-line reason.
"""

import base64
import hashlib
import json
import re

from releasekit.core.destinations import REGISTRY_KINDS, parse_registry
from releasekit.core.errors import ProvenanceError, UsageError
from releasekit.core.hosts import is_loopback
from releasekit.publishing import provenance, referrers, signing
from releasekit.publishing.registry import RegistryClient
from releasekit.publishing.registry_credentials import registry_credentials

PINNED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*@sha256:[0-9a-f]{64}")
_COORDINATE = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[A-Za-z0-9_.+-]+$")


class Expected:
    """What the CD side trusts: the key, and the repository and branch releases must come from."""

    def __init__(self, public_key, repository, branch):
        self.public_key, self.repository, self.branch = public_key, repository, branch


def normalized(url):
    text = (url or "").strip().lower()
    text = re.sub(r"^git\+", "", text)
    text = re.sub(r"^[a-z0-9+.-]+://([^/@]*@)?", "", text)
    text = re.sub(r"^[^/@]*@([^:/]+):", r"\1/", text)  # git@host:owner/repo
    return re.sub(r"(\.git)?/*$", "", text)


def check_statement(envelope, expected, digests, where):
    """The statement of a signed envelope, checked; digests: {subject name or None: sha256 hex} it must name. An error
    about a statement the key did sign says `signed` (it names what is wrong more closely than another's signature)."""
    payload = signing.verify_envelope(envelope, expected.public_key, where)
    try:
        return _check_signed(payload, expected, digests, where)
    except ProvenanceError as error:
        error.signed = True
        raise


def _check_signed(payload, expected, digests, where):
    try:
        statement = json.loads(payload)
        parameters = statement["predicate"]["buildDefinition"]["externalParameters"]
        named = {entry["name"]: entry["digest"]["sha256"] for entry in statement["subject"]}
    except (ValueError, KeyError, TypeError):
        raise ProvenanceError("{}: the signed payload is not an in-toto statement with SLSA provenance.".format(
            where)) from None
    kinds = (statement.get("_type"), statement.get("predicateType"))
    if kinds != (provenance.STATEMENT_TYPE, provenance.PREDICATE_TYPE):
        raise ProvenanceError("{}: the statement is {} with {}, not an in-toto Statement v1 with SLSA Provenance "
                              "v1.".format(where, *kinds))
    for name, digest in sorted(digests.items(), key=lambda item: str(item[0])):
        said = named.get(name) if name is not None else (digest if digest in named.values() else
                                                          next(iter(named.values()), None))
        if said != digest:
            raise ProvenanceError("{}: the statement's subject{} is sha256:{}, not the digest it is attached to "
                                  "(sha256:{}); it describes something else.".format(
                                      where, " " + name if name else "", (said or "none")[:16], digest[:16]))
    if parameters.get("channel") != "ci":
        raise ProvenanceError("{}: the provenance is a {} release's ({}), not a CI release's.".format(
            where, parameters.get("channel"), parameters.get("target")))
    source = parameters.get("source") or {}
    if normalized(source.get("repository")) != normalized(expected.repository):
        raise ProvenanceError("{}: the release came from the repository {}, not {}.".format(
            where, source.get("repository"), expected.repository))
    if source.get("branch") != expected.branch:
        raise ProvenanceError("{}: the release came from the branch {}, not {}.".format(
            where, source.get("branch"), expected.branch))
    return statement


def _said(statement, what, keyid):
    parameters = statement["predicate"]["buildDefinition"]["externalParameters"]
    return "verified {}: signed by key {}, CI release {} of commit {} ({} {})".format(
        what, keyid[:16], parameters.get("release"), str(parameters["source"].get("commit"))[:12],
        parameters["source"].get("repository"), parameters["source"].get("branch"))


class Verifier:
    def __init__(self, expected, context, channel):
        """context: the command's RunContext (releasekit.yaml, if any; the retry policy; the credentials)."""
        self.expected, self.context, self.channel = expected, context, channel
        self.config, self.policy, self.environ = context.config, context.policy, context.environ
        self.keyid = signing.key_id(expected.public_key)

    # -- images and OCI artifacts -------------------------------------------------------------

    def _client(self, host):
        for channel in (self.config.channels.values() if self.config else []):
            for kind, destination in channel.items():
                if kind in REGISTRY_KINDS and destination.host == host:
                    return RegistryClient(destination, registry_credentials(destination, self.environ), self.policy)
        destination = parse_registry(("http://" if is_loopback(host) else "") + host, "-")
        return RegistryClient(destination, registry_credentials(destination, self.environ), self.policy)

    def image(self, reference):
        """Lines verified for an image (or OCI artifact) reference host/repository[:tag][@sha256:...]."""
        name, _, digest = reference.partition("@")
        host, _, path = name.partition("/")
        repository, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
        if not host or not repository:
            raise UsageError("'{}' is not an image reference (host/repository:tag or @sha256:...).".format(reference))
        client = self._client(host)
        head = client.read_json(repository, "manifests/" + (digest or tag), ",".join(_ACCEPT), "read " + reference)
        if head is None:
            raise ProvenanceError("{}: no such image.".format(reference))
        if not digest:
            digest = _digest_of(client, repository, tag)
        found = referrers.referrers(client, repository, digest, provenance.ARTIFACT_TYPE)
        if not found:
            raise ProvenanceError("{}@{}: has no provenance (no in-toto referrer).".format(name, digest[:19]))
        failures, name = [], "{}/{}".format(host, repository)
        for descriptor in found:
            where = "{}@{}".format(name, digest[:19])
            try:
                envelope = _referrer_envelope(client, repository, descriptor["digest"], digest, where)
                statement = check_statement(envelope, self.expected, {None: digest.split(":", 1)[1]}, where)
                return [_said(statement, "{}@{}".format(name, digest), self.keyid)], (client, repository, digest, head)
            except ProvenanceError as error:
                failures.append(str(error)) if getattr(error, "signed", False) else failures.insert(0, str(error))
        failures.reverse()  # those the key signed first
        raise ProvenanceError(failures[0] if len(failures) == 1 else "{} (and {} other provenance{} refused)".format(
            failures[0], len(failures) - 1, "" if len(failures) == 2 else "s"))

    def pinned_images(self, texts):
        lines = []
        for reference in sorted({m for text in texts for m in PINNED.findall(text)}):
            try:
                lines += self.image(reference)[0]
            except ProvenanceError as error:
                raise ProvenanceError("pinned image {}: {}".format(reference, error)) from None
        return lines

    # -- stores ---------------------------------------------------------------------------------

    def _store(self, kind):
        return self.context.open_store(self.context.destination(self.channel, kind))

    def _store_files(self, store, directory, envelope_path, names, what):
        data = store.get(envelope_path)[0]
        if data is None:
            raise ProvenanceError("{}: has no provenance ({} is missing).".format(what, store.describe(envelope_path)))
        contents = {}
        for name in names:
            contents[name] = store.get("{}/{}".format(directory, name))[0]
            if contents[name] is None:
                raise ProvenanceError("{}: {} is missing.".format(what,
                                                                  store.describe("{}/{}".format(directory, name))))
        digests = {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()}
        statement = check_statement(signing.read_envelope(data, what), self.expected, digests, what)
        return statement, contents

    def maven(self, coordinate):
        group, artifact, version = coordinate.split(":")
        store = self._store("maven")
        directory = "{}/{}/{}".format(group.replace(".", "/"), artifact, version)
        envelope = store.get("{}/{}-{}{}".format(directory, artifact, version, provenance.SUFFIX))[0]
        jar = "{}-{}.jar".format(artifact, version)
        subjects = sorted(set(_subject_names(envelope) or []) | {jar})  # the jar is always checked
        statement, _ = self._store_files(store, directory, "{}/{}-{}{}".format(directory, artifact, version,
                                                                              provenance.SUFFIX), subjects, coordinate)
        return [_said(statement, "{} ({})".format(coordinate, ", ".join(subjects)), self.keyid)]

    def label(self, label, version, source):
        package, _, name = label.lstrip("@").partition("//")[2].partition(":")
        name = re.sub(r"\.(ci|dev)$", "", name)
        base = "/".join(p for p in (package, name) if p)
        if source == "registry":
            return self._deploy_artifact(label, base, version)
        for kind in ("deploy", "files"):
            if self.channel in self.config.channels and kind in self.config.channels[self.channel]:
                store = self._store(kind)
                named = version
                if version in (None, "latest"):
                    pointer = store.get(base + "/latest")[0]
                    named = pointer.decode("utf-8", "replace").strip() if pointer else None
                summary = store.get("{}/{}/release.json".format(base, named))[0] if named else None
                if summary is not None:
                    return self._store_release(label, kind, store, "{}/{}".format(base, named), json.loads(summary))
        raise ProvenanceError("{}: no {} version of it is published in the {} channel's deploy or files store.".format(
            label, version or "latest", self.channel))

    def _store_release(self, label, kind, store, directory, summary):
        what = "{} version {}".format(label, summary.get("version"))
        if kind == "files":
            envelope_path = "{}/{}{}".format(directory, summary["file"], provenance.SUFFIX)
            statement, _ = self._store_files(store, directory, envelope_path, [summary["file"]], what)
            return [_said(statement, what, self.keyid)]
        names = list(summary.get("files") or []) + ["release.json"]  # the YAML, and what it says of the version
        statement, contents = self._store_files(store, directory, "{}/{}".format(directory, provenance.STORE_FILE),
                                                names, what)
        texts = [content.decode("utf-8", "replace") for name, content in contents.items() if name != "release.json"]
        return [_said(statement, what, self.keyid)] + self.pinned_images(texts)

    def _deploy_artifact(self, label, base, version):
        from releasekit.publishing.flux_artifact import repository_of

        destination = self.config.destination(self.channel, "deploy_registry")
        reference = "{}/{}:{}".format(destination.host, repository_of(destination, base), version or "latest")
        lines, (client, repository, _, manifest) = self.image(reference)
        layer = (manifest.get("layers") or [{}])[0]
        blob = read_blob(client, repository, layer.get("digest", ""))
        if blob is None:
            raise ProvenanceError("{}: the artifact's content {} is missing.".format(reference, layer.get("digest")))
        return lines + self.pinned_images(_tar_texts(blob))


def read_blob(client, repository, digest):
    scope = "repository:{}:pull".format(repository)
    response = client._retry(lambda: client._request("GET", "/v2/{}/blobs/{}".format(repository, digest), scope,
                                                     "read blob " + digest[:19]), "read blob " + digest[:19])
    if response.status_code != 200 or "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
        return None
    return response.content


def _digest_of(client, repository, tag):
    scope = "repository:{}:pull".format(repository)
    response = client._retry(lambda: client._request("HEAD", "/v2/{}/manifests/{}".format(repository, tag), scope,
                                                     "resolve " + tag, headers={"Accept": ",".join(_ACCEPT)}),
                             "resolve " + tag)
    return response.headers.get("Docker-Content-Digest")


def _referrer_envelope(client, repository, referrer_digest, subject_digest, where):
    manifest = client.read_manifest(repository, referrer_digest)
    if not isinstance(manifest, dict) or (manifest.get("subject") or {}).get("digest") != subject_digest:
        raise ProvenanceError("{}: a provenance referrer names another subject.".format(where))
    layers = [layer for layer in manifest.get("layers") or [] if layer.get("mediaType") == signing.ENVELOPE_MEDIA_TYPE]
    data = read_blob(client, repository, layers[0]["digest"]) if layers else None
    if data is None:
        raise ProvenanceError("{}: the provenance referrer holds no DSSE envelope.".format(where))
    return signing.read_envelope(data, where)


def _subject_names(data):
    try:
        payload = json.loads(base64.b64decode(json.loads(data)["payload"]))
        return [entry["name"] for entry in payload["subject"]]
    except (ValueError, KeyError, TypeError):
        return None


def _tar_texts(blob):
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        return [archive.extractfile(member).read().decode("utf-8", "replace") for member in archive.getmembers()
                if member.isfile()]


_ACCEPT = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
           "application/vnd.docker.distribution.manifest.v2+json",
           "application/vnd.docker.distribution.manifest.list.v2+json")


def verify(target, key_path, repository, branch, context, channel="ci", version=None, source="store"):
    """The lines verified of target (see the module's docstring); ProvenanceError (exit 3) when it is not. context:
    the command's RunContext."""
    config = context.config
    verifier = Verifier(Expected(signing.load_public_key(key_path), repository, branch), context, channel)
    if target.startswith("//") or target.startswith("@"):
        if config is None:
            raise UsageError("verify {} reads the channel's stores: give releasekit.yaml (--config).".format(target))
        return verifier.label(target, version, source)
    if _COORDINATE.match(target) and "/" not in target:
        if config is None:
            raise UsageError("verify {} reads the channel's Maven store: give releasekit.yaml (--config).".format(
                target))
        return verifier.maven(target)
    return verifier.image(target)[0]


def command(args, environ):
    """`releasekit verify`: the parsed command line (commands/verify.py) to verify()'s lines."""
    from releasekit.core.run_context import RUNNING, RunContext

    context = RunContext.load(RUNNING, args.config, environ, required=bool(args.config))
    return verify(args.release, args.key, args.repository, args.branch, context, args.channel, args.version,
                  args.source)
