"""Pipelines for the CI engines users already have, written to run as they are: base, test shards, release shards.

Both engines get the same shape (pipeline_github.py, pipeline_buildkite.py):
- **releasekit itself** comes from the workspace: `bazel run --script_path=... @rules_release//tools:releasekit`
  builds the command line pinned with the rules, and the steps run the script it writes, so that Bazel's client
  (which may send its environment to a build event service) never sees a secret. The python3 that runs it needs
  releasekit's packages (core/python_packages.py): an agent whose python3 lacks them gets a virtual environment
  with them, named by environment.PYTHON. `--releasekit COMMAND` (with `--install`) runs an installed releasekit.
- **The base commit** is computed once per run, in a job of its own: the first candidate the clone has (a pull
  request's base; on the main line the commit of the last passed run, then the push's `before`), else the merge
  base with the main line, else every test and release is selected and the reason said (`collect --everything`):
  a first push, a force push that lost the commits named, a manual run of the main line with no passed run.
- **Test shards** collect the change, run their share of the tests (`--quarantine auto` when there is a history),
  and keep their report; main-line runs record target graphs (`collect --record-target-graphs`).
- **Release shards** run on the main line only, after every test shard passed, with CI=true and the destinations'
  credentials from the engine's secrets, each handed every test shard's report of its own run (`--test-reports`):
  the gate publishes nothing when it cannot read them all. The engine's concurrency control keeps two runs from
  publishing at once. Shards balance by the durations of the previous run's reports, carried as artifacts, and
  collect selects again what that run left undone (a release held back, a test that did not pass; carry_over.py).
"""

from releasekit.core import environment
from releasekit.core.errors import UsageError

REPORTS = "releasekit-reports"  # where a shard finds the previous run's reports: a directory
TEST_REPORTS = "releasekit-test-reports"  # where a release shard finds this run's test shards' reports
_PREVIOUS_REPORTS = '$( [ -d {0} ] && echo "--previous-report {0}" )'.format(REPORTS)  # when they were found
TOOL_LABEL = "@rules_release//tools:releasekit"
ZERO_COMMIT = "0" * 40  # GitHub's `before` of a branch's first push


class Settings:
    """What the pipeline is made of: the shards, the main line, how releasekit is reached, what the run needs from
    releasekit.yaml (its destinations' credentials, whether it has a history), and the quarantine."""

    def __init__(self, shards, main_branch="main", releasekit=TOOL_LABEL, install=None, config=None, quarantine=None,
                 history=None, bazel="bazel", base=None, head=None):
        if shards < 1:
            raise UsageError("--shards must be at least 1.")
        self.shards, self.main_branch, self.releasekit, self.install = shards, main_branch, releasekit, install
        self.config, self.history, self.bazel, self.base, self.head = config, history, bazel, base, head
        has_history = bool(history or (config and config.history))
        if quarantine in (None, "") and has_history:
            quarantine = "auto"
        if quarantine == "auto" and not has_history:
            raise UsageError("--quarantine auto reads the run history, and none is set: pass --history URL or set "
                             "`history:` in releasekit.yaml.")
        self.quarantine = None if quarantine in (None, "", "none") else quarantine

    @property
    def shard_list(self):
        return ["{}/{}".format(i, self.shards) for i in range(1, self.shards + 1)]

    @property
    def builds_the_tool(self):
        """releasekit from the workspace's rules_release (a label), rather than a command installed on the agent."""
        return self.releasekit.startswith(("@", "//"))

    def tool_setup(self, script):
        """Shell lines that make `script` run releasekit."""
        if self.builds_the_tool:
            return ['{} run --script_path="{}" {}'.format(self.bazel, script, self.releasekit)]
        return [self.install] if self.install else []

    def tool(self, script):
        return '"{}"'.format(script) if self.builds_the_tool else self.releasekit

    def needs_python_packages(self):
        return self.builds_the_tool


def python_packages_check(venv):
    """(the shell condition that the python3 running releasekit lacks its required packages, the commands that make a
    virtual environment with every package, the python3 it holds)."""
    from releasekit.core.python_packages import REQUIRED, packages

    python = "${{{}:-python3}}".format(environment.PYTHON)
    lacks = "! \"{}\" -c 'import {}' 2>/dev/null".format(python, ", ".join(REQUIRED))
    install = ['python3 -m venv "{}"'.format(venv),
               '"{}/bin/python3" -m pip install --quiet {}'.format(venv, " ".join(packages()))]
    return lacks, install, venv + "/bin/python3"


def base_script(candidates, main_branch):
    """Shell lines that set `commit` to the run's base commit, or leave it empty and set `why` (every test and
    release is then selected). candidates: shell words, in order of preference; main_branch: a shell word."""
    return [
        "commit= ; why=",
        "for candidate in {}; do".format(candidates),
        '  if [ -z "$candidate" ] || [ "$candidate" = {} ]; then continue; fi'.format(ZERO_COMMIT),
        '  if git cat-file -e "$candidate^{commit}" 2>/dev/null; then commit="$candidate"; break; fi',
        '  why="${why:+$why; }$candidate is not in this clone (the history was rewritten, or the clone is shallow)"',
        "done",
        'if [ -z "$commit" ]; then',
        '  git fetch --quiet origin "+refs/heads/{0}:refs/remotes/origin/{0}" || true'.format(main_branch),
        '  merge_base="$(git merge-base HEAD "refs/remotes/origin/{}" 2>/dev/null || true)"'.format(main_branch),
        '  if [ -n "$merge_base" ] && [ "$merge_base" != "$(git rev-parse HEAD)" ]; then commit="$merge_base"; fi',
        "fi",
        'if [ -z "$commit" ]; then',
        '  why="no base commit: ${{why:-no earlier run or push of this branch names one (a first push)}}; the merge '
        'base with {} is this commit itself"'.format(main_branch),
        "fi",
        'echo "base commit: ${commit:-none ($why)}"',
    ]


def collect_command(tool, head, record_graphs):
    """Shell lines that run collect from $BASE_COMMIT, or select everything for $EVERYTHING when it is empty. The
    previous run's reports say what it left undone: collect selects that again (carry_over.py)."""
    return [
        'if [ -n "$BASE_COMMIT" ]; then set -- --base "$BASE_COMMIT"; else set -- --everything "$EVERYTHING"; fi',
        '{} collect "$@" --head {} --tests-out tests.json --releases-out releases.json {}{}'.format(
            tool, head, _PREVIOUS_REPORTS, " " + record_graphs if record_graphs else ""),
    ]


def dispatch_command(tool, settings, what, shard, report):
    balance = _PREVIOUS_REPORTS
    options = ["--{0} {0}.json".format(what), "--shard " + shard, balance]
    if settings.quarantine:
        options.append("--quarantine " + settings.quarantine)
    if settings.history:
        options.append("--history " + settings.history)
    if what == "releases":
        # The tests selection this job's collect wrote: the reports must have run each of its tests.
        options.append("--test-reports {} --tests-selection tests.json".format(TEST_REPORTS))
    return "{} dispatch {} --report {}".format(tool, " ".join(options), report)


def destinations(config, what):
    """The destinations a job writes to or reads: test jobs the history and target graphs, release jobs the CI
    channel's as well. None when there is no releasekit.yaml (then every documented variable is passed)."""
    if config is None:
        return None
    found = [d for d in (config.history, config.target_graphs) if d is not None]
    if what == "releases":
        found = list(config.channels.get("ci", {}).values()) + found
    return found


def credential_variables(config, what):
    """The variables a job's steps take from the engine's secrets, in a stable order: each destination's documented
    variables (environment.REGISTRY_*, environment.STORE_CREDENTIALS), those its host's entry in `credentials` names
    (host_credentials.py), and AWS's for s3:// stores."""
    kinds = {"registry": [environment.REGISTRY_USERNAME, environment.REGISTRY_PASSWORD, environment.REGISTRY_TOKEN]}
    kinds.update({kind: list(variables) for kind, variables in environment.STORE_CREDENTIALS.items()})
    aws = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
    names = []
    found = destinations(config, what)
    if found is None:
        wanted = ["history", "target_graphs"] + (["registry", "maven", "deploy", "files"] if what == "releases" else [])
        names = [str(v) for kind in wanted for v in kinds[kind]] + aws
    for destination in found or []:
        if destination.scheme == "s3":
            names += aws
        elif destination.scheme != "file":
            names += [str(v) for v in kinds[destination.kind]]
            names += destination.credentials.variables() if destination.credentials else []
    return list(dict.fromkeys(names))


def publishes_to_ghcr(config):
    """Whether the CI channel's registry is GitHub's own (ghcr.io): its workflow token pushes there."""
    registry = config.channels.get("ci", {}).get("registry") if config else None
    return bool(registry and registry.host.lower() == "ghcr.io")


# The engines `--format` offers: the module of running/ that renders an engine's document, and its function of
# Settings.
ENGINES = {"buildkite": ("pipeline_buildkite", "steps"), "github-actions": ("pipeline_github", "workflow")}


def render(kind, settings):
    """The pipeline as YAML text."""
    import importlib

    if kind not in ENGINES:
        raise UsageError("--format must be {}, not '{}'.".format(" or ".join(sorted(ENGINES)), kind))
    module, function = ENGINES[kind]
    document = getattr(importlib.import_module("releasekit.running." + module), function)(settings)
    header = "# @generated by releasekit pipeline --format {} --shards {}\n".format(kind, settings.shards)
    return header + dump_yaml(document)


def dump_yaml(document):
    import yaml

    class PlainDumper(yaml.SafeDumper):
        """Every step written out in full: CI engines' editors and reviewers read no YAML anchors."""

        def ignore_aliases(self, data):
            return True

    def literal_blocks(dumper, text):  # multi-line scripts as blocks, as people write them
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)

    PlainDumper.add_representer(str, literal_blocks)
    return yaml.dump(document, Dumper=PlainDumper, sort_keys=False, width=1000)
