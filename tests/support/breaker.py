"""A local circuit-breaker endpoint: answers a settable status, records every request."""
from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from support.server import BackgroundServer, QuickHandler


@dataclass
class BreakerRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    auth: tuple[str, str] | None  # Basic auth (user, password)

    @property
    def table_name(self) -> str | None:
        return self.headers.get("x-table-name")

    @property
    def gsi_name(self) -> str | None:
        return self.headers.get("x-gsi-name")


class BreakerServer(BackgroundServer):
    """``status`` (default 200) is what every GET answers; ``delay`` seconds before answering
    (to provoke the daemon's timeout); ``statuses`` may map a path to its own status."""

    def __init__(self, status: int = 200):
        self.status = status
        self.delay = 0.0
        self.statuses: dict[str, int] = {}
        self.body = b"OK"
        self.requests: list[BreakerRequest] = []
        self._lock = threading.Lock()
        super().__init__()

    name = "breaker"

    def handler(self) -> type:
        breaker = self

        class Handler(QuickHandler):
            def do_GET(self) -> None:
                auth = None
                header = self.headers.get("Authorization", "")
                if header.lower().startswith("basic "):
                    user, _, pw = base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")
                    auth = (user, pw)
                req = BreakerRequest(self.command, self.path,
                                     {k.lower(): v for k, v in self.headers.items()}, auth)
                with breaker._lock:
                    breaker.requests.append(req)
                    status = breaker.statuses.get(self.path.split("?")[0], breaker.status)
                    delay, body = breaker.delay, breaker.body
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_HEAD = do_POST = do_GET

        return Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/breaker"

    def url_with_auth(self, user: str, password: str, path: str = "/breaker") -> str:
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}{path}"

    def reset(self, status: int = 200) -> None:
        with self._lock:
            self.status, self.delay, self.statuses, self.requests = status, 0.0, {}, []

    def table_names(self) -> list[str | None]:
        """The x-table-name header of each request, in order."""
        with self._lock:
            return [r.table_name for r in self.requests]
