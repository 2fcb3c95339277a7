"""The Kubernetes CEL library as the deploy check evaluates it: each rule below is an example of the Kubernetes
documentation ("CEL in Kubernetes") or of the cel-go extensions Kubernetes enables, written into a CRD's
x-kubernetes-validations; every one must hold, and the `self` they read must be bound as the API server binds it."""

import json

import pytest

from releasekit.core.errors import DeployInputError
from releasekit.publishing.deploy_yaml import check

TRUE_RULES = [
    # strings extension
    "'hello'.charAt(1) == 'e'", "'hello'.charAt(5) == ''", "'hello'.indexOf('l') == 2", "'hello'.indexOf('l', 3) == 3",
    "'hello'.lastIndexOf('l') == 3", "'HeLLo wOrLd'.lowerAscii() == 'hello world'", "'hello'.upperAscii() == 'HELLO'",
    "'hello hello'.replace('he', 'we') == 'wello wello'", "'hello hello'.replace('he', 'we', 1) == 'wello hello'",
    "'a,b,c'.split(',') == ['a', 'b', 'c']", "'a,b,c'.split(',', 2) == ['a', 'b,c']", "'tacocat'.substring(4) == 'cat'",
    "'tacocat'.substring(0, 4) == 'taco'", "'  \\ttrim\\n '.trim() == 'trim'",
    "['hello', 'mellow'].join() == 'hellomellow'",
    "['hello', 'mellow'].join(' ') == 'hello mellow'", "strings.quote('a\"b') == '\"a\\\\\"b\"'",
    # lists
    "[1, 2, 3].isSorted()", "![3, 1].isSorted()", "['a', 'b'].isSorted()", "[1, 2, 3].sum() == 6",
    "[1.5, 2.5].sum() == 4.0", "[1, 2, 3].max() == 3", "[1, 2, 3].min() == 1", "[1, 2, 2, 3].indexOf(2) == 1",
    "[1, 2, 2, 3].lastIndexOf(2) == 2", "[1, 2].indexOf(5) == -1",
    # regex
    "'abc 123'.find('[0-9]+') == '123'", "'abc'.find('[0-9]+') == ''",
    "'123 abc 456'.findAll('[0-9]+') == ['123', '456']",
    "'123 abc 456'.findAll('[0-9]+', 1) == ['123']", "!'abc\\n'.matches('^[a-z]+$')",
    # sets
    "sets.contains([1, 2, 3, 4], [2, 3])", "!sets.contains([1], [2])", "sets.equivalent([1, 2, 3], [3, 2, 1])",
    "sets.intersects([1, 2], [2, 3])", "!sets.intersects([1], [2])", "sets.contains([1.0], [1])",
    # URLs
    "url('https://example.com:80/').getHost() == 'example.com:80'", "url('https://[::1]:80/').getHostname() == '::1'",
    "url('https://example.com:80/').getPort() == '80'", "url('https://example.com/').getPort() == ''",
    "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
    "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
    "url('/absolute-path').getScheme() == ''", "url('https://example.com').getScheme() == 'https'",
    "isURL('https://example.com')", "!isURL('example.com')", "!isURL('mailto:someone@example.com')",
    # quantity
    "quantity('1.5G').isGreaterThan(quantity('1G'))", "quantity('1G').isLessThan(quantity('1.5G'))",
    "quantity('1Gi').compareTo(quantity('1024Mi')) == 0", "quantity('50k').add(quantity('20k')) == quantity('70k')",
    "quantity('50k').sub(20000) == quantity('30k')", "quantity('50k').asInteger() == 50000",
    "!quantity('1.5').isInteger()", "quantity('500m').asApproximateFloat() == 0.5", "quantity('-1').sign() == -1",
    "isQuantity('1.3G')", "!isQuantity('1.3Gi2')", "quantity('2e3') == quantity('2k')",
    # IP and CIDR
    "ip('127.0.0.1').isLoopback()", "ip('::1').family() == 6", "isIP('1.2.3.4')", "!isIP('1.2.3.04')",
    "!isIP('::ffff:1.2.3.4')", "!isIP('fe80::1%eth0')", "ip('0.0.0.0').isUnspecified()",
    "ip('224.0.0.1').isLinkLocalMulticast()", "ip('169.254.0.1').isLinkLocalUnicast()",
    "ip('192.168.0.1').isGlobalUnicast()", "!ip('127.0.0.1').isGlobalUnicast()", "string(ip('::1')) == '::1'",
    "cidr('192.168.0.0/16').containsIP(ip('192.168.1.1'))", "cidr('192.168.0.0/16').containsIP('192.168.1.1')",
    "cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')", "!cidr('192.168.0.0/24').containsCIDR('192.168.0.0/16')",
    "cidr('192.168.1.5/24').masked() == cidr('192.168.1.0/24')", "cidr('192.168.0.0/16').prefixLength() == 16",
    "cidr('::1/128').ip() == ip('::1')", "isCIDR('10.0.0.0/8')", "!isCIDR('10.0.0.0/33')",
    # optionals
    "optional.of(1).hasValue()", "!optional.none().hasValue()", "optional.none().orValue(3) == 3",
    "optional.of(2).value() == 2", "optional.ofNonZeroValue('').orValue('x') == 'x'",
    "optional.none().or(optional.of(4)).value() == 4",
    # numbers across types, durations in Go's syntax
    "1 == 1.0", "1 < 1.5", "2u > 1", "[1, 2] == [1.0, 2.0]", "duration('1h30m') == duration('90m')",
    "duration('100µs') < duration('1ms')", "duration('1.5h') == duration('90m')",
    # self, bound from the resource by its schema
    "self.when > timestamp('2020-01-01T00:00:00Z')", "self.day == timestamp('2024-02-29T00:00:00Z')",
    "self.timeout == duration('90s')", "self.data == b'hello'", "self.number == 3.0 && type(self.number) == double",
    "self.count == 3 && type(self.count) == int", "self.port == 'http' || self.port == 8080",
    "self.__namespace__ == 'team-a' && self.x__dash__y == 1 && self.a__dot__b == 2",
    "self.labels['app.kubernetes.io/name'] == 'web'", "self.config.kind == 'ConfigMap'",
    "self.config.metadata.name == 'cfg'", "!has(self.absent)", "has(self.count)",
    "self.items.exists_one(i, has(i.name) && i.name == 'a')", "self.items.filter(i, has(i.name)).size() == 1",
    "self.items.map(i, has(i.name)) == [true, false]",
    "self.items.all(i, !has(i.name) || self.items.exists_one(j, has(j.name) && i.name == j.name))",
]
SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": rule} for rule in TRUE_RULES],
            "properties": {
                "when": {"type": "string", "format": "date-time"}, "day": {"type": "string", "format": "date"},
                "timeout": {"type": "string", "format": "duration"}, "data": {"type": "string", "format": "byte"},
                "number": {"type": "number"}, "count": {"type": "integer"}, "absent": {"type": "string"},
                "port": {"x-kubernetes-int-or-string": True}, "namespace": {"type": "string"},
                "x-y": {"type": "integer"}, "a.b": {"type": "integer"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "config": {"type": "object", "x-kubernetes-embedded-resource": True,
                           "x-kubernetes-preserve-unknown-fields": True},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                                       "size": {"type": "integer"}}}},
            },
        },
    },
}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "examples.cel.example.com"},
       "spec": {"group": "cel.example.com", "scope": "Namespaced",
                "names": {"kind": "Example", "plural": "examples", "singular": "example"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": SCHEMA}}]}}
RESOURCE = """apiVersion: cel.example.com/v1
kind: Example
metadata: {name: example}
spec:
  when: 2024-05-01T10:00:00Z
  day: 2024-02-29
  timeout: 1m30s
  data: aGVsbG8=
  number: 3
  count: 3
  port: http
  namespace: team-a
  x-y: 1
  a.b: 2
  labels: {app.kubernetes.io/name: web}
  config: {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg}, data: {A: b}}
  items: [{name: a}, {size: 1}]
"""


def run(resource, schema=SCHEMA):
    crd = dict(CRD, spec=dict(CRD["spec"], versions=[dict(CRD["spec"]["versions"][0],
                                                          schema={"openAPIV3Schema": schema})]))
    return check([("example.yaml", resource)], {}, "kubernetes", "1.30.0", "//cel:example", [],
                 [("crd.yaml", json.dumps(crd))], None)


def test_the_kubernetes_cel_library_and_self_hold_as_the_api_server_evaluates_them():
    """Before: no rule was evaluated (they were counted as not checked)."""
    rules = run(RESOURCE)["cel_rules"]
    assert rules == {"evaluated": len(TRUE_RULES), "unchecked": [], "not_applicable": []}


@pytest.mark.parametrize("rule,expected", [
    ("self.count > 5", "Invalid value: failed rule: self.count > 5 (at spec)"),
    ("self.missing == 1", "Invalid value: no such key: 'missing' evaluating rule: self.missing == 1 (at spec)"),
    ("[1, 2][5] == 1", "evaluating rule: [1, 2][5] == 1 (at spec)"),
    ("quantity('1x').isInteger()", "evaluating rule: quantity('1x').isInteger() (at spec)"),
])
def test_a_rule_that_is_false_or_errs_refuses_the_resource(rule, expected):
    schema = dict(SCHEMA, properties={"spec": dict(SCHEMA["properties"]["spec"],
                                                   **{"x-kubernetes-validations": [{"rule": rule}]})})
    with pytest.raises(DeployInputError) as error:
        run(RESOURCE, schema)
    assert expected in str(error.value)
    assert str(error.value).startswith("example.yaml:4:1 (document 1, Example example): attribute manifests: invalid "
                                       "for its CustomResourceDefinition: ")


@pytest.mark.parametrize("rule,why", [
    ("self.?absent.orValue('x') == 'x'", "uses optional field selection (.? or [?]), which cel-python does not parse"),
    ("self.labels.all(k, v, v != '')", "uses the two-variable all(), which cel-python does not evaluate"),
    ("format.dns1123Label().validate(self.namespace) == null", "uses dns1123Label(), validate(), format, which this "
                                                                "offline check does not implement"),
    ("self.items.map(i, has(i.name)).distinct().size() == 2", "uses distinct(), which this offline check does not "
                                                              "implement"),
])
def test_a_rule_that_cannot_be_evaluated_offline_is_reported_unchecked_not_passed(rule, why):
    schema = dict(SCHEMA, properties={"spec": dict(SCHEMA["properties"]["spec"],
                                                   **{"x-kubernetes-validations": [{"rule": rule}]})})
    assert run(RESOURCE, schema)["cel_rules"] == {"evaluated": 0, "not_applicable": [],
                                                 "unchecked": [{"rule": rule, "at": "spec", "why": why}]}
