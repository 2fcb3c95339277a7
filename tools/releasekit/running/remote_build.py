"""Lazy push, the run's side: whether the build has a remote cache its releases can stream image blobs from.

Bazel says which options a build takes, from the command line and every rc file and config, in the canonical command
line of its build events. Before it builds releases, dispatch asks it (`--nobuild`, no targets: no loading, no
analysis) and, when the build has an HTTP or gRPC `--remote_cache` that releasekit can read with what the build sends
it (`--remote_header`, `--remote_cache_header`, credentials in an HTTP URL, `--tls_certificate`,
`--remote_instance_name`):
- builds under `--remote_download_minimal` (unless the options choose a download mode themselves), so that the image
  layers stay in the cache, with `--build_runfile_links`, so that release executables keep their runfiles trees (whose
  links to the layers point nowhere; each release target's local copies hold the small files it reads);
- hands each release the cache (remote_cache.RemoteCache, secrets in variables that Bazel never sees).
Bazel 4.2.3's `--remote_download_toplevel` brings a top-level target's runfiles, the layers among them: a build that
chose it downloads them, and its releases read them from disk.

A unix socket cache, Google credentials, a credential helper, a TLS client certificate or a digest function other than
SHA-256 leave the build as it is, and the note says why: releases then read the image from disk.

The question is asked with the command and configuration of the invocation that follows it (`test` when the tests'
invocation builds the releases, its test options, and the flags the previous decision on this agent added): any option
of the configuration that differs between two commands makes Bazel discard its analysis cache, which on a persistent
agent would have the whole selection analysed again in every run. The flags added hide the build's own choice of a
download mode from the canonical command line: the choice is the one remembered as long as every rc line and option
that could make it (a download mode, a --config) reads as it did then; otherwise Bazel is asked again without them.
Everything else decide() reads comes from the answer of this run.
"""

import hashlib
import json
import logging
import os
import subprocess
import threading

from releasekit.core import environment
from releasekit.core.jsonio import write_atomic
from releasekit.core.redact import without_secrets
from releasekit.publishing.remote_cache import RemoteCache

log = logging.getLogger(__name__)
LAZY_FLAGS = ("--remote_download_minimal", "--build_runfile_links")
_READABLE_SCHEMES = ("http://", "https://", "grpc://", "grpcs://")
_UNREADABLE_AUTH = ("google_credentials", "google_default_credentials", "credential_helper", "tls_client_certificate")


class RemoteBuild:
    """What a build's options say of its remote cache: the cache releases may stream from, the flags to add."""

    def __init__(self, cache=None, flags=(), note=None, decided=True):
        self.cache, self.flags, self.note, self.decided = cache, list(flags), note, decided


def canonical_options(events):
    """[(name, value)] of the options an invocation took, as its build events' canonical command line lists them."""
    for event in events:
        line = event.get("structuredCommandLine", {})
        if line.get("commandLineLabel") != "canonical":
            continue
        found = []
        for section in line.get("sections", []):
            if section.get("sectionLabel") != "command options":
                continue
            for option in section.get("optionList", {}).get("option", []):
                if option.get("optionName") and option.get("optionName") != "default_override":
                    found.append((option["optionName"], option.get("optionValue", "")))
        return found
    return []


def decide(options, download_mode_masked=False):
    """The RemoteBuild for a build that takes these options. download_mode_masked: the options include LAZY_FLAGS,
    added by releasekit to a build that chose no download mode of its own."""
    values = {}
    for name, value in options:
        values.setdefault(name, []).append(value)
    url = (values.get("remote_cache") or [""])[-1]
    if not url:
        return RemoteBuild()
    instance = (values.get("remote_instance_name") or [""])[-1]
    shown = RemoteCache(url, instance=instance).display  # never its credentials
    if url.startswith("unix:") or ("://" in url and not url.startswith(_READABLE_SCHEMES)):
        return RemoteBuild(note="the remote cache {} is neither an HTTP nor a TCP gRPC cache: releases read their "
                                "images from disk (releasekit streams blobs from http(s):// and grpc(s):// caches)"
                           .format(shown))
    auth = [name for name in _UNREADABLE_AUTH if values.get(name) and values[name][-1] not in ("", "false", "0")]
    if auth:
        return RemoteBuild(note="the remote cache {} takes --{}, which releasekit cannot send: releases read their "
                                "images from disk".format(shown, auth[0]))
    digest = (values.get("digest_function") or ["sha256"])[-1].lower()
    if digest not in ("sha256", ""):
        return RemoteBuild(note="the build's digest function is {}, and images name their blobs by SHA-256: releases "
                                "read their images from disk".format(digest))
    headers = tuple(tuple(h.split("=", 1)) for name in ("remote_header", "remote_cache_header")
                    for h in values.get(name, []) if "=" in h)
    cache = RemoteCache(url, headers, (values.get("tls_certificate") or [None])[-1], instance)
    chosen = values.get("remote_download_outputs") and not download_mode_masked
    flags = ["--build_runfile_links"] if chosen else list(LAZY_FLAGS)
    note = "lazy push: image blobs the registries lack stream from the remote cache {}{}".format(
        cache.display, "" if chosen else " (the releases build under --remote_download_minimal)")
    return RemoteBuild(cache, flags, note)


def read_events(path):
    events = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    events.append(json.loads(line))
    except (OSError, ValueError) as error:
        log.info("build events of %s not read: %s", path, error)
    return events


NOT_YET = RemoteBuild(decided=False)  # a run that has not asked Bazel yet
_BUILD_HERE = threading.Lock()  # one Bazel command at a time: the server takes one anyway


def prepare(dispatcher, releases, current, command="build", extra=()):
    """Ask Bazel, before the run builds releases, which remote cache the build has; a run that publishes nothing (pr)
    asks nothing. command, extra: the Bazel command that builds the releases and the options it adds to the run's
    (the question takes the same configuration). Returns the RemoteBuild the run goes on with."""
    if current.decided or not releases or dispatcher.options.build_only:
        return current
    memory = LastDecision(dispatcher.workspace, [*dispatcher.bazel.command, command])
    added = memory.flags()
    options, said = _ask(dispatcher, command, [*extra, *added], added)
    if added and (said is None or said != memory.said()):  # a download mode may be chosen now: ask, nothing masked
        added = []
        options, said = _ask(dispatcher, command, list(extra), added)
    remote = decide(options, download_mode_masked=added == list(LAZY_FLAGS))
    memory.remember(remote.flags, said)
    if remote.note:
        dispatcher.progress.note(remote.note)
    dispatcher.pinned.update(release_environment(remote))  # every release of the run is handed the cache
    return remote


def _ask(dispatcher, command, flags, added):
    """(canonical options, download_mode_said()) of `bazel <command> --nobuild <flags> <the run's flags>`, in the
    environment the run's own invocations have. added: the flags among them that releasekit added."""
    probe = os.path.join(dispatcher.report_dir, "remote-cache.bep.json")
    dispatcher.bazel.run([command, "--nobuild", "--build_event_json_file=" + probe, *flags,
                          *dispatcher.options.bazel_flags], env=dispatcher.bazel_environ())
    events = read_events(probe)
    if os.path.exists(probe):
        os.unlink(probe)  # it holds the build's --remote_header values
    return canonical_options(events), download_mode_said(events, added)


_DOWNLOAD_MODE = ("remote_download", "experimental_remote_download", "config")  # and a --config may set one


def download_mode_said(events, added=()):
    """A digest of all that may choose a download mode, as given: every rc file line (as Bazel read it) and every
    option that sets one or a --config, less the flags releasekit added; None when the build events list no rc
    source (then what the rc files say is not known)."""
    said, listed_rc = [], False
    for event in events:
        line = event.get("structuredCommandLine", {})
        if line.get("commandLineLabel") != "original":
            continue
        for section in line.get("sections", []):
            for option in section.get("optionList", {}).get("option", []):
                name, form = option.get("optionName") or "", option.get("combinedForm", "")
                listed_rc = listed_rc or name == "rc_source"
                if name == "default_override":  # "<rc>:<command>[:<config>]=--<option>[=<value>]"
                    given = (option.get("optionValue") or "").partition("=")[2]
                    if given.lstrip("-").startswith(_DOWNLOAD_MODE):
                        said.append(option.get("optionValue"))
                elif name.startswith(_DOWNLOAD_MODE):
                    said.append(form)
    for flag in added:  # the last of each is releasekit's
        if flag in said:
            del said[len(said) - 1 - said[::-1].index(flag)]
    return _digest(said) if listed_rc else None


class LastDecision:
    """The flags the last run on this agent added for a workspace's invocation (the same Bazel and command), and a
    digest of what chose its download mode then, in the agent's cache directory (the newest few workspaces)."""

    KEPT = 16

    def __init__(self, workspace, invocation, path=None):
        self.path = path or os.path.join(environment.cache_directory(), "remote-build.json")
        self.workspace = os.path.realpath(workspace)
        self.key = _digest(invocation)
        entry = self._read().get(self.workspace)
        self.entry = entry if isinstance(entry, dict) and entry.get("key") == self.key else {}

    def _read(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                known = json.load(handle)
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def flags(self):
        flags = self.entry.get("flags")
        return list(flags) if flags in (list(LAZY_FLAGS), ["--build_runfile_links"]) else []

    def said(self):
        """download_mode_said() when the flags were decided."""
        return self.entry.get("said")

    def remember(self, flags, said):
        """flags: those decided; said: download_mode_said() of the question that decided them. The file is read
        again first: another run on the agent may have written it meanwhile."""
        known = self._read()
        known.pop(self.workspace, None)
        known = dict(list(known.items())[-(self.KEPT - 1):])
        known[self.workspace] = {"key": self.key, "flags": list(flags), "said": said}
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_atomic(self.path, json.dumps(known, indent=1))
        except OSError as error:
            log.info("the remote cache decision is not remembered: %s", error)


def _digest(values):
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def release_environment(remote):
    """What a release of a lazy run is handed: the cache, in variables Bazel never sees."""
    return remote.cache.to_environment() if remote.cache else {}


def outcome(dispatcher, run, code):
    """The Outcome of a release that exited with code: one the remote cache failed is built here and run again."""
    result = run.outcome_from(after_release(dispatcher, run, code))
    annotate(result, run)
    return result


def after_release(dispatcher, run, code):
    """A release that failed because the remote cache lost blobs it needed: build it here (Bazel rebuilds what the
    cache lost) and run it again, once. Returns the exit code of the last run."""
    if code == 0 or dispatcher.remote.cache is None:
        return code
    try:
        with open(run.record_path, encoding="utf-8") as handle:
            misses = json.load(handle).get("cache_misses") or []
    except (OSError, ValueError):
        return code
    if not misses:
        return code
    run.log_file.write("releasekit: {} blob(s) were not in the remote cache; building {} here with "
                       "--remote_download_outputs=all, then running it again\n".format(len(misses), run.label))
    run.log_file.flush()
    bep = os.path.join(dispatcher.report_dir, "build-here.bep.json")
    with _BUILD_HERE:
        process = dispatcher.bazel.run(["build", "--keep_going", "--build_event_json_file=" + bep,
                                        *dispatcher.options.bazel_flags, "--build_runfile_links",
                                        "--remote_download_outputs=all", "--", run.label],
                                       env=without_secrets(dispatcher.workspace_environ()))
    run.log_file.write(process.stdout + process.stderr)
    run.log_file.flush()
    if process.returncode != 0:
        return code
    environ = dict(dispatcher._release_environ(), **{environment.REPORT.name: run.record_path})
    if os.path.exists(run.record_path):
        os.unlink(run.record_path)
    run.built_here = len(misses)
    rerun = subprocess.Popen([run.executable], env=environ, stdout=run.log_file, stderr=subprocess.STDOUT,
                             cwd=dispatcher.workspace)
    return rerun.wait()


def annotate(outcome, run):
    """The run's report says when a release was built here because the cache had lost its blobs."""
    if getattr(run, "built_here", None):
        said = "{} blob(s) were no longer in the remote cache: built here and run again".format(run.built_here)
        outcome.reason = "; ".join(r for r in (outcome.reason, said) if r)
