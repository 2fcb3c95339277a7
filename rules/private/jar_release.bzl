"""The jar_release macro."""

load(":jar.bzl", "jar_artifact")
load(":macros.bzl", "check_attributes", "check_name", "release_pair")

def jar_release(name, jar = None, coordinates = None, pom_template = None, deps = [], sources_jar = None, classifier_jars = {}, tags = [], visibility = None, **kwargs):
    """Publishes a jar and its pom to the Maven-layout store of a channel.

    Declares `<name>` (the jar artifact; other jar_release targets list it in deps),
    `<name>.ci` (kind artifact_ci_release: a release version) and `<name>.dev` (kind
    artifact_dev_release: a timestamped SNAPSHOT).

    Args:
      name: base name.
      jar: a label producing exactly one .jar (a java_binary's _deploy.jar, a genrule, ...).
      coordinates: "group:artifact" (version from RELEASEKIT_VERSION at release time) or "group:artifact:version".
      pom_template: optional pom with {groupId}, {artifactId}, {version}, {type}, {dependencies}.
      deps: other jar_release targets, written into the pom as dependencies.
      sources_jar: optional sources jar (classifier "sources").
      classifier_jars: optional {classifier: label} of more jars.
      tags: Bazel tags of the three targets (e.g. "no-ci").
      visibility: visibility of the three targets.
      **kwargs: common attributes (testonly, target_compatible_with, ...) of the three targets.
    """
    check_name(name)
    check_attributes(name, "jar_release", ["name", "jar", "coordinates", "pom_template", "deps", "sources_jar", "classifier_jars", "tags", "visibility"], kwargs, {"coordinates": coordinates, "jar": jar})
    jar_artifact(
        name = name,
        jar = jar,
        coordinates = coordinates,
        pom_template = pom_template,
        deps = deps,
        sources_jar = sources_jar,
        classifier_jars = {label: classifier for classifier, label in classifier_jars.items()},
        tags = tags,
        visibility = visibility,
        **kwargs
    )
    release_pair(name, ":" + name, tags, visibility, **kwargs)
