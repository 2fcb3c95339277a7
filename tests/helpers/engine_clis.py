"""Stand-ins for the CI engines' own command-line tools, `gh` and `buildkite-agent`, for the pipeline runner.

Only the engine's own state is stood in for: what GitHub or Buildkite keeps between jobs and runs (past workflow
runs, artifacts, build meta-data, secrets) lives as real files under one state directory, as the engine would
keep it, and the stubs read and write those files with the arguments the real tools take. install() writes the
stubs into a bin directory, the state directory written into them: a job's environment needs nothing more.

State layout:
  runs.json                                  GitHub: past workflow runs, newest last
  builds/<build id>/artifacts/<path>         Buildkite: each build's uploaded artifacts
  builds/<build id>/meta-data/<key>          Buildkite: each build's meta-data
  secrets/<NAME>                             Buildkite secrets
"""

import fnmatch
import glob
import json
import os
import shutil
import subprocess
import sys

_STUB = """#!{python}
# A stand-in for the CI engine's own `{name}`: tests/helpers/engine_clis.py.
import sys
sys.path.insert(0, {tests!r})
from helpers.engine_clis import main
sys.exit(main({name!r}, {state!r}, sys.argv[1:]))
"""


def install(bin_dir, state):
    os.makedirs(bin_dir, exist_ok=True)
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("gh", "buildkite-agent"):
        path = os.path.join(bin_dir, name)
        with open(path, "w") as handle:
            handle.write(_STUB.format(python=sys.executable, tests=tests, name=name, state=state))
        os.chmod(path, 0o755)


def main(name, state, argv):
    try:
        return (_gh if name == "gh" else _buildkite_agent)(state, argv)
    except _Usage as error:
        print("{}: {}".format(name, error), file=sys.stderr)
        return 2


class _Usage(Exception):
    pass


def _options(argv, flags=()):
    """(positional arguments, {option: value}); flags: options without a value."""
    positional, options, index = [], {}, 0
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            if key in flags:
                options[key] = True
            elif value or "=" in arg:
                options[key] = value
            else:
                index += 1
                options[key] = argv[index]
        else:
            positional.append(arg)
        index += 1
    return positional, options


# -- gh ---------------------------------------------------------------------------------------------------------------


def _gh(state, argv):
    if argv[:2] != ["run", "list"]:
        raise _Usage("only `gh run list` is stood in for, not `gh {}`".format(" ".join(argv)))
    _, options = _options(argv[2:])
    runs = load_runs(state)
    chosen = [run for run in reversed(runs)
              if run["workflowName"] == options.get("workflow", run["workflowName"])
              and run["headBranch"] == options.get("branch", run["headBranch"])
              and options.get("status", run["conclusion"]) in (run["conclusion"], run["status"])]
    chosen = chosen[:int(options.get("limit", 20))]
    fields = options.get("json", "").split(",")
    answer = json.dumps([{field: run[field] for field in fields} for run in chosen])
    if "jq" not in options:
        print(answer)
        return 0
    # gh's --jq prints strings raw, as jq -r does.
    return subprocess.run(["jq", "-r", options["jq"]], input=answer, text=True).returncode


def load_runs(state):
    path = os.path.join(state, "runs.json")
    return json.load(open(path)) if os.path.exists(path) else []


def add_run(state, run):
    runs = load_runs(state) + [run]
    with open(os.path.join(state, "runs.json"), "w") as handle:
        json.dump(runs, handle, indent=1)


# -- buildkite-agent --------------------------------------------------------------------------------------------------


def _buildkite_agent(state, argv):
    command, rest = argv[:2], argv[2:]
    positional, options = _options(rest)
    build = options.get("build") or os.environ["BUILDKITE_BUILD_ID"]
    if command == ["meta-data", "set"]:
        value = positional[1] if len(positional) > 1 else sys.stdin.read()
        if not value.strip():
            raise _Usage("meta-data values must be non-empty strings")
        path = build_path(state, build, "meta-data", positional[0])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(value)
        return 0
    if command == ["meta-data", "get"]:
        path = build_path(state, build, "meta-data", positional[0])
        if os.path.exists(path):
            print(open(path).read())
            return 0
        if "default" in options:
            print(options["default"])
            return 0
        print("fatal: failed to get meta-data: 404 Not Found: No key \"{}\" found".format(positional[0]),
              file=sys.stderr)
        return 1
    if command == ["artifact", "upload"]:
        for pattern in positional[0].split(";"):
            for path in glob.glob(pattern, recursive=True):
                target = build_path(state, build, "artifacts", path)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(path, target)
        return 0
    if command == ["artifact", "download"]:
        pattern, destination = positional
        root = build_path(state, build, "artifacts", "")
        found = [os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names]
        found = [path for path in found if fnmatch.fnmatch(path, pattern)]
        if not found:
            print("fatal: failed to download artifacts: No artifacts found for downloading", file=sys.stderr)
            return 1
        for path in found:
            target = os.path.join(destination, path)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.copyfile(os.path.join(root, path), target)
        return 0
    if command == ["secret", "get"]:
        path = os.path.join(state, "secrets", positional[0])
        if not os.path.exists(path):
            print("fatal: failed to get secret: secret not found", file=sys.stderr)
            return 1
        sys.stdout.write(open(path).read())
        return 0
    raise _Usage("only artifact upload/download, meta-data set/get and secret get are stood in for, not {}".format(
        " ".join(argv)))


def build_path(state, build, kind, relative):
    return os.path.join(state, "builds", build, kind, relative)


def set_secret(state, name, value):
    os.makedirs(os.path.join(state, "secrets"), exist_ok=True)
    with open(os.path.join(state, "secrets", name), "w") as handle:
        handle.write(value)
