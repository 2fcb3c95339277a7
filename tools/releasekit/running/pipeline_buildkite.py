"""The Buildkite pipeline `releasekit pipeline --format buildkite` writes, for `buildkite-agent pipeline upload`.

Steps: the base commit (stored in the build's meta-data), `wait`, one test step per shard, `wait`, one release step
per shard (main line only, never a pull request), `wait`, and a last step that records the build's commit as the
last passed one. The base comes from Buildkite's own variables: a pull request's merge base with
BUILDKITE_PULL_REQUEST_BASE_BRANCH; on the main line the last passed commit the build named by
environment.PREVIOUS_BUILD recorded (`buildkite-agent meta-data get --build`; a failed build passes on the one it
knew), else the merge base with the main line, else everything. Credentials come from the agent's environment
(its hooks), else from Buildkite secrets (`buildkite-agent secret get`). Release steps run one at a time across the
pipeline's builds, oldest build first (`concurrency_group`).
"""

from releasekit.core import environment
from releasekit.running import pipeline
from releasekit.running.pipeline import REPORTS, TEST_REPORTS

# Outside the checkout (an untracked file there could be a release's input), one per job (agents share a host).
TOOL = "${TMPDIR:-/tmp}/releasekit-$BUILDKITE_JOB_ID"
VENV = "${TMPDIR:-/tmp}/releasekit-python-$BUILDKITE_JOB_ID"
BASE_KEY, EVERYTHING_KEY, LAST_PASSED_KEY = "releasekit-base", "releasekit-everything", "releasekit-last-passed"
# How a step says it runs on the main line, not for a pull request: then collect records target graphs.
MAIN_LINE_ONLY = ('$( [ "${BUILDKITE_PULL_REQUEST:-false}" = false ] && [ "$BUILDKITE_BRANCH" = '
                  '"$BUILDKITE_PIPELINE_DEFAULT_BRANCH" ] && echo --record-target-graphs )')
NOT_A_PULL_REQUEST = "build.pull_request.id == null"


def steps(settings):
    main = settings.main_branch
    found = [_base_step(settings), "wait"]
    found += [_shard_step(settings, "tests", shard, {}) for shard in settings.shard_list]
    found.append("wait")
    # Releases publish to production: on the main line only, never for a pull request (whose branch may be named
    # like it), after every test shard passed. One release step at a time across the pipeline's builds, oldest
    # build first: two builds never publish at once.
    serial = {"concurrency": 1, "concurrency_group": "releasekit/${BUILDKITE_PIPELINE_SLUG}/releases",
              "branches": main, "if": NOT_A_PULL_REQUEST, "env": {"CI": "true"}}
    found += [_shard_step(settings, "releases", shard, dict(serial)) for shard in settings.shard_list]
    found.append("wait")
    found.append({"label": ":white_check_mark: last passed commit", "key": "passed", "branches": main,
                  "if": NOT_A_PULL_REQUEST,
                  "commands": _escaped(['buildkite-agent meta-data set {} "$BUILDKITE_COMMIT"'.format(
                      LAST_PASSED_KEY)])})
    return {"steps": found}


def _escaped(commands):
    # $$: the agent's shell expands variables when the step runs, not `pipeline upload` before.
    return [command.replace("$", "$$") for command in commands]


def _base_step(settings):
    previous = environment.PREVIOUS_BUILD
    if settings.base:
        lines = ["last_passed=", "candidates='{}'".format(settings.base),
                 'main_branch="{}"'.format(settings.main_branch)]
    else:
        lines = [
            "last_passed=",
            'if [ -n "${{{0}:-}}" ]; then last_passed="$(buildkite-agent meta-data get {1} --build "${0}" --default '
            '"" || true)"; fi'.format(previous, LAST_PASSED_KEY),
            'main_branch="${BUILDKITE_PIPELINE_DEFAULT_BRANCH:-%s}"; candidates=' % settings.main_branch,
            'if [ "${BUILDKITE_PULL_REQUEST:-false}" != false ]; then',
            '  main_branch="$BUILDKITE_PULL_REQUEST_BASE_BRANCH"',
            'elif [ "$BUILDKITE_BRANCH" = "$main_branch" ]; then',
            '  candidates="$last_passed"  # another branch starts at its merge base with the main line',
            "fi",
        ]
    lines += pipeline.base_script("$candidates", "$main_branch")
    lines += [
        'buildkite-agent meta-data set {} "${{commit:-none}}"'.format(BASE_KEY),
        'if [ -z "$commit" ]; then buildkite-agent meta-data set {} "$why"; fi'.format(EVERYTHING_KEY),
        # A build that fails passes on the last passed commit it knew: the next build starts there.
        'if [ -n "$last_passed" ]; then buildkite-agent meta-data set {} "$last_passed"; fi'.format(LAST_PASSED_KEY),
    ]
    return {"label": ":git: base commit", "key": "base", "commands": _escaped(lines)}


def _shard_step(settings, what, shard, extra):
    index = shard.split("/")[0]
    report = "report-{}-{}.json".format(what, index)
    commands = settings.tool_setup(TOOL)
    if settings.needs_python_packages():
        lacks, make, python = pipeline.python_packages_check(VENV)
        commands.append("if {}; then {}; export {}=\"{}\"; fi".format(lacks, " && ".join(make), environment.PYTHON,
                                                                     python))
    names = pipeline.credential_variables(settings.config, what)
    if names:
        commands.append('for name in {}; do if [ -z "$(printenv "$name")" ] && value="$(buildkite-agent secret get '
                        '"$name" 2>/dev/null)"; then export "$name=$value"; fi; done'.format(" ".join(names)))
    commands.append('if [ -n "${{{0}:-}}" ]; then buildkite-agent artifact download "report-*.json" {1} --build '
                    '"${0}" || true; fi'.format(environment.PREVIOUS_BUILD, REPORTS))
    if what == "releases":
        commands.append('buildkite-agent artifact download "report-tests-*.json" {} || true'.format(TEST_REPORTS))
    commands += [
        'BASE_COMMIT="$(buildkite-agent meta-data get {})"; EVERYTHING='.format(BASE_KEY),
        'if [ "$BASE_COMMIT" = none ]; then BASE_COMMIT= ; EVERYTHING="$(buildkite-agent meta-data get {})"; '
        'fi'.format(EVERYTHING_KEY),
    ]
    tool = settings.tool(TOOL)
    commands += pipeline.collect_command(tool, settings.head or "HEAD", MAIN_LINE_ONLY)
    commands.append(pipeline.dispatch_command(tool, settings, what, shard, report))
    body = {"label": "{} {}, shard {}".format(":bazel:" if what == "tests" else ":package:", what, shard),
            "key": "{}-{}".format(what, index), "commands": _escaped(commands), "artifact_paths": [report]}
    body.update(extra)
    return body
