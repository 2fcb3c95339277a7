"""An HTTP proxy on loopback in front of a real server: adds delay, and injects faults at a set rate.

Faults, each chosen at random with probability `fault_rate` per request:
  503            answer 503 without forwarding
  429            answer 429 with Retry-After: 1 without forwarding
  reset          read part of the request body, then drop the connection
  slow           forward, but answer only after `slow_seconds`
  cut            forward, then send the headers and half the body, then drop the connection
Bodies stream in both directions; the upstream sees the client's Host header, so Location
headers keep pointing at the proxy.
"""

import http.client
import http.server
import random
import socket
import sys
import threading
import time

from .servers import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "te",
               "trailer",
               "upgrade"}
FAULTS = ("503", "429", "reset", "slow", "cut")


class KillGate:
    """Numbers the requests of one client across proxies and holds every request past the first `limit`.

    A client held there is certainly alive and waiting on that request, so a kill lands at a known point of
    its request sequence; released, the held requests go on upstream, as packets a dead client sent would.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.opened = threading.Event()
        self.reached = threading.Event()
        self.arm(None)

    def arm(self, limit):
        """Start counting afresh; hold requests from number `limit` (0-based) on, or none when limit is None."""
        with self.lock:
            self.seen, self.limit = [], limit
            self.reached.clear()
            if limit is None:
                self.opened.set()
            else:
                self.opened.clear()

    def admit(self, proxy_name, method, path):
        with self.lock:
            index = len(self.seen)
            self.seen.append((proxy_name, method, path))
            held = self.limit is not None and index >= self.limit
            if held:
                self.reached.set()
        if held:
            self.opened.wait()

    def release(self):
        self.opened.set()


class SlowProxy:
    def __init__(self, upstream_host, delay_seconds=0.0, fault_rate=0.0, faults=FAULTS, slow_seconds=2.0, seed=None,
                 delay_paths=None, gate=None, name="proxy", fault_only=None):
        self.upstream_host, self.delay = upstream_host, delay_seconds
        self.gate, self.name = gate, name  # a KillGate shared with other proxies of the same client, or None
        self.delay_paths = delay_paths  # delay only requests whose path holds one of these; None: every request
        self.fault_rate, self.faults, self.slow_seconds = fault_rate, tuple(faults), slow_seconds
        self.fault_only = fault_only  # fault_only(method, path): whether a request may get a fault; None: any may
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.port = free_port()
        self.host = "127.0.0.1:{}".format(self.port)
        self.url = "http://" + self.host
        self.requests = 0
        self.bytes_received = 0  # request bodies read from clients: what they sent
        self.proxy_authorizations = set()  # used as a forward proxy: the Proxy-Authorization headers it was sent
        self.active = 0
        self.injected = {fault: 0 for fault in FAULTS}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _fault(self):
                with proxy.lock:
                    proxy.requests += 1
                    if proxy.fault_only is not None and not proxy.fault_only(self.command, self.path):
                        return None
                    if proxy.fault_rate and proxy.random.random() < proxy.fault_rate:
                        fault = proxy.random.choice(proxy.faults)
                        proxy.injected[fault] += 1
                        return fault
                return None

            def _refuse(self, status, extra=()):
                self._drain()
                self.send_response(status)
                for key, value in extra:
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _drain(self):
                remaining = int(self.headers.get("Content-Length") or 0)
                while remaining > 0:
                    chunk = self.rfile.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    with proxy.lock:
                        proxy.bytes_received += len(chunk)

            def _forward(self):
                with proxy.lock:
                    proxy.active += 1
                try:
                    if proxy.gate is not None:
                        proxy.gate.admit(proxy.name, self.command, self.path)
                    self._forward_one()
                finally:
                    with proxy.lock:
                        proxy.active -= 1

            def _forward_one(self):
                fault = self._fault()
                if proxy.delay_paths is None or any(part in self.path for part in proxy.delay_paths):
                    time.sleep(proxy.delay)
                if fault == "503":
                    return self._refuse(503)
                if fault == "429":
                    return self._refuse(429, [("Retry-After", "1")])
                length = int(self.headers.get("Content-Length") or 0)
                with proxy.lock:
                    proxy.proxy_authorizations.add(self.headers.get("Proxy-Authorization"))
                if fault == "reset":
                    partial = self.rfile.read(min(length, 1024) if length else 0)
                    with proxy.lock:
                        proxy.bytes_received += len(partial)
                    self._drop()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy.upstream_host, timeout=120)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in headers.items():
                    upstream.putheader(key, value)
                upstream.putheader("Via", "1.1 slow-proxy")  # as a real proxy says it forwarded a request
                upstream.endheaders()
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(1 << 20, remaining))
                    if not chunk:
                        # The client went away mid-body (killed): drop the upstream request too, as a proxy does.
                        upstream.close()
                        self.close_connection = True
                        return
                    upstream.send(chunk)
                    remaining -= len(chunk)
                    with proxy.lock:
                        proxy.bytes_received += len(chunk)
                response = upstream.getresponse()
                body = response.read()
                upstream.close()
                if fault == "slow":
                    time.sleep(proxy.slow_seconds)
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "cut" and body:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self._drop()
                    return
                if fault == "cut":
                    self._drop()
                    return
                self.wfile.write(body)

            def _drop(self):
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_MKCOL = _forward

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client is expected here
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_idle(self, timeout=30.0):
        """Wait until no request is in flight: what a killed client started has reached the upstream."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.active

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
