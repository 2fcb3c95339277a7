"""The shared core: what every wing uses, and nothing that knows of selection, running or publishing.

In: the environment and releasekit.yaml. Out: configuration and destinations (config), one login per server
(host_credentials), the Python packages releasekit needs (python_packages), versions (versioning), the
error tree (errors), redaction of secrets (redact), HTTP with the retry policy (http), subprocesses (process), JSON
files written atomically (jsonio), the table of RELEASEKIT_* variables (environment), and the start-up signal a
release sends dispatch (startup).
"""
