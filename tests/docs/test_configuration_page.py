"""docs/configuration.md's example of every key is a configuration releasekit takes, key for key."""

import os
import re

from helpers.servers import REPO_ROOT


def example():
    with open(os.path.join(REPO_ROOT, "docs", "configuration.md"), encoding="utf-8") as handle:
        page = handle.read()
    section = page.split("## `releasekit.yaml`\n", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_example_of_every_key_is_read_as_it_says():
    from releasekit.core.config import RUNNING, parse_config

    text = example()
    config = parse_config(text, "docs/configuration.md", RUNNING)
    assert sorted(config.channels["ci"]) == ["deploy", "deploy_registry", "files", "maven", "registry"]
    assert [mirror.host for mirror in config.mirrors["ci"]] == ["eu.registry.example.com"]
    assert config.gate is not None and config.signing_required
    assert config.history is not None and config.target_graphs is not None
    assert config.credentials  # the host's entry
    top_level = {line.split(":")[0] for line in text.splitlines() if re.match(r"[a-z_]+:", line)}
    assert top_level == {"channels", "credentials", "gate", "signing", "history", "auto_quarantine", "target_graphs"}
