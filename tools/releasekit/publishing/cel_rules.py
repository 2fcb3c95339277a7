"""x-kubernetes-validations, evaluated offline as the API server evaluates them when a resource is created.

Each rule runs at its schema node, for every non-null value there, with `self` bound as the API server binds it
(cel_values) and the Kubernetes CEL library (cel_library). A rule that is false fails with its messageExpression
(when that gives a one-line string), else its message, else "failed rule: <rule>", at its fieldPath, with the error
type its reason names. A rule that errs (a missing field, an index out of range) fails as it does in the API server.

What cannot be checked here is never passed silently: a transition rule (oldSelf) has no old object on create and is
reported as not applicable (one with optionalOldSelf runs with oldSelf absent, as on create); a rule that calls what
this check does not implement, uses syntax cel-python does not parse (`self.?field`), or trips over a limit of the
offline evaluator is reported as unchecked, by rule and schema path.
"""

import re

from releasekit.publishing import cel_library, cel_values

_REASONS = {"FieldValueForbidden": "Forbidden", "FieldValueRequired": "Required value",
            "FieldValueDuplicate": "Duplicate value"}
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_KNOWN_NAMES = {"self", "oldSelf", "int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type",
                "type", "dyn", "timestamp", "duration"} | set(cel_library.NAMESPACES)
# Evaluation errors that come from what the offline evaluator lacks (the API server type-checks rules when the CRD is
# created, so a well-typed rule never meets them there).
_EVALUATOR_LIMITS = ("no such overload", "no matching overload", "undeclared reference", "unsupported")


class RuleReport:
    """What happened to the CRDs' CEL rules over one check: how many evaluations ran, and which rules were not checked
    (unchecked) or could not apply (not_applicable), each {(rule, schema path): why}."""

    def __init__(self):
        self.evaluated = 0
        self.unchecked, self.not_applicable = {}, {}

    def as_json(self):
        def listed(found):
            return [{"rule": rule, "at": at, "why": why} for (rule, at), why in sorted(found.items())]
        return {"evaluated": self.evaluated, "unchecked": listed(self.unchecked),
                "not_applicable": listed(self.not_applicable)}


class _Compiled:
    def __init__(self, text, environment):
        self.error, self.program, self.uses_old_self, self.unsupported = None, None, False, []
        try:
            tree = environment.compile(text)
        except Exception as error:  # celpy.CELParseError, and lark's own
            self.error = "uses optional field selection (.? or [?]), which cel-python does not parse" if re.search(
                r"\.\?|\[\?", text) else "cel-python does not parse it ({})".format(str(error).splitlines()[0][:200])
            return
        functions, names, bound = set(), set(), set()
        for node in tree.iter_subtrees():
            if node.data in ("ident_arg", "dot_ident_arg"):
                functions.add(str(node.children[0]))
            elif node.data == "member_dot_arg":
                name, arguments = str(node.children[1]), node.children[2] if len(node.children) > 2 else None
                if name in _MACROS and arguments is not None and len(arguments.children) == 3:
                    self.error = "uses the two-variable {}(), which cel-python does not evaluate".format(name)
                    return
                functions.add(name)
                if name in _MACROS and arguments is not None:
                    bound |= {str(token) for token in arguments.children[0].scan_values(lambda v: True)}
            elif node.data in ("ident", "dot_ident"):
                names.add(str(node.children[0]))
        known = cel_library.BUILTIN | set(cel_library.functions())
        self.unsupported = sorted("{}()".format(name) for name in functions - known) + sorted(
            names - bound - _KNOWN_NAMES)
        self.uses_old_self = "oldSelf" in names
        self.program = environment.program(tree, functions=cel_library.functions())


def _runner_class():
    """cel-python's interpreter with CEL's error rules for exists_one, map and filter: an error for one element is the
    macro's result, a value that `||` and `&&` may still absorb (cel-python raises it, and the whole rule fails)."""
    import celpy
    from celpy import celtypes
    from celpy.evaluation import CELEvalError, Evaluator

    class KubernetesEvaluator(Evaluator):
        def sub_evaluator(self, ast):
            return KubernetesEvaluator(ast, activation=self.activation)

        def member_dot_arg(self, tree):
            macro = str(tree.children[1])
            if macro not in ("exists_one", "map", "filter") or len(tree.children) < 3 or tree.children[2] is None \
                    or len(tree.children[2].children) != 2:
                return super().member_dot_arg(tree)
            items = self.visit(tree.children[0])
            if isinstance(items, CELEvalError):
                return items
            each = self.build_ss_macro_eval(tree)
            results = [each(item) for item in items]
            for result in results:
                if isinstance(result, CELEvalError):
                    return result
            if macro == "exists_one":
                return celtypes.BoolType(sum(1 for result in results if result) == 1)
            if macro == "map":
                return celtypes.ListType(results)
            return celtypes.ListType([item for item, keep in zip(items, results) if keep])

    class KubernetesRunner(celpy.InterpretedRunner):
        def evaluate(self, context):
            return KubernetesEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)

    return KubernetesRunner


class RuleEvaluator:
    def __init__(self, report):
        self.report = report
        self.environment = None
        self.compiled = {}

    def _compile(self, text):
        if self.environment is None:  # cel-python and its parser (~0.15 s) only for CRDs that have rules
            import celpy

            self.environment = celpy.Environment(runner_class=_runner_class())
        if text not in self.compiled:
            self.compiled[text] = _Compiled(text, self.environment)
        return self.compiled[text]

    def problems(self, value, schema):
        """[(path, message)] of the rules the resource value (a whole custom resource) fails."""
        found = []
        self._walk(value, schema, (), "", True, found)
        return found

    def _walk(self, value, schema, path, schema_at, resource, found):
        if value is None or not isinstance(schema, dict):
            return
        rules = list(schema.get("x-kubernetes-validations") or [])
        for nested in schema.get("allOf") or []:
            rules += (nested or {}).get("x-kubernetes-validations") or [] if isinstance(nested, dict) else []
        for rule in (rule for rule in rules if isinstance(rule, dict)):
            found += self._evaluate(rule, value, schema, path, schema_at or "<root>", resource)
        if isinstance(value, dict):
            properties = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                sub = properties.get(key, extra if isinstance(extra, dict) else None)
                if sub is not None:
                    at = "{}.{}".format(schema_at, key) if key in properties else "{}[*]".format(schema_at)
                    self._walk(item, sub, path + (key,), at.lstrip("."),
                               bool(sub.get("x-kubernetes-embedded-resource")),
                               found)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self._walk(item, schema["items"], path + (index,), schema_at + "[*]",
                           bool(schema["items"].get("x-kubernetes-embedded-resource")), found)

    def _evaluate(self, rule, value, schema, path, schema_at, resource):
        text = str(rule.get("rule", "")).strip()
        if not text:
            return []
        key = (text, schema_at)
        compiled = self._compile(text)
        why = compiled.error or (compiled.unsupported and "uses {}, which this offline check does not implement".format(
            ", ".join(compiled.unsupported)))
        if why:
            self.report.unchecked.setdefault(key, why)
            return []
        optional_old_self = bool(rule.get("optionalOldSelf"))
        if compiled.uses_old_self and not optional_old_self:
            self.report.not_applicable.setdefault(key, "a transition rule (oldSelf): a new object has no old value")
            return []
        activation = dict(cel_library.NAMESPACES, self=cel_values.to_cel(value, schema, resource))
        if compiled.uses_old_self:
            activation["oldSelf"] = cel_library.Optional()
        self.report.evaluated += 1
        result, error = self._run(compiled.program, activation)
        if error is not None and any(limit in error for limit in _EVALUATOR_LIMITS):
            self.report.unchecked.setdefault(key, "the offline evaluator could not evaluate it ({})".format(error))
            return []
        at = path + _field_path(rule.get("fieldPath"))
        if error is not None:
            return [(path, "Invalid value: {} evaluating rule: {}".format(error, _rule_name(rule)))]
        if result is True:
            return []
        if result is not False:
            return [(path, "Invalid value: rule evaluated to {!r}, not a bool: {}".format(result, _rule_name(rule)))]
        return [(at, "{}: {}".format(_REASONS.get(rule.get("reason"), "Invalid value"),
                                     self._message(rule, activation)))]

    def _run(self, program, activation):
        from celpy import celtypes
        from celpy.evaluation import CELEvalError

        try:
            result = program.evaluate(activation)
        except CELEvalError as error:
            return None, _error_text(error)
        except (RecursionError, ValueError, TypeError, AttributeError, KeyError) as error:
            return None, "unsupported: {}".format(error)
        if isinstance(result, CELEvalError):
            return None, _error_text(result)
        return (bool(result) if isinstance(result, celtypes.BoolType) else result), None

    def _message(self, rule, activation):
        expression = str(rule.get("messageExpression") or "").strip()
        if expression:
            compiled = self._compile(expression)
            if compiled.program is not None and not compiled.unsupported:
                message, error = self._run(compiled.program, activation)
                if error is None and isinstance(message, str) and message.strip() and "\n" not in message.strip():
                    return message.strip()
        return str(rule.get("message") or "").strip() or "failed rule: {}".format(str(rule.get("rule")).strip())


def _rule_name(rule):
    return str(rule.get("message") or "").strip() or str(rule.get("rule")).strip()


def _error_text(error):
    args = getattr(error, "args", ())
    text = str(args[0]) if args else str(error)
    detail = args[2] if len(args) > 2 and args[2] else ()
    if detail and "no such member" not in text:
        text += ": " + ", ".join(str(part) for part in detail)
    return text.replace("no such member in mapping", "no such key")


def _field_path(text):
    """A rule's fieldPath (`.spec.x`, `.x['y.z']`) as path parts below the rule's node."""
    parts = []
    for name, quoted in re.findall(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]", str(text or "")):
        parts.append(name or re.sub(r"\\(.)", r"\1", quoted))
    return tuple(parts)
