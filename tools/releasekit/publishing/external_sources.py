"""Files of external repositories that are the checkout's own files: a `local_repository` (or `new_local_repository`,
`local_path_override`) whose directory lies inside the git checkout.

The release rules list external source files by their execution path (`external/<repository>/<path>`, or
`../<repository>/<path>` with the sibling repository layout). Bazel keeps each repository under
`<output base>/external/<repository>`, a symlink to its directory for a local repository; the output base is the part
before `/execroot/` of where the release's list of sources really lies (the runfiles link into the execroot). One
realpath per repository tells whether its directory lies in the checkout; the files of those that do are checked as
the main repository's are, by their path in the checkout.
"""

import logging
import os

log = logging.getLogger(__name__)


def split(paths):
    """(main repository paths, {repository: [paths inside it]})."""
    main, external = [], {}
    for path in paths:
        parts = path.split("/", 2)
        if len(parts) == 3 and parts[0] in ("external", "..") and parts[1]:
            external.setdefault(parts[1], []).append(parts[2])
        else:
            main.append(path)
    return main, external


def in_checkout(external, listing, workspace, top):
    """The workspace-relative paths of the files of external repositories whose directory lies inside the checkout
    (top: the root of its git repository). listing: the file listing the release's sources, as the runfiles have it."""
    real = os.path.realpath(listing)
    if "/execroot/" not in real:
        log.warning("cannot tell where Bazel keeps external repositories (%s is not in an execroot): files of local "
                    "repositories inside the checkout are not checked", listing)
        return []
    repositories = os.path.join(real.split("/execroot/", 1)[0], "external")
    top, workspace = os.path.realpath(top), os.path.realpath(workspace)
    found = []
    for repository, paths in sorted(external.items()):
        directory = os.path.realpath(os.path.join(repositories, repository))
        inside = os.path.relpath(directory, top)
        if inside == os.pardir or inside.startswith(os.pardir + os.sep):
            continue  # downloaded, or a local repository outside the checkout: its own checksums pin it
        relative = os.path.relpath(directory, workspace)
        prefix = "" if relative == os.curdir else relative + "/"
        found += [prefix + path for path in paths]
    return found
