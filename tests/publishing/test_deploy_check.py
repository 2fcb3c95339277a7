"""The deploy check (the build action of deploy_release) against real CRDs: what the API server refuses is refused,
what it accepts is accepted, and every error names file:line:column, the field's path and what was wanted.

The CRDs under crds/ are the projects' own (see crds/README.md); each test names the item of the check it shows.
"""

import os

import pytest

from helpers.servers import REPO_ROOT
from releasekit.core.errors import DeployInputError
from releasekit.publishing.deploy_yaml import check, pin_images

CRDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crds")


def crd(name):
    with open(os.path.join(CRDS, name), encoding="utf-8") as handle:
        return ("crds/" + name, handle.read())


def checked(manifest, crds=(), placeholders=None, platform="kubernetes", image_fields=(), schema=None):
    return check([("app.yaml", manifest)], placeholders or {}, platform, "1.30.0", "//app:deploy", list(image_fields),
                 [crd(name) for name in crds], schema)


def refused(manifest, crds=(), **options):
    with pytest.raises(DeployInputError) as error:
        checked(manifest, crds, **options)
    return str(error.value)


SERVICE_MONITOR = """apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  endpoints:
    - port: http
      interval: INTERVAL
  scrapeProtocols: PROTOCOLS
"""
MONITORS = ["prometheus-operator/monitoring.coreos.com_servicemonitors.yaml"]


def service_monitor(interval="30s", protocols="[PrometheusProto, OpenMetricsText1.0.0]"):
    return SERVICE_MONITOR.replace("INTERVAL", interval).replace("PROTOCOLS", protocols)


def test_a_pattern_is_matched_as_re2_where_dollar_is_the_end_of_the_text():
    """Before: Python's re let `$` match before a final newline, so "30s\\n" passed the interval pattern."""
    assert checked(service_monitor(), MONITORS)["documents"] == 1
    message = refused(service_monitor(interval='"30s\\n"'), MONITORS)
    assert message.startswith("app.yaml:9:7 (document 1, ServiceMonitor web): attribute manifests: invalid for its "
                              "CustomResourceDefinition: '30s\\n' does not match the pattern")
    assert "(RE2, as the API server matches it) (at spec.endpoints[0].interval)." in message


def test_list_type_set_and_map_refuse_duplicates():
    """Before: x-kubernetes-list-type was ignored: a set with a repeated item, a map with a repeated key passed."""
    message = refused(service_monitor(protocols="[PrometheusProto, PrometheusProto]"), MONITORS)
    assert ('app.yaml:10:38 (document 1, ServiceMonitor web): attribute manifests: invalid for its '
            'CustomResourceDefinition: Duplicate value: "PrometheusProto" appears twice; x-kubernetes-list-type set '
            'wants unique items (at spec.scrapeProtocols[1]).') in message
    gateway = GATEWAY.replace("    - name: https\n", "    - name: http\n")
    message = refused(gateway, GATEWAYS)
    assert ('Duplicate value: name="http" appears twice; x-kubernetes-list-type map wants one item per key (name) '
            '(at spec.listeners[1]).') in message
    assert "app.yaml:11:7 (document 1, Gateway web)" in message


GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: example
  listeners:
    - name: http
      protocol: HTTP
      port: 80
    - name: https
      protocol: HTTPS
      port: 443
      tls:
        mode: Terminate
        certificateRefs: [{name: web-cert}]
"""
GATEWAYS = ["gateway-api/gateway.networking.k8s.io_gateways.yaml",
            "gateway-api/gateway.networking.k8s.io_gatewayclasses.yaml"]


def test_cel_rules_are_evaluated_with_self_bound_as_the_api_server_binds_it():
    """Before: x-kubernetes-validations were counted, not checked: a Gateway the API server refuses passed."""
    result = checked(GATEWAY, GATEWAYS)
    assert result["cel_rules"]["evaluated"] > 5 and result["cel_rules"]["unchecked"] == []
    message = refused(GATEWAY.replace("      port: 80\n", "      port: 80\n      tls: {mode: Terminate}\n"), GATEWAYS)
    assert ("app.yaml:7:3 (document 1, Gateway web): attribute manifests: invalid for its CustomResourceDefinition: "
            "Invalid value: tls must not be specified for protocols ['HTTP', 'TCP', 'UDP'] "
            "(at spec.listeners).") in message


def test_a_transition_rule_is_not_applicable_and_a_rule_that_cannot_run_offline_is_named_unchecked():
    gateway_class = ("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: example}\n"
                     "spec: {controllerName: example.com/gateway-controller}\n")
    rules = checked(gateway_class, GATEWAYS)["cel_rules"]
    assert rules["not_applicable"] == [{"rule": "self == oldSelf", "at": "spec.controllerName",
                                        "why": "a transition rule (oldSelf): a new object has no old value"}]
    backend = ("apiVersion: gateway.networking.x-k8s.io/v1alpha1\nkind: XBackend\nmetadata: {name: db}\n"
               "spec:\n  type: ExternalHostname\n  externalHostname: {hostname: db.example.com}\n"
               "  port: {name: postgres, port: 5432}\n")
    rules = checked(backend, ["gateway-api/gateway.networking.x-k8s.io_xbackends.yaml"])["cel_rules"]
    assert rules["unchecked"] == [{
        "rule": "size(self) == 0 || format.dns1123Label().validate(self) == null", "at": "spec.port.name",
        "why": "uses dns1123Label(), validate(), format, which this offline check does not implement"}]
    assert rules["evaluated"] == 2  # the rules beside it (type and hostname) still ran
    assert "externalHostname must be set when type is ExternalHostname" in refused(
        backend.replace("  externalHostname: {hostname: db.example.com}\n", ""),
        ["gateway-api/gateway.networking.x-k8s.io_xbackends.yaml"])


CRON_TAB = """apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: "0 3 * * *"
  image: registry.example.com/backup:1.2@sha256:4b1e5b5d4e0c3a2a1f5d8e7c6b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8
  replicas: 2
  minReplicas: 1
  schedule: {timeZone: Europe/Berlin, window: 1h30m}
"""
SHAPES = ["shapes/crds.yaml"]


def test_message_expression_field_path_and_reason_shape_the_error():
    """Before: none of these rules ran. messageExpression gives the message, fieldPath the place, reason the type."""
    assert checked(CRON_TAB, SHAPES)["cel_rules"]["not_applicable"] == [{
        "rule": "self.replicas >= oldSelf.replicas", "at": "spec",
        "why": "a transition rule (oldSelf): a new object has no old value"}]
    message = refused(CRON_TAB.replace("minReplicas: 1", "minReplicas: 3"), SHAPES)
    assert ("app.yaml:8:3 (document 1, CronTab nightly): attribute manifests: invalid for its "
            "CustomResourceDefinition: Invalid value: replicas (2) must be at least minReplicas (3) "
            "(at spec.replicas).") in message
    message = refused(CRON_TAB.replace("backup:1.2@", "backup:latest@"), SHAPES)
    assert "app.yaml:7:3 (document 1, CronTab nightly)" in message
    assert "Forbidden: a :latest image is not allowed (at spec.image)." in message
    # A messageExpression that gives a line break is not used: the message is.
    assert "Invalid value: cronSpec must have 5 fields (at spec)." in refused(CRON_TAB.replace('"0 3 * * *"',
                                                                                               '"@daily"'),
                                                                             SHAPES)
    # optionalOldSelf: the rule runs on a new object, with oldSelf absent.
    assert "a new CronTab starts with at most 10 replicas" in refused(CRON_TAB.replace("replicas: 2", "replicas: 12"),
                                                                      SHAPES)
    # The Kubernetes CEL library: indexOf and url() with getHost().
    assert "timeZone must be an IANA name" in refused(CRON_TAB.replace("Europe/Berlin", "CET"), SHAPES)


def test_formats_are_checked_as_kubernetes_checks_them():
    """Before: `format` was dropped, so a date-time of "yesterday" and a byte field that is not base64 passed."""
    rollout = ("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\n"
               "spec:\n  replicas: 2\n  restartAt: RESTART\n")
    assert checked(rollout.replace("RESTART", "'2024-05-01T10:00:00Z'"), SHAPES)["documents"] == 1
    message = refused(rollout.replace("RESTART", "yesterday"), SHAPES)
    assert ("app.yaml:6:3 (document 1, Rollout web): attribute manifests: invalid for its CustomResourceDefinition: "
            "'yesterday' is not a valid date-time: the schema wants an RFC 3339 date-time, e.g. 2006-01-02T15:04:05Z "
            "(at spec.restartAt).") == message
    issuer = ("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: vault}\nspec:\n  vault:\n"
              "    server: https://vault.example.com\n    path: pki/sign/web\n    caBundle: CA\n"
              "    auth: {tokenSecretRef: {name: vault-token, key: token}}\n")
    issuers = ["cert-manager/cert-manager.io_issuers.yaml"]
    assert checked(issuer.replace("CA", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"), issuers)["documents"] == 1
    message = refused(issuer.replace("CA", "'not base64!'"), issuers)
    assert "app.yaml:8:5 (document 1, Issuer vault)" in message
    assert "'not base64!' is not a valid byte: the schema wants base64-encoded data" in message


def test_exclusive_bounds_are_kept():
    """Before: exclusiveMinimum and exclusiveMaximum were not copied from the CRD, so the bounds themselves passed."""
    canary = ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\n"
              "spec:\n  analysis: {interval: 1m, stepWeight: STEP, maxWeight: 50}\n")
    assert checked(canary.replace("STEP", "0.5"), SHAPES)["documents"] == 1
    assert "0 is less than or equal to the minimum of 0 (at spec.analysis.stepWeight)" in refused(
        canary.replace("STEP", "0"), SHAPES)
    assert "100 is greater than or equal to the maximum of 100 (at spec.analysis.stepWeight)" in refused(
        canary.replace("STEP", "100"), SHAPES)


NODE_POOL = """apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  weight: WEIGHT
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - {key: kubernetes.io/arch, operator: In, values: [amd64]}
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    budgets:
      - schedule: "0 9 * * mon-fri"
        duration: 8h
"""
NODE_POOLS = ["karpenter/karpenter.sh_nodepools.yaml"]


def test_defaults_fill_a_required_field_and_nulls_are_pruned_before_validation():
    """Before: a budget without `nodes` (required, defaulted to 10%) and a null weight were refused; the API server
    defaults the first and prunes the second."""
    result = checked(NODE_POOL.replace("WEIGHT", "~"), NODE_POOLS)
    assert result["documents"] == 1 and result["cel_rules"]["evaluated"] > 0
    assert "'abc' is not of type 'integer' (at spec.weight)" in refused(NODE_POOL.replace("WEIGHT", "abc"), NODE_POOLS)
    rollout = ("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\n"
               "spec:\n  strategy:\n    canary:\n      maxSurge: SURGE\n")
    for surge in ("null", "25%", "2"):  # a nullable int-or-string keeps its null
        assert checked(rollout.replace("SURGE", surge), SHAPES)["documents"] == 1
    assert "[1] is not an integer or a string (x-kubernetes-int-or-string) (at spec.strategy.canary.maxSurge)" in \
        refused(rollout.replace("SURGE", "[1]"), SHAPES)


def test_yaml_is_read_as_kubernetes_reads_it():
    """Before: PyYAML's YAML 1.1 resolver read `2024-01-01` as a date and `12:30` as 750 (refusing ConfigMaps the API
    server takes), could not load a CRD with an `=` in it, and took `y` for a string where kubectl sends true."""
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: days}\ndata:\n  day: 2024-01-01\n  at: 12:30\n"
    assert checked(config_map)["documents"] == 1
    rollout = ("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\n"
               "spec: {restartAt: 2024-05-01T10:00:00Z}\n")
    assert checked(rollout, SHAPES)["documents"] == 1
    config = ("apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: team}\n"
              "spec:\n  route:\n    receiver: team\n    matchers:\n      - {name: severity, matchType: =, value: "
              "page}\n  receivers:\n    - name: team\n")
    assert checked(config, ["prometheus-operator/monitoring.coreos.com_alertmanagerconfigs.yaml"])["documents"] == 1
    message = refused(config_map + "  answer: y\n")
    assert "app.yaml:7:3 (document 1, ConfigMap days): attribute manifests: invalid for Kubernetes 1.30.0: True is " \
           "not of type 'string', 'null' (at data.answer)." in message


def test_every_error_names_the_line_and_column_of_its_field():
    """Before: an error named the first line of its document."""
    two_documents = CRON_TAB + "---\n" + CRON_TAB.replace("nightly", "hourly").replace(
        "  replicas: 2\n", "  replicas: many\n").replace("minReplicas: 1\n", "minReplicas: 1\n  extra: true\n")
    message = refused(two_documents, SHAPES)
    assert message.splitlines() == [
        "//app:deploy: app.yaml:19:3 (document 2, CronTab hourly): attribute manifests: invalid for its "
        "CustomResourceDefinition: 'many' is not of type 'integer' (at spec.replicas).",
        "app.yaml:21:3 (document 2, CronTab hourly): attribute manifests: invalid for its CustomResourceDefinition: "
        "unknown field \"spec.extra\": the schema declares no such field here (and no x-kubernetes-preserve-unknown-"
        "fields); kubectl's strict field validation refuses it (at spec.extra)."]


FLEET_SCHEMA = os.path.join(REPO_ROOT, "examples", "services", "fleet", "deploy", "fleet.schema.json")


def test_a_generic_schema_is_validated_by_the_draft_it_declares():
    """Before: every schema was checked as draft 7, so dependentRequired, unevaluatedProperties and prefixItems
    (draft 2020-12, which the fleet example's schema declares) checked nothing."""
    import json

    with open(FLEET_SCHEMA, encoding="utf-8") as handle:
        schema = json.load(handle)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    schema["properties"]["ports"] = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}
    schema["properties"]["rollout"]["dependentRequired"] = {"pause_seconds": ["batch"]}
    schema["properties"]["health_check"]["unevaluatedProperties"] = False
    fleet = ("fleet: web\nbundle: b.tar.gz\ninstances: 4\nrollout: {batch: 1, pause_seconds: 30}\n"
             "health_check: {path: /healthz, port: 8080}\nports: [8080, http]\n")
    assert checked(fleet, platform="generic", schema=("fleet.schema.json", schema))["documents"] == 1
    for broken, expected in [
            (fleet.replace("[8080, http]", "[http, 8080]"), "app.yaml:6:9 (document 1, document): attribute manifests: "
                                                            "invalid for the schema fleet.schema.json: 'http' is not "
                                                            "of type 'integer' (at ports[0])."),
            (fleet.replace("batch: 1, ", ""), "'batch' is a dependency of 'pause_seconds' (at rollout)"),
            (fleet.replace("port: 8080}", "port: 8080, timeout: 3}"), "Unevaluated properties are not allowed "
                                                                     "('timeout' was unexpected) (at health_check)")]:
        assert expected in refused(broken, platform="generic", schema=("fleet.schema.json", schema))
    del schema["$schema"]  # none declared: draft 2020-12, as jsonschema's validator_for chooses
    assert "'batch' is a dependency" in refused(fleet.replace("batch: 1, ", ""), platform="generic",
                                                schema=("fleet.schema.json", schema))


OPERATOR = """apiVersion: apps/v1
kind: Deployment
metadata: {name: operator}
spec:
  selector: {matchLabels: {app: operator}}
  template:
    metadata: {labels: {app: operator}}
    spec:
      containers:
        - name: operator
          image: operator-image
          env:
            - {name: RELATED_IMAGE_DB, value: db-image}
            - {name: LOG_FORMAT, value: db-image-json}
"""


def test_an_image_in_one_environment_variable_is_declared_by_its_name():
    """Before: a field spec could not select one list item, and the suggested one made every env value an image."""
    placeholders = {"operator-image": "//op:operator", "db-image": "//op:db"}
    message = refused(OPERATOR, placeholders=placeholders)
    assert ("app.yaml:13:47 (document 1): placeholder 'db-image' stands at spec.template.spec.containers[0].env[0]."
            "value, which is not an image field") in message
    assert 'image_fields ("Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value")' in message
    for spec in ("Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value",
                 "Deployment:spec/template/spec/containers[]/env[name=RELATED_IMAGE_DB]/value"):
        assert checked(OPERATOR, placeholders=placeholders, image_fields=[spec])["placeholders"] == [
            "db-image", "operator-image"]
    pinned = pin_images(OPERATOR, {"operator-image": "r.example/op@sha256:" + "1" * 64,
                                   "db-image": "r.example/db@sha256:" + "2" * 64},
                        ["Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value"], "app.yaml")
    assert pinned == OPERATOR.replace("image: operator-image", "image: r.example/op@sha256:" + "1" * 64).replace(
        "value: db-image}", "value: r.example/db@sha256:{}}}".format("2" * 64))


def test_a_custom_resource_s_metadata_and_embedded_resources_are_checked_as_the_api_server_does():
    service = ("apiVersion: platform.example.com/v1\nkind: ExampleService\nmetadata:\n  name: NAME\n  labels: "
               "{LABELS}\nspec:\n  containerImage: r.example/app@sha256:" + "0" * 64 + "\n  port: 8080\n"
               "  config: {apiVersion: v1, kind: ConfigMap, data: {A: b}}\n")
    platform = os.path.join(REPO_ROOT, "examples", "platform", "exampleservice-crd.yaml")
    with open(platform, encoding="utf-8") as handle:
        crd_file = ("exampleservice-crd.yaml", handle.read())

    def run(text):
        return check([("app.yaml", text)], {}, "kubernetes", "1.30.0", "//app:deploy", [], [crd_file], None)

    # An embedded resource needs apiVersion and kind, not metadata (before: metadata was required).
    assert run(service.replace("NAME", "app").replace("LABELS", "tier: web"))["documents"] == 1
    with pytest.raises(DeployInputError) as error:
        run(service.replace("NAME", "My_App").replace("LABELS", "enabled: yes"))
    assert "app.yaml:5:12 (document 1, ExampleService My_App)" in str(error.value)
    assert "True is not a string: labels values are strings (quote it) (at metadata.labels.enabled)" in str(error.value)
    assert "'My_App' is not a valid name: a lowercase RFC 1123 subdomain" in str(error.value)


def test_the_build_action_names_each_rule_it_did_not_check(tmp_path):
    """The note a Bazel build shows for the deploy-check action: every rule not checked, by rule and schema path."""
    import json
    import subprocess
    import sys

    manifest = tmp_path / "class.yaml"
    manifest.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: example}\n"
                        "spec: {controllerName: example.com/gateway-controller}\n")
    out = tmp_path / "checked.json"
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", "releasekit_entry.py"), "deploy-check",
                             "--manifest", str(manifest), "--display", "gw/class.yaml", "--crd",
                             os.path.join(CRDS, GATEWAYS[1]), "--crd-display", "gw/crd.yaml", "--platform",
                             "kubernetes",
                             "--kubernetes-version", "1.30.0", "--label", "//gw:deploy", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("//gw:deploy: note: CEL rule 'self == oldSelf' at spec.controllerName not applicable: a "
                             "transition rule (oldSelf): a new object has no old value; the API server checks it on "
                             "apply.\n")
    assert json.loads(out.read_text())["cel_rules_not_checked"] == 1
