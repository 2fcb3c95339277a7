"""Reading Bazel's Build Event Protocol (the JSON file): test outcomes and built outputs, not console output."""

import json

from releasekit.running.run_report import Outcome
from releasekit.selection import bazelrc


def read_build_events(path):
    events = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line:
                    events.append(json.loads(line))
    except FileNotFoundError:
        return []
    return events


def _uri_path(uri):
    return uri[len("file://"):] if uri and uri.startswith("file://") else uri


def _file_path(output, exec_root):
    """Where a built file is on this machine. A build with a gRPC cache names what it left there by a bytestream://
    URI even when the file is here too: its path is then the exec root, the file's path prefix and its name."""
    uri = output.get("uri")
    if uri and not uri.startswith("file://") and exec_root and output.get("name"):
        return "/".join([exec_root.rstrip("/"), *output.get("pathPrefix", []), output["name"]])
    return _uri_path(uri)


def test_outcomes(events, labels):
    """Outcome per test label, from testSummary / testResult / targetCompleted events."""
    outcomes, logs, attempts, built, cached = {}, {}, {}, {}, {}
    for event in events:
        ident = event.get("id", {})
        if "testResult" in ident:
            label = ident["testResult"]["label"]
            attempts[label] = max(attempts.get(label, 0), ident["testResult"].get("attempt", 1))
            result = event.get("testResult", {})
            hit = bool(result.get("cachedLocally") or result.get("executionInfo", {}).get("cachedRemotely"))
            cached[label] = cached.get(label, True) and hit
            for output in event.get("testResult", {}).get("testActionOutput", []):
                if output.get("name") == "test.log":
                    logs[label] = _uri_path(output.get("uri"))
        elif "targetCompleted" in ident:
            built[ident["targetCompleted"]["label"]] = bool(event.get("completed", {}).get("success"))
        elif "testSummary" in ident:
            label = ident["testSummary"]["label"]
            summary = event.get("testSummary", {})
            status = summary.get("overallStatus", "NO_STATUS").lower().replace("_", " ")
            millis = int(summary.get("totalRunDurationMillis", 0) or 0)
            outcomes[label] = Outcome(label, "test", status, millis / 1000.0)
    result = {}
    for label in labels:
        outcome = outcomes.get(label)
        if outcome is None:
            if built.get(label) is False:
                outcome = Outcome(label, "test", "build failed", reason="the test did not build")
            else:
                outcome = Outcome(label, "test", "failed", reason="Bazel reported no result for this test")
        outcome.log = logs.get(label)
        outcome.attempts = attempts.get(label, 1)
        outcome.cached = cached.get(label)
        if outcome.status == "flaky":
            outcome.reason = "failed, then passed within {} attempts".format(outcome.attempts)
        result[label] = outcome
    return result


def built_outputs(events, labels):
    """{label: {output name: path}} for the labels that built; a label missing from it did not build."""
    file_sets, completed, exec_root = {}, {}, None
    for event in events:
        ident = event.get("id", {})
        if "workspace" in ident:
            exec_root = event.get("workspaceInfo", {}).get("localExecRoot")
        elif "namedSet" in ident:
            named = event.get("namedSetOfFiles", {})
            file_sets[ident["namedSet"]["id"]] = (named.get("files", []), [s["id"] for s in named.get("fileSets", [])])
        elif "targetCompleted" in ident and event.get("completed", {}).get("success"):
            groups = event["completed"].get("outputGroup", [])
            completed[ident["targetCompleted"]["label"]] = [s["id"] for g in groups for s in g.get("fileSets", [])]

    def files_of(set_ids, seen):
        for set_id in set_ids:
            if set_id in seen or set_id not in file_sets:
                continue
            seen.add(set_id)
            files, children = file_sets[set_id]
            yield from files
            yield from files_of(children, seen)

    outputs = {}
    for label in labels:
        if label in completed:
            outputs[label] = {f["name"]: _file_path(f, exec_root) for f in files_of(completed[label], set())}
    return outputs


def options_only_tests_get(events):
    """The rc-file options a `bazel test` took that `bazel build` would not have: [(command, option)], from the
    invocation's original command line; None when the events do not list its rc options.

    Bazel passes every rc line as `--default_override=<rc index>:<command>[:<config>]=<option>`. A `bazel test`
    takes the `test` lines on top of the `build` ones; a `test:<config>` line counts when the config is in use.
    """
    for event in events:
        line = event.get("structuredCommandLine", {})
        if line.get("commandLineLabel") != "original":
            continue
        overrides, explicit = [], []
        for section in line.get("sections", []):
            if section.get("sectionLabel") != "command options":
                continue
            for option in section.get("optionList", {}).get("option", []):
                form = option.get("combinedForm", "")
                if form.startswith("--default_override="):
                    where, _, value = form[len("--default_override="):].partition("=")
                    overrides.append((where.partition(":")[2], value))
                else:
                    explicit.append(form)
        configs = _configs_in_use(explicit, overrides)
        return [(command, value) for command, value in overrides
                if command == "test" or (command.startswith("test:") and command[len("test:"):] in configs)]
    return None


def _configs_in_use(explicit, overrides):
    """Names of the configs an invocation uses: --config on its command line or in rc lines it takes, transitively."""
    def named(options):
        return {o.split("=", 1)[1] for o in options if o.startswith("--config=")}

    used = set()
    pending = named(explicit) | named(v for c, v in overrides if c in ("build", "test", "common", "always"))
    while pending:
        config = pending.pop()
        if config not in used:
            used.add(config)
            pending |= named(v for c, v in overrides if c.partition(":")[2] == config)
    return used


def why_test_builds_differ(events):
    """Why a `bazel test`'s outputs of non-test targets may differ from a `bazel build`'s, or None when they cannot:
    every rc option only the test command took is test-only or changes no result."""
    options = options_only_tests_get(events)
    if options is None:
        return "Bazel's build events do not list the rc options of `bazel test`"
    for command, option in options:
        reach, name = bazelrc.reach("test", option)
        if reach not in ("none", "tests"):
            return "the rc option `{} --{}` may change what they build".format(command, name)
    return None
