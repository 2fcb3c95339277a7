"""How a run decides what it may publish and what may not fail it: the release gate and `--quarantine auto`'s
thresholds, from releasekit.yaml and the command line.

    gate: all                     # the default: a release runs only when every test of the run passed
    gate: deps                    # a release runs when no failing test shares its transitive dependencies
    auto_quarantine: {flakes: 2, window: 30, clean_runs: 5, broken_after: 2}   # the defaults

This module owns these two entries of releasekit.yaml (config.py reads the file and hands them here) and the
gate's precedence: `--gate` wins over the file, the file over the default, and the run says which one chose.
"""

import dataclasses

from releasekit.core.errors import ConfigError

GATE_ALL = "all"
GATE_DEPS = "deps"
GATE_MODES = {
    GATE_ALL: "all or nothing: a release runs only when every test of the run passed",
    GATE_DEPS: "by dependencies: a release runs when no failing test shares its transitive dependencies, from "
               "Bazel's target graph",
}


@dataclasses.dataclass(frozen=True)
class AutoQuarantine:
    """`--quarantine auto`: a test with at least `flakes` flakes among its own last `window` CI runs is quarantined,
    until it has passed `clean_runs` runs in a row since its last flake. A quarantined test that failed every attempt
    at `broken_after` consecutive commits is broken, not flaky: out of quarantine, whatever put it there."""

    flakes: int = 2
    window: int = 30
    clean_runs: int = 5
    broken_after: int = 2


@dataclasses.dataclass(frozen=True)
class GateChoice:
    """The gate a run uses, and what chose it: --gate, the configuration file, or the default."""

    mode: str = GATE_ALL
    chosen_by: str = "default"

    def describe(self):
        return "{} ({}; chosen by {})".format(self.mode, GATE_MODES[self.mode], self.chosen_by)


def parse_gate(value, where):
    """A gate mode, checked: where names the option or file entry in the error."""
    if value not in GATE_MODES:
        raise ConfigError("{} '{}' is not a gate. Use {}.".format(where, value, "; or ".join(
            "{} ({})".format(mode, meaning) for mode, meaning in GATE_MODES.items())))
    return value


def choose_gate(flag, config_gate, config_source):
    """--gate, else releasekit.yaml's gate (already checked), else all or nothing."""
    if flag is not None:
        return GateChoice(parse_gate(flag, "--gate"), "--gate")
    if config_gate is not None:
        return GateChoice(config_gate, "{}: gate".format(config_source))
    return GateChoice()


def parse_auto_quarantine(value, source):
    """releasekit.yaml's auto_quarantine entry: each key a positive whole number; the error names the key."""
    if value is None:
        return AutoQuarantine()
    names = [f.name for f in dataclasses.fields(AutoQuarantine)]
    example = "`auto_quarantine: {flakes: 2, window: 30, clean_runs: 5, broken_after: 2}`"
    if not isinstance(value, dict):
        raise ConfigError("{}: auto_quarantine must map {} to positive whole numbers (e.g. {}).".format(
            source, ", ".join(names), example))
    for key, number in value.items():
        if key not in names:
            raise ConfigError("{}: auto_quarantine.{} is not a setting; auto_quarantine must map {} to positive whole "
                              "numbers (e.g. {}).".format(source, key, ", ".join(names), example))
        if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
            raise ConfigError("{}: auto_quarantine.{} is {!r}; auto_quarantine must map {} to positive whole numbers "
                              "(e.g. {}).".format(source, key, number, ", ".join(names), example))
    return AutoQuarantine(**value)
