"""The shared core: what every wing uses, and nothing that knows of selection, running or publishing.

In: the environment and releasekit.yaml. Out: one run context per command (run_context: the configuration read once,
as strictly as the command needs, the retry policy and the credentials), the configuration (config) and its
destinations (destinations, hosts), the stores and their one registry of schemes (stores/), credentials (credentials;
one login per server: host_credentials), the Python packages releasekit needs (python_packages), versions
(versioning), the error tree (errors), redaction of secrets (redact), HTTP with the retry policy (http), programs
started (process), JSON files written atomically (jsonio), the table of RELEASEKIT_* variables
(environment), what the CI engine says of the run (ci_context), the release gate and quarantine settings
(run_policy), the start-up signal a release sends dispatch (startup), and the CPU a run costs, its own and its Bazel
servers' (usage).
"""
