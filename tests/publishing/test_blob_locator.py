"""The blob locations cache between releases: bounded, so that an agent that lives for months keeps a small file
(every release reads and writes it whole), and the most recently pushed blobs are the ones it keeps."""

import json

from releasekit.publishing.blob_locator import KEPT_PER_REGISTRY, BlobLocator


def digest(number):
    return "sha256:{:064x}".format(number)


def test_the_cache_keeps_the_most_recent_blobs_of_each_registry(tmp_path):
    path = str(tmp_path / "blob-locations.json")
    for start in range(0, KEPT_PER_REGISTRY * 3, 500):  # one run after another, each pushing 500 new blobs
        locator = BlobLocator(path)
        for number in range(start, start + 500):
            locator.remember("registry.example.com", digest(number), "team/app{}".format(number % 7))
        locator.remember("other.example.com", digest(start), "team/app")
        locator.save()
    with open(path) as handle:
        saved = json.load(handle)
    kept = saved["registry.example.com"]
    assert len(kept) == KEPT_PER_REGISTRY
    assert digest(KEPT_PER_REGISTRY * 3 - 1) in kept and digest(KEPT_PER_REGISTRY * 2 - 1) not in kept
    assert len(saved["other.example.com"]) == KEPT_PER_REGISTRY * 3 // 500

    # A blob pushed again is recent again: it outlives blobs pushed after it was first pushed.
    locator = BlobLocator(path)
    oldest = next(iter(locator.known["registry.example.com"]))
    locator.remember("registry.example.com", oldest, "team/again")
    for number in range(10 ** 6, 10 ** 6 + 10):
        locator.remember("registry.example.com", digest(number), "team/new")
    locator.save()
    reloaded = BlobLocator(path)
    assert "team/again" in reloaded.candidates("registry.example.com", oldest, "team/elsewhere")
    assert len(reloaded.known["registry.example.com"]) == KEPT_PER_REGISTRY
