"""Stand-ins for a cluster in trouble, on loopback, for the circuit breaker's tests.

`Proxy` sits in front of the real node and can freeze: it keeps accepting and
reading, and answers nothing, as a node stopped with SIGSTOP does, without
touching the node the other tests share. `StatusServer` answers every request
with one status (503, 429, a 404 miss, ...), as slowly as asked.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class Proxy:
    """A TCP proxy to `upstream` that forwards, or freezes (accepts, never answers).

    `accepted` counts the connections accepted.
    """

    def __init__(self, upstream: str | None = None) -> None:
        if upstream is not None:
            parts = urlsplit(upstream)
            self._upstream: tuple[str, int] | None = (
                parts.hostname or "127.0.0.1",
                parts.port or 9200,
            )
        else:
            self._upstream = None
        self.frozen = upstream is None
        self.accepted = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._open: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        assert self._upstream is not None, "a listener without upstream stays frozen"
        self.frozen = False

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            while not self._closed:
                sockets = [conn] if upstream is None else [conn, upstream]
                readable, _, _ = select.select(sockets, [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is conn:
                        if self.frozen:
                            continue  # read and dropped: the caller waits
                        if upstream is None:
                            assert self._upstream is not None
                            upstream = socket.create_connection(self._upstream)
                        upstream.sendall(data)
                    elif not self.frozen:
                        conn.sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        self._closed = True
        self._server.close()
        with self._lock:
            for conn in self._open:
                conn.close()


@contextmanager
def frozen_listener() -> Iterator[Proxy]:
    """A port that accepts connections and never answers: a frozen cluster."""
    listener = Proxy()
    try:
        yield listener
    finally:
        listener.close()


@contextmanager
def proxy_to(url: str) -> Iterator[Proxy]:
    """A `Proxy` to the node at `url`, forwarding until frozen."""
    proxy = Proxy(url)
    try:
        yield proxy
    finally:
        proxy.close()


class _StatusHandler(BaseHTTPRequestHandler):
    server: _StatusHTTPServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests += 1
        time.sleep(self.server.delay)
        status = self.server.status
        body = json.dumps(
            {"found": False}
            if status == 404
            else {"error": {"type": "test_error", "reason": f"status {status}"}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _StatusHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _StatusHandler)
        self.status = status
        self.delay = delay
        self.requests = 0
        self.lock = threading.Lock()


@contextmanager
def status_server(status: int, delay: float = 0.0) -> Iterator[_StatusHTTPServer]:
    """An HTTP server answering every request with `status` after `delay`
    seconds (404: a document not found); counts requests."""
    server = _StatusHTTPServer(status, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: _StatusHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"
