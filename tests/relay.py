"""A TCP relay on 127.0.0.1 to an upstream server (real sockets, a thread per direction).

Tests count the connections a client opens through it; bench/bench_connect.py delays each
piece of the upstream's replies to give every HTTP request a round trip.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpRelay:
    """Listens on 127.0.0.1 (`port`) and relays each accepted connection to `upstream`;
    counts the connections; passes each piece of a reply on `reply_delay_s` after it arrived
    (requests go straight through)."""

    def __init__(self, upstream: tuple[str, int], reply_delay_s: float = 0.0) -> None:
        self.connections = 0
        self._upstream = upstream
        self._delay = reply_delay_s
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self._upstream)
            self._sockets += [client, server]
            for source, sink, delay in ((client, server, 0.0), (server, client, self._delay)):
                threading.Thread(target=self._pump, args=(source, sink, delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if delay:
                    time.sleep(delay)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end on

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()
