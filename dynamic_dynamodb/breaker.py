"""The circuit-breaker probe: an HTTP GET that must answer 2xx before anything is changed."""
from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from .edge import LOGGER

log = logging.getLogger(LOGGER)


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without `user:password@`, and the Basic auth header value if there was one."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return bare, f"Basic {token}"


MASK = "***"


def redact_url(url: str, malformed: bool = False) -> str:
    """The URL with its credentials replaced by ***, for logs, errors and --show-config: the
    password of `user:password@`, or a lone user name (often a token). The credentials end at
    the last @ of the host part, as urllib reads them (a password may hold an @); for a URL
    too `malformed` to trust that (a / in the password), at the last @ of the whole text."""
    start = url.find("//")
    if start < 0:
        return url
    start += 2
    end = len(url)
    if not malformed:
        end = min([i for i in (url.find(c, start) for c in "/?#") if i >= 0], default=end)
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    user, colon, _ = url[start:at].partition(":")
    return f"{url[:start]}{user + ':' if colon else ''}{MASK}{url[at:]}"


class HttpBreaker:
    """Breaker over urllib: closed only on a 2xx answer within the timeout."""

    def is_closed(self, url: str, timeout_ms: float, headers: Mapping[str, str]) -> bool:
        """Probe the URL once."""
        bare, auth = split_credentials(url)
        request = urllib.request.Request(bare, headers=dict(headers), method="GET")
        if auth:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=timeout_ms / 1000.0) as response:
                ok = 200 <= response.status < 300
                if not ok:
                    log.warning("Circuit breaker %s answered %s", redact_url(url), response.status)
                return ok
        except urllib.error.HTTPError as e:
            log.warning("Circuit breaker %s answered %s", redact_url(url), e.code)
        except (urllib.error.URLError, OSError, ValueError, OverflowError) as e:
            reason = getattr(e, "reason", e)
            log.warning("Circuit breaker %s unreachable: %s", redact_url(url), reason)
        return False
