"""Reading Bazel's Build Event Protocol (the JSON file): test outcomes and built outputs, not console output."""

import json

from releasekit.running.run_report import Outcome


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
    file_sets, completed = {}, {}
    for event in events:
        ident = event.get("id", {})
        if "namedSet" in ident:
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
            outputs[label] = {f["name"]: _uri_path(f.get("uri")) for f in files_of(completed[label], set())}
    return outputs
