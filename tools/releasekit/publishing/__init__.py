"""Publishing: one release manifest to its channel's destinations.

In: a release manifest (written by the rules at build time), the run context (the channel's destinations from
releasekit.yaml, the retry policy, credentials), the version. Out: published artifacts and one release record. The
publisher checks what a run needs before any write, then hands the manifest to its kind (kinds: container, jar,
deploy, file, and any registered under the `releasekit.kinds` entry point group). Kinds publish through the registry
client (OCI distribution; its credentials apart in registry_credentials), the core's stores (core/stores) with
the Maven layout (maven) or as versioned files with a forward-only `latest` (versioned_files); image inputs are read by
image. Deploy YAML is checked at build time (deploy_yaml): read as Kubernetes reads it (kube_yaml), custom resources
against their CRDs as the API server checks them (custom_resources, structural, kube_formats, cel_rules with
cel_values and cel_library).
Before a CI release writes, it must be built from committed files only (committed_inputs) and own its destination
(ownership, which dispatch also asks for the run's releases together); its pointers (remote tags, `latest`) move only
to a commit that descends from theirs (pointers, ancestry). The registry's own records (channel marker, owners,
pointers) are small OCI artifacts (registry_artifacts). Every release writes signed provenance (provenance: an in-toto
statement with SLSA provenance, signed in a DSSE envelope by signing) after what it describes and before its pointers:
an image's as an OCI 1.1 referrer (referrers), a store's beside the version; deploy YAML can also go to a registry as
a Flux OCI artifact (flux_artifact). verify is what CD runs before a rollout; deployed shows what CD would read.
"""
