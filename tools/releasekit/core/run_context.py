"""One run context per command: what it reads once and hands down to the wings and to its releases.

A command builds its RunContext first, before anything runs (as twine's Settings.from_argparse): releasekit.yaml read
once and checked as strictly as the command needs (config.py: a selection reads `target_graphs` alone; a run that
publishes nothing skips the dev/CI overlap check; a run that publishes checks everything), the retry policy from the
environment, and the credentials of each store kind, read once. Destinations travel as typed objects (with what was
said beside the URL: insecure, ca_bundle), never as URL strings parsed again downstream. Releases started by dispatch
get the configuration as environment.RESOLVED_CONFIG and do not check it again.
"""

import os

from releasekit.core import config as config_module
from releasekit.core.credentials import ANONYMOUS, host_entry_credentials, store_credentials
from releasekit.core.errors import UsageError
from releasekit.core.http import RetryPolicy
from releasekit.core.run_policy import AutoQuarantine, choose_gate
from releasekit.core.stores import open_store
from releasekit.core.stores.schemes import scheme_of

SELECTING, RUNNING, PUBLISHING = config_module.SELECTING, config_module.RUNNING, config_module.PUBLISHING


class RunContext:
    """config: the Config, or None when there is no releasekit.yaml and the command can do without one."""

    def __init__(self, config, policy, environ, strictness=PUBLISHING):
        self.config, self.policy, self.environ, self.strictness = config, policy, environ, strictness
        self._credentials = {}

    @classmethod
    def load(cls, strictness, config_path=None, environ=None, workspace=None, required=False):
        """The context of a command. workspace: where releasekit.yaml is looked for (default: where `bazel run` was
        called, else here); required: a missing file is an error rather than no configuration."""
        environ = os.environ if environ is None else environ
        lookup = dict(environ, BUILD_WORKSPACE_DIRECTORY=os.path.abspath(workspace)) if workspace else environ
        load = config_module.load_config if required else config_module.load_config_if_present
        return cls(load(config_path, lookup, strictness), RetryPolicy.from_environment(environ), environ, strictness)

    def destination(self, channel, kind):
        if self.config is None:
            raise UsageError("No releasekit.yaml names the {} destination of channel {}.".format(kind, channel))
        return self.config.destination(channel, kind)

    def store_credentials(self, kind):
        """RELEASEKIT_<KIND>_* of a store kind, read (and their secrets registered) once."""
        if kind not in self._credentials:
            self._credentials[kind] = store_credentials(kind, self.environ)
        return self._credentials[kind]

    def open_store(self, destination, policy=None):
        """The Store of a destination, with this run's retry policy (or another) and credentials."""
        takes = scheme_of(destination).takes_store_credentials
        credentials = self.store_credentials(destination.kind) if takes else ANONYMOUS
        if credentials is ANONYMOUS and takes:  # the kind's variables win; then its host's entry in releasekit.yaml
            credentials = host_entry_credentials(destination, self.environ)
        return open_store(destination, policy or self.policy, self.environ, credentials)

    def history(self, explicit_url=None):
        """The run history's Destination: --history wins over releasekit.yaml's `history`; None without either."""
        if explicit_url:  # with releasekit.yaml's credentials entry of its host, if any
            return config_module.parse_history(explicit_url, "--history", self._host_credentials())
        return self.config.history if self.config else None

    def target_graphs(self, explicit_url=None):
        """The target graphs' Destination: --target-graphs wins over releasekit.yaml's; None without either."""
        if explicit_url:
            return config_module.parse_target_graphs(explicit_url, "--target-graphs", self._host_credentials())
        return self.config.target_graphs if self.config else None

    def _host_credentials(self):
        return self.config.credentials if self.config else ()

    @property
    def auto_quarantine(self):
        return self.config.auto_quarantine if self.config else AutoQuarantine()

    def gate(self, flag):
        """The release gate: --gate, else releasekit.yaml's, else all (run_policy.GateChoice)."""
        return choose_gate(flag, self.config and self.config.gate, self.config and self.config.source)

    def for_releases(self):
        """The variables every release of the run inherits: the configuration, resolved once."""
        if self.config is None or self.config.checked != PUBLISHING:
            return {}
        return {config_module.RESOLVED_CONFIG_VARIABLE: self.config.to_json()}
