"""What a WORKSPACE-level change changes: registrations, repository definitions, and external targets.

A change to WORKSPACE, to a .bzl file of the workspace it loads, or to a file they name (a lock file a repository
rule reads) is judged at both revisions, in this order:
  1. registrations: register_toolchains, register_execution_platforms and workspace(), read from the Starlark
     itself (the calls in WORKSPACE and every function of the workspace's own files that makes them). Query
     cannot see toolchain edges, so any difference selects everything. A macro of another repository is judged
     by the repositories it defines: its registrations change only with its own repository.
  2. repository definitions: `//external:*`, attribute by attribute, defaults written out or not;
  3. the targets of each repository whose definition changed, whose repository rule may have changed, or that
     names a changed file: rule by rule, and source files by content (one bumped library in a lock file changes
     one library's targets, as bazel-diff's fine-grained hashing finds);
  4. the workspace's targets that depend on a changed external target through attributes. A changed external
     target that none of them depends on that way may be reached by toolchain resolution, which query does not
     show: that selects everything, naming it.
Files of the workspace that name no repository and are read by no repository rule select everything.
"""

import ast
import concurrent.futures
import hashlib
import json
import os
import re

from releasekit.core.errors import BazelError
from releasekit.selection.bazelquery import quote
from releasekit.selection.query_answers import definitions_by_label

WORKSPACE_FILES = ("WORKSPACE", "WORKSPACE.bazel")
_REGISTERING_CALLS = frozenset(["register_toolchains", "register_execution_platforms", "workspace"])
LABEL_IN_FILE_RE = re.compile(r"""["'](?:@@?)?(?:@\w*)?//([^"':]*):([^"']+)["']""")
LOAD_RE = re.compile(r"""\bload\(\s*["']([^"']+)["']""")
_VALUE_RE = re.compile(r'value="([^"]*)"')


class Unjudged(Exception):
    """The change cannot be judged by definitions; the message says why, and everything is selected."""


def workspace_files(read, roots):
    """(starlark, data): the root files that exist, the workspace's .bzl files they load (transitively), and the
    other files of the workspace they name by label. read(path) gives a file's text or None."""
    starlark, data = set(), set()
    pending = [path for path in roots if read(path) is not None]
    starlark.update(pending)
    while pending:
        path = pending.pop()
        text = read(path) or ""
        named = [os.path.normpath(os.path.join(package, name)) for package, name in LABEL_IN_FILE_RE.findall(text)]
        named += [bzl_path(label, path) for label in LOAD_RE.findall(text) if label.startswith(":")]
        for referenced in named:
            if referenced in starlark or referenced in data or read(referenced) is None:
                continue
            if referenced.endswith((".bzl", ".scl")):
                starlark.add(referenced)
                pending.append(referenced)
            else:
                data.add(referenced)
    return starlark, data


def bzl_path(label, loading_file):
    """The workspace path of a .bzl file a load() names, or None for another repository's."""
    if label.startswith("@") and not label.startswith("@//") and not label.startswith("@@//"):
        return None
    if label.startswith(":"):
        return os.path.normpath(os.path.join(os.path.dirname(loading_file), label[1:]))
    package, _, name = label.lstrip("@").lstrip("/").partition(":")
    return os.path.normpath(os.path.join(package, name)) if name else None


def registrations(read, starlark_paths):
    """The registrations of a revision as comparable text: each WORKSPACE statement that registers (directly or
    through a function of the workspace's files), each such function, and the top-level values of their files."""
    modules, functions, imports = {}, {}, {}
    for path in sorted(starlark_paths):
        text = read(path)
        if text is None:
            continue
        try:
            modules[path] = ast.parse(text, filename=path)
        except SyntaxError as error:
            raise Unjudged("{} could not be read as Starlark (line {})".format(path, error.lineno)) from None
        for node in modules[path].body:
            if isinstance(node, ast.FunctionDef):
                functions[(path, node.name)] = node
            elif _is_load(node):
                loaded = bzl_path(node.value.args[0].value, path)
                names = [(a.value, a.value) for a in node.value.args[1:] if isinstance(a, ast.Constant)]
                names += [(k.arg, k.value.value) for k in node.value.keywords if isinstance(k.value, ast.Constant)]
                for local, exported in names:
                    imports[(path, local)] = (loaded, exported) if loaded else None

    def resolve(key, seen=()):
        while key in imports and key not in seen:
            seen += (key,)
            key = imports[key]
        return key if key in functions else None

    verdicts = {}

    def registers(node, path, stack=()):
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            callee = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if callee in _REGISTERING_CALLS:
                return True
            target = resolve((path, callee)) if isinstance(call.func, ast.Name) else None
            if target is not None and target not in stack:
                if target not in verdicts:
                    verdicts[target] = registers(functions[target], target[0], stack + (target,))
                if verdicts[target]:
                    return True
        return False

    found = []
    for path in WORKSPACE_FILES:
        for node in modules[path].body if path in modules else ():
            if not isinstance(node, ast.FunctionDef) and registers(node, path):
                found.append("{}: {}".format(path, ast.dump(node)))
    registering_files = set()
    for key, node in sorted(functions.items()):
        if registers(node, key[0]):
            found.append("{}: {}".format(key[0], ast.dump(node)))
            registering_files.add(key[0])
    for path in sorted(registering_files):  # the values those functions may read
        found += ["{}: {}".format(path, ast.dump(n))
                  for n in modules[path].body if isinstance(n, (ast.Assign, ast.AugAssign))]
    return found


def _is_load(node):
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "load" and node.value.args
            and isinstance(node.value.args[0], ast.Constant))


def same_meaning(path, before, after):
    """Whether a global file judged whole says the same at both revisions: the same Starlark statements
    (MODULE.bazel, WORKSPACE.bzlmod: comments and layout aside), or the same JSON data (MODULE.bazel.lock).
    A file that cannot be read so, or that appears or disappears, does not."""
    if before is None or after is None:
        return False
    try:
        if path.endswith(".lock"):
            return json.loads(before) == json.loads(after)
        if path.endswith(("MODULE.bazel", ".bzlmod")):
            return ast.dump(ast.parse(before)) == ast.dump(ast.parse(after))
    except (ValueError, SyntaxError):
        return False
    return False


def repository_rule_classes(read, paths):
    """Names of the repository rules defined in these files."""
    pattern = re.compile(r"^(\w+)\s*=\s*repository_rule\(", re.MULTILINE)
    return {name for path in paths for name in pattern.findall(read(path) or "")}


def repositories(bazel):
    """{name: (rule class, definition)} of every repository the WORKSPACE defines."""
    return {label.split(":", 1)[1]: (kind, definition)
            for label, (kind, definition, _) in definitions_by_label(bazel.query("//external:*", "xml")).items()}


def names_file_in_text(text, path):
    """Whether Starlark text names a file of the workspace by label."""
    return any(os.path.normpath(os.path.join(package, name)) == path
               for package, name in LABEL_IN_FILE_RE.findall(text))


def names_a_file(definition, path):
    """Whether a repository definition names a file of the workspace: by label, or by a path at or above it."""
    package, name = os.path.dirname(path), os.path.basename(path)
    labels = {"{}//{}:{}".format(prefix, package, name) for prefix in ("", "@", "@@")}
    for value in _VALUE_RE.findall(definition):
        below = value and not value.startswith("/") and (path + "/").startswith(value.rstrip("/") + "/")
        if value in labels or below:
            return True
    return False


def contents(bazel, names):
    """{label: fingerprint} of every target of these repositories: rules by definition, source files by content."""
    try:
        answers = [bazel.query(" + ".join(quote("@{}//...:*".format(n)) for n in sorted(names)), "xml")]
    except BazelError:
        answers = []  # one repository with no package fails the union: ask each alone, to know which
        for name in sorted(names):
            try:
                answers.append(bazel.query(quote("@{}//...:*".format(name)), "xml"))
            except BazelError as error:
                if "no targets found beneath" not in str(error):
                    raise Unjudged("repository @{} could not be read: {}".format(name, error)) from None
    found = {}
    for answer in answers:
        for label, (kind, definition, location) in definitions_by_label(answer).items():
            if kind == "source file":
                path = os.path.join(os.path.dirname(location), label.split(":", 1)[1])
                found[label] = "source file " + _content_digest(path)
            elif kind != "generated file":
                found[label] = "{}\n{}".format(kind, definition)
    return found


def _content_digest(path):
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for directory, subdirectories, files in os.walk(path):
            subdirectories.sort()
            for name in sorted(files):
                digest.update(os.path.relpath(os.path.join(directory, name), path).encode() + b"\0")
                digest.update(_content_digest(os.path.join(directory, name)).encode())
        return digest.hexdigest()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()


def unused(targets, seeds):
    """The seeds no target of the workspace depends on through attributes, in the rdeps answer targets."""
    reached = set()
    pending = [label for label in targets if label.startswith("//") and not label.startswith("//external:")]
    while pending:
        label = pending.pop()
        if label in reached:
            continue
        reached.add(label)
        target = targets.get(label)
        pending.extend(target.inputs if target is not None else ())
    return sorted(seed for seed in seeds if seed not in reached)


def changed_targets(read_base, read_head, bazel, base_bazel, bzl_reach, workspace_hits):
    """{external label: {reason}} of the external targets a WORKSPACE-level change changed, or Unjudged.

    read_base / read_head: a file's text at each revision; bazel / base_bazel(): Bazel at head and (made on first
    use) at base; bzl_reach(paths): those .bzl files and the workspace's .bzl files that load them."""
    read_base, read_head = _remembered(read_base), _remembered(read_head)  # each file is read several times
    base_starlark, _ = workspace_files(read_base, WORKSPACE_FILES)
    head_starlark, _ = workspace_files(read_head, WORKSPACE_FILES)
    if registrations(read_base, base_starlark) != registrations(read_head, head_starlark):
        raise Unjudged("a toolchain or platform registration, or workspace(), changed")
    starlark = base_starlark | head_starlark
    changed_data = [p for p in workspace_hits if p not in starlark]
    # Repository rules defined where a change reaches (or in a file that names a changed file) may now fetch
    # something else, with the same definitions.
    namers = {s for s in head_starlark for p in changed_data if names_file_in_text(read_head(s) or "", p)}
    reached = bzl_reach([p for p in workspace_hits if p in starlark] + sorted(namers - set(WORKSPACE_FILES)))
    repository_rules = repository_rule_classes(read_head, reached)
    after, before = at_both_revisions(lambda: repositories(bazel), lambda: repositories(base_bazel()))
    binds, fetched = [], []
    for name, (kind, definition) in sorted(after.items()):
        if name not in before:
            continue  # only a changed BUILD file can use a new repository, and that change is compared itself
        if before[name] != (kind, definition) or kind in repository_rules or any(
                names_a_file(definition, p) for p in changed_data):
            (binds if kind == "bind" else fetched).append(name)
    for path in changed_data:
        if not any(names_a_file(d, path) for _, d in after.values()) and not repository_rules:
            raise Unjudged("{} is named by the WORKSPACE files, but by no repository definition or repository "
                           "rule".format(path))
    why = "{}: external target {{}} changed".format(", ".join(workspace_hits))
    changed = {"//external:" + name: {why.format("//external:" + name)} for name in binds}
    if fetched:
        head_contents, base_contents = at_both_revisions(lambda: contents(bazel, fetched),
                                                         lambda: contents(base_bazel(), fetched))
        for label, fingerprint in sorted(head_contents.items()):
            if label in base_contents and base_contents[label] != fingerprint:
                changed[label] = {why.format(label)}
    return changed


def at_both_revisions(at_head, at_base):
    """(at_head(), at_base()), asked at once: each revision has a Bazel server of its own, and the base's start-up,
    fetches and loading overlap the head's instead of following them."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="base revision") as pool:
        base = pool.submit(at_base)
        head = at_head()
        return head, base.result()


def _remembered(read):
    texts = {}

    def remembered(path):
        if path not in texts:
            texts[path] = read(path)
        return texts[path]

    return remembered


def dependents(bazel, reasons):
    """The rdeps of changed external targets (with their edges), or Unjudged when one of them has none here."""
    expression = "rdeps(//..., set({}))".format(" ".join(quote(label) for label in sorted(reasons)))
    targets = bazel.query_targets(expression, external_inputs=True)
    lonely = unused(targets, reasons)
    if lonely:
        pronoun = "them" if len(lonely) > 1 else "it"
        raise Unjudged("{} changed, and no target of the workspace depends on {} through attributes: toolchain "
                       "resolution may use {}".format(
                           ", ".join(lonely[:3]) + (" and {} more".format(len(lonely) - 3) if len(lonely) > 3 else ""),
                           pronoun, pronoun))
    return targets
