"""Releases through a fault-injecting proxy in front of the real registry and the real store.

At a 30% fault rate (503, 429 with Retry-After, a reset mid-body, a slow answer, a response
cut in half) every release completes, and what was published verifies with real clients.
"""

import concurrent.futures
import json
import os
import subprocess

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.servers import MavenClient, NginxStore
from helpers.slow_proxy import KillGate, SlowProxy

CAMPAIGN = 20
# Releases of a campaign run this many at a time, as agents of one CI run publish at once. A release spends most of
# its time waiting out faults (a Retry-After, a slow answer, a back-off), so the campaign's wall time shrinks with
# it; every release still meets every fault kind and each of them is checked as before.
AT_ONCE = 4
RETRIES = {"RELEASEKIT_RETRY_ATTEMPTS": "12", "RELEASEKIT_RETRY_TOTAL_SECONDS": "120", "RELEASEKIT_HTTP_TIMEOUT": "5"}


def _campaign(release, indexes=range(CAMPAIGN)):
    """Run release(index) for each index, AT_ONCE at a time; a failed check in any of them fails the test."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        for done in [pool.submit(release, index) for index in indexes]:
            done.result()


@pytest.fixture(scope="module")
def faulty_registry(registry):
    proxy = SlowProxy(registry.host, fault_rate=0.3, slow_seconds=1.0, seed=7)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def faulty_store(tmp_path_factory):
    store = NginxStore(str(tmp_path_factory.mktemp("faulty-store")), TEST_USER, TEST_PASSWORD)
    proxy = SlowProxy("127.0.0.1:{}".format(store.port), fault_rate=0.3, slow_seconds=1.0, seed=11)
    yield store, proxy
    proxy.stop()
    store.stop()


def test_image_releases_complete_at_a_30_percent_fault_rate(faulty_registry, registry, tmp_path, isolated_home):
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), faulty_registry.host)

    def release(index):
        layout = str(tmp_path / "img{}".format(index))
        digest = make_layout(layout, {"/app/data": os.urandom(200_000), "/app/n": str(index).encode()})
        manifest, runfiles = releases.container_release(str(tmp_path / "r{}".format(index)), layout, "faults/app", "ci",
                                                        ["v{}".format(index)])
        record = tmp_path / "record{}.json".format(index)
        env = dict(RETRIES, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_REPORT=str(record),
                   RELEASEKIT_REGISTRY_TOKEN="tok-" + TEST_PASSWORD, RELEASEKIT_COMMIT=releases.commit_of(index))
        result = releases.publish(manifest, runfiles, env)
        assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
        assert json.load(open(record))["digest"] == digest
        assert TEST_PASSWORD not in result.stdout + result.stderr + open(record).read()
        copy = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                               "docker://{}/prod/faults/app:v{}".format(registry.host, index),
                               "oci:{}".format(tmp_path / "copy{}".format(index))], capture_output=True, text=True)
        assert copy.returncode == 0, copy.stderr

    _campaign(release)
    assert sum(faulty_registry.injected.values()) >= CAMPAIGN
    assert all(count > 0 for count in faulty_registry.injected.values()), faulty_registry.injected


def test_jar_releases_complete_at_a_30_percent_fault_rate(faulty_store, tmp_path, isolated_home):
    store, proxy = faulty_store
    os.makedirs(tmp_path / "maven")
    maven = MavenClient(str(tmp_path / "maven"))
    config = releases.write_store_config(str(tmp_path / "releasekit.yaml"), proxy.url + "/releases",
                                         proxy.url + "/snapshots")

    def release(index):
        jar = releases.make_jar(str(tmp_path / "lib{}.jar".format(index)), "release {}".format(index))
        manifest, runfiles = releases.jar_release(str(tmp_path), jar, "com.example.faults:lib:1.0.{}".format(index),
                                                  name="lib{}".format(index))
        env = dict(RETRIES, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_MAVEN_USERNAME=TEST_USER,
                   RELEASEKIT_MAVEN_PASSWORD=TEST_PASSWORD)
        result = releases.publish(manifest, runfiles, env)
        assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
        assert TEST_PASSWORD not in result.stdout + result.stderr

    _campaign(release)
    metadata = open(store.path("releases/com/example/faults/lib/maven-metadata.xml")).read()
    assert all("<version>1.0.{}</version>".format(i) in metadata for i in range(CAMPAIGN))
    for index in (0, CAMPAIGN - 1):
        resolved = maven.get("com.example.faults:lib:1.0.{}".format(index), store.url + "/releases")
        assert resolved.returncode == 0, resolved.stdout[-2000:]
    assert sum(proxy.injected.values()) >= CAMPAIGN
    leftovers = [d for d, _, _ in os.walk(store.root) if d.endswith(".releasekit-lock")]
    assert leftovers == []  # a lock whose MKCOL answer was lost is found and removed


def _registry_is_whole(registry, repository):
    """Every tag's manifest and every blob it names are there: no half-visible image. A referrers fallback tag lists
    only provenance whose manifest and envelope are there, about an image that is there: nothing claims provenance
    for something missing."""
    import requests

    for tag in registry.tags(repository):
        if tag.startswith("sha256-"):
            listed = requests.get("{}/v2/{}/manifests/{}".format(registry.url, repository, tag), timeout=10,
                                  headers={"Accept": "application/vnd.oci.image.index.v1+json"}).json()["manifests"]
            for referrer in listed:
                _manifest_is_whole(registry, repository, referrer["digest"], tag.replace("-", ":", 1))
            continue
        _manifest_is_whole(registry, repository, tag)


def _manifest_is_whole(registry, repository, reference, subject=None):
    """The manifest at reference and every blob it names are there; a referrer's subject is there too, whole."""
    import requests

    manifest = requests.get("{}/v2/{}/manifests/{}".format(registry.url, repository, reference), timeout=10,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert manifest.status_code == 200, (repository, reference)
    body = manifest.json()
    for blob in [body["config"]] + body["layers"]:
        head = requests.head("{}/v2/{}/blobs/{}".format(registry.url, repository, blob["digest"]), timeout=10)
        assert head.status_code == 200, (repository, reference, blob["digest"])
    if subject is not None:
        assert body["subject"]["digest"] == subject
        _manifest_is_whole(registry, repository, subject)


def _pointer_records_lead_their_tags(registry, repository, records):
    """Every remote tag (not the commit tag) has its pointer record, naming the image the tag names: a record is
    written before its tag, so a kill never leaves a tag whose commit is unknown or older than it."""
    import hashlib

    import requests

    for tag in registry.image_tags(repository):
        if not tag.startswith("v"):  # a commit tag: immutable, no pointer
            continue
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        record_tag = "pointer." + hashlib.sha256("{}:{}".format(repository, tag).encode()).hexdigest()
        record = requests.get("{}/v2/{}/manifests/{}".format(registry.url, records, record_tag), timeout=10,
                              headers=accept)
        assert record.status_code == 200, (repository, tag)
        image = requests.head("{}/v2/{}/manifests/{}".format(registry.url, repository, tag), timeout=10, headers=accept)
        assert record.json()["annotations"]["vnd.releasekit.digest"] == image.headers["Docker-Content-Digest"], tag
        assert record.json()["annotations"]["org.opencontainers.image.revision"] == releases.commit_of(tag[1:])


def _store_is_whole(root):
    """maven-metadata lists only versions whose files are all there; no checksum file without its artifact."""
    import xml.etree.ElementTree as ElementTree

    for directory, _, files in os.walk(root):
        for name in files:
            for suffix in (".md5", ".sha1", ".sha256", ".sha512"):
                if name.endswith(suffix):
                    assert name[: -len(suffix)] in files, os.path.join(directory, name)
            if name.endswith(".intoto.jsonl"):  # written after the pom and the jar it describes, with their checksums
                described = name[: -len(".intoto.jsonl")]
                for extension in (".pom", ".jar", ".jar.sha512"):
                    assert described + extension in files, os.path.join(directory, name)
        if "maven-metadata.xml" in files and not os.path.basename(directory).endswith("-SNAPSHOT"):
            listed = ElementTree.parse(os.path.join(directory, "maven-metadata.xml")).getroot()
            artifact = os.path.basename(directory)
            for version in [v.text for v in listed.findall("./versioning/versions/version")]:
                for extension in ("pom", "jar"):
                    path = os.path.join(directory, version, "{}-{}.{}".format(artifact, version, extension))
                    assert os.path.exists(path) and os.path.exists(path + ".sha1"), path


def test_a_release_through_a_dead_network_fails_in_bounded_time_and_leaves_nothing(registry, tmp_path, isolated_home):
    import time

    proxy = SlowProxy(registry.host, fault_rate=1.0, faults=("503", "reset", "cut"), seed=3)
    try:
        layout = str(tmp_path / "img")
        make_layout(layout, {"/app/data": os.urandom(50_000)})
        manifest, runfiles = releases.container_release(str(tmp_path), layout, "dead/app", "ci", ["v1"])
        env = {"RELEASEKIT_CONFIG": releases.write_config(str(tmp_path / "releasekit.yaml"), proxy.host), "CI": "true",
               "RELEASEKIT_RETRY_ATTEMPTS": "4", "RELEASEKIT_RETRY_TOTAL_SECONDS": "10", "RELEASEKIT_HTTP_TIMEOUT": "3"}
        started = time.monotonic()
        result = releases.publish(manifest, runfiles, env)
        assert result.returncode != 0
        assert time.monotonic() - started < 30
        assert "gave up after" in result.stderr and "Traceback" not in result.stderr
        assert registry.tags("prod/dead/app") == []
    finally:
        proxy.stop()


def _image_phase(method, path):
    if path == "/v2/":
        return "ping"
    if "/releasekit-channel/manifests/owner." in path:
        return "owner record"
    if "/releasekit-channel/manifests/pointer." in path:
        return "pointer records"
    if "/releasekit-channel/" in path:
        return "channel marker"
    if "/manifests/sha256-" in path:
        return "provenance"
    if "/blobs/" in path:
        return "blobs"
    return "manifests" if "/manifests/sha256:" in path else "tags"


def _store_phase(method, path):
    if ".releasekit-channel" in path:
        return "channel marker"
    if ".releasekit-owner" in path:
        return "owner record"
    if ".releasekit-lock" in path or method == "MKCOL":
        return "lock"
    if "maven-metadata.xml" in path:
        return "metadata"
    if ".intoto.jsonl" in path:
        return "provenance"
    return "pointer" if path.endswith("/latest") else "files"


def _phase(request):
    proxy, method, path = request
    return "{}: {}".format(proxy, _image_phase(method, path) if proxy == "registry" else _store_phase(method, path))


def _kill_campaign(gate, proxies, start, check_whole, rerun, seed):
    """Kill a release at points drawn over its whole request sequence, at least once in every phase.

    start(iteration) launches the release's process. The sequence is counted first, on one full run; then
    each iteration holds the release at its kill point (KillGate), checks that it is alive and waiting
    there, kills it with SIGKILL, lets what it had sent land, checks that nothing is half visible, and
    re-runs it to completion. Returns {phase: kills}.
    """
    import random
    import signal
    import time

    for warm_up in ("first", "count"):  # the first run also claims the channel and fills caches: count the second
        gate.arm(None)
        counted = start(warm_up)
        assert counted.wait(timeout=120) == 0, counted.communicate()[1]
    sequence = [_phase(request) for request in gate.seen]
    phases = sorted(set(sequence), key=sequence.index)
    rng = random.Random(seed)
    points = [rng.choice([i for i, p in enumerate(sequence) if p == phase]) for phase in phases]
    points += [rng.randrange(len(sequence)) for _ in range(CAMPAIGN - len(points))]
    kills = {phase: 0 for phase in phases}
    for iteration, point in enumerate(points):
        gate.arm(point)
        process = start(iteration)
        try:
            deadline = time.monotonic() + 60
            while not gate.reached.is_set() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert process.poll() is None, "iteration {}: ended before its kill point {}: {}".format(
                iteration, point, process.communicate()[1])
            held = _phase(gate.seen[point])
            process.send_signal(signal.SIGKILL)
            process.communicate()
            assert process.returncode == -signal.SIGKILL, process.returncode
        finally:
            gate.release()
        kills[held] = kills.get(held, 0) + 1
        assert all(proxy.wait_idle() for proxy in proxies)  # what the killed release had sent has landed
        check_whole()
        gate.arm(None)
        result = rerun(iteration)
        assert result.returncode == 0, "iteration {} (killed in {}): {}".format(iteration, held, result.stderr)
        check_whole()
    print("kills per phase over {} requests: {}".format(len(sequence), kills))
    assert all(kills[phase] for phase in phases), kills
    return kills


@pytest.mark.parametrize("kind", ["image", "jar"])
def test_killed_releases_leave_nothing_half_visible_and_a_rerun_completes(kind, registry, faulty_store, tmp_path,
                                                                         isolated_home):
    import sys

    store, _ = faulty_store
    gate = KillGate()
    name = "registry" if kind == "image" else "store"
    upstream = registry.host if kind == "image" else "127.0.0.1:{}".format(store.port)
    counter = SlowProxy(upstream, gate=gate, name=name)
    releases_by_iteration = {}

    def release(iteration):
        if iteration not in releases_by_iteration:
            root = str(tmp_path / "k{}".format(iteration))
            if kind == "image":
                layout = root + "-img"
                make_layout(layout, {"/app/data": os.urandom(300_000), "/n": str(iteration).encode()})
                manifest, runfiles = releases.container_release(root, layout, "killed/app", "ci",
                                                                ["v{}".format(iteration)])
                env = {"RELEASEKIT_CONFIG": releases.write_config(str(tmp_path / "k.yaml"), counter.host)}
            else:
                jar = releases.make_jar(root + ".jar", "killed {}".format(iteration))
                manifest, runfiles = releases.jar_release(str(tmp_path), jar, "com.example.killed:lib:2.0.{}".format(
                    iteration), name="k{}".format(iteration))
                env = {"RELEASEKIT_CONFIG": releases.write_store_config(str(tmp_path / "k.yaml"),
                                                                        counter.url + "/releases",
                                                                        counter.url + "/snapshots"),
                       "RELEASEKIT_MAVEN_USERNAME": TEST_USER, "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD}
            # As dispatch pins them; each image its own commit, since a commit tag names one image.
            commit = releases.commit_of(iteration) if kind == "image" else releases.COMMIT
            env.update(CI="true", RELEASEKIT_COMMIT=commit, RELEASEKIT_DIRTY="false")
            releases_by_iteration[iteration] = manifest, runfiles, env
        return releases_by_iteration[iteration]

    def start(iteration):
        manifest, runfiles, env = release(iteration)
        run_env = dict(os.environ)
        run_env.pop("CI", None)
        run_env.update(env)
        return subprocess.Popen([sys.executable, releases.ENTRY, "publish", "--manifest", manifest, "--runfiles",
                                 runfiles],
                                env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def check_whole():
        if kind == "image":
            _registry_is_whole(registry, "prod/killed/app")
            _registry_is_whole(registry, "prod/releasekit-channel")
            _pointer_records_lead_their_tags(registry, "prod/killed/app", "prod/releasekit-channel")
        else:
            _store_is_whole(store.path("releases"))

    def rerun(iteration):
        manifest, runfiles, env = release(iteration)
        result = releases.publish(manifest, runfiles, env)
        if result.returncode == 0 and kind == "image":
            assert "v{}".format(iteration) in registry.tags("prod/killed/app")
        return result

    try:
        kills = _kill_campaign(gate, [counter], start, check_whole, rerun, seed=2026)
    finally:
        counter.stop()
    expected = {"image": {"ping", "owner record", "blobs", "manifests", "provenance", "pointer records", "tags"},
                "jar": {"owner record", "files", "lock", "provenance", "metadata"}}[kind]
    assert expected <= {phase.split(": ", 1)[1] for phase in kills}, kills


def test_a_chunked_upload_resumes_where_the_registry_stands(registry, tmp_path, isolated_home):
    """Chunk uploads cut off mid-body resume from the registry's offset; lost answers cost a fresh session, never
    a corrupt blob."""
    from releasekit.core.destinations import parse_registry
    from releasekit.core.credentials import ANONYMOUS
    from releasekit.core.http import RetryPolicy
    from releasekit.publishing.image import build_plan
    from releasekit.publishing.image_plan import ImagePlan
    from releasekit.publishing.blob_locator import BlobLocator
    from releasekit.publishing.registry import RegistryClient

    for faults, repository, megabytes in ((("reset",), "resume/reset", 6), (("reset", "cut"), "resume/mixed", 2)):
        layout = str(tmp_path / repository.replace("/", "-"))
        make_layout(layout, {"/data": os.urandom(megabytes << 20)})
        plan = ImagePlan(build_plan(layout), layout)
        layer_size = max(b["size"] for b in plan.blobs)
        proxy = SlowProxy(registry.host, fault_rate=0.25, faults=faults, seed=5)
        try:
            client = RegistryClient(parse_registry("http://" + proxy.host), ANONYMOUS,
                                    RetryPolicy(attempts=40, total_seconds=120, base_delay=0.05, timeout=5), workers=1,
                                    chunk_size=512 << 10, locator=BlobLocator())
            result = client.push(repository, plan, ["v1"])
            assert sum(proxy.injected.values()) >= 3, proxy.injected
            assert registry.inspect(repository + ":v1")["Digest"] == plan.root["digest"]
            # A reset loses at most the chunk in flight: the upload resumes where the registry stands. A cut answer
            # loses the session's new state token, and the CNCF registry cancels a session resumed with a stale
            # one: that costs at most what the session had sent. Starting over on every fault would cost the layer each.
            resets, cuts = proxy.injected["reset"], proxy.injected["cut"]
            bound = layer_size * (cuts + 1) + (512 << 10) * (resets + 1)
            assert result.bytes_uploaded <= bound, (result.bytes_uploaded, layer_size, proxy.injected)
            if not cuts:
                assert result.bytes_uploaded < 2 * layer_size, (result.bytes_uploaded, layer_size, proxy.injected)
        finally:
            proxy.stop()


def test_deploy_releases_complete_at_a_30_percent_fault_rate(example_workspace, faulty_registry, faulty_store, registry,
                                                          tmp_path):
    """The example's deploy release, built once and run 20 times: images first, then YAML pinned by digest."""
    import yaml

    store, store_proxy = faulty_store
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{registry: 'http://{0}/prod', deploy: '{1}/deploy'}}\n"
                      "  dev: {{registry: 'http://{0}/dev', deploy: '{1}/deploy-dev'}}\n".format(faulty_registry.host,
                                                                                               store_proxy.url))
    example_workspace.bazel("build", "//services/hello:hello_deploy.ci")
    executable = os.path.join(example_workspace.path, "bazel-bin/services/hello/hello_deploy.ci")
    env = dict(os.environ, **RETRIES, RELEASEKIT_CONFIG=str(config), CI="true", XDG_CACHE_HOME=str(tmp_path / "cache"),
               BUILD_WORKSPACE_DIRECTORY=example_workspace.path, RELEASEKIT_DEPLOY_USERNAME=TEST_USER,
               RELEASEKIT_DEPLOY_PASSWORD=TEST_PASSWORD)

    def release(index):
        result = subprocess.run([executable], env=dict(env, RELEASEKIT_VERSION="3.0.{}".format(index)),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
        assert TEST_PASSWORD not in result.stdout + result.stderr

    _campaign(release, range(CAMPAIGN - 1))
    release(CAMPAIGN - 1)  # alone and last: `latest` then names it
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=example_workspace.path, capture_output=True,
                          text=True).stdout.strip()
    digest = registry.inspect("prod/examples/hello:" + head)["Digest"]
    for index in range(CAMPAIGN):
        documents = list(yaml.safe_load_all(open(store.path(
            "deploy/services/hello/hello_deploy/3.0.{}/hello.yaml".format(index)))))
        assert documents[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith("@" + digest)
    assert open(store.path("deploy/services/hello/hello_deploy/latest")).read().strip() == "3.0.{}".format(CAMPAIGN - 1)


def test_killed_deploy_releases_never_show_yaml_without_its_images(example_workspace, registry, faulty_store, tmp_path):
    import requests
    import yaml

    store, _ = faulty_store
    example_workspace.bazel("build", "//services/hello:hello_deploy.ci")
    executable = os.path.join(example_workspace.path, "bazel-bin/services/hello/hello_deploy.ci")

    def whole():
        for directory, _, files in os.walk(store.path("killed-deploy")):
            if "provenance.intoto.jsonl" in files:  # written after the YAML and release.json it describes
                assert {"hello.yaml", "release.json"} <= set(files), directory
            if "hello.yaml" not in files:
                continue
            for document in yaml.safe_load_all(open(os.path.join(directory, "hello.yaml"))):
                for container in (document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])):
                    name, digest = container["image"].split("@")
                    repository = name.split("/", 1)[1]
                    manifest = requests.get("{}/v2/{}/manifests/{}".format(registry.url, repository, digest),
                                            timeout=10,
                                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                    assert manifest.status_code == 200, container["image"]
                    for blob in [manifest.json()["config"]] + manifest.json()["layers"]:
                        assert requests.head("{}/v2/{}/blobs/{}".format(registry.url, repository, blob["digest"]),
                                             timeout=10).status_code == 200

    gate = KillGate()
    registry_counter = SlowProxy(registry.host, gate=gate, name="registry")
    store_counter = SlowProxy("127.0.0.1:{}".format(store.port), gate=gate, name="store")

    def env_for(iteration):
        # A fresh image repository per iteration, so every kill point finds its images still to push.
        config = tmp_path / "k{}.yaml".format(iteration)
        config.write_text("channels:\n  ci: {{registry: 'http://{0}/killed{2}', deploy: '{1}/killed-deploy'}}\n"
                          "  dev: {{registry: 'http://{0}/killed-dev', deploy: '{1}/killed-dev'}}\n".format(
                              registry_counter.host, store_counter.url, iteration))
        return dict(os.environ, RELEASEKIT_CONFIG=str(config), CI="true",
                    BUILD_WORKSPACE_DIRECTORY=example_workspace.path,
                    XDG_CACHE_HOME=str(tmp_path / "cache{}".format(iteration)),
                    RELEASEKIT_VERSION="9.0.{}".format(iteration),
                    RELEASEKIT_DEPLOY_USERNAME=TEST_USER, RELEASEKIT_DEPLOY_PASSWORD=TEST_PASSWORD)

    def start(iteration):
        return subprocess.Popen([executable], env=env_for(iteration), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def rerun(iteration):
        result = subprocess.run([executable], env=env_for(iteration), capture_output=True, text=True, timeout=120)
        assert TEST_PASSWORD not in result.stdout + result.stderr
        if result.returncode == 0:
            published = "killed-deploy/services/hello/hello_deploy/9.0.{}/hello.yaml".format(iteration)
            assert os.path.exists(store.path(published))
        return result

    try:
        kills = _kill_campaign(gate, [registry_counter, store_counter], start, whole, rerun, seed=7)
    finally:
        registry_counter.stop()
        store_counter.stop()
    assert {"registry: blobs", "registry: provenance", "registry: pointer records", "registry: tags",
            "store: owner record", "store: files", "store: provenance", "store: pointer"} <= set(kills), kills


def test_jar_releases_to_s3_complete_at_a_30_percent_fault_rate(tmp_path, isolated_home):
    from helpers.servers import MotoS3

    moto = MotoS3(str(tmp_path))
    proxy = SlowProxy("127.0.0.1:{}".format(moto.port), fault_rate=0.3, slow_seconds=1.0, seed=13)
    try:
        config = releases.write_store_config(str(tmp_path / "releasekit.yaml"), "s3://{}/releases".format(moto.bucket),
                                             "s3://{}/snapshots".format(moto.bucket))
        env = dict(RETRIES, **moto.environ, RELEASEKIT_CONFIG=config, CI="true")
        env["RELEASEKIT_S3_ENDPOINT_URL"] = proxy.url

        def release(index):
            jar = releases.make_jar(str(tmp_path / "s{}.jar".format(index)), "s3 release {}".format(index))
            manifest, runfiles = releases.jar_release(str(tmp_path), jar,
                                                      "com.example.s3faults:lib:1.1.{}".format(index),
                                                      name="s{}".format(index))
            result = releases.publish(manifest, runfiles, env)
            assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
            assert moto.environ["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr
            published = "releases/com/example/s3faults/lib/1.1.{0}/lib-1.1.{0}.jar".format(index)
            assert moto.get(published) == open(jar, "rb").read()

        _campaign(release)
        metadata = moto.get("releases/com/example/s3faults/lib/maven-metadata.xml").decode()
        assert all("<version>1.1.{}</version>".format(i) in metadata for i in range(CAMPAIGN))
        assert sum(proxy.injected.values()) >= CAMPAIGN
    finally:
        proxy.stop()
        moto.stop()
