"""Changes `git status` does not show: files flagged assume-unchanged or skip-worktree.

`git update-index --assume-unchanged` (or `--skip-worktree`) tells git not to look at a file, so `git status` is
empty however it was edited, yet Bazel reads the edit. A clean tree and a CI release's inputs must therefore
compare such files with the commit's blob themselves: `git ls-files -v` shows the flags (a lowercase letter:
assume-unchanged; `S`: skip-worktree), and `git hash-object` hashes the file as `git add` would store it. Only
flagged files are hashed, so a tree without flags costs one `git ls-files`.
"""

import os

from releasekit.core import process


def _git(workspace, args, missing, failed, binary=False, input=None):
    result = process.run(["git", "-C", workspace, *args], missing, binary=binary, input=input)
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace") if binary else result.stderr
        raise failed("git {} failed in {}: {}".format(args[0] if args[0] != "--literal-pathspecs" else args[1],
                                                       workspace, (stderr.strip().splitlines() or ["?"])[-1]))
    return result.stdout


def flagged(workspace, specs, missing, failed):
    """The paths (relative to workspace) below specs that git is told not to look at."""
    listed = _git(workspace, ["--literal-pathspecs", "ls-files", "-v", "-z", "--", *specs], missing, failed)
    # -v: a lowercase letter is assume-unchanged, S skip-worktree
    return [entry[2:] for entry in listed.split("\0") if len(entry) > 2 and (entry[0] == "S" or entry[0].islower())]


def blob_ids(workspace, commit, paths, missing, failed):
    """{path: blob id} of the paths commit holds as files or symlinks."""
    if not paths:
        return {}
    listed = _git(workspace, ["--literal-pathspecs", "ls-tree", "-z", commit, "--", *paths], missing, failed)
    blobs = {}
    for entry in listed.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            blobs[path] = parts[2]
    return blobs


def differing(workspace, commit, paths, missing, failed):
    """The paths whose content in the working tree is not the commit's blob (a missing file differs too)."""
    if not paths:
        return []
    blobs = blob_ids(workspace, commit, paths, missing, failed)
    changed = [path for path in paths if path not in blobs or not os.path.lexists(os.path.join(workspace, path))]
    files = [path for path in paths if path in blobs and path not in changed]
    links = [path for path in files if os.path.islink(os.path.join(workspace, path))]
    regular = [path for path in files if path not in links]
    for path in links:  # a symlink's blob is its target's name
        target = os.readlink(os.path.join(workspace, path)).encode("utf-8", "surrogateescape")
        hashed = _git(workspace, ["hash-object", "--stdin", "--no-filters"], missing, failed, binary=True,
                      input=target).decode().strip()
        if hashed != blobs[path]:
            changed.append(path)
    if regular:
        hashed = _git(workspace, ["hash-object", "--stdin-paths"], missing, failed,
                      input="".join(path + "\n" for path in regular)).split()
        changed += [path for path, digest in zip(regular, hashed) if digest != blobs[path]]
    return sorted(changed)


def in_tree(workspace, commit, missing, failed):
    """The flagged paths of the whole repository whose content is not what commit holds (relative to its top)."""
    top = _git(workspace, ["rev-parse", "--show-toplevel"], missing, failed).strip()
    paths = flagged(top, [], missing, failed)
    return differing(top, commit, paths, missing, failed) if paths else []
