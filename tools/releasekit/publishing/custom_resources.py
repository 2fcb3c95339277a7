"""Schemas for deploy YAML beyond Kubernetes' own kinds: custom resources checked against their
CustomResourceDefinitions, and any document against a JSON Schema (platform "generic"). Offline, at build time.

A CRD (apiextensions.k8s.io/v1) gives each served version an OpenAPI v3 schema. It is read as JSON Schema with the
Kubernetes extensions that change what is valid: `x-kubernetes-preserve-unknown-fields` (unknown fields allowed;
elsewhere they are errors, as kubectl's strict field validation makes them), `x-kubernetes-int-or-string`,
`x-kubernetes-embedded-resource` (apiVersion, kind and metadata required) and `nullable`. CEL rules
(`x-kubernetes-validations`) are not evaluated: the check's result counts them as not checked.
"""

from releasekit.core.errors import DeployInputError

CRD_API_VERSION = "apiextensions.k8s.io/v1"
# Fields of OpenAPI v3 that mean the same in JSON Schema.
_SAME = ("type", "properties", "required", "items", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength",
         "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf", "format")


class CrdSchemas:
    """The served versions of every custom kind the CRDs define: (group, kind) -> {version: (served, schema)}."""

    def __init__(self):
        self.kinds = {}
        self.unchecked_rules = 0

    def add(self, crd, where):
        """Read one CRD document; where names it (file:line (document N)) in errors."""
        fix = "Give a CustomResourceDefinition as `kubectl get crd NAME -o yaml` prints it."
        if crd.get("apiVersion") != CRD_API_VERSION:
            raise DeployInputError("{}: attribute crds: apiVersion '{}' is not {}. {}".format(
                where, crd.get("apiVersion"), CRD_API_VERSION, fix))
        spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
        group, names, versions = spec.get("group"), spec.get("names") or {}, spec.get("versions")
        if not group or not isinstance(names, dict) or not names.get("kind") or not isinstance(versions, list) or not versions:
            raise DeployInputError("{}: attribute crds: not a valid CustomResourceDefinition: it needs spec.group, "
                                   "spec.names.kind and spec.versions. {}".format(where, fix))
        served = {}
        for index, version in enumerate(versions):
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
            if not (version or {}).get("name") or not isinstance(schema, dict):
                raise DeployInputError("{}: attribute crds: spec.versions[{}] of {} needs a name and "
                                       "schema.openAPIV3Schema (a structural schema). {}".format(
                                           where, index, names["kind"], fix))
            served[version["name"]] = (bool(version.get("served", True)), schema)
            if served[version["name"]][0]:
                self.unchecked_rules += _cel_rules(schema)
        self.kinds[(group, names["kind"])] = served

    def schema_for(self, document, where):
        """The JSON Schema of a custom resource, or None when no CRD defines its kind."""
        group, _, version = str(document.get("apiVersion", "")).rpartition("/")
        versions = self.kinds.get((group, document.get("kind")))
        if versions is None:
            return None
        if version not in versions or not versions[version][0]:
            raise DeployInputError("{}: attribute manifests: {} {} is not a served version of its CRD (served: {}). Use "
                                   "one of them in apiVersion, or serve this version in the CRD.".format(
                                       where, document.get("kind"), document.get("apiVersion"),
                                       ", ".join("{}/{}".format(group, v) for v, (on, _) in sorted(versions.items()) if on)
                                       or "none"))
        return json_schema(versions[version][1], root=True)


def _cel_rules(node):
    """How many CEL rules (x-kubernetes-validations) a schema holds: they are counted as not checked."""
    if isinstance(node, dict):
        return len(node.get("x-kubernetes-validations") or ()) + sum(_cel_rules(value) for value in node.values())
    if isinstance(node, list):
        return sum(_cel_rules(value) for value in node)
    return 0


def json_schema(node, root=False):
    """An OpenAPI v3 structural schema (with the Kubernetes extensions) as JSON Schema."""
    if not isinstance(node, dict):
        return {}
    out = {key: node[key] for key in _SAME if key in node}
    if "format" in out:
        del out["format"]  # formats are advisory in JSON Schema too; int32, byte and the like would only confuse
    if "properties" in out:
        out["properties"] = {name: json_schema(child) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = json_schema(node["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [json_schema(child) for child in node[key]]
    if "not" in node:
        out["not"] = json_schema(node["not"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = json_schema(node["additionalProperties"])
    elif node.get("additionalProperties") is False:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "anyOf"}}
    if node.get("x-kubernetes-embedded-resource"):
        out.setdefault("properties", {})
        out["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
        out["required"] = sorted(set(out.get("required", [])) | {"apiVersion", "kind", "metadata"})
    if root:  # the API server owns these at the top level, whatever the schema says of them
        out.setdefault("properties", {})
        out["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    preserve = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
    if out.get("type") == "object" and "properties" in out and not preserve:
        out["additionalProperties"] = False  # an unknown field: strict field validation refuses it
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def validate(document, schema, where, what):
    """Refuse a document the schema refuses, naming the field path. what: the schema's name in the message."""
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        at = ".".join(str(part) for part in error.absolute_path) or "the top level"
        raise DeployInputError("{}: attribute manifests: invalid for {}: {} (at {}).".format(where, what, error.message, at))


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
