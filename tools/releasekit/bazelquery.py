"""Running `bazel query` and reading its XML output."""

import dataclasses
import html
import os
import re
import shlex
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree

from .errors import ReleasekitError, UsageError

# Attributes that move when unrelated lines of a BUILD file move; they say nothing of what a target is.
_POSITIONAL_ATTRIBUTES = frozenset(["generator_location"])


class BazelError(UsageError):
    """Bazel is missing, or a query failed (the workspace does not load, a bad label, ...)."""


@dataclasses.dataclass
class Target:
    label: str
    kind: str  # a rule class, "source file" or "generated file"
    tags: tuple = ()
    inputs: tuple = ()
    definition: str = ""
    test_suite_tests: tuple = ()

    @property
    def is_rule(self):
        return self.kind not in ("source file", "generated file", "package group")

    @property
    def is_test(self):
        return self.is_rule and self.kind.endswith("_test")


class Bazel:
    """One Bazel client for one workspace. The command comes from --bazel, RELEASEKIT_BAZEL, then PATH."""

    def __init__(self, workspace, command=None, environ=None):
        environ = os.environ if environ is None else environ
        self.workspace = workspace
        self.command = shlex.split(command or environ.get("RELEASEKIT_BAZEL") or "bazel")
        self.queries_run = 0

    def _run(self, args, what):
        try:
            result = subprocess.run(self.command + args, cwd=self.workspace, capture_output=True, text=True)
        except FileNotFoundError:
            raise BazelError(
                "Bazel is not installed or not on PATH ('{}' was not found). Install Bazel (or bazelisk), or "
                "point RELEASEKIT_BAZEL or --bazel at it.".format(self.command[0])
            ) from None
        if result.returncode != 0:
            raise BazelError(
                "{} failed in {} (bazel exit code {}): {} Fix the workspace so that it loads at this revision "
                "(`bazel query //...` shows the same error).".format(
                    what, self.workspace, result.returncode, _error_summary(result.stderr)
                )
            )
        return result.stdout

    def query(self, expression, output="xml", universe_scope=None):
        """One query; the expression goes through --query_file, so its length is unbounded."""
        with tempfile.NamedTemporaryFile("w", suffix=".query", delete=False) as handle:
            handle.write(expression)
            path = handle.name
        try:
            args = ["query", "--query_file=" + path, "--order_output=no", "--output=" + output]
            if output == "xml":
                args += ["--noxml:default_values", "--noxml:line_numbers"]
            if universe_scope:
                args.append("--universe_scope=" + universe_scope)
            self.queries_run += 1
            return self._run(args, "bazel query")
        finally:
            os.unlink(path)

    def query_targets(self, expression, universe_scope=None, definitions=False):
        return parse_query_xml(self.query(expression, "xml", universe_scope), definitions)

    def query_labels(self, expression, universe_scope=None):
        return [line for line in self.query(expression, "label", universe_scope).splitlines() if line.strip()]

    def shutdown(self):
        try:
            subprocess.run(self.command + ["shutdown"], cwd=self.workspace, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _error_summary(stderr):
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR")]
    text = " ".join(errors[:3]) if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    return text[:1500]


def parse_query_xml(text, definitions=False):
    """Targets by label from `bazel query --output=xml`; with definitions, each rule's canonical definition."""
    return parse_query_xml_tree(text, definitions) if definitions else scan_query_xml(text)


_ELEMENT_RE = re.compile(r"<(rule|source-file|generated-file|package-group) ([^>]*?)(/?)>")
_ATTRIBUTE_RE = re.compile(r'([\w-]+)="([^"]*)"')
_RULE_INPUT_RE = re.compile(r'<rule-input name="([^"]*)"/>')
_SELECTION_LIST_RE = re.compile(r'<list name="(tags|tests)">(.*?)</list>', re.S)
_VALUE_RE = re.compile(r'value="([^"]*)"')


def _unescape(text):
    return html.unescape(text) if "&" in text else text


def scan_query_xml(text):
    """The fields selection needs (class, tags, tests, inputs), read by regular expressions.

    Four times faster than a full parse of a large rdeps answer; parse_query_xml_tree() reads the same
    fields (the tests compare them) and everything else.
    """
    unescape = _unescape if "&" in text else str
    targets = {}
    position = 0
    search, attribute_pairs = _ELEMENT_RE.search, _ATTRIBUTE_RE.findall
    while True:
        match = search(text, position)
        if match is None:
            return targets
        tag, attributes = match.group(1), dict(attribute_pairs(match.group(2)))
        label = unescape(attributes["name"])
        position = match.end()
        if tag == "rule":
            body = ""
            if not match.group(3):
                end = text.index("</rule>", position)
                body, position = text[position:end], end
            tags = tests = ()
            if "<list name=\"t" in body:
                for name, values in _SELECTION_LIST_RE.findall(body):
                    found = tuple(map(unescape, _VALUE_RE.findall(values)))
                    if name == "tags":
                        tags = found
                    else:
                        tests = found
            inputs = tuple(map(unescape, _RULE_INPUT_RE.findall(body)))
            targets[label] = Target(label, attributes["class"], tags, inputs, "", tests)
        elif tag == "generated-file":
            targets[label] = Target(label, "generated file", inputs=(unescape(attributes["generating-rule"]),))
        else:
            targets[label] = Target(label, tag.replace("-", " "))


def parse_query_xml_tree(text, definitions=False):
    """A full XML parse: slower, and the only one that yields definitions."""
    # Bazel declares XML 1.1, which expat does not accept; the content is 1.0-compatible.
    text = re.sub(r"^<\?xml[^>]*\?>", "", text.lstrip(), count=1)
    if not text.strip():
        return {}
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ReleasekitError("Could not read bazel query's XML output ({}).".format(error)) from None
    targets = {}
    for element in root:
        label = element.get("name")
        if element.tag == "rule":
            tags, tests, inputs = (), (), []
            for child in element:
                if child.tag == "list" and child.get("name") == "tags":
                    tags = tuple(item.get("value") for item in child)
                elif child.tag == "list" and child.get("name") == "tests":
                    tests = tuple(item.get("value") for item in child)
                elif child.tag == "rule-input":
                    inputs.append(child.get("name"))
            definition = _definition(element) if definitions else ""
            targets[label] = Target(label, element.get("class"), tags, tuple(inputs), definition, tests)
        elif element.tag == "generated-file":
            targets[label] = Target(label, "generated file", inputs=(element.get("generating-rule"),))
        elif element.tag == "source-file":
            targets[label] = Target(label, "source file")
        elif element.tag == "package-group":
            targets[label] = Target(label, "package group")
    return targets


def _definition(element):
    """A canonical text of a rule's definition: its class and attributes, not where it stands in the file."""
    parts = [element.get("class")]
    for child in sorted(element, key=lambda c: (c.tag, c.get("name") or "")):
        if child.tag == "rule-input" or child.get("name") in _POSITIONAL_ATTRIBUTES:
            continue
        parts.append(ElementTree.tostring(child, encoding="unicode").strip())
    return "\n".join(parts)


def quote(text):
    """A query word in double quotes; the query language takes quoted words literally, without escapes."""
    if '"' in text:
        raise BazelError("Cannot pass {!r} to bazel query: it contains a double quote.".format(text))
    return '"' + text + '"'
