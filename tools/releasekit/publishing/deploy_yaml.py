"""Deploy YAML: checked at build time, published only after every image it references, pinned by digest.

YAML is read as Kubernetes reads it (kube_yaml), for the check and for pinning alike. Image fields are found on the
composed nodes (image_fields). A placeholder (a key of deploy_release's images) matches the value itself, or the value
with a :tag or @digest. A placeholder in any other string value is an error: it would reach the CD system unresolved.
Kubernetes kinds are validated against the Kubernetes schemas (kubernetes-validate), custom kinds against their CRDs
as the API server validates them (custom_resources), generic YAML against its JSON Schema. Every error names the
file, line and column of the field at fault, its path, and what was wanted.

Pinning edits the reviewed text in place: only the characters of each image value change, so comments, anchors,
quoting, key order, line endings and document separators are published as written.
"""

import json
import logging
import sys

from releasekit.core.errors import DeployError, DeployInputError
from releasekit.publishing import kube_yaml
from releasekit.publishing.image_fields import FieldSpec, image_fields, matching_placeholder, stray_placeholders

log = logging.getLogger(__name__)
PINNED_MARK = "@sha256:"
_MOST_ERRORS = 50


def _describe(document):
    if isinstance(document, dict):
        kind = document.get("kind", "document")
        name = (document.get("metadata") or {}).get("name", "") if isinstance(document.get("metadata"), dict) else ""
        return "{} {}".format(kind, name).strip()
    return "document"


def _at(display, position):
    return "{}:{}:{}".format(display, position[0], position[1])


def _check_images(label, display, index, node, document, specs, placeholders, used):
    """Every image field is a placeholder or pinned; returns the errors of the document's image fields."""
    errors = []
    fields = image_fields(node, specs)
    for path, scalar in sorted(fields.values(), key=lambda item: item[1].start_mark.index):
        where = "{} (document {}, {})".format(_at(display, (scalar.start_mark.line + 1, scalar.start_mark.column + 1)),
                                              index, _describe(document))
        placeholder = matching_placeholder(scalar.value, placeholders)
        if placeholder:
            if scalar.style in ("|", ">"):
                errors.append("{}: attribute manifests: image '{}' at {} is a block scalar; write it on one line so it "
                              "can be pinned in place.".format(where, scalar.value, kube_yaml.field_path(path)))
            used.add(placeholder)
        elif PINNED_MARK not in scalar.value:
            errors.append("{}: attribute manifests: image '{}' at {} is neither a key of attribute images nor pinned "
                          "by digest. Map it to a container_release in images, or pin it (name@sha256:...).".format(
                              where, scalar.value, kube_yaml.field_path(path)))
    stray = stray_placeholders(display, index, node, fields, placeholders)
    if stray:
        errors.append("{}: attribute manifests: {}; it would be published unresolved. Declare such fields in attribute "
                      "image_fields ({}), or rename the placeholder.".format(
                          label, "; ".join(message for message, _ in stray),
                          ", ".join(sorted(set('"{}"'.format(spec) for _, spec in stray)))))
    return errors


def check(files, placeholders, platform, kubernetes_version, label, field_specs=(), crd_files=(), schema=None):
    """Build-time checks. files and crd_files: [(display path, text)]; placeholders: {placeholder: image label};
    schema: (display path, JSON Schema) of platform "generic". Raises DeployInputError naming every problem found."""
    from releasekit.publishing.cel_rules import RuleEvaluator, RuleReport
    from releasekit.publishing.custom_resources import CRD_API_VERSION, CrdSchemas, custom_resource_problems, \
        generic_problems

    specs = [FieldSpec(text) for text in field_specs]
    used, errors, documents_checked = set(), [], 0
    crds, report, rules = CrdSchemas(), RuleReport(), []
    crd_displays = {display for display, _ in crd_files}
    parsed = {display: kube_yaml.read(text, display, fast=display in crd_displays,
                                      attribute="crds" if display in crd_displays else "manifests")
              for display, text in list(crd_files) + list(files)}
    for display, _ in list(crd_files) + list(files):
        for index, document in enumerate(parsed[display], 1):
            value = document.value
            is_crd = isinstance(value, dict) and value.get("kind") == "CustomResourceDefinition"
            if display in crd_displays or (is_crd and value.get("apiVersion") == CRD_API_VERSION):
                crds.add(value if isinstance(value, dict) else {}, "{} (document {})".format(
                    _at(display, document.where(())), index))
    for display, _ in files:
        for index, document in enumerate(parsed[display], 1):
            value, where = document.value, "{} (document {}, {})".format(
                _at(display, document.where(("apiVersion",))), index, _describe(document.value))
            errors += _check_images(label, display, index, document.node, value, specs, placeholders, used)
            custom = crds.schema_for(value, where) if platform == "kubernetes" and isinstance(value, dict) else None
            if custom is not None:
                if not rules:
                    rules.append(RuleEvaluator(report))
                what, problems = "its CustomResourceDefinition", custom_resource_problems(
                    value, custom, kubernetes_version, rules[0])
            elif platform == "kubernetes":
                what, problems = "Kubernetes " + kubernetes_version, _kubernetes_problems(value, kubernetes_version,
                                                                                          where)
            elif schema is not None:
                what, problems = "the schema " + schema[0], generic_problems(value, schema[1])
            else:
                what, problems = "", []
            errors += ["{} (document {}, {}): attribute manifests: invalid for {}: {} (at {}).".format(
                _at(display, document.where(path)), index, _describe(value), what, message.rstrip("."),
                kube_yaml.field_path(path)) for path, message in sorted(problems, key=lambda p: document.where(p[0]))]
            documents_checked += 1
    if errors:
        shown = errors[:_MOST_ERRORS] + (["... and {} more.".format(len(errors) - _MOST_ERRORS)]
                                         if len(errors) > _MOST_ERRORS else [])
        raise DeployInputError("{}: {}".format(label, "\n".join(shown)) if len(shown) > 1 else shown[0])
    unused = sorted(set(placeholders) - used)
    if unused:
        raise DeployInputError(
            "{}: attribute images: {} never appear as an image in {}. Use them in an `image:` field (or a field of "
            "image_fields), or remove them from images.".format(
                label, ", ".join("'{}' ({})".format(p, placeholders[p]) for p in unused),
                ", ".join(display for display, _ in files))
        )
    rule_report = report.as_json()
    return {"documents": documents_checked, "placeholders": sorted(used),
            "custom_kinds": sorted("{}/{}".format(group, kind) for group, kind in crds.kinds),
            "cel_rules": rule_report,
            "cel_rules_not_checked": len(rule_report["unchecked"]) + len(rule_report["not_applicable"])}


def _kubernetes_problems(document, version, where):
    """[(path, message)] of a document against the Kubernetes schemas of version (kubernetes-validate)."""
    try:
        import kubernetes_validate
        from kubernetes_validate.utils import VersionNotSupportedError
    except ImportError as error:
        raise DeployInputError(
            "{}: validating Kubernetes YAML needs the kubernetes-validate package in the python3 Bazel actions run "
            "({}; {}): pip install kubernetes-validate, or set platform to 'generic'.".format(where, sys.executable,
                                                                                              error)
        ) from None
    if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
        return [((), "a Kubernetes object needs apiVersion and kind")]
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except VersionNotSupportedError:
        raise DeployInputError("{}: attribute kubernetes_version: '{}' is not a version kubernetes-validate knows; "
                               "latest is {}.".format(where, version, kubernetes_validate.latest_version())) from None
    except kubernetes_validate.SchemaNotFoundError:
        raise DeployInputError("{}: attribute manifests: no Kubernetes {} schema for apiVersion '{}' kind '{}'. A "
                               "custom kind is checked against its CustomResourceDefinition: list the CRD's file in "
                               "attribute crds, or include the CRD in manifests.".format(
                                   where, version, document.get("apiVersion"), document.get("kind"))) from None
    except kubernetes_validate.ValidationError as error:
        return [(tuple(error.path), error.message)]
    return []


def pin_images(text, references, field_specs, display):
    """The YAML text with every placeholder image field replaced by its pinned reference, nothing else changed.

    The result is parsed again: an image field left unpinned, or a placeholder left in any string value,
    refuses the release (DeployError naming file, line and field), so nothing unresolved is published.
    """
    import yaml

    specs = [FieldSpec(spec) for spec in field_specs]
    # A node's span starts at its anchor or tag; the scalar's own characters start at its token.
    token_starts = {token.end_mark.index: token.start_mark.index
                    for token in yaml.scan(text, Loader=yaml.SafeLoader) if isinstance(token, yaml.ScalarToken)}
    edits = {}
    for node in kube_yaml.compose(text, display):
        for _, scalar in image_fields(node, specs).values():
            placeholder = matching_placeholder(scalar.value, references)
            if placeholder:
                end = scalar.end_mark.index
                edits[end] = (token_starts[end], _scalar_text(references[placeholder], scalar.style))
    pinned = text
    for end in sorted(edits, reverse=True):
        start, replacement = edits[end]
        pinned = pinned[:start] + replacement + pinned[end:]
    problems = []
    for index, node in enumerate(kube_yaml.compose(pinned, display), 1):
        fields = image_fields(node, specs)
        for path, scalar in fields.values():
            if PINNED_MARK not in scalar.value:
                problems.append("{}:{}:{} (document {}): image '{}' at {} is not pinned by digest (a tag is not a "
                                "pin)".format(display, scalar.start_mark.line + 1, scalar.start_mark.column + 1, index,
                                              scalar.value, kube_yaml.field_path(path)))
        problems += [message for message, _ in stray_placeholders(display, index, node, {}, references)]
    if problems:
        raise DeployError("{}; nothing was published.".format("; ".join(problems)))
    return pinned


def _scalar_text(value, style):
    """A YAML scalar holding value, in the quoting style of the one it replaces."""
    if style == "'":
        return "'{}'".format(value.replace("'", "''"))
    if style == '"':
        return json.dumps(value)
    return value


def check_files(paths, displays, placeholders, platform, kubernetes_version, label, field_specs, out, crds=(),
                crd_displays=(), schema=None, schema_display=None):
    """The deploy-check build action: check the YAML files (see check) and write what was checked."""
    from releasekit.core.jsonio import write_json_atomic
    from releasekit.publishing.custom_resources import load_json_schema

    def read(pairs):
        texts = []
        for path, display in pairs:
            with open(path, encoding="utf-8", newline="") as handle:  # as written: CRLF stays CRLF
                texts.append((display, handle.read()))
        return texts

    json_schema = (schema_display, load_json_schema(schema, schema_display)) if schema else None
    result = check(read(zip(paths, displays)), placeholders, platform, kubernetes_version, label, field_specs,
                   read(zip(crds, crd_displays)), json_schema)
    write_json_atomic(out, dict(result, label=label))
    return result
