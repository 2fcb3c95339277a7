"""releasekit: publishes the artifacts that rules_release targets describe, and selects and runs
the tests and releases a change affects."""

__version__ = "0.1.0"
