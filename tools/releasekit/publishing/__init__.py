"""Publishing: one release manifest to its channel's destinations.

In: a release manifest (written by the rules at build time), the channel's destinations from releasekit.yaml, the
version. Out: published artifacts and one release record. The runner checks what a run needs before any write, then
hands the manifest to the publisher of its kind (kinds: container, jar, deploy, file, and any registered under the
`releasekit.kinds` entry point group). Kinds publish through the registry client (OCI distribution; its credentials
apart in credentials), the stores (HTTP, S3, file) and the Maven layout; image inputs are read by image.
"""
