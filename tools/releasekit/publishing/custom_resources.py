"""Schemas for deploy YAML beyond Kubernetes' own kinds: custom resources checked against their
CustomResourceDefinitions as the API server checks them, and any document against a JSON Schema (platform "generic").
Offline, at build time.

A CRD (apiextensions.k8s.io/v1) gives each served version a structural schema (OpenAPI v3 with Kubernetes
extensions). A custom resource is checked in the API server's order (structural): unknown fields are refused (kubectl's
default strict field validation) and pruned, non-nullable nulls pruned, defaults applied, the schema validated, and
then the CEL rules evaluated (cel_rules) unless the schema found a blocking error, as the API server skips them then.
A generic JSON Schema is validated by the validator of the draft its $schema declares, draft 2020-12 when it declares
none (jsonschema.validators.validator_for).
"""

import copy

from releasekit.core.errors import DeployInputError
from releasekit.publishing import structural

CRD_API_VERSION = "apiextensions.k8s.io/v1"


class CrdSchemas:
    """The served versions of every custom kind the CRDs define: (group, kind) -> {version: (served, schema)}."""

    def __init__(self):
        self.kinds = {}

    def add(self, crd, where):
        """Read one CRD document; where names it (file:line (document N)) in errors."""
        fix = "Give a CustomResourceDefinition as `kubectl get crd NAME -o yaml` prints it."
        if crd.get("apiVersion") != CRD_API_VERSION:
            raise DeployInputError("{}: attribute crds: apiVersion '{}' is not {}. {}".format(
                where, crd.get("apiVersion"), CRD_API_VERSION, fix))
        spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
        group, names, versions = spec.get("group"), spec.get("names") or {}, spec.get("versions")
        if not (group and isinstance(names, dict) and names.get("kind") and isinstance(versions, list) and versions):
            raise DeployInputError("{}: attribute crds: not a valid CustomResourceDefinition: it needs spec.group, "
                                   "spec.names.kind and spec.versions. {}".format(where, fix))
        served = {}
        for index, version in enumerate(versions):
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
            if not (version or {}).get("name") or not isinstance(schema, dict):
                raise DeployInputError("{}: attribute crds: spec.versions[{}] of {} needs a name and "
                                       "schema.openAPIV3Schema (a structural schema). {}".format(
                                           where, index, names["kind"], fix))
            if version.get("served", True):
                structural.check_patterns(schema, "{} ({} {})".format(where, names["kind"], version["name"]))
            served[version["name"]] = (bool(version.get("served", True)), schema)
        self.kinds[(group, names["kind"])] = served

    def schema_for(self, document, where):
        """The structural schema of a custom resource, or None when no CRD defines its kind."""
        group, _, version = str(document.get("apiVersion", "")).rpartition("/")
        versions = self.kinds.get((group, document.get("kind")))
        if versions is None:
            return None
        if version not in versions or not versions[version][0]:
            raise DeployInputError("{}: attribute manifests: {} {} is not a served version of its CRD (served: {}). "
                                   "Use one of them in apiVersion, or serve this version in the CRD.".format(
                                       where, document.get("kind"), document.get("apiVersion"),
                                       ", ".join("{}/{}".format(group, v)
                                                 for v, (on, _) in sorted(versions.items()) if on)
                                       or "none"))
        return versions[version][1]


def custom_resource_problems(resource, schema, kubernetes_version, rules):
    """[(path, message)] of a custom resource (its JSON value) against its CRD's schema; rules: the RuleEvaluator
    that runs its CEL rules."""
    from releasekit.publishing.kube_yaml import field_path

    value = copy.deepcopy(resource)
    problems = [(path, "unknown field \"{}\": the schema declares no such field here (and no "
                       "x-kubernetes-preserve-unknown-fields); kubectl's strict field validation refuses it".format(
                           field_path(path))) for path in structural.prune_unknown(value, schema)]
    structural.prune_nulls(value, schema)
    structural.apply_defaults(value, schema)
    found = structural.metadata_problems(value) + structural.schema_problems(value, schema, kubernetes_version)
    problems += [(path, message) for path, message, _ in found]
    if not any(blocking for _, _, blocking in found):
        problems += rules.problems(value, schema)
    return problems


def generic_problems(document, schema):
    """[(path, message)] of a document against a JSON Schema, by the validator of the draft it declares."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return [(tuple(error.absolute_path), error.message) for error in validator(schema).iter_errors(document)]


def load_json_schema(path, display):
    """The JSON Schema of platform "generic", checked to be one."""
    import json

    import jsonschema

    try:
        with open(path, encoding="utf-8") as handle:
            schema = json.load(handle)
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except (OSError, ValueError) as error:
        raise DeployInputError("{}: attribute schema: not a JSON file ({}). Give a JSON Schema (.json).".format(
            display, error)) from None
    except jsonschema.SchemaError as error:
        raise DeployInputError("{}: attribute schema: not a valid JSON Schema: {} (at {}). Fix the schema; "
                               "check-jsonschema --check-metaschema shows the same.".format(
                                   display, error.message, "/".join(str(p) for p in error.absolute_path) or "the top")
                               ) from None
    return schema
