"""What a release says about a pointer it leaves: the same words whichever checkout of the run it comes from (real git,
a directory store)."""

import json
import subprocess

from helpers import releases
from helpers.workspace import Workspace, git


def test_a_full_clone_lacking_the_recorded_commit_fetches_it_and_says_it_is_later(tmp_path, isolated_home):
    """Before: a full clone made before the newer commit (or one another release of the run had just made whole)
    said `<newer> is not in the history of <older>`, while the others said `a later commit that descends from`."""
    work = Workspace(str(tmp_path / "work"))
    work.write("app/bundle.txt", "older\n")
    work.init_git()
    older = git(work.path, "rev-parse", "HEAD").strip()
    origin = str(tmp_path / "origin.git")
    subprocess.run(["git", "clone", "-q", "--bare", work.path, origin], check=True)
    stale = str(tmp_path / "stale")
    subprocess.run(["git", "clone", "-q", origin, stale], check=True)  # a whole history, of before the newer commit
    work.write("app/bundle.txt", "newer\n")
    newer = work.commit("newer")
    git(work.path, "push", "-q", origin, "HEAD:refs/heads/main")

    config = str(tmp_path / "releasekit.yaml")
    (tmp_path / "releasekit.yaml").write_text(
        "channels:\n  ci: {{files: 'file://{0}/files'}}\n  dev: {{files: 'file://{0}/dev'}}\n".format(tmp_path))
    records = {}
    for name, commit, workspace in (("newer", newer, work.path), ("older", older, stale)):
        source = tmp_path / (name + ".txt")
        source.write_text(name + "\n")
        manifest, runfiles = releases.file_release(str(tmp_path / name), str(source))
        result = releases.publish(manifest, runfiles, {
            "RELEASEKIT_CONFIG": config, "CI": "true", "RELEASEKIT_COMMIT": commit,
            "BUILD_WORKSPACE_DIRECTORY": workspace, "RELEASEKIT_REPORT": str(tmp_path / (name + ".json"))})
        assert result.returncode == 0, result.stderr
        records[name] = json.load(open(tmp_path / (name + ".json")))
    assert records["older"]["pointers"] == [{
        "pointer": "latest", "action": "left", "commit": older, "recorded_commit": newer,
        "note": "it points at {}, a later commit that descends from {}".format(newer[:12], older[:12])}]
    assert (tmp_path / "files" / "app" / "bundle" / "latest").read_text() == newer + "\n"
