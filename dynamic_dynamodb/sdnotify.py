"""systemd's notify protocol (sd_notify): READY=1, WATCHDOG=1 and STOPPING=1 over NOTIFY_SOCKET.

A few lines of socket code, so no dependency: a datagram to the Unix socket systemd names in
the environment (a leading "@" is the abstract namespace). Without NOTIFY_SOCKET every call
does nothing, so the same code runs under supervisord, in a terminal and in tests.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

from .edge import LOGGER

log = logging.getLogger(LOGGER)


class SystemdNotifier:
    """Sends notify messages to systemd, when it asked for them."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + address[1:]) if address.startswith("@") else (address or None)
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_seconds: float | None = int(usec) / 1e6 if wanted else None
        self._ready = False
        self._stop = threading.Event()

    def send(self, message: str) -> None:
        """One datagram; a failure is logged, never raised (the daemon must not die of it)."""
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode("utf-8"))
        except OSError as e:
            log.warning("Cannot notify systemd at %s: %s", self.address.replace("\0", "@"), e.strerror or e)

    def ready(self) -> None:
        """READY=1, once: the first pass has started."""
        if not self._ready:
            self._ready = True
            self.send("READY=1")

    def start_watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping WATCHDOG=1 at half of WATCHDOG_USEC while `healthy()`: a loop that stops passing
        goes silent, and systemd restarts it."""
        if self.watchdog_seconds is None or self.address is None:
            return
        period = self.watchdog_seconds / 2

        def ping() -> None:
            while not self._stop.wait(period):
                if healthy():
                    self.send("WATCHDOG=1")

        if healthy():
            self.send("WATCHDOG=1")
        threading.Thread(target=ping, name="watchdog", daemon=True).start()

    def stopping(self) -> None:
        """STOPPING=1, and no more watchdog pings."""
        self._stop.set()
        self.send("STOPPING=1")
