"""The publisher's HTTP client against real servers: proxies from the environment, and redirects."""

import base64
import os
import time

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers.images import make_layout
from helpers.servers import NginxStore
from helpers.slow_proxy import SlowProxy
from releasekit.core.destinations import parse_registry, parse_store
from releasekit.core.credentials import ANONYMOUS
from releasekit.core.http import RetryPolicy
from releasekit.publishing.image import build_plan
from releasekit.publishing.image_plan import ImagePlan
from releasekit.publishing.blob_locator import BlobLocator
from releasekit.publishing.registry import RegistryClient
from releasekit.core.stores import open_store
from releasekit.core.stores.http import HttpStore

QUICK = RetryPolicy(attempts=2, total_seconds=5)


def push(registry, layout, tag):
    client = RegistryClient(parse_registry(registry.url), ANONYMOUS, QUICK, locator=BlobLocator())
    return client.push("proxied/app", ImagePlan(build_plan(layout), layout), [tag])


def test_a_proxy_named_in_the_environment_carries_the_push_unless_no_proxy_names_the_host(
        registry, tmp_path, monkeypatch):
    layout = str(tmp_path / "image")
    make_layout(layout, {"/app/run": b"#!/bin/sh\necho proxied\n"}, entrypoint=["/app/run"])
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = SlowProxy(registry.host)
    try:
        monkeypatch.setenv("HTTP_PROXY", "http://{}:{}@{}".format(TEST_USER, TEST_PASSWORD, proxy.host))
        push(registry, layout, "through-proxy")
        through_proxy = proxy.requests
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        push(registry, layout, "direct")
    finally:
        proxy.stop()
    assert through_proxy >= 4  # ping, blob checks, manifest
    credentials = base64.b64encode("{}:{}".format(TEST_USER, TEST_PASSWORD).encode()).decode()
    # Compared here, not in the assertion, so that a failure prints no credentials.
    sent_on_every_request = proxy.proxy_authorizations == {"Basic " + credentials}
    assert sent_on_every_request, "the proxy was not sent the credentials of its URL on every request"
    assert proxy.requests == through_proxy
    assert set(registry.tags("proxied/app")) == {"through-proxy", "direct"}


def logged_requests(server, part, count):
    """The request log's lines that mention part, once there are count of them: nginx writes a line only after
    it has sent the answer, so the client can be told before the log is."""
    deadline = time.monotonic() + 10
    while True:
        with open(server.request_log) as handle:
            # port, method, uri, credentials
            lines = [line.split()[:4] for line in handle.read().splitlines() if part in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture
def store_server(tmp_path):
    server = NginxStore(str(tmp_path / "store"), TEST_USER, TEST_PASSWORD)
    yield server
    server.stop()


def test_credentials_follow_a_redirect_within_the_host_and_never_to_another(store_server):
    os.makedirs(store_server.path("docs"))
    with open(store_server.path("docs/notes.txt"), "wb") as handle:
        handle.write(b"release notes\n")
    environ = {"RELEASEKIT_MAVEN_USERNAME": TEST_USER, "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD}
    store = open_store(parse_store(store_server.url, "maven"), QUICK, environ)
    assert isinstance(store, HttpStore)

    assert store.get("renamed/docs/notes.txt")[0] == b"release notes\n"
    assert store.get("elsewhere/docs/notes.txt")[0] == b"release notes\n"

    requests_seen = logged_requests(store_server, "/docs/", count=4)
    here, there = str(store_server.port), str(store_server.elsewhere_port)
    assert requests_seen == [
        [here, "GET", "/renamed/docs/notes.txt", "credentials=yes"],
        [here, "GET", "/docs/notes.txt", "credentials=yes"],
        [here, "GET", "/elsewhere/docs/notes.txt", "credentials=yes"],
        [there, "GET", "/docs/notes.txt", "credentials=no"],
    ]
