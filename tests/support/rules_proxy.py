"""An HTTP proxy between an AWS client and moto_server that adds DynamoDB's real rules.

moto accepts every UpdateTable (see /work/shared/TESTING.md, 2a).  This proxy sits in
front of it and enforces what DynamoDB does:

* After an accepted UpdateTable the table (table-level change) or the updated GSIs
  (index-level change) are UPDATING for ``updating_seconds`` (0 = off).  While anything
  of a table is UPDATING, a further UpdateTable gets ``ResourceInUseException``.
  As measured on AWS, a GSI-only throughput update leaves ``TableStatus`` ACTIVE and
  sets only that index's ``IndexStatus`` to UPDATING.
* An UpdateTable whose table or GSI throughput equals the current value gets the
  ``ValidationException`` "... will not change. The requested value equals the current
  value. ...".  Throughput on a PAY_PER_REQUEST table is a ``ValidationException`` too.
* The decrease quota, per table and per GSI, per UTC day: 4 decreases, then one more
  only when the last accepted decrease is >= 3600 s old; the counter resets at 00:00
  UTC.  One call lowering reads and/or writes of one table counts once; a call that
  decreases the table and a GSI is refused whole if either is over its limit.  Refusal
  is ``LimitExceededException`` with AWS's message.
* DescribeTable (and UpdateTable) responses carry ``NumberOfDecreasesToday``,
  ``LastDecreaseDateTime`` and ``LastIncreaseDateTime`` from the proxy's bookkeeping.
  The UpdateTable response echoes the old units and old counter, as AWS does, when
  ``updating_seconds`` > 0.
* GetMetricStatistics is answered through GetMetricData, which matches dimensions
  exactly and anchors periods at StartTime (moto's own GetMetricStatistics mixes GSI
  series into table series and anchors buckets at the first datapoint).  Turn off with
  ``exact_metric_statistics=False``.

Test controls: a clock (real UTC time + settable offset), preset decrease counters,
fault injection (error bodies, slow answers, TCP resets), before-forward hooks, a log of
every request, all through a Python API and through HTTP control endpoints:

==========================  ==========================================================
``POST /__faults__``        JSON list of faults (or ``{"faults": [...]}``), appended
``GET /__log__``            list of request records
``POST /__reset__``         clears faults, hooks, log, counters, clock offset, UPDATING
``GET|POST /__clock__``     ``{"offset": s}`` sets, ``{"advance": s}`` adds; answers
                            ``{"offset": s, "now": epoch}``
``POST /__decreases__``     ``{"table": t, "index": i|null, "count": n, "last": epoch}``
``POST /__updating__``      ``{"seconds": n}``
==========================  ==========================================================

A fault is a dict: ``operation`` (``X-Amz-Target`` suffix or query ``Action``, e.g.
``UpdateTable``, ``GetMetricData``; omitted = any), optional ``table`` (matches the
request's TableName or a ``TableName`` metric dimension), ``times`` (default 1), and one
action: ``{"status": 400, "code": "ThrottlingException", "message": ...}`` /
``{"slow": 2.5}`` (sleep, then forward normally) / ``{"reset": true}`` (TCP RST) /
``{"drop": true}`` (close without an answer) / ``{"body": "..."}`` (answer with these
bytes, status ``status`` or 200: the text's characters U+0000-U+00FF are sent as the bytes
0x00-0xFF, so ``"\u00ff"`` is a byte of bad UTF-8) / ``{"json": {...}}`` (answer with this
JSON object, status ``status`` or 200) / ``{"truncate": n}`` (forward, then send only the
first ``n`` bytes of the real answer).  A DynamoDB answer made this way carries a correct
``x-amz-crc32``, so botocore reads it instead of retrying.  The string shorthands
``"slow:N"``, ``"reset"`` and ``"STATUS:Code"`` are accepted in a ``fault`` key.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import http.client
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from support.server import BackgroundServer, QuickHandler

DDB_PREFIX = "com.amazonaws.dynamodb.v20120810#"
JSON_CT = "application/x-amz-json-1.0"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length", "date", "host", "server",
    "expect",
}
SCOPE_SERVICE_NAMES = {"monitoring": "cloudwatch", "email": "ses"}
FREE_DECREASES_PER_DAY = 4
DECREASE_INTERVAL_SECONDS = 3600
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def aws_time_text(epoch: float) -> str:
    """AWS's wording of a time in the LimitExceededException message."""
    t = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
    hour12 = t.hour % 12 or 12
    ampm = "AM" if t.hour < 12 else "PM"
    return (f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {t.day}, {t.year} at "
            f"{hour12}:{t.minute:02d}:{t.second:02d} {ampm} Coordinated Universal Time")


def _utc_day(epoch: float) -> _dt.date:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).date()


def _next_midnight(epoch: float) -> float:
    day = _utc_day(epoch) + _dt.timedelta(days=1)
    return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc).timestamp()


def _to_epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    return float(value)


class ProxyError(Exception):
    """An AWS error answer produced by the proxy's rules."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Counter:
    """Decrease bookkeeping of one table or one GSI."""
    day: _dt.date | None = None  # UTC day `count` belongs to
    count: int = 0
    last_decrease: float | None = None
    last_increase: float | None = None

    def today(self, now: float) -> int:
        return self.count if self.day == _utc_day(now) else 0

    def next_allowed(self, now: float) -> float | None:
        """When the next decrease is allowed; None means right now."""
        if self.today(now) < FREE_DECREASES_PER_DAY or self.last_decrease is None:
            return None
        at = min(self.last_decrease + DECREASE_INTERVAL_SECONDS, _next_midnight(now))
        return None if now >= at else at

    def record_decrease(self, now: float) -> None:
        self.count = self.today(now) + 1
        self.day = _utc_day(now)
        self.last_decrease = now


@dataclass
class RequestInfo:
    """What the proxy understood of one request (passed to hooks, kept in the log)."""
    method: str
    path: str
    service: str | None
    operation: str | None
    tables: list[str]
    params: Any  # parsed JSON body, or dict of query params, or None
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    body: bytes = field(repr=False, default=b"")

    @property
    def table(self) -> str | None:
        return self.tables[0] if self.tables else None


def _dimension_tables(dimensions: Iterable[dict]) -> list[str]:
    return [d.get("Value") for d in dimensions or [] if d.get("Name") == "TableName"]


def classify(method: str, path: str, headers: dict[str, str], body: bytes) -> RequestInfo:
    """Service, operation, table names and parameters of an AWS request."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            pass
    service = None
    auth = lower.get("authorization", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = SCOPE_SERVICE_NAMES.get(scope[3], scope[3])
    operation = None
    params: Any = None
    target = lower.get("x-amz-target")
    if target:
        operation = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = None
    elif body and "x-www-form-urlencoded" in lower.get("content-type", ""):
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        operation = params.get("Action")
    tables: list[str] = []
    if isinstance(params, dict):
        if isinstance(params.get("TableName"), str):
            tables.append(params["TableName"])
        if service == "cloudwatch" or "MetricDataQueries" in params or "Dimensions" in params:
            tables += _dimension_tables(params.get("Dimensions"))
            for q in params.get("MetricDataQueries") or []:
                metric = (q.get("MetricStat") or {}).get("Metric") or {}
                tables += _dimension_tables(metric.get("Dimensions"))
            for datum in params.get("MetricData") or []:
                tables += _dimension_tables(datum.get("Dimensions"))
    seen: list[str] = []
    for t in tables:
        if t and t not in seen:
            seen.append(t)
    return RequestInfo(method, path, service, operation, seen, params, headers, body)


def _parse_fault(spec: dict) -> dict:
    fault = dict(spec)
    short = fault.pop("fault", None)
    if isinstance(short, str):
        if short == "reset":
            fault["reset"] = True
        elif short == "drop":
            fault["drop"] = True
        elif short.startswith("slow:"):
            fault["slow"] = float(short[5:])
        elif ":" in short:
            status, code = short.split(":", 1)
            fault["status"], fault["code"] = int(status), code
        else:
            raise ValueError(f"unknown fault {short!r}")
    if not any(k in fault for k in ("status", "slow", "reset", "drop", "body", "json", "truncate")):
        raise ValueError(f"fault needs status, slow, reset, drop, body, json or truncate: {spec!r}")
    fault.setdefault("times", 1)
    return fault


@dataclass
class _Hook:
    operation: str | None
    table: str | None
    fn: Callable[[RequestInfo], None]
    times: int | None


class RulesProxy(BackgroundServer):
    """The proxy; ``start()`` runs it in a daemon thread.  Thread-safe."""

    name = "rules-proxy"

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0,
                 updating_seconds: float = 0, exact_metric_statistics: bool = True):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.exact_metric_statistics = exact_metric_statistics
        self._default_updating = updating_seconds
        self._lock = threading.RLock()
        self._update_lock = threading.Lock()  # serialises UpdateTable check+forward+book
        super().__init__(host, port)
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle
    def _reset_state(self) -> None:
        with self._lock:
            self.updating_seconds = self._default_updating
            self.clock_offset = 0.0
            self._counters: dict[tuple[str, str | None], Counter] = {}
            self._updating: dict[tuple[str, str | None], float] = {}
            self._faults: list[dict] = []
            self._hooks: list[_Hook] = []
            self._log: list[dict] = []

    def handler(self) -> type:
        return type("Handler", (_Handler,), {"proxy": self})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ Python API
    def reset(self) -> None:
        """Forget faults, hooks, the log, counters, UPDATING states and the clock offset."""
        self._reset_state()

    def now(self) -> float:
        """The proxy's clock, epoch seconds: real time + offset."""
        return time.time() + self.clock_offset

    def now_datetime(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.now(), _dt.timezone.utc)

    def set_clock_offset(self, seconds: float) -> None:
        with self._lock:
            self.clock_offset = float(seconds)

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self.clock_offset += float(seconds)

    def set_clock(self, when: _dt.datetime | float) -> None:
        """Make "now" the given instant (the clock keeps running from there)."""
        self.set_clock_offset(_to_epoch(when) - time.time())

    def set_updating_seconds(self, seconds: float) -> None:
        with self._lock:
            self.updating_seconds = float(seconds)

    def set_decreases(self, table: str, index: str | None = None, count: int = 0,
                      last: _dt.datetime | float | None = None,
                      last_increase: _dt.datetime | float | None = None) -> None:
        """Preset a table's (index=None) or GSI's decreases.

        ``count`` decreases happened on the UTC day of ``last`` (default: today by the
        proxy clock); ``last`` defaults to now when count > 0.
        """
        with self._lock:
            now = self.now()
            last_epoch = _to_epoch(last)
            if last_epoch is None and count > 0:
                last_epoch = now
            c = self._counters.setdefault((table, index), Counter())
            c.count = int(count)
            c.day = _utc_day(last_epoch if last_epoch is not None else now)
            c.last_decrease = last_epoch
            if last_increase is not None:
                c.last_increase = _to_epoch(last_increase)

    def counters(self, table: str, index: str | None = None) -> dict:
        """The bookkeeping of a table or GSI as DescribeTable would report it."""
        with self._lock:
            c = self._counters.get((table, index), Counter())
            now = self.now()
            return {"NumberOfDecreasesToday": c.today(now), "LastDecreaseDateTime": c.last_decrease,
                    "LastIncreaseDateTime": c.last_increase, "NextDecreaseAt": c.next_allowed(now)}

    def set_updating(self, table: str, index: str | None = None, seconds: float = 60) -> None:
        """Mark a table (or a GSI) UPDATING for ``seconds`` from now."""
        with self._lock:
            self._updating[(table, index)] = self.now() + seconds

    def is_updating(self, table: str, index: str | None = None) -> bool:
        with self._lock:
            return self._updating.get((table, index), 0) > self.now()

    def add_faults(self, faults: Iterable[dict] | dict) -> None:
        if isinstance(faults, dict):
            faults = faults.get("faults", [faults]) if "faults" in faults else [faults]
        parsed = [_parse_fault(f) for f in faults]
        with self._lock:
            self._faults.extend(parsed)

    def pending_faults(self) -> list[dict]:
        with self._lock:
            return [dict(f) for f in self._faults]

    def add_hook(self, operation: str | None, fn: Callable[[RequestInfo], None],
                 table: str | None = None, times: int | None = 1) -> None:
        """Call ``fn(info)`` before forwarding a matching request (times=None: always)."""
        with self._lock:
            self._hooks.append(_Hook(operation, table, fn, times))

    def calls(self, operation: str | None = None, table: str | None = None,
              service: str | None = None) -> list[dict]:
        """Logged requests, oldest first, optionally filtered."""
        with self._lock:
            out = list(self._log)
        return [r for r in out
                if (operation is None or r["operation"] == operation)
                and (table is None or table in r["tables"])
                and (service is None or r["service"] == service)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ internals
    def _take_fault(self, info: RequestInfo) -> dict | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if f.get("operation") not in (None, info.operation):
                    continue
                if f.get("table") is not None and f["table"] not in info.tables:
                    continue
                f["times"] -= 1
                if f["times"] <= 0:
                    del self._faults[i]
                return dict(f)
        return None

    def _take_hooks(self, info: RequestInfo) -> list[_Hook]:
        out = []
        with self._lock:
            for h in list(self._hooks):
                if h.operation not in (None, info.operation):
                    continue
                if h.table is not None and h.table not in info.tables:
                    continue
                out.append(h)
                if h.times is not None:
                    h.times -= 1
                    if h.times <= 0:
                        self._hooks.remove(h)
        return out

    def _record(self, info: RequestInfo) -> dict:
        entry = {"time": self.now(), "service": info.service, "operation": info.operation,
                 "table": info.table, "tables": list(info.tables), "method": info.method,
                 "path": info.path, "params": info.params, "status": None, "error": None,
                 "fault": None}
        with self._lock:
            entry["seq"] = len(self._log)
            self._log.append(entry)
        return entry

    def upstream(self, method: str, path: str, headers: dict[str, str], body: bytes,
                 timeout: float = 60) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send a request to moto; returns (status, headers, body)."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=timeout)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            out["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            conn.request(method, path, body=body, headers=out)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _ddb_call(self, info: RequestInfo, operation: str, params: dict) -> tuple[int, dict]:
        """A DynamoDB call of our own, with the client's signature headers (moto ignores them)."""
        headers = {k: v for k, v in info.headers.items()
                   if k.lower() in ("authorization", "x-amz-date", "x-amz-security-token", "user-agent")}
        headers["X-Amz-Target"] = f"DynamoDB_20120810.{operation}"
        headers["Content-Type"] = JSON_CT
        status, _, body = self.upstream("POST", "/", headers, json.dumps(params).encode())
        try:
            return status, json.loads(body or b"{}")
        except ValueError:
            return status, {}

    def _fill_description(self, table: dict, now: float,
                          old_counts: dict[tuple, int] | None = None) -> None:
        """Add bookkeeping fields and UPDATING states to a TableDescription in place.

        ``old_counts`` replaces NumberOfDecreasesToday (the UpdateTable answer shows the
        counter from before the call, but the new Last*DateTime, as AWS does).
        """
        name = table.get("TableName")
        if not name:
            return
        with self._lock:
            def fill(pt: dict | None, key: tuple) -> None:
                if pt is None:
                    return
                c = self._counters.get(key) or Counter()
                pt["NumberOfDecreasesToday"] = (old_counts.get(key, 0) if old_counts is not None
                                                else c.today(now))
                for field_name, value in (("LastDecreaseDateTime", c.last_decrease),
                                          ("LastIncreaseDateTime", c.last_increase)):
                    if value is not None:
                        pt[field_name] = value
                    else:
                        pt.pop(field_name, None)

            fill(table.get("ProvisionedThroughput"), (name, None))
            if self._updating.get((name, None), 0) > now:
                table["TableStatus"] = "UPDATING"
            for gsi in table.get("GlobalSecondaryIndexes") or []:
                key = (name, gsi.get("IndexName"))
                fill(gsi.get("ProvisionedThroughput"), key)
                if self._updating.get(key, 0) > now:
                    gsi["IndexStatus"] = "UPDATING"

    def _forget_table(self, name: str) -> None:
        with self._lock:
            for d in (self._counters, self._updating):
                for key in [k for k in d if k[0] == name]:
                    del d[key]

    # --- UpdateTable rules -----------------------------------------------------
    def update_table(self, info: RequestInfo) -> tuple[int, dict]:
        params = info.params if isinstance(info.params, dict) else {}
        name = params.get("TableName", "")
        with self._update_lock:
            now = self.now()
            with self._lock:
                busy_table = self._updating.get((name, None), 0) > now
                busy_indexes = [k[1] for k, until in self._updating.items()
                                if k[0] == name and k[1] is not None and until > now]
            if busy_table:
                raise ProxyError(400, "ResourceInUseException",
                                 f"Attempt to change a resource which is still in use: "
                                 f"Table is being updated: {name}")
            if busy_indexes:
                raise ProxyError(400, "ResourceInUseException",
                                 f"Attempt to change a resource which is still in use: Index is "
                                 f"being updated. Table: {name} Index: {busy_indexes[0]}")
            status, desc = self._ddb_call(info, "DescribeTable", {"TableName": name})
            if status != 200 or "Table" not in desc:
                return self._forward_json(info)  # let moto answer (ResourceNotFound etc.)
            table = desc["Table"]
            billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
            new_billing = params.get("BillingMode") or billing
            decreasing: list[tuple[str, str | None]] = []
            increasing: list[tuple[str, str | None]] = []
            touched: list[str | None] = []

            def compare(kind: str, label: str, key: tuple, current: dict, wanted: dict) -> None:
                cur_r, cur_w = current.get("ReadCapacityUnits"), current.get("WriteCapacityUnits")
                new_r, new_w = wanted.get("ReadCapacityUnits"), wanted.get("WriteCapacityUnits")
                if billing == "PROVISIONED" and new_billing == "PROVISIONED" \
                        and (cur_r, cur_w) == (new_r, new_w):
                    subject = "the table" if kind == "table" else f"the index {label}"
                    what = "the table" if kind == "table" else f"index {label}"
                    raise ProxyError(
                        400, "ValidationException",
                        f"The provisioned throughput for {subject} will not change. "
                        "The requested value equals the current value. "
                        f"Current ReadCapacityUnits provisioned for {what}: {cur_r}. "
                        f"Requested ReadCapacityUnits: {new_r}. "
                        f"Current WriteCapacityUnits provisioned for {what}: {cur_w}. "
                        f"Requested WriteCapacityUnits: {new_w}. Refer to the Amazon DynamoDB "
                        f"Developer Guide for current limits and how to request higher limits.")
                if billing != "PROVISIONED":
                    return
                if (new_r is not None and cur_r is not None and new_r < cur_r) or \
                        (new_w is not None and cur_w is not None and new_w < cur_w):
                    decreasing.append(key)
                if (new_r is not None and cur_r is not None and new_r > cur_r) or \
                        (new_w is not None and cur_w is not None and new_w > cur_w):
                    increasing.append(key)

            if "ProvisionedThroughput" in params:
                if new_billing == "PAY_PER_REQUEST":
                    raise ProxyError(400, "ValidationException",
                                     "One or more parameter values were invalid: Neither "
                                     "ReadCapacityUnits nor WriteCapacityUnits can be specified "
                                     "when BillingMode is PAY_PER_REQUEST")
                compare("table", name, (name, None), table.get("ProvisionedThroughput") or {},
                        params["ProvisionedThroughput"])
                touched.append(None)
            gsis = {g.get("IndexName"): g for g in table.get("GlobalSecondaryIndexes") or []}
            for upd in params.get("GlobalSecondaryIndexUpdates") or []:
                u = upd.get("Update")
                if not u:
                    continue
                index = u.get("IndexName")
                if index not in gsis:
                    raise ProxyError(400, "ResourceNotFoundException",
                                     f"Requested resource not found: Index {index} for table "
                                     f"{name} not found")
                if "ProvisionedThroughput" in u:
                    if new_billing == "PAY_PER_REQUEST":
                        raise ProxyError(400, "ValidationException",
                                         f"One or more parameter values were invalid: The only "
                                         f"Updates for index {index} can be to OnDemandThroughput, "
                                         f"WarmThroughput when BillingMode is PAY_PER_REQUEST")
                    compare("index", index, (name, index),
                            gsis[index].get("ProvisionedThroughput") or {}, u["ProvisionedThroughput"])
                    touched.append(index)
            with self._lock:
                for key in decreasing:
                    c = self._counters.get(key) or Counter()
                    at = c.next_allowed(now)
                    if at is not None:
                        raise ProxyError(
                            400, "LimitExceededException",
                            "Subscriber limit exceeded: Provisioned throughput decreases are "
                            "limited within a given UTC day. After the first 4 decreases, each "
                            "subsequent decrease in the same UTC day can be performed at most "
                            "once every 3600 seconds. Number of decreases today: "
                            f"{c.today(now)}. Last decrease at {aws_time_text(c.last_decrease)}. "
                            f"Next decrease can be made at {aws_time_text(at)}.")
                old_counts = {k: v.today(now) for k, v in self._counters.items() if k[0] == name}
            status, headers, body = self.upstream(info.method, info.path, info.headers, info.body)
            try:
                answer = json.loads(body or b"{}")
            except ValueError:
                answer = None
            if status != 200 or not isinstance(answer, dict):
                return status, {"__raw__": (headers, body)}
            with self._lock:
                now = self.now()
                for key in decreasing:
                    self._counters.setdefault(key, Counter()).record_decrease(now)
                for key in increasing:
                    self._counters.setdefault(key, Counter()).last_increase = now
                if self.updating_seconds > 0:
                    for index in touched or [None]:
                        self._updating[(name, index)] = now + self.updating_seconds
            descr = answer.get("TableDescription")
            if isinstance(descr, dict):
                if self.updating_seconds > 0:
                    # AWS echoes the old units while the update runs
                    if "ProvisionedThroughput" in params and table.get("ProvisionedThroughput"):
                        descr["ProvisionedThroughput"] = dict(table["ProvisionedThroughput"])
                    for gsi in descr.get("GlobalSecondaryIndexes") or []:
                        old = gsis.get(gsi.get("IndexName"))
                        if gsi.get("IndexName") in touched and old:
                            gsi["ProvisionedThroughput"] = dict(old.get("ProvisionedThroughput") or {})
                self._fill_description(descr, now, old_counts=old_counts)
            return 200, answer

    def _forward_json(self, info: RequestInfo) -> tuple[int, dict]:
        status, headers, body = self.upstream(info.method, info.path, info.headers, info.body)
        return status, {"__raw__": (headers, body)}

    # --- GetMetricStatistics through GetMetricData ---------------------------------
    def metric_statistics(self, info: RequestInfo) -> tuple[int, dict] | None:
        p = info.params if isinstance(info.params, dict) else None
        if not p or p.get("ExtendedStatistics") or not p.get("Statistics"):
            return None
        queries = []
        for i, stat in enumerate(p["Statistics"]):
            metric = {"Namespace": p.get("Namespace"), "MetricName": p.get("MetricName"),
                      "Dimensions": p.get("Dimensions") or []}
            ms = {"Metric": metric, "Period": p.get("Period"), "Stat": stat}
            if p.get("Unit"):
                ms["Unit"] = p["Unit"]
            queries.append({"Id": f"q{i}", "MetricStat": ms, "ReturnData": True})
        gmd = {"MetricDataQueries": queries, "StartTime": p.get("StartTime"),
               "EndTime": p.get("EndTime"), "ScanBy": "TimestampAscending"}
        headers = {k: v for k, v in info.headers.items() if k.lower() not in ("content-encoding",)}
        for k in list(headers):
            if k.lower() == "x-amz-target":
                del headers[k]
        headers["X-Amz-Target"] = "GraniteServiceVersion20100801.GetMetricData"
        status, _, body = self.upstream("POST", info.path, headers, json.dumps(gmd).encode())
        if status != 200:
            return None  # let moto's own GetMetricStatistics answer (errors included)
        # moto's own answer for the Unit of the data
        ustatus, _, ubody = self.upstream(info.method, info.path,
                                          {k: v for k, v in info.headers.items()
                                           if k.lower() != "content-encoding"},
                                          json.dumps(p).encode())
        unit = p.get("Unit")
        if not unit and ustatus == 200:
            for dp in json.loads(ubody or b"{}").get("Datapoints") or []:
                unit = dp.get("Unit") or unit
        points: dict[Any, dict] = {}
        for res in json.loads(body).get("MetricDataResults") or []:
            stat = p["Statistics"][int(res["Id"][1:])]
            for ts, value in zip(res.get("Timestamps") or [], res.get("Values") or [], strict=False):
                points.setdefault(ts, {"Timestamp": ts, "Unit": unit or "None"})[stat] = value
        return 200, {"Label": p.get("MetricName"), "Datapoints": list(points.values())}


class _Handler(QuickHandler):
    proxy: RulesProxy
    _dynamodb = False  # the request being answered is a DynamoDB one
    server_version = "RulesProxy"

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    # --- plumbing ------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        try:
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP_BY_HOP and k.lower() != "x-amz-crc32":
                    self.send_header(k, v)
            if self._dynamodb:
                # botocore checks DynamoDB bodies against this header (and retries on mismatch)
                self.send_header("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, obj: Any, content_type: str = "application/json") -> None:
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", str(uuid.uuid4()))]
        self._send(status, json.dumps(obj, default=str).encode(), headers)

    def _send_error(self, info: RequestInfo, status: int, code: str, message: str) -> None:
        lower = {k.lower(): v for k, v in info.headers.items()}
        if "x-amz-target" in lower:
            type_ = DDB_PREFIX + code if info.service == "dynamodb" else code
            headers = [("Content-Type", JSON_CT), ("x-amzn-RequestId", str(uuid.uuid4()))]
            if info.service == "cloudwatch":
                sender = "Receiver" if status >= 500 else "Sender"
                headers.append(("x-amzn-query-error", f"{code};{sender}"))
            self._send(status, json.dumps({"__type": type_, "message": message}).encode(), headers)
        else:
            xml = (f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type>"
                   f"<Code>{code}</Code><Message>{message}</Message></Error>"
                   f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
            self._send(status, xml, [("Content-Type", "text/xml")])

    def _send_answer(self, info: RequestInfo, fault: dict, entry: dict) -> None:
        """A made-up (or cut-short) answer in place of moto's, for answers botocore cannot read."""
        if "truncate" in fault:
            status, headers, raw = self.proxy.upstream(self.command, self.path, dict(self.headers.items()),
                                                       info.body)
            raw = raw[:int(fault["truncate"])]
        else:
            status = int(fault.get("status", 200))
            raw = fault["body"].encode("latin-1") if "body" in fault else json.dumps(fault["json"]).encode()
            content_type = JSON_CT if info.operation and "x-amz-target" in {k.lower() for k in info.headers} \
                else "text/xml"
            headers = [("Content-Type", content_type), ("x-amzn-RequestId", str(uuid.uuid4()))]
        entry["status"] = status
        self._send(status, raw, headers)

    def _reset_connection(self) -> None:
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    # --- dispatch ----------------------------------------------------------------------
    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (TimeoutError, ConnectionResetError):
            self.close_connection = True
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/__") and path.endswith("__"):
            return self._control(path, body)
        proxy = self.proxy
        info = classify(self.command, self.path, dict(self.headers.items()), body)
        self._dynamodb = info.service == "dynamodb"
        entry = proxy._record(info)
        try:
            for hook in proxy._take_hooks(info):
                hook.fn(info)
            fault = proxy._take_fault(info)
            if fault is not None:
                entry["fault"] = {k: v for k, v in fault.items() if k != "times"}
                if fault.get("reset"):
                    entry["status"] = "reset"
                    return self._reset_connection()
                if fault.get("drop"):
                    entry["status"] = "dropped"
                    self.close_connection = True
                    return
                if any(k in fault for k in ("body", "json", "truncate")):
                    return self._send_answer(info, fault, entry)
                if "status" in fault:
                    entry["status"], entry["error"] = fault["status"], fault.get("code")
                    return self._send_error(info, int(fault["status"]), fault.get("code", "InternalError"),
                                            fault.get("message", "injected fault"))
                if fault.get("slow"):
                    time.sleep(float(fault["slow"]))
            answer: tuple[int, dict] | None = None
            if info.service == "dynamodb" and info.operation == "UpdateTable":
                answer = proxy.update_table(info)
            elif info.service == "cloudwatch" and info.operation == "GetMetricStatistics" \
                    and proxy.exact_metric_statistics:
                answer = proxy.metric_statistics(info)
            if answer is not None:
                status, obj = answer
                entry["status"] = status
                if "__raw__" in obj:
                    headers, raw = obj["__raw__"]
                    entry["error"] = _error_code(raw) if status >= 400 else None
                    return self._send(status, raw, headers)
                return self._send_json(status, obj, JSON_CT)
            status, headers, raw = proxy.upstream(self.command, self.path, dict(self.headers.items()), body)
            entry["status"] = status
            if status >= 400:
                entry["error"] = _error_code(raw)
            if info.service == "dynamodb" and status == 200 and info.operation in ("DescribeTable",):
                obj = json.loads(raw or b"{}")
                if isinstance(obj.get("Table"), dict):
                    proxy._fill_description(obj["Table"], proxy.now())
                    raw = json.dumps(obj).encode()
            elif info.service == "dynamodb" and status == 200 and info.operation in ("DeleteTable", "CreateTable"):
                for t in info.tables:
                    proxy._forget_table(t)
            self._send(status, raw, headers)
        except ProxyError as e:
            entry["status"], entry["error"] = e.status, e.code
            self._send_error(info, e.status, e.code, e.message)
        except (ConnectionError, OSError) as e:  # moto unreachable
            entry["status"], entry["error"] = 502, repr(e)
            self._send_error(info, 502, "BadGateway", f"rules proxy: upstream failed: {e!r}")

    def _control(self, path: str, body: bytes) -> None:
        proxy = self.proxy
        try:
            data = json.loads(body) if body else None
            if path == "/__faults__":
                if self.command == "GET":
                    return self._send_json(200, proxy.pending_faults())
                proxy.add_faults(data or [])
                return self._send_json(200, {"pending": len(proxy.pending_faults())})
            if path == "/__log__":
                return self._send_json(200, proxy.calls())
            if path == "/__reset__":
                proxy.reset()
                return self._send_json(200, {"reset": True})
            if path == "/__clock__":
                if data and "offset" in data:
                    proxy.set_clock_offset(data["offset"])
                if data and "advance" in data:
                    proxy.advance_clock(data["advance"])
                return self._send_json(200, {"offset": proxy.clock_offset, "now": proxy.now()})
            if path == "/__decreases__":
                if self.command == "GET":
                    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                    return self._send_json(200, proxy.counters(q["table"], q.get("index")))
                proxy.set_decreases(data["table"], data.get("index"), int(data.get("count", 0)),
                                    data.get("last"), data.get("last_increase"))
                return self._send_json(200, proxy.counters(data["table"], data.get("index")))
            if path == "/__updating__":
                proxy.set_updating_seconds(float(data["seconds"]))
                return self._send_json(200, {"seconds": proxy.updating_seconds})
            return self._send_json(404, {"error": f"unknown control endpoint {path}"})
        except (ValueError, KeyError, TypeError) as e:
            return self._send_json(400, {"error": repr(e)})


def _error_code(raw: bytes) -> str | None:
    try:
        obj = json.loads(raw)
        code = obj.get("__type") or obj.get("code") or ""
        return code.rsplit("#", 1)[-1] or None
    except (ValueError, AttributeError):
        text = raw.decode("utf-8", "replace")
        if "<Code>" in text:
            return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        return None
