"""Which of a release target's outputs dispatch runs: the file named like the target, in this repository or another."""

import pytest

from releasekit.core.errors import UsageError
from releasekit.running.release_run import executable_of


def test_a_target_of_this_repository_runs_the_output_named_like_it():
    outputs = {"svc/api.ci": "/out/bin/svc/api.ci", "svc/api.ci.plan.json": "/out/bin/svc/api.ci.plan.json"}
    assert executable_of("//svc:api.ci", outputs) == "/out/bin/svc/api.ci"
    assert executable_of("//:top.ci", {"top.ci": "/out/bin/top.ci"}) == "/out/bin/top.ci"


@pytest.mark.parametrize("label", ["@tools//release:upload.ci", "@@tools~//release:upload.ci"])
def test_a_target_of_another_repository_runs_the_output_under_that_repository(label):
    outputs = {"external/tools~/release/upload.ci": "/out/bin/external/tools~/release/upload.ci",
               "external/tools~/release/upload.ci.plan.json": "/out/plan.json"}
    assert executable_of(label, outputs) == "/out/bin/external/tools~/release/upload.ci"


def test_an_output_named_otherwise_is_refused_with_the_label():
    with pytest.raises(UsageError, match="//svc:api.ci built, but its executable svc/api.ci"):
        executable_of("//svc:api.ci", {"svc/api.ci.sh": "/out/bin/svc/api.ci.sh"})
    with pytest.raises(UsageError):  # this repository's target never takes another repository's file
        executable_of("//svc:api.ci", {"external/x/svc/api.ci": "/out/bin/external/x/svc/api.ci"})
