"""The shape of the house: wings that say what flows in and out, and rooms small enough to read."""

import ast
import os

from helpers.servers import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "tools", "releasekit")


def test_no_module_is_over_400_lines_and_the_command_line_under_250():
    sizes = {}
    for directory, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as handle:
                    sizes[os.path.relpath(path, PACKAGE)] = sum(1 for _ in handle)
    assert {name: size for name, size in sizes.items() if size > 400} == {}
    assert sizes["cli.py"] < 250


def test_each_wing_says_what_flows_in_and_out():
    for wing in ("core", "selection", "running", "publishing", "insight"):
        with open(os.path.join(PACKAGE, wing, "__init__.py"), encoding="utf-8") as handle:
            docstring = ast.get_docstring(ast.parse(handle.read())) or ""
        assert "In:" in docstring and "Out:" in docstring, wing
        assert len(docstring) > 200, wing
