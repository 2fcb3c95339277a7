"""What a CI run (dispatch, ci, pr) takes from the history and gives back: the quarantine set, then its record."""

import dataclasses
import glob
import os

from releasekit.core.config import AutoQuarantine, find_config_path, load_config
from releasekit.core.errors import ReleasekitError
from releasekit.insight import bazel_profile, history, quarantine, run_record



@dataclasses.dataclass
class RunHistory:
    """Where a run's record goes (None: nowhere) and how `--quarantine auto` decides."""

    url: str = None
    auto_quarantine: AutoQuarantine = AutoQuarantine()
    source: str = "--history"


def history_settings(explicit_url, environ, workspace, config_path=None):
    """--history wins over releasekit.yaml's `history`; the thresholds come from releasekit.yaml if there is one."""
    environ = dict(environ, BUILD_WORKSPACE_DIRECTORY=os.path.abspath(workspace))
    path, _ = find_config_path(config_path, environ)
    config = load_config(config_path, environ) if config_path or os.path.exists(path) else None
    if explicit_url:
        return RunHistory(explicit_url, config.auto_quarantine if config else AutoQuarantine())
    if config and config.history:
        return RunHistory(config.history.text, config.auto_quarantine, config.source)
    return RunHistory(None, config.auto_quarantine if config else AutoQuarantine())


def quarantine_for_run(sources, settings, environ):
    """(quarantined labels, decisions, lines to show). An unreachable history quarantines nothing automatically
    and says so; it never fails the run."""
    sources = list(sources or [])
    records, lines = [], []
    if quarantine.AUTO in sources:
        if not settings.url:
            raise ReleasekitError("--quarantine auto reads the run history, and none is set: pass --history URL or set "
                                  "`history:` in releasekit.yaml.")
        try:
            store = history.History(settings.url, history.RUN_UPLOAD_POLICY, environ, settings.source)
            records = store.recent(settings.auto_quarantine.window)
        except ReleasekitError as error:
            lines.append("quarantine auto: the history could not be read ({}); no test is quarantined by it".format(error))
    labels, decisions = quarantine.resolve(sources, records, settings.auto_quarantine)
    lines += ["quarantine: " + quarantine.describe(d) for d in decisions]
    return labels, decisions, lines


def record_run(settings, command, outcomes, report_dir, environ, facts):
    """Append the run's record to the history; the line to show. facts: start, end, base, shard, exit_code..."""
    try:
        context = run_record.run_context(environ["BUILD_WORKSPACE_DIRECTORY"], environ)
        context.update(facts)
        record = run_record.new_record(command, outcomes, context)
        profiles = sorted(glob.glob(os.path.join(report_dir, "bazel-*.profile.json")), reverse=True)  # tests first
        if profiles:
            record["profile"] = bazel_profile.merge_profiles(bazel_profile.read_profile(p) for p in profiles)
    except ReleasekitError as error:
        return "history: not written: {}".format(error)
    return history.record_run(settings.url, record, report_dir, environ)
