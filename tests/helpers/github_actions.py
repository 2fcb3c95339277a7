"""A runner for the GitHub Actions workflow `releasekit pipeline` writes: every job in order, each on a fresh clone.

It does what the hosted runner does for the parts the workflow uses: the `${{ }}` expressions over the github,
env, secrets, steps, needs and matrix contexts; `needs`, job and step `if:`; matrix `include`; `run:` steps in
`bash --noprofile --norc -eo pipefail`, with GITHUB_OUTPUT and GITHUB_ENV; and the actions the workflow names
(checkout, upload-artifact, download-artifact). It sets the variables GitHub sets for a push, a branch's first push,
a force push, a pull request and a manual run. `gh` is a stub over the runner's own record of past runs
(engine_clis.py);
everything a step runs is real: git, Bazel, releasekit, the registry and the stores.
"""

import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess

import yaml

from . import engine_clis


class RunResult:
    def __init__(self, run_id):
        self.run_id, self.jobs, self.conclusion = run_id, {}, None

    def job(self, name, index=0):
        return self.jobs[name][index]

    def log(self):
        return "\n".join("== {} {}: {}\n{}".format(name, j.matrix, j.status, j.log) for name, jobs in self.jobs.items()
                         for j in jobs)


class JobResult:
    def __init__(self, matrix):
        self.matrix, self.status, self.outputs, self.log, self.steps = matrix, "skipped", {}, "", {}


class GitHubActions:
    """One repository's workflow runs. agent: a directory for the runner's home, work and temp directories."""

    def __init__(self, state, agent, origin, path, repository="acme/monorepo", secrets=None, actor="octocat"):
        self.state, self.agent, self.origin, self.repository = state, agent, origin, repository
        self.secrets, self.actor, self.path = dict(secrets or {}), actor, path
        self.home = os.path.join(agent, "home")
        # The hosted runner's workspace path is the same for every run: /home/runner/work/<repo>/<repo>.
        self.workspace = os.path.join(agent, "work", "monorepo", "monorepo")
        os.makedirs(self.home, exist_ok=True)
        engine_clis.install(os.path.join(agent, "engine-bin"), state)

    # -- events ------------------------------------------------------------------------------------------------------

    def push(self, text, sha, before, branch="main"):
        event = {"ref": "refs/heads/" + branch, "before": before, "after": sha,
                 "repository": {"default_branch": "main", "full_name": self.repository}}
        return self.run(text, "push", "refs/heads/" + branch, sha, event, branch)

    def manual(self, text, sha, branch):
        """A workflow_dispatch run of a branch (its tip)."""
        event = {"ref": "refs/heads/" + branch, "inputs": {},
                 "repository": {"default_branch": "main", "full_name": self.repository}}
        return self.run(text, "workflow_dispatch", "refs/heads/" + branch, sha, event, branch)

    def pull_request(self, text, number, merge_sha, base_sha, head_branch, base_branch="main"):
        event = {"number": number, "pull_request": {"number": number, "base": {"sha": base_sha, "ref": base_branch},
                                                    "head": {"ref": head_branch}},
                 "repository": {"default_branch": "main", "full_name": self.repository}}
        return self.run(text, "pull_request", "refs/pull/{}/merge".format(number), merge_sha, event, head_branch,
                        {"GITHUB_BASE_REF": base_branch, "GITHUB_HEAD_REF": head_branch})

    # -- a run -------------------------------------------------------------------------------------------------------

    def run(self, text, event_name, ref, sha, event, branch, extra_env=None):
        workflow = yaml.safe_load(text)
        run_id = str(len(engine_clis.load_runs(self.state)) + 1001)
        result = RunResult(run_id)
        event_path = os.path.join(self.agent, "event-{}.json".format(run_id))
        with open(event_path, "w") as handle:
            json.dump(event, handle)
        github = {"event_name": event_name, "ref": ref, "ref_name": ref.split("/", 2)[-1], "sha": sha,
                  "repository": self.repository, "workflow": workflow["name"], "token": "ghs-workflow-token",
                  "actor": self.actor, "event": event, "run_id": run_id}
        engine_env = dict(extra_env or {}, CI="true", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME=event_name,
                          GITHUB_REF=ref, GITHUB_REF_NAME=github["ref_name"], GITHUB_SHA=sha,
                          GITHUB_REPOSITORY=self.repository, GITHUB_RUN_ID=run_id, GITHUB_WORKFLOW=workflow["name"],
                          GITHUB_ACTOR=self.actor, GITHUB_EVENT_PATH=event_path, GITHUB_WORKSPACE=self.workspace,
                          RUNNER_OS="Linux", HOME=self.home)
        for name, body in _in_order(workflow["jobs"]):
            needs = body.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            need_results = {n: result.jobs[n] for n in needs}
            context = {"github": github, "secrets": self._secrets(), "env": dict(workflow.get("env", {})),
                       "needs": {n: {"result": _combined(jobs), "outputs": _merged_outputs(jobs)}
                                 for n, jobs in need_results.items()}}
            condition = body.get("if")
            if any(_combined(jobs) != "success" for jobs in need_results.values()) and "always()" not in str(condition):
                result.jobs[name] = [JobResult({})]
                continue
            if condition is not None and not _truthy(evaluate(_bare(condition), context)):
                result.jobs[name] = [JobResult({})]
                continue
            matrices = body.get("strategy", {}).get("matrix", {}).get("include") or [{}]
            result.jobs[name] = [self._job(name, body, dict(context, matrix=matrix), engine_env, run_id)
                                 for matrix in matrices]
        failed = any(j.status == "failure" for jobs in result.jobs.values() for j in jobs)
        result.conclusion = "failure" if failed else "success"
        engine_clis.add_run(self.state, {"databaseId": int(run_id), "headSha": sha, "headBranch": branch,
                                         "conclusion": result.conclusion, "status": "completed",
                                         "workflowName": workflow["name"], "event": event_name})
        return result

    def _secrets(self):
        return dict(self.secrets, GITHUB_TOKEN="ghs-workflow-token")

    def _job(self, name, body, context, engine_env, run_id):
        job = JobResult(context.get("matrix", {}))
        temp = os.path.join(self.agent, "temp")
        shutil.rmtree(temp, ignore_errors=True)
        os.makedirs(temp)
        shutil.rmtree(self.workspace, ignore_errors=True)
        os.makedirs(self.workspace)
        job_env = {k: _render(v, context) for k, v in body.get("env", {}).items()}
        context["env"] = dict(context["env"], **job_env)
        env_file = os.path.join(temp, "_github_env")
        open(env_file, "w").close()
        steps, logs, failed = {}, [], False
        for number, step in enumerate(body["steps"]):
            context["steps"] = steps
            condition = step.get("if")
            if condition is None:
                runs = not failed
            else:
                expression = _bare(condition)
                runs = (not failed or "always()" in expression) and _truthy(evaluate(expression, context))
            if not runs:
                continue
            step_env = {k: _render(v, context) for k, v in step.get("env", {}).items()}
            environ = dict(self._agent_env(), **engine_env)
            environ.update(context["env"])
            environ.update(_read_env_file(env_file))
            environ.update(step_env)
            environ.update(RUNNER_TEMP=temp, GITHUB_ENV=env_file)
            output_file = os.path.join(temp, "_output_{}".format(number))
            open(output_file, "w").close()
            environ["GITHUB_OUTPUT"] = output_file
            if "uses" in step:
                code, log = self._action(step, context, run_id)
            else:
                script = os.path.join(temp, "_step_{}.sh".format(number))
                with open(script, "w") as handle:
                    handle.write(_render(step["run"], dict(context, env=dict(context["env"], **step_env))))
                done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
                                      cwd=self.workspace, env=environ, capture_output=True, text=True, timeout=1800)
                code, log = done.returncode, done.stdout + done.stderr
            logs.append("-- {} (exit {})\n{}".format(step.get("name") or step.get("uses"), code, log))
            if "id" in step:
                steps[step["id"]] = {"outputs": _read_env_file(output_file),
                                     "outcome": "success" if code == 0 else "failure"}
            if code != 0 and not step.get("continue-on-error"):
                failed = True
        job.status = "failure" if failed else "success"
        self._keep_logs(name, job)
        context["steps"] = steps
        job.outputs = {k: _render(v, context) for k, v in body.get("outputs", {}).items()}
        job.log = "\n".join(logs)
        return job

    def _keep_logs(self, name, job):
        """The job's releasekit-logs/, kept beside the agent before the next job's clone replaces the workspace."""
        logs = os.path.join(self.workspace, "releasekit-logs")
        if os.path.isdir(logs):
            kept = os.path.join(self.agent, "job-logs", "{}-{}".format(name, job.matrix.get("index", 0)))
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(logs, kept)

    def _agent_env(self):
        """The runner image's environment: the machine's, without what an engine sets itself or a publisher's
        secrets, with the agent's tools (`bazel`, the engine's `gh`) first on PATH."""
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("RELEASEKIT_", "GITHUB_", "BUILDKITE", "RUNNER_", "AWS_")) and k != "CI"}
        environ["PATH"] = os.pathsep.join([os.path.join(self.agent, "engine-bin")] + self.path + [environ["PATH"]])
        return environ

    def _action(self, step, context, run_id):
        uses = step["uses"].split("@")[0]
        options = {k: _render(v, context) for k, v in step.get("with", {}).items()}
        if uses == "actions/checkout":
            return self._checkout(context["github"])
        if uses == "actions/upload-artifact":
            source = os.path.join(self.workspace, options["path"])
            if not os.path.exists(source):
                return 0, "no file at {} (if-no-files-found: {})".format(options["path"],
                                                                        options.get("if-no-files-found"))
            target = os.path.join(self.state, "runs", run_id, "artifacts", options["name"])
            os.makedirs(target, exist_ok=True)
            shutil.copyfile(source, os.path.join(target, os.path.basename(source)))
            return 0, "uploaded " + options["name"]
        if uses == "actions/download-artifact":
            root = os.path.join(self.state, "runs", options.get("run-id") or run_id, "artifacts")
            names = [n for n in (os.listdir(root) if os.path.isdir(root) else [])
                     if fnmatch.fnmatch(n, options["pattern"])]
            destination = os.path.join(self.workspace, options["path"])
            for name in names:
                merged = options.get("merge-multiple") in (True, "true")
                into = destination if merged else os.path.join(destination, name)
                os.makedirs(into, exist_ok=True)
                for path in glob.glob(os.path.join(root, name, "*")):
                    shutil.copyfile(path, os.path.join(into, os.path.basename(path)))
            return 0, "downloaded {}".format(names)
        raise AssertionError("the runner does not know the action " + step["uses"])

    def _checkout(self, github):
        """actions/checkout with fetch-depth 0: every branch and tag; a pull request's merge commit, detached."""
        shutil.rmtree(self.workspace, ignore_errors=True)
        commands = [["git", "clone", "--quiet", self.origin, self.workspace]]
        if github["ref"].startswith("refs/pull/"):
            commands += [["git", "fetch", "--quiet", "origin", "+{0}:{0}".format(github["ref"])],
                         ["git", "checkout", "--quiet", "--detach", github["sha"]]]
        else:
            commands.append(["git", "checkout", "--quiet", "-B", github["ref_name"], github["sha"]])
        log = []
        for command in commands:
            done = subprocess.run(command, cwd=self.workspace if command[1] != "clone" else None, capture_output=True,
                                  text=True)
            log.append(" ".join(command) + "\n" + done.stdout + done.stderr)
            if done.returncode != 0:
                return done.returncode, "\n".join(log)
        return 0, "\n".join(log)


def _in_order(jobs):
    """Jobs in an order that runs every job after the jobs it needs."""
    done, order = set(), []
    while len(order) < len(jobs):
        for name, body in jobs.items():
            needs = body.get("needs", [])
            needs = {needs} if isinstance(needs, str) else set(needs)
            if name not in done and needs <= done:
                done.add(name)
                order.append((name, body))
    return order


def _combined(jobs):
    statuses = {j.status for j in jobs}
    return "failure" if "failure" in statuses else "skipped" if statuses == {"skipped"} else "success"


def _merged_outputs(jobs):
    merged = {}
    for job in jobs:
        merged.update({k: v for k, v in job.outputs.items() if v != ""})
    return merged


def _read_env_file(path):
    values = {}
    with open(path) as handle:
        for line in handle:
            if "=" in line:
                key, _, value = line.rstrip("\n").partition("=")
                values[key] = value
    return values


def _bare(condition):
    text = str(condition).strip()
    return text[3:-2].strip() if text.startswith("${{") and text.endswith("}}") else text


def _render(value, context):
    """A value with every ${{ expression }} replaced by its text."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), context)), value)


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _truthy(value):
    return value not in (None, False, 0, "")


# -- expressions ------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!().,\[\]])|"
                    r"(?P<name>[A-Za-z_][A-Za-z0-9_-]*))")


def evaluate(text, context):
    """The value of a GitHub Actions expression: literals, context paths, ! == != && || and ( ), and the functions
    always(), success(), failure() and format()."""
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError("cannot read the expression {!r} at {}".format(text, position))
        position = match.end()
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
    parser = _Parser(tokens, context)
    value = parser.expression()
    if parser.index != len(tokens):
        raise ValueError("unexpected {!r} in {!r}".format(tokens[parser.index], text))
    return value


class _Parser:
    def __init__(self, tokens, context):
        self.tokens, self.context, self.index = tokens, context, 0

    def peek(self, value=None):
        if self.index >= len(self.tokens):
            return None
        token = self.tokens[self.index]
        return token if value is None or token[1] == value else None

    def take(self, value=None):
        token = self.peek(value)
        if token is None:
            raise ValueError("expected {!r} in {}".format(value, self.tokens))
        self.index += 1
        return token

    def expression(self):
        value = self.conjunction()
        while self.peek("||"):
            self.take()
            right = self.conjunction()
            value = value if _truthy(value) else right
        return value

    def conjunction(self):
        value = self.comparison()
        while self.peek("&&"):
            self.take()
            right = self.comparison()
            value = right if _truthy(value) else value
        return value

    def comparison(self):
        value = self.unary()
        if self.peek("==") or self.peek("!="):
            operator = self.take()[1]
            same = _equal(value, self.unary())
            return same if operator == "==" else not same
        return value

    def unary(self):
        if self.peek("!"):
            self.take()
            return not _truthy(self.unary())
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "number":
            return float(value)
        if value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind != "name":
            raise ValueError("unexpected " + value)
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        if self.peek("("):
            return self.call(value)
        current = self.context.get(value)
        while self.peek(".") or self.peek("["):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = self.expression()
                self.take("]")
            current = current.get(key) if isinstance(current, dict) else None
        return current

    def call(self, name):
        self.take("(")
        arguments = []
        while not self.peek(")"):
            arguments.append(self.expression())
            if self.peek(","):
                self.take()
        self.take(")")
        if name in ("always", "success"):
            return True
        if name == "failure":
            return False
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(arguments[1 + int(m.group(1))]), arguments[0])
        raise ValueError("the runner does not know the function " + name)


def _equal(left, right):
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()  # GitHub compares strings ignoring case
    if type(left) is not type(right):  # otherwise both become numbers: null and '' are 0, true is 1
        return _number(left) == _number(right)
    return left == right


def _number(value):
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
