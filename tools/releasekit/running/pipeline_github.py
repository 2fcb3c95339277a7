"""The GitHub Actions workflow `releasekit pipeline --format github-actions` writes (see pipeline.py for its shape).

Jobs: `base` (the last successful main-line run, with `gh run list`, and the base commit), `tests` (one per shard),
`releases` (one per shard; main line only, after every test shard passed). Secrets reach the steps that use them
through `secrets.<VARIABLE>`; a CI registry on ghcr.io is pushed to with the workflow's own token (`packages:
write`). Runs of one ref wait for each other (`concurrency:`); a pull request's newer run cancels its older one.
"""

from releasekit.core import environment
from releasekit.running import pipeline
from releasekit.running.pipeline import REPORTS, TEST_REPORTS

TOOL = "$RUNNER_TEMP/releasekit"
VENV = "$RUNNER_TEMP/releasekit-python"


def _expression(text):
    return "${{ " + text + " }}"


def workflow(settings):
    main = settings.main_branch
    main_line = "github.event_name != 'pull_request' && github.ref == 'refs/heads/{}'".format(main)
    releases = _job(settings, "releases", {
        "needs": ["base", "tests"],
        # Releases publish to production: on the main line only, after every test shard passed.
        "if": "needs.base.outputs.main-line == 'true'",
        "env": {"CI": "true"},
    })
    permissions = {"contents": "read", "actions": "read"}
    if pipeline.publishes_to_ghcr(settings.config):
        releases["permissions"] = dict(permissions, packages="write")
    return {
        "name": "releasekit",
        "on": {"push": {"branches": [main]}, "pull_request": {}, "workflow_dispatch": {}},
        # Runs of one ref wait for each other, so two runs of the main line never publish at once; a pull request's
        # newer run replaces its older one.
        "concurrency": {"group": "releasekit-" + _expression("github.ref"),
                        "cancel-in-progress": _expression("github.event_name == 'pull_request'")},
        "permissions": permissions,
        "jobs": {"base": _base_job(settings, main_line), "tests": _job(settings, "tests", {"needs": "base"}),
                 "releases": releases},
    }


def _base_job(settings, main_line):
    main = settings.main_branch
    if settings.base:
        candidates = "'{}'".format(settings.base)
    else:
        # A pull request: its base. The main line: the last successful run's commit (what a red or cancelled run held
        # back is tested and released again), then the push's `before`.
        candidates = '"$PULL_REQUEST_BASE" "$LAST_SUCCESSFUL" "$PUSHED_AFTER"'
    script = pipeline.base_script(candidates, main) + [
        'echo "commit=$commit" >> "$GITHUB_OUTPUT"',
        'echo "everything=$why" >> "$GITHUB_OUTPUT"',
        'echo "main-line=$MAIN_LINE" >> "$GITHUB_OUTPUT"',
    ]
    return {
        "name": "base commit",
        "runs-on": "ubuntu-latest",
        "outputs": {"commit": _expression("steps.base.outputs.commit"),
                    "everything": _expression("steps.base.outputs.everything"),
                    "main-line": _expression("steps.base.outputs.main-line"),
                    "previous-run": _expression("steps.previous.outputs.run-id")},
        "steps": [
            {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}},
            {"name": "Find the last successful run of the main line", "id": "previous",
             "env": {"GH_TOKEN": _expression("github.token")},
             "run": "gh run list --repo '{}' --workflow '{}' --branch '{}' --status success --limit 1 --json "
                    "databaseId,headSha --jq '.[] | \"run-id=\\(.databaseId)\", \"head-sha=\\(.headSha)\"' >> "
                    "\"$GITHUB_OUTPUT\"".format(_expression("github.repository"), _expression("github.workflow"),
                                                main)},
            {"name": "Base commit", "id": "base",
             "env": {"PULL_REQUEST_BASE": _expression("github.event.pull_request.base.sha"),
                     # Another branch's manual run starts at its merge base, not at the main line's last run.
                     "LAST_SUCCESSFUL": _expression("{} && steps.previous.outputs.head-sha || ''".format(main_line)),
                     "PUSHED_AFTER": _expression("github.event.before"),
                     "MAIN_LINE": _expression(main_line)},
             "run": "\n".join(script) + "\n"},
        ],
    }


def _job(settings, what, extra):
    shard, index = _expression("matrix.shard"), _expression("matrix.index")
    report = "report-{}-{}.json".format(what, index)
    steps = [{"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}]
    setup = settings.tool_setup(TOOL)
    if setup:
        steps.append({"name": "releasekit", "run": "\n".join(setup) + "\n"})
    if settings.needs_python_packages():
        lacks, make, python = pipeline.python_packages_check(VENV)
        steps.append({"name": "Python packages for releasekit", "run": "\n".join(
            ["if {}; then".format(lacks)] + ["  " + line for line in make] +
            ['  echo "{}={}" >> "$GITHUB_ENV"'.format(environment.PYTHON, python), "fi"]) + "\n"})
    steps.append({"name": "Download the last successful run's reports, to balance the shards",
                  "if": "needs.base.outputs.previous-run != ''", "continue-on-error": True,
                  "uses": "actions/download-artifact@v4",
                  "with": {"pattern": "releasekit-report-*", "merge-multiple": True, "path": REPORTS,
                           "run-id": _expression("needs.base.outputs.previous-run"),
                           "github-token": _expression("github.token")}})
    if what == "releases":
        steps.append({"name": "Download this run's test reports, for the gate", "uses": "actions/download-artifact@v4",
                      "with": {"pattern": "releasekit-report-tests-*", "merge-multiple": True, "path": TEST_REPORTS}})
    tool = settings.tool(TOOL)
    record = _expression("needs.base.outputs.main-line == 'true' && '--record-target-graphs' || ''")
    commands = pipeline.collect_command(tool, settings.head or "HEAD", record) + [
        pipeline.dispatch_command(tool, settings, what, shard, report)]
    env = {"BASE_COMMIT": _expression("needs.base.outputs.commit"),
           "EVERYTHING": _expression("needs.base.outputs.everything")}
    env.update(_secrets(settings, what))
    steps += [
        {"name": what.capitalize(), "env": env, "run": "\n".join(commands) + "\n"},
        {"name": "Keep the report", "if": "always()", "uses": "actions/upload-artifact@v4",
         "with": {"name": "releasekit-report-{}-{}".format(what, index), "path": report,
                  "if-no-files-found": "ignore"}},
    ]
    matrix = {"include": [{"shard": s, "index": int(s.split("/")[0])} for s in settings.shard_list]}
    body = {"name": "{} (shard {})".format(what, shard), "runs-on": "ubuntu-latest",
            "strategy": {"fail-fast": False, "matrix": matrix}}
    body.update(extra)
    body["steps"] = steps
    return body


def _secrets(settings, what):
    """Each credential variable from the secret of the same name. A CI registry on ghcr.io falls back to the
    workflow's own token, which `packages: write` lets push."""
    env = {name: _expression("secrets." + name) for name in pipeline.credential_variables(settings.config, what)}
    if what == "releases" and pipeline.publishes_to_ghcr(settings.config):
        user, password = str(environment.REGISTRY_USERNAME), str(environment.REGISTRY_PASSWORD)
        env[user] = _expression("secrets.{} || github.actor".format(user))
        env[password] = _expression("secrets.{} || secrets.GITHUB_TOKEN".format(password))
    return env
