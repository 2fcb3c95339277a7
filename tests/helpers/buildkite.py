"""A runner for the Buildkite pipeline `releasekit pipeline` writes: every step in order, each on a fresh checkout.

It does what the agent does for the parts the pipeline uses: `pipeline upload`'s interpolation (`$$` is a literal
`$`; `$VAR` and `${VAR}` take the build's environment), `wait` (a failed step stops the build there), `branches`,
the `if` conditions the pipeline writes, `env`, commands in `bash -e -c`, and `artifact_paths`. It sets the
variables Buildkite sets for a build of a push or a pull request. `buildkite-agent` is a stub over the runner's own
builds, artifacts, meta-data and secrets (engine_clis.py); everything a step runs is real.
"""

import glob
import os
import re
import shutil
import subprocess
import uuid

import yaml

from . import engine_clis

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class BuildResult:
    def __init__(self, build_id, number):
        self.build_id, self.number, self.steps, self.state = build_id, number, {}, None

    def log(self):
        return "\n".join("== {}: {}\n{}".format(key, step.status, step.log) for key, step in self.steps.items())


class StepResult:
    def __init__(self, status, log=""):
        self.status, self.log = status, log


class Buildkite:
    """One pipeline's builds, run on one agent (its checkout path is the same for every build, as an agent's is)."""

    def __init__(self, state, agent, origin, path, slug="monorepo", default_branch="main"):
        self.state, self.agent, self.origin, self.path = state, agent, origin, path
        self.slug, self.default_branch, self.builds = slug, default_branch, 0
        self.home = os.path.join(agent, "home")
        self.checkout = os.path.join(agent, "builds", "agent-1", "acme", slug)
        os.makedirs(self.home, exist_ok=True)
        engine_clis.install(os.path.join(agent, "engine-bin"), state)

    def build(self, text, commit, branch, pull_request=None, base_branch="", env=None):
        """Upload the pipeline text and run its steps. env: the build's own environment (what the user set on the
        build, or on the trigger that started it)."""
        self.builds += 1
        result = BuildResult(str(uuid.uuid4()), self.builds)
        build_env = dict(env or {}, BUILDKITE="true", CI="true", BUILDKITE_BUILD_ID=result.build_id,
                         BUILDKITE_BUILD_NUMBER=str(result.number), BUILDKITE_COMMIT=commit, BUILDKITE_BRANCH=branch,
                         BUILDKITE_PIPELINE_SLUG=self.slug, BUILDKITE_PIPELINE_DEFAULT_BRANCH=self.default_branch,
                         BUILDKITE_PULL_REQUEST=str(pull_request) if pull_request else "false",
                         BUILDKITE_PULL_REQUEST_BASE_BRANCH=base_branch if pull_request else "",
                         BUILDKITE_REPO=self.origin, BUILDKITE_BUILD_CHECKOUT_PATH=self.checkout,
                         BUILDKITE_ORGANIZATION_SLUG="acme", HOME=self.home)
        steps = yaml.safe_load(interpolate(text, build_env))["steps"]
        failed = False
        for step in steps:
            if step == "wait":
                if failed:
                    break
                continue
            key = step.get("key") or step["label"]
            if not self._applies(step, branch, pull_request):
                result.steps[key] = StepResult("skipped")
                continue
            result.steps[key] = self._step(step, build_env)
            failed = failed or result.steps[key].status == "failed"
        result.state = "failed" if failed else "passed"
        return result

    def _applies(self, step, branch, pull_request):
        branches = step.get("branches")
        if branches and not any(re.fullmatch(pattern.replace("*", ".*"), branch) for pattern in branches.split()):
            return False
        condition = step.get("if")
        if condition is None:
            return True
        if condition.strip() == "build.pull_request.id == null":
            return not pull_request
        raise AssertionError("the runner does not know the condition " + condition)

    def _step(self, step, build_env):
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("RELEASEKIT_", "GITHUB_", "BUILDKITE", "RUNNER_", "AWS_")) and k != "CI"}
        environ["PATH"] = os.pathsep.join([os.path.join(self.agent, "engine-bin")] + self.path + [environ["PATH"]])
        environ.update(build_env)
        environ.update(step.get("env", {}))
        environ.update(BUILDKITE_JOB_ID=str(uuid.uuid4()), BUILDKITE_STEP_KEY=step.get("key", ""),
                       BUILDKITE_LABEL=step.get("label", ""))
        log = self._fresh_checkout(build_env["BUILDKITE_COMMIT"])
        done = subprocess.run(["bash", "-e", "-c", "\n".join(step["commands"])], cwd=self.checkout, env=environ,
                              capture_output=True, text=True, timeout=1800)
        for pattern in step.get("artifact_paths", []):
            for path in glob.glob(os.path.join(self.checkout, pattern)):
                relative = os.path.relpath(path, self.checkout)
                target = engine_clis.build_path(self.state, build_env["BUILDKITE_BUILD_ID"], "artifacts", relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(path, target)
        return StepResult("passed" if done.returncode == 0 else "failed",
                          log + "\n(exit {})\n".format(done.returncode) + done.stdout + done.stderr)

    def _fresh_checkout(self, commit):
        shutil.rmtree(self.checkout, ignore_errors=True)
        os.makedirs(os.path.dirname(self.checkout), exist_ok=True)
        log = []
        for command, cwd in ((["git", "clone", "--quiet", self.origin, self.checkout], None),
                             (["git", "checkout", "--quiet", "--detach", commit], self.checkout)):
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
            log.append(" ".join(command) + "\n" + done.stdout + done.stderr)
            if done.returncode != 0:
                raise AssertionError("checkout failed: " + "\n".join(log))
        return "\n".join(log)


def interpolate(text, environ):
    """What `buildkite-agent pipeline upload` does to the pipeline's text before it parses it."""
    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(3)
        value = environ.get(name, "")
        return value if value or match.group(2) is None else match.group(2)
    return _INTERPOLATION.sub(replace, text)
