"""A TCP forwarder on loopback that can be cut off: a network partition for one daemon.

While ``blocked`` it accepts connections and reads requests but forwards nothing and answers
nothing, as a network that drops packets does; the daemon's calls time out.
"""
from __future__ import annotations

import socket
import threading
import time


class PartitionProxy:
    """Forwards 127.0.0.1:port to an upstream host:port; ``blocked = True`` drops everything."""

    def __init__(self, upstream_url: str) -> None:
        host_port = upstream_url.split("://", 1)[-1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.blocked = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> PartitionProxy:
        threading.Thread(target=self._accept, name="partition-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while self.blocked and not self._stopped.is_set():
            time.sleep(0.05)  # a connection made during the partition hangs until it ends
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.blocked:
                    # dropped: this connection is lost (the caller times out and opens another)
                    while self.blocked and not self._stopped.is_set():
                        time.sleep(0.05)
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
