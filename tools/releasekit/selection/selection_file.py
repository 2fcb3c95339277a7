"""The selection files: what `releasekit collect` writes and `dispatch` reads (one schema for tests and for
releases). This module is the contract's one owner: its writer (Selection.report) and its reader (load_labels)."""

import json

from releasekit.core.errors import UsageError

FORMAT_VERSION = 1


class Selected:
    __slots__ = ("label", "kind", "reasons")

    def __init__(self, label, kind, reasons):
        self.label, self.kind, self.reasons = label, kind, reasons

    def __repr__(self):
        return "Selected({!r}, {!r}, {!r})".format(self.label, self.kind, self.reasons)


class Selection:
    """What collect found: the selected tests and releases, and what it noticed on the way."""

    def __init__(self, base, head, everything, tests, releases, changed_files, queries=0, notes=None):
        self.base, self.head, self.everything = base, head, everything
        self.tests, self.releases, self.changed_files = tests, releases, changed_files
        self.queries = queries
        self.notes = [] if notes is None else notes

    def report(self, kind):
        targets = self.tests if kind == "tests" else self.releases
        return {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "base": self.base,
            "head": self.head,
            "everything": self.everything,
            "notes": self.notes,
            "targets": [
                {"label": t.label, "kind": t.kind, "reasons": list(t.reasons)}
                for t in sorted(targets, key=lambda t: t.label)
            ],
        }


def load_labels(path, kind):
    """The labels of a selection file of this kind ("tests" or "releases")."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError("Cannot read the {} selection {}: {}. Write it with releasekit collect.".format(
            kind, path, error)) from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or "targets" not in data:
        raise UsageError("{} is not a releasekit collect {} file (format_version {}).".format(path, kind,
                                                                                              FORMAT_VERSION))
    return [t["label"] for t in data["targets"]]
