"""A TCP relay on 127.0.0.1 in front of a test server that can pass, stall or refuse: an outage on demand.

TLS passes through untouched (the client still verifies the server behind it), so a client that goes
through the relay sees exactly what it would see of a slow or unreachable real endpoint.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["pass", "stall", "refuse"]


class Relay:
    """Forwards connections to ``target`` while ``mode`` is ``pass``.

    ``stall`` accepts and then never answers (as a black-holed endpoint); ``refuse`` closes at once.
    Switching the mode closes every stalled connection, so a client waiting on one fails then.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.mode: Mode = "pass"
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stalled: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: Mode) -> None:
        """Switch; connections held by a stall are closed."""
        with self._lock:
            self.mode = mode
            stalled, self._stalled = self._stalled, []
        for connection in stalled:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        """Stop accepting and drop stalled connections."""
        self.set_mode("refuse")
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                mode = self.mode
                if mode == "stall":
                    self._stalled.append(client)
                    continue
            if mode == "refuse":
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
