"""deploy_release end to end: images first, YAML pinned by digest, nothing half-published."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import TEST_PASSWORD, TEST_USER
from helpers.servers import REPO_ROOT, NginxStore, Registry, free_port
from helpers.workspace import git

TARGET = "//services/hello:hello_deploy"


@pytest.fixture(scope="module")
def deploy_store(tmp_path_factory):
    server = NginxStore(str(tmp_path_factory.mktemp("deploy-store")), TEST_USER, TEST_PASSWORD)
    yield server
    server.stop()


def config_for(path, registry_host, deploy_url):
    path.write_text(
        "channels:\n"
        "  ci:  {{registry: 'http://{0}/prod', deploy: '{1}/prod'}}\n"
        "  dev: {{registry: 'http://{0}/dev', deploy: '{1}/dev'}}\n".format(registry_host, deploy_url))
    return str(path)


def env_for(tmp_path, config, **extra):
    env = {"RELEASEKIT_CONFIG": config, "XDG_CACHE_HOME": str(tmp_path / "cache"), "RELEASEKIT_USER": "tester",
           "RELEASEKIT_DEPLOY_USERNAME": TEST_USER, "RELEASEKIT_DEPLOY_PASSWORD": TEST_PASSWORD}
    env.update(extra)
    return env


def published_yaml(store, channel, version):
    path = store.path("{}/services/hello/hello_deploy/{}/hello.yaml".format(channel, version))
    return list(yaml.safe_load_all(open(path))) if os.path.exists(path) else None


def test_ci_deploy_names_the_digest_skopeo_sees(example_workspace, registry, deploy_store, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url)
    result = example_workspace.bazel("run", TARGET + ".ci", env=env_for(tmp_path, config, CI="true"))
    assert "published deploy version " + head in result.stdout
    documents = published_yaml(deploy_store, "prod", head)
    image = documents[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    digest = registry.inspect("prod/examples/hello:" + head)["Digest"]
    assert image == "{}/prod/examples/hello@{}".format(registry.host, digest)
    assert documents[1]["kind"] == "Service"
    pointer = deploy_store.path("prod/services/hello/hello_deploy/latest")
    assert open(pointer).read().strip() == head
    summary = yaml.safe_load(open(deploy_store.path("prod/services/hello/hello_deploy/{}/release.json".format(head))))
    assert summary["images"]["hello-image"] == image

    before = os.stat(deploy_store.path("prod/services/hello/hello_deploy/{}/hello.yaml".format(head))).st_mtime_ns
    again = example_workspace.bazel("run", TARGET + ".ci", env=env_for(tmp_path, config, CI="true"))
    assert "already published deploy version" in again.stdout
    published = deploy_store.path("prod/services/hello/hello_deploy/{}/hello.yaml".format(head))
    assert os.stat(published).st_mtime_ns == before


def test_dev_and_ci_publish_to_their_own_destinations(example_workspace, registry, deploy_store, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/own")
    example_workspace.bazel("run", TARGET + ".dev", env=env_for(tmp_path, config))
    version = "dev-tester-" + head[:12]
    documents = published_yaml(deploy_store, "own/dev", version)
    image = documents[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(registry.host + "/dev/examples/hello@sha256:")
    assert not os.path.exists(deploy_store.path("own/prod"))


def test_a_failing_image_publishes_no_yaml_and_a_rerun_completes(example_workspace, deploy_store, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    port = free_port()
    config = config_for(tmp_path / "releasekit.yaml", "127.0.0.1:{}".format(port), deploy_store.url + "/recover")
    env = env_for(tmp_path, config, CI="true", RELEASEKIT_RETRY_ATTEMPTS="2", RELEASEKIT_RETRY_TOTAL_SECONDS="3")
    down = example_workspace.bazel("run", TARGET + ".ci", env=env, check=False)
    assert down.returncode != 0
    assert "no deploy YAML was published" in down.stderr and "//services/hello:hello" in down.stderr
    assert "connection refused" in down.stderr
    assert not os.path.exists(deploy_store.path("recover"))

    refusing = Registry(str(tmp_path / "refusing"), TEST_USER, TEST_PASSWORD, port=port)
    try:
        denied = example_workspace.bazel("run", TARGET + ".ci", env=env, check=False)
        assert denied.returncode != 0 and "AuthError" in denied.stderr and "no deploy YAML" in denied.stderr
        assert not os.path.exists(deploy_store.path("recover"))
        env.update(RELEASEKIT_REGISTRY_USERNAME=TEST_USER, RELEASEKIT_REGISTRY_PASSWORD=TEST_PASSWORD)
        example_workspace.bazel("run", TARGET + ".ci", env=env)
        documents = published_yaml(deploy_store, "recover/prod", head)
        digest = refusing.inspect("prod/examples/hello:" + head)["Digest"]
        assert documents[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith("@" + digest)
    finally:
        refusing.stop()


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - {name: app, image: IMAGE}
"""


@pytest.mark.parametrize(
    "package,yaml_text,images,expected",
    [
        ("k8s_invalid", DEPLOYMENT.replace("REPLICAS", "three").replace("IMAGE", "app-image"), {"app-image": ":app"},
         "k8s_invalid/app.yaml:5:3 (document 1, Deployment app): attribute manifests: invalid for Kubernetes 1.30.0: "
         "'three' is not of type 'integer', 'null' (at spec.replicas)."),
        ("yaml_broken", "apiVersion: v1\nkind: [unclosed\n", {},
         "yaml_broken/app.yaml:3:1: attribute manifests: not valid YAML"),
        ("unused", DEPLOYMENT.replace("REPLICAS", "1").replace("IMAGE", "app-image"),
         {"app-image": ":app", "other": ":app"},
         "attribute images: 'other' (//unused:app) never appear as an image"),
        ("unpinned", DEPLOYMENT.replace("REPLICAS", "1").replace("IMAGE", "nginx:1.25"), {},
         "unpinned/app.yaml:11:30 (document 1, Deployment app): attribute manifests: image 'nginx:1.25' at "
         "spec.template.spec.containers[0].image is neither a key of attribute images"),
        ("not_container", DEPLOYMENT.replace("REPLICAS", "1").replace("IMAGE", "app-image"), {"app-image": ":notes"},
         "attribute images: //not_container:notes (for 'app-image') is not a container_release"),
    ],
)
def test_bad_deploy_inputs_fail_the_build(broken_workspace, tmp_path, package, yaml_text, images, expected):
    from helpers.images import make_docker_archive, make_layout

    make_layout(str(tmp_path / "layout"), {"/app": b"app"})
    os.makedirs(os.path.join(broken_workspace.path, package), exist_ok=True)
    make_docker_archive(str(tmp_path / "layout"), os.path.join(broken_workspace.path, package, "app.tar"))
    build = ('filegroup(name = "notes", srcs = ["notes.txt"])\n\n'
             'container_release(name = "app", image = "app.tar", repository = "a/app")\n\n'
             'deploy_release(name = "deploy", manifests = ["app.yaml"], images = {})').format(repr(images).replace("'",
                                                                                                                   '"'))
    stderr = broken_workspace.build_package_expecting_failure(
        package, build, {"app.yaml": yaml_text, "notes.txt": "x"}, target="//{}:deploy".format(package))
    assert expected in stderr, stderr[-2000:]


CUSTOM_RESOURCE = """# A platform team's service kind: the image sits in fields of its own, beside a pod-style `image:`.
apiVersion: platform.example.com/v1
kind: ExampleService
metadata:
  name: shop   # reviewed comment
  annotations: {owner: "payments"}
spec:
  containerImage: base-image
  sidecarImage: &sidecar "base-image:1.0"
  extraSidecars:
    - name: proxy
      image: *sidecar
    - {name: logger, image: 'base-image'}
  replicas: 3
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config}
data:
  note: "unrelated text"
"""


def _custom_resource_package(workspace, image_fields):
    workspace.write("services/shop/shop.yaml", CUSTOM_RESOURCE)
    workspace.write("services/shop/BUILD.bazel", (
        'load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout")\n\n'
        'image_layout(name = "image", files = {{"shop.yaml": "/app/shop.yaml"}})\n\n'
        'container_release(name = "shop", image = ":image", repository = "examples/shop")\n\n'
        'deploy_release(\n    name = "shop_deploy",\n    manifests = ["shop.yaml"],\n'
        '    images = {{"base-image": ":shop"}},\n    image_fields = {},\n    platform = "generic",\n)\n'
    ).format(repr(image_fields).replace("'", '"')))
    return workspace.commit("a custom resource with image fields of its own")


def test_placeholders_in_custom_image_fields_are_pinned_and_the_reviewed_text_survives(
        example_workspace, registry, deploy_store, tmp_path):
    """Before: only `image:` values were rewritten, and the custom kind's own fields reached the CI store unresolved."""
    _custom_resource_package(example_workspace, [])
    undeclared = example_workspace.bazel("build", "//services/shop:shop_deploy.ci", check=False)
    assert undeclared.returncode != 0
    assert ("services/shop/shop.yaml:8:19 (document 1): placeholder 'base-image' stands at spec.containerImage, "
            "which is not an image field") in undeclared.stderr
    # sidecarImage is anchored and its alias is an `image:` field: pinned there, it is pinned everywhere.
    assert "spec.sidecarImage" not in undeclared.stderr
    assert 'Declare such fields in attribute image_fields ("ExampleService:spec/containerImage")' in undeclared.stderr

    head = _custom_resource_package(example_workspace, ["ExampleService:spec/containerImage",
                                                        "ExampleService:spec/sidecarImage"])
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/custom")
    try:
        example_workspace.bazel("run", "//services/shop:shop_deploy.ci", env=env_for(tmp_path, config, CI="true"))
    finally:
        shutil.rmtree(os.path.join(example_workspace.path, "services/shop"))
        example_workspace.commit("remove the custom resource")
    digest = registry.inspect("prod/examples/shop:" + head)["Digest"]
    reference = "{}/prod/examples/shop@{}".format(registry.host, digest)
    with open(deploy_store.path("custom/prod/services/shop/shop_deploy/{}/shop.yaml".format(head))) as handle:
        published = handle.read()
    # Only the image values changed: comments, the anchor and its alias, quoting, order and separators are as reviewed.
    assert published == (CUSTOM_RESOURCE.replace("containerImage: base-image", "containerImage: " + reference)
                         .replace('&sidecar "base-image:1.0"', '&sidecar "{}"'.format(reference))
                         .replace("image: 'base-image'", "image: '{}'".format(reference)))
    service = next(yaml.safe_load_all(published))
    assert service["spec"]["extraSidecars"][0]["image"] == reference


OPERATOR_YAML = (
    "# An operator: it runs the database image it is given by the name RELATED_IMAGE_DB.\r\n"
    "apiVersion: apps/v1\r\nkind: Deployment\r\nmetadata: {name: operator}\r\nspec:\r\n"
    "  selector: {matchLabels: {app: operator}}\r\n  template:\r\n    metadata: {labels: {app: operator}}\r\n"
    "    spec:\r\n      containers:\r\n        - name: operator\r\n          image: operator-image   # reviewed\r\n"
    "          env:\r\n            - name: RELATED_IMAGE_DB\r\n              value: \"db-image\"\r\n"
    "            - {name: LOG_FORMAT, value: json}\r\n")


def test_an_image_in_an_environment_variable_is_pinned_and_the_reviewed_bytes_survive(
        example_workspace, registry, deploy_store, tmp_path):
    """Before: no field spec could name one env var's value, and the YAML was read with universal newlines, so a
    reviewed file with CRLF line endings was published with LF ones."""
    example_workspace.write("services/operator/operator.yaml", OPERATOR_YAML)
    example_workspace.write("services/operator/BUILD.bazel", (
        'load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout")\n\n'
        'image_layout(name = "image", files = {"operator.yaml": "/app/operator.yaml"})\n\n'
        'container_release(name = "operator", image = ":image", repository = "examples/operator")\n\n'
        'deploy_release(\n    name = "operator_deploy",\n    manifests = ["operator.yaml"],\n'
        '    images = {"operator-image": ":operator", "db-image": ":operator"},\n'
        '    image_fields = ["Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value"],\n)\n'))
    head = example_workspace.commit("an operator whose database image is an env var")
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/operator")
    try:
        example_workspace.bazel("run", "//services/operator:operator_deploy.ci",
                                env=env_for(tmp_path, config, CI="true"))
    finally:
        shutil.rmtree(os.path.join(example_workspace.path, "services/operator"))
        example_workspace.commit("remove the operator")
    reference = "{}/prod/examples/operator@{}".format(registry.host,
                                                      registry.inspect("prod/examples/operator:" + head)["Digest"])
    published = deploy_store.path("operator/prod/services/operator/operator_deploy/{}/operator.yaml".format(head))
    with open(published, "rb") as f:
        published = f.read()
    assert published == OPERATOR_YAML.replace("image: operator-image", "image: " + reference).replace(
        'value: "db-image"', 'value: "{}"'.format(reference)).encode("utf-8")


def test_a_placeholder_left_after_pinning_refuses_the_release():
    """The second guard: the pinned text is parsed again, and any placeholder left in any string refuses."""
    from releasekit.core.errors import DeployError
    from releasekit.publishing.deploy_yaml import pin_images

    text = "kind: ExampleService\nspec:\n  image: base-image\n  notes:\n    - base-image@sha256:abc\n"
    with pytest.raises(DeployError, match=r"shop.yaml:5:7 \(document 1\): placeholder 'base-image' stands at "
                                          r"spec.notes\[0\], which is not an image field; nothing was published"):
        pin_images(text, {"base-image": "r.example/app@sha256:" + "0" * 64}, [], "shop.yaml")
    pinned = pin_images(text.replace("    - base-image@sha256:abc\n", "    - fine\n"),
                        {"base-image": "r.example/app@sha256:" + "0" * 64}, [], "shop.yaml")
    assert pinned == "kind: ExampleService\nspec:\n  image: r.example/app@sha256:{}\n  notes:\n    - fine\n".format(
        "0" * 64)


def test_dev_never_writes_into_production_under_another_name(example_workspace, registry, deploy_store, tmp_path):
    """Before: a dev run through `localhost` overwrote production's latest pointer and tagged the production repository.

    The same server under a second host name is refused by releasekit.yaml's check; under a route no name comparison
    can see (a proxy on another port), the channel marker CI wrote refuses the dev release before its first write.
    """
    from helpers.slow_proxy import SlowProxy

    port = deploy_store.url.rsplit(":", 1)[1]
    aliased = tmp_path / "aliased.yaml"
    aliased.write_text("channels:\n  ci:  {{registry: 'http://{0}/prod', deploy: 'http://127.0.0.1:{1}/marked/prod'}}\n"
                       "  dev: {{registry: 'http://{0}/dev', deploy: 'http://localhost:{1}/marked/prod'}}\n"
                       .format(registry.host, port))
    checked = subprocess.run([sys.executable, "-m", "releasekit", "config", "--config", str(aliased)],
                             capture_output=True, text=True)
    assert checked.returncode == 2
    overlap = "channels.dev.deploy (http://localhost:{0}/marked/prod) overlaps channels.ci.deploy".format(port)
    assert overlap in checked.stderr

    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    production = config_for(tmp_path / "production.yaml", registry.host, deploy_store.url + "/marked")
    example_workspace.bazel("run", TARGET + ".ci", env=env_for(tmp_path, production, CI="true"))
    pointer = deploy_store.path("marked/prod/services/hello/hello_deploy/latest")
    assert open(pointer).read().strip() == head
    assert open(deploy_store.path("marked/prod/.releasekit-channel")).read() == "ci\n"

    registry_proxy, store_proxy = SlowProxy(registry.host), SlowProxy(deploy_store.url.split("//", 1)[1])
    try:
        through_proxies = tmp_path / "proxied.yaml"
        through_proxies.write_text(
            "channels:\n  ci:  {{registry: 'http://{0}/prod', deploy: '{1}/marked/prod'}}\n"
            "  dev: {{registry: 'http://{2}/prod', deploy: '{3}/marked/prod'}}\n".format(
                registry.host, deploy_store.url, registry_proxy.host, store_proxy.url))
        tags_before = registry.tags("prod/examples/hello")
        refused = example_workspace.bazel("run", TARGET + ".dev", env=env_for(tmp_path, str(through_proxies)),
                                          check=False)
        assert refused.returncode != 0
        claimed = "channels.dev.registry (http://{}/prod) is claimed by the CI channel".format(registry_proxy.host)
        assert claimed in refused.stderr
        assert registry.tags("prod/examples/hello") == tags_before

        store_only = tmp_path / "store-only.yaml"
        store_only.write_text(
            "channels:\n  ci:  {{registry: 'http://{0}/prod', deploy: '{1}/marked/prod'}}\n"
            "  dev: {{registry: 'http://{0}/dev', deploy: '{2}/marked/prod'}}\n".format(
                registry.host, deploy_store.url, store_proxy.url))
        refused = example_workspace.bazel("run", TARGET + ".dev", env=env_for(tmp_path, str(store_only)), check=False)
        assert refused.returncode != 0
        assert ("channels.dev.deploy ({0}/marked/prod) is claimed by the CI channel: "
                "{0}/marked/prod/.releasekit-channel".format(store_proxy.url)) in refused.stderr
        assert open(pointer).read().strip() == head
        assert not [name for name in os.listdir(deploy_store.path("marked/prod/services/hello/hello_deploy"))
                    if name.startswith("dev-")]
    finally:
        registry_proxy.stop()
        store_proxy.stop()


def test_a_ci_deploy_version_published_with_other_content_is_refused(example_workspace, registry, deploy_store,
                                                                     tmp_path):
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/immutable")
    env = env_for(tmp_path, config, CI="true", RELEASEKIT_VERSION="7.0.0")
    example_workspace.bazel("run", TARGET + ".ci", env=env)
    published = deploy_store.path("immutable/prod/services/hello/hello_deploy/7.0.0/hello.yaml")
    other = open(published).read().replace("replicas: 2", "replicas: 5")
    with open(published, "w") as handle:  # another commit's YAML, published under the same version
        handle.write(other)
    pointer = deploy_store.path("immutable/prod/services/hello/hello_deploy/latest")
    os.unlink(pointer)
    refused = example_workspace.bazel("run", TARGET + ".ci", env=env, check=False)
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "is already published with different content (hello.yaml); a CI deploy version is immutable, so nothing " \
           "was written" in refused.stderr
    assert open(published).read() == other and not os.path.exists(pointer)


def test_a_python_without_pyyaml_gets_the_pip_command(tmp_path):
    """The deploy check runs in the python3 Bazel actions find on PATH; one without PyYAML (here, site-packages
    turned off with -S) gets the command that fixes it, not a traceback."""
    manifest = tmp_path / "app.yaml"
    manifest.write_text("kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: app\n")
    entry = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
    result = subprocess.run([sys.executable, "-S", entry, "deploy-check", "--manifest", str(manifest), "--display",
                             "app.yaml", "--platform", "generic", "--kubernetes-version", "1.30.0", "--label",
                             "//app:deploy",
                             "--out", str(tmp_path / "out.json")], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "the Python package pyyaml is not installed for {}. Install it with: {} -m pip install pyyaml".format(
        sys.executable, sys.executable) in result.stderr


PLATFORM_CRD = open(os.path.join(REPO_ROOT, "examples", "platform", "exampleservice-crd.yaml")).read()
SERVICE = """apiVersion: platform.example.com/VERSION
kind: ExampleService
metadata: {name: app}
spec:
  containerImage: registry.example.com/app@sha256:4b1e5b5d4e0c3a2a1f5d8e7c6b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8
  PORT
  sidecars:
    - {name: proxy, image: registry.example.com/proxy@sha256:DIGEST}
  config: {apiVersion: v1, kind: ConfigMap, metadata: {name: app}, data: {A: b}}
"""


def service(version="v1", port="port: 8080", extra=""):
    digest = "4b1e5b5d4e0c3a2a1f5d8e7c6b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8"
    return SERVICE.replace("VERSION", version).replace("PORT", port).replace("DIGEST", digest) + extra


@pytest.mark.parametrize("package,files,build,expected", [
    ("crd_int_or_string", {"app.yaml": service(port="port: [http]")}, 'crds = ["crd.yaml"]',
     "crd_int_or_string/app.yaml:6:3 (document 1, ExampleService app): attribute manifests: invalid for its "
     "CustomResourceDefinition: ['http'] is not an integer or a string (x-kubernetes-int-or-string) (at spec.port)."),
    ("crd_unknown_field", {"app.yaml": service(extra="  replica: 2\n")}, 'crds = ["crd.yaml"]',
     "crd_unknown_field/app.yaml:10:3 (document 1, ExampleService app): attribute manifests: invalid for its "
     "CustomResourceDefinition: unknown field \"spec.replica\": the schema declares no such field here"),
    ("crd_nested_array", {"app.yaml": service().replace("{name: proxy, image: ", "{name: proxy, imag: ")},
     'crds = ["crd.yaml"]', "crd_nested_array/app.yaml:8:7 (document 1, ExampleService app): attribute manifests: "
     "invalid for its CustomResourceDefinition: 'image' is a required property (at spec.sidecars[0])."),
    ("crd_embedded", {"app.yaml": service().replace("{apiVersion: v1, kind: ConfigMap, ", "{kind: ConfigMap, ")},
     'crds = ["crd.yaml"]', "'apiVersion' is a required property of an embedded resource (x-kubernetes-embedded-"
     "resource) (at spec.config)."),
    ("crd_unserved", {"app.yaml": service(version="v1beta1")}, 'crds = ["crd.yaml"]',
     "crd_unserved/app.yaml:1:1 (document 1, ExampleService app): attribute manifests: ExampleService "
     "platform.example.com/v1beta1 is not a served version of its CRD (served: platform.example.com/v1)"),
    ("crd_missing", {"app.yaml": service()}, "",
     "no Kubernetes 1.30.0 schema for apiVersion 'platform.example.com/v1' kind 'ExampleService'. A custom kind is "
     "checked against its CustomResourceDefinition: list the CRD's file in attribute crds"),
    ("crd_invalid", {"app.yaml": service(), "crd.yaml": PLATFORM_CRD.split("  versions:")[0]}, 'crds = ["crd.yaml"]',
     "crd_invalid/crd.yaml:2:1 (document 1): attribute crds: not a valid CustomResourceDefinition: it needs "
     "spec.group, spec.names.kind and spec.versions"),
    ("schema_invalid", {"app.yaml": "fleet: web\n", "s.json": '{"type": 12}'},
     'platform = "generic", schema = "s.json"',
     "schema_invalid/s.json: attribute schema: not a valid JSON Schema"),
    ("schema_refuses", {"app.yaml": "fleet: web\ninstances: 0\n",
                        "s.json": '{"type": "object", "properties": {"instances": {"type": "integer", "minimum": 1}}}'},
     'platform = "generic", schema = "s.json"',
     "schema_refuses/app.yaml:2:1 (document 1, document): attribute manifests: invalid for the schema "
     "schema_refuses/s.json: 0 is less than the minimum of 1 (at instances)."),
    ("schema_for_kubernetes", {"app.yaml": service(), "s.json": "{}"}, 'schema = "s.json"',
     "//schema_for_kubernetes:deploy: attribute schema: a JSON Schema checks platform = \"generic\" deploy YAML"),
])
def test_custom_resources_and_generic_yaml_are_checked_against_their_schemas(broken_workspace, package, files, build,
                                                                             expected):
    """Before: a custom kind failed as unknown to Kubernetes even with its CRD at hand, and generic YAML was never
    schema-checked."""
    files = dict({"crd.yaml": PLATFORM_CRD}, **files)
    stderr = broken_workspace.build_package_expecting_failure(
        package, 'deploy_release(name = "deploy", manifests = ["app.yaml"], {})'.format(build), files,
        target="//{}:deploy".format(package))
    assert expected in stderr, stderr[-2000:]


def test_a_crd_within_the_manifests_checks_its_custom_resources(broken_workspace):
    """The CRD shipped in the same YAML counts; integers and strings both pass an int-or-string field."""
    manifests = PLATFORM_CRD + "---\n" + service(port="port: 8080") + "---\n" + service(port="port: http")
    broken_workspace.write("crd_inline/app.yaml", manifests.replace("name: app}", "name: app2}", 1))
    broken_workspace.write("crd_inline/BUILD.bazel", 'load("@rules_release//rules:defs.bzl", "deploy_release")\n\n'
                           'deploy_release(name = "deploy", manifests = ["app.yaml"])\n')
    result = broken_workspace.bazel("build", "//crd_inline:deploy", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    checked = json.load(open(os.path.join(broken_workspace.path, "bazel-bin/crd_inline/deploy.deploy_check.json")))
    assert checked["custom_kinds"] == ["platform.example.com/ExampleService"] and checked["documents"] == 3
    assert checked["cel_rules"] == {"evaluated": 2, "unchecked": [], "not_applicable": []}


def test_the_platform_example_publishes_its_custom_resource_pinned(example_workspace, registry, deploy_store, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/platform")
    example_workspace.bazel("run", "//services/hello:hello_platform.ci", env=env_for(tmp_path, config, CI="true"))
    path = deploy_store.path("platform/prod/services/hello/hello_platform/{}/hello-platform.yaml".format(head))
    published = yaml.safe_load(open(path))
    digest = registry.inspect("prod/examples/hello:" + head)["Digest"]
    assert published["spec"]["containerImage"] == "{}/prod/examples/hello@{}".format(registry.host, digest)
    assert published["spec"]["port"] == "http" and published["spec"]["config"]["kind"] == "ConfigMap"


def test_deployed_shows_what_a_cd_system_reads_and_refuses_when_an_image_is_missing(
        example_workspace, registry, deploy_store, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/cd")
    env = env_for(tmp_path, config, CI="true")
    example_workspace.bazel("run", "//services/hello:hello_platform.ci", env=env)
    command = [sys.executable, os.path.join(REPO_ROOT, "tools", "releasekit_entry.py"), "deployed",
               "//services/hello:hello_platform", "--config", config]
    shown = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    digest = registry.inspect("prod/examples/hello:" + head)["Digest"]
    assert "//services/hello:hello_platform ci version {} (commit {})".format(head, head) in shown.stdout
    assert "containerImage: {}/prod/examples/hello@{}".format(registry.host, digest) in shown.stdout
    assert "image hello-image = {}/prod/examples/hello@{}: present".format(registry.host, digest) in shown.stdout
    assert TEST_PASSWORD not in shown.stdout + shown.stderr

    # A registry that lost the image (garbage collected, or another registry): the CD side must not deploy it.
    summary_path = deploy_store.path("cd/prod/services/hello/hello_platform/{}/release.json".format(head))
    summary = json.load(open(summary_path))
    summary["images"]["hello-image"] = summary["images"]["hello-image"].replace(digest, "sha256:" + "0" * 64)
    with open(summary_path, "w") as handle:
        json.dump(summary, handle)
    missing = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env))
    assert missing.returncode == 1 and "sha256:{}: MISSING".format("0" * 64) in missing.stdout
    absent = subprocess.run(command + ["--version", "9.9.9"], capture_output=True, text=True,
                            env=dict(os.environ, **env))
    assert absent.returncode == 1 and "version 9.9.9 is not published" in absent.stdout


def test_the_fleet_example_publishes_yaml_its_schema_accepts(example_workspace, registry, deploy_store, tmp_path):
    """platform = "generic" with a JSON Schema: checked at build time, published like any deploy YAML."""
    config = config_for(tmp_path / "releasekit.yaml", registry.host, deploy_store.url + "/fleet")
    result = example_workspace.bazel("run", "//services/fleet:fleet_deploy.dev", env=env_for(tmp_path, config))
    version = result.stdout.split("deploy version ")[1].split()[0]
    published = yaml.safe_load(open(deploy_store.path(
        "fleet/dev/services/fleet/fleet_deploy/{}/fleet.yaml".format(version))))
    assert published["fleet"] == "web" and published["health_check"]["port"] == 8080

