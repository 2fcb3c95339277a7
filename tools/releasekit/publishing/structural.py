"""A custom resource checked against its CRD's structural schema in the API server's order: unknown fields (refused, as
kubectl's strict field validation refuses them, then pruned), nulls pruned where the schema is not nullable, defaults
applied, then the schema validated (kube-openapi's rules, OpenAPI v3: exclusive bounds are booleans beside
minimum/maximum), with the formats Kubernetes checks, patterns as RE2, x-kubernetes-list-type set and map, and
x-kubernetes-embedded-resource. CEL rules (x-kubernetes-validations) run last, in cel_rules.

Each problem is (path, message, blocking): path a tuple of keys and list indexes; blocking as the API server counts it
(a type, required, enum, too-long or too-many error), which keeps the CEL rules from running.
"""

import copy
import json

from releasekit.publishing import kube_formats

META_FIELDS = ("apiVersion", "kind", "metadata")


def additional(schema):
    """The schema of a node's additionalProperties, {} when it is `true`, None when it has none."""
    extra = (schema or {}).get("additionalProperties")
    return {} if extra is True else extra if isinstance(extra, dict) else None


def child_schema(schema, key):
    properties = (schema or {}).get("properties") or {}
    return properties[key] if key in properties else additional(schema)


def prune_unknown(value, schema, path=(), root=True):
    """Remove the fields the schema does not know; returns their paths. The metadata fields of the resource (and of
    every embedded resource) are the API server's, never unknown."""
    unknown = []
    embedded = root or bool((schema or {}).get("x-kubernetes-embedded-resource"))
    preserve = bool((schema or {}).get("x-kubernetes-preserve-unknown-fields"))
    if isinstance(value, dict):
        for key in list(value):
            if embedded and key in META_FIELDS:
                continue
            known = schema is not None and (key in (schema.get("properties") or {}) or additional(schema) is not None)
            if known:
                unknown += prune_unknown(value[key], child_schema(schema, key), path + (key,), False)
            elif not preserve:
                unknown.append(path + (key,))
                del value[key]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            unknown += prune_unknown(item, (schema or {}).get("items"), path + (index,), False)
    return unknown


def prune_nulls(value, schema):
    """Drop null fields whose schema is neither nullable nor defaulted, as the API server does before defaulting."""
    if isinstance(value, dict):
        for key in list(value):
            sub = child_schema(schema, key)
            if value[key] is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del value[key]
            else:
                prune_nulls(value[key], sub)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item, (schema or {}).get("items"))


def apply_defaults(value, schema):
    """Fill in the schema's defaults: an absent field, or a null one the schema does not allow null."""
    if not schema:
        return
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if "default" in sub and (key not in value or (value[key] is None and not sub.get("nullable"))):
                value[key] = copy.deepcopy(sub["default"])
        extra = additional(schema)
        for key in value:
            sub = child_schema(schema, key)
            if sub is extra and extra and value[key] is None and not extra.get("nullable") and "default" in extra:
                value[key] = copy.deepcopy(extra["default"])
            apply_defaults(value[key], sub)
    elif isinstance(value, list):
        items = schema.get("items") or {}
        for index, item in enumerate(value):
            if item is None and not items.get("nullable") and "default" in items:
                value[index] = copy.deepcopy(items["default"])
            apply_defaults(value[index], items)


def _validator_class(kubernetes_version):
    import jsonschema
    from jsonschema import ValidationError

    draft4 = jsonschema.Draft4Validator.VALIDATORS

    def typed(validator, types, instance, schema):
        if instance is None and schema.get("nullable"):
            return
        yield from draft4["type"](validator, types, instance, schema)

    def int_or_string(validator, flag, instance, schema):
        if flag and not (instance is None and schema.get("nullable")) and (
                isinstance(instance, bool) or not isinstance(instance, (int, str))):
            yield ValidationError("{!r} is not an integer or a string (x-kubernetes-int-or-string)".format(instance),
                                  validator="type")

    def skipping_null(keyword):
        def check(validator, value, instance, schema):
            if instance is not None:  # kube-openapi checks only the type and enum of a null
                yield from draft4[keyword](validator, value, instance, schema)
        return check

    def pattern(validator, expression, instance, schema):
        if isinstance(instance, str) and not kube_formats.matches(expression, instance):
            yield ValidationError("{!r} does not match the pattern {!r} (RE2, as the API server matches it)".format(
                instance, expression))

    def string_format(validator, name, instance, schema):
        normalized = kube_formats.known(name, kubernetes_version)
        if normalized and isinstance(instance, str) and not kube_formats.valid(normalized, instance):
            yield ValidationError("{!r} is not a valid {}: the schema wants {}".format(
                instance, name, kube_formats.WANTS.get(normalized, "that format")))

    def list_type(validator, kind, instance, schema):
        if isinstance(instance, list):
            yield from _list_type_errors(kind, schema.get("x-kubernetes-list-map-keys") or [], instance)

    def embedded(validator, flag, instance, schema):
        if flag and isinstance(instance, dict):
            yield from _embedded_errors(instance)

    keywords = dict(type=typed, pattern=pattern, format=string_format, **{
        "x-kubernetes-int-or-string": int_or_string, "x-kubernetes-list-type": list_type,
        "x-kubernetes-embedded-resource": embedded})
    for keyword in ("allOf", "anyOf", "oneOf", "not"):
        keywords[keyword] = skipping_null(keyword)
    return jsonschema.validators.extend(jsonschema.Draft4Validator, keywords)  # extend registers no meta-schema


def _scalar_key(value):
    """A key that tells 1 from true and 1 from 1.5, as Go compares decoded JSON."""
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True))
    return (type(value).__name__, value)


def _list_type_errors(kind, map_keys, items):
    from jsonschema import ValidationError

    if kind == "map":
        for index, item in enumerate(items):
            if item is not None and not isinstance(item, dict):
                yield ValidationError("{!r} must be an object: x-kubernetes-list-type map lists hold objects".format(
                    item), path=[index])
                return
    if kind not in ("set", "map") or len(items) < 2:
        return
    seen = {}
    for index, item in enumerate(items):
        if kind == "set":
            key, shown = _scalar_key(item), json.dumps(item, sort_keys=True)
        else:
            values = [(item or {}).get(name, "<unset>") for name in map_keys]
            key = tuple(_scalar_key(value) for value in values)
            shown = ", ".join("{}={}".format(name, json.dumps(value)) for name, value in zip(map_keys, values))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            yield ValidationError(
                "Duplicate value: {} appears twice; x-kubernetes-list-type {} wants {}".format(
                    shown, kind,
                    "unique items" if kind == "set" else "one item per key ({})".format(", ".join(map_keys))),
                path=[index])


def _embedded_errors(resource):
    """An embedded resource needs apiVersion and kind (not metadata), as the API server's objectmeta check does."""
    import re

    from jsonschema import ValidationError

    for field in ("apiVersion", "kind"):
        value = resource.get(field)
        if field not in resource:
            yield ValidationError("{!r} is a required property of an embedded resource "
                                  "(x-kubernetes-embedded-resource)".format(field), validator="required")
        elif not isinstance(value, str) or not value:
            yield ValidationError("{} must be a non-empty string".format(field), path=[field])
        elif field == "apiVersion" and value.count("/") > 1:
            yield ValidationError("{!r} is not group/version or version".format(value), path=[field])
        elif field == "kind" and not re.match(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z", value.lower()):
            yield ValidationError("{!r} may have mixed case, but should otherwise be an RFC 1035 label".format(value),
                                  path=[field])


_BLOCKING = {"type", "required", "enum", "maxLength", "maxItems", "maxProperties"}
_validators = {}


def schema_problems(value, schema, kubernetes_version):
    """[(path, message, blocking)] of the schema validation proper (after pruning and defaulting)."""
    if kubernetes_version not in _validators:
        _validators[kubernetes_version] = _validator_class(kubernetes_version)
    problems = []
    for error in _validators[kubernetes_version](schema).iter_errors(value):
        message = error.message
        if error.validator in ("anyOf", "oneOf") and error.context:
            message += " ({})".format("; ".join(sorted({sub.message for sub in error.context})))
        problems.append((tuple(error.absolute_path), message, error.validator in _BLOCKING))
    return problems


def check_patterns(schema, where):
    """Raise DeployInputError for a pattern RE2 cannot compile: the API server refuses such a CRD."""
    from releasekit.core.errors import DeployInputError

    stack = [(schema, "openAPIV3Schema")]
    while stack:
        node, at = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                try:
                    kube_formats.re2_compile(node["pattern"])
                except Exception as error:  # re2.error
                    raise DeployInputError("{}: attribute crds: the pattern {!r} at {} is not a valid RE2 (Go) regular "
                                           "expression ({}); the API server refuses this CRD.".format(
                                               where, node["pattern"], at, error)) from None
            stack += [(child, "{}.{}".format(at, key)) for key, child in node.items() if key not in ("default", "enum")]
        elif isinstance(node, list):
            stack += [(child, "{}[{}]".format(at, index)) for index, child in enumerate(node)]


_OBJECT_META = {"name": str, "generateName": str, "namespace": str, "selfLink": str, "uid": str,
                "resourceVersion": str, "generation": int, "creationTimestamp": (str, type(None)),
                "deletionTimestamp": str, "deletionGracePeriodSeconds": int, "labels": dict, "annotations": dict,
                "ownerReferences": list, "finalizers": list, "managedFields": list}
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


def metadata_problems(resource):
    """[(path, message, blocking)] of a custom resource's metadata, as the API server's ObjectMeta rules see it: field
    types, unknown fields, the name (a DNS subdomain), label keys and values, annotation values."""
    import re

    metadata = resource.get("metadata")
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [(("metadata",), "{!r} is not an object (ObjectMeta)".format(metadata), True)]
    problems = []
    for key, value in metadata.items():
        path = ("metadata", key)
        if value is None:
            continue  # a null field is an absent one to the API server's decoder
        if key not in _OBJECT_META:
            problems.append((path, "unknown field \"metadata.{}\": ObjectMeta has no such field".format(key), False))
        elif isinstance(value, bool) or not isinstance(value, _OBJECT_META[key]):
            problems.append((path, "{!r} is not of the type ObjectMeta's {} has".format(value, key), True))
        elif key in ("labels", "annotations"):
            for name, text in value.items():
                if not isinstance(text, str):
                    problems.append((path + (name,), "{!r} is not a string: {} values are strings (quote it)".format(
                        text, key), True))
                elif key == "labels" and not (len(text) <= 63 and re.match("({})?\\Z".format(_LABEL_NAME), text)):
                    problems.append((path + (name,), "{!r} is not a valid label value (at most 63 characters: "
                                                     "alphanumerics, '-', '_' or '.', starting and ending with an "
                                                     "alphanumeric)".format(text), False))
                prefix, _, local = name.rpartition("/")
                if key == "labels" and not (re.match(_LABEL_NAME + r"\Z", local) and len(local) <= 63 and (
                        not prefix or (re.match(_SUBDOMAIN + r"\Z", prefix) and len(prefix) <= 253))):
                    problems.append((path + (name,), "{!r} is not a valid label key ([prefix/]name: a DNS subdomain, "
                                                     "then at most 63 alphanumerics, '-', '_' or '.')".format(name),
                                     False))
    name = metadata.get("name")
    if isinstance(name, str) and not (re.match(_SUBDOMAIN + r"\Z", name) and len(name) <= 253):
        problems.append((("metadata", "name"), "{!r} is not a valid name: a lowercase RFC 1123 subdomain "
                                               "(alphanumerics, '-' and '.', starting and ending with an "
                                               "alphanumeric)".format(name), False))
    return problems
