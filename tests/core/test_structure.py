"""The shape of the house: wings that say what flows in and out, rooms small enough to read, imports that run one
way, and no import cycle."""

import ast
import os

from helpers.servers import REPO_ROOT

TOOLS = os.path.join(REPO_ROOT, "tools")
PACKAGE = os.path.join(TOOLS, "releasekit")
MOST_MODULE_LINES = 400
MOST_FUNCTION_LINES = 60
WINGS = ("selection", "running", "publishing", "insight")
# Who may import whom, beyond the shared core: data flows select -> run -> publish, and runs keep a history.
MAY_IMPORT = {"running": {"selection", "publishing", "insight"}, "commands": set(WINGS)}
# The fork server runs the publish command in each forked release, as the command line would.
UPWARD = {("releasekit.running.forkserver", "releasekit.commands.publish"), ("releasekit.running.forkserver",
                                                                              "releasekit.commands")}


def _modules():
    """{module name: path} of every module of the package."""
    found = {}
    for directory, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                module = os.path.relpath(path, TOOLS)[:-3].replace(os.sep, ".")
                found[module[:-len(".__init__")] if module.endswith(".__init__") else module] = path
    return found


def _imports(modules):
    """{module: the package's modules it imports}, at its top and inside its functions alike."""
    edges = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        named = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                named += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                named += [base] + ["{}.{}".format(base, alias.name) for alias in node.names]
        edges[module] = {_owner(name, modules) for name in named} - {None, module}
    return edges


def _owner(name, modules):
    """The package module a dotted name belongs to, or None outside the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _area(module):
    """core (with the package itself: its version), a wing, commands, or the top (cli.py, __main__)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"
    return parts[1] if len(parts) > 2 or parts[1] in WINGS + ("core", "commands") else "top"


def test_no_module_is_over_400_lines_and_the_command_line_under_250():
    sizes = {}
    for module, path in _modules().items():
        with open(path, encoding="utf-8") as handle:
            sizes[module] = sum(1 for _ in handle)
    assert {module: size for module, size in sizes.items() if size > MOST_MODULE_LINES} == {}
    assert sizes["releasekit.cli"] < 250


def test_no_function_is_over_60_lines():
    """Before: build_parser was 122 lines, DeployKind.publish 68."""
    long = {}
    for module, path in _modules().items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MOST_FUNCTION_LINES:
                    long["{}.{}".format(module, node.name)] = length
    assert long == {}


def test_each_wing_says_what_flows_in_and_out():
    for wing in ("core",) + WINGS:
        with open(os.path.join(PACKAGE, wing, "__init__.py"), encoding="utf-8") as handle:
            docstring = ast.get_docstring(ast.parse(handle.read())) or ""
        assert "In:" in docstring and "Out:" in docstring, wing
        assert len(docstring) > 200, wing


def test_no_import_cycle():
    """Before: cli imported running, whose fork server imported cli."""
    edges = _imports(_modules())
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(edges[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert cycles == []


def test_imports_run_one_way_between_the_wings():
    """The core imports no wing; selection, publishing and insight import no other wing (the stores they share live
    in the core); running may import the wings it runs; commands, any. Before: selection and insight opened their
    stores through publishing."""
    crossing = []
    for module, imported in _imports(_modules()).items():
        area = _area(module)
        for other in imported:
            other_area = _area(other)
            if other_area in (area, "core") or other_area in MAY_IMPORT.get(area, ()) or area == "top":
                continue
            if (module, other) not in UPWARD:
                crossing.append("{} -> {}".format(module, other))
    assert sorted(crossing) == []
