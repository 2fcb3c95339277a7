"""A TCP proxy on loopback that gives a server a link of fixed bandwidth: what a registry in another region is behind.

Every connection to the proxy is relayed to the upstream server; the bytes of all its connections share one budget
per direction of `bytes_per_second` (a link, not a per-connection limit), paced in slices of SLICE bytes; a burst
after an idle spell carries at most BURST_SECONDS of the link's bytes. The relay itself is plain socket copying.
"""

import socket
import threading
import time

SLICE = 64 << 10
BURST_SECONDS = 0.02


class _Pace:
    """One direction of a link: a byte may leave only when the link has carried the bytes before it."""

    def __init__(self, bytes_per_second):
        self.rate = float(bytes_per_second)
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def wait(self, count):
        with self.lock:
            now = time.monotonic()
            # An idle link banks no more than BURST_SECONDS of sending: the pacing's own oversleeping is made up.
            self.free_at = max(self.free_at, now - BURST_SECONDS) + count / self.rate
            delay = self.free_at - now
        if delay > 0:
            time.sleep(delay)


class _Closing:
    """A relayed connection's two sockets, closed once both directions are done."""

    def __init__(self, *sockets):
        self.sockets, self.left, self.lock = sockets, 2, threading.Lock()

    def one_done(self):
        with self.lock:
            self.left -= 1
            last = self.left == 0
        if last:
            for sock in self.sockets:
                sock.close()


class LinkProxy:
    def __init__(self, upstream_host, bytes_per_second):
        host, port = upstream_host.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.up, self.down = _Pace(bytes_per_second), _Pace(bytes_per_second)  # to the server, and back
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.host = "127.0.0.1:{}".format(self.listener.getsockname()[1])
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            closing = _Closing(client, server)
            threading.Thread(target=self._relay, args=(client, server, self.up, closing), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, self.down, closing), daemon=True).start()

    @staticmethod
    def _relay(source, destination, pace, closing):
        try:
            LinkProxy._copy(source, destination, pace)
        finally:
            closing.one_done()

    @staticmethod
    def _copy(source, destination, pace):
        try:
            while True:
                data = source.recv(SLICE)
                if not data:
                    break
                pace.wait(len(data))
                destination.sendall(data)
            destination.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, destination):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.listener.close()
