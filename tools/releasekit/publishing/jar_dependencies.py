"""A CI jar's pom names only dependency versions its Maven store holds.

A jar_release's `deps` go into its pom, unversioned ones at the version being published. When the dependency was not
published at that version (only the dependent was selected, or it is released alone to a fresh store), Maven would
resolve a pom that names nothing. A run publishes a jar's deps before it (dispatch orders them), so by the time a
dependent publishes, a dependency of the same run is in the store; one that is not refuses the release before
anything of it is written. A version is held when the artifact's maven-metadata.xml lists it: the metadata is
written last, so a listed version is whole.
"""

from releasekit.core.errors import UnpublishedDependencyError
from releasekit.publishing import maven


def missing(store, dependencies, version):
    """[(dependency, the version its pom names, what the store lists)] of the dependencies whose version (their own,
    else version) the store does not list."""
    absent = []
    for dependency in dependencies:
        wanted = dependency.version or version
        path = dependency.directory + "/maven-metadata.xml"
        listed = maven.listed_versions(store.get(path)[0], store.describe(path))
        if wanted not in listed:
            absent.append((dependency, wanted, sorted(listed)))
    return absent


def check(store, manifest, dependencies, version, dry_run):
    """Refuse a CI jar whose pom would name a version that is not published. Returns a note for a dry run, which
    cannot know whether its run publishes the dependency first, or None."""
    if manifest.channel != "ci" or not dependencies:
        return None
    absent = missing(store, dependencies, version)
    if not absent:
        return None
    labels = dict(zip(dependencies, manifest.depends_on))  # jar.bzl lists deps and their labels in one order
    said = "; ".join("{}:{}:{} (released by {}; {} lists {})".format(
        dependency.group, dependency.artifact, wanted, labels.get(dependency, "another release"),
        store.describe(dependency.directory + "/maven-metadata.xml"), ", ".join(listed) or "no version")
        for dependency, wanted, listed in absent)
    if dry_run:
        return "its pom names versions the store does not hold yet: {}; unless its run publishes them first, the " \
               "release would be refused".format(said)
    raise UnpublishedDependencyError(
        "{}: its pom would name {} that the Maven store does not hold: {}. A pom names only published versions, so "
        "nothing was published. Release the dependency at that version first (or in the same run: dispatch publishes "
        "a jar's deps before it), or name a published version in the dependency's coordinates.".format(
            manifest.release, "a dependency version" if len(absent) == 1 else "dependency versions", said))
