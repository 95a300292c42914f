"""A fault-injecting proxy: the rules proxy, plus every way an AWS answer can go wrong.

``FaultProxy`` is a ``RulesProxy`` (UPDATING, the decrease quota and no-op refusals stay
enforced) that asks a *planner* what to do with each request.  A request is identified by
botocore's ``amz-sdk-invocation-id`` (one per logical call, the same for its retries) and
``amz-sdk-request: attempt=N``, so a fault can hit only the first attempt (botocore's
retry absorbs it) or every attempt of a call (the call fails, the daemon must cope).

Fault kinds (``KINDS``); the body kinds forward the request first, so an UpdateTable
whose answer is mangled *was* applied, as on a real network:

==================  ==================================================================
``http500``         500 ``InternalServerError`` (CloudWatch: ``InternalServiceFault``)
``http503``         503 ``ServiceUnavailable``
``throttle``        400 ``ThrottlingException`` (CloudWatch: ``Throttling``)
``reset``           TCP RST before forwarding
``reset_after``     forwarded, then TCP RST instead of the answer
``hang``            no answer for ``hang_seconds`` (past the client's read timeout; a number,
                    or one per service), then closed
``truncated``       a 200 whose body is cut in half
``garbage``         a 200 whose body is an HTML page
``not_utf8``        a 200 whose body has bytes that are not UTF-8
``missing_field``   a 200 whose JSON lacks the answer's main key (``Table``, ...)
``bad_type``        a 200 whose JSON has a wrong type where a number or list belongs
``in_use``          400 ``ResourceInUseException`` (UpdateTable only)
``limit_exceeded``  400 ``LimitExceededException`` of the kind that is *not* the decrease
                    rule: too many tables updating at once (UpdateTable only)
==================  ==================================================================

DynamoDB bodies are sent with a recomputed ``x-amz-crc32`` (the rules proxy does it for
every DynamoDB answer), so botocore parses a mangled body instead of retrying it.

Every request is logged (``calls()``) with, besides the rules proxy's fields:
``invocation``, ``attempt``, ``kind`` (the fault, or None), ``end`` (time the answer was
sent or the connection dropped) and ``answer`` (for clean 200s: ``ListTables`` names, or
the ``DescribeTable`` statuses of the table and its GSIs).
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from support.rules_proxy import RequestInfo, RulesProxy, _Handler

KINDS = ("http500", "http503", "throttle", "reset", "reset_after", "hang", "truncated",
         "garbage", "not_utf8", "missing_field", "bad_type", "in_use", "limit_exceeded")
UPDATE_ONLY = ("in_use", "limit_exceeded")
BODY_KINDS = ("truncated", "garbage", "not_utf8", "missing_field", "bad_type")
# the main key of each answer, dropped by missing_field and retyped by bad_type
MAIN_KEYS = {"ListTables": "TableNames", "DescribeTable": "Table", "UpdateTable": "TableDescription",
             "GetMetricData": "MetricDataResults", "DescribeLimits": "TableMaxReadCapacityUnits"}
OTHER_LIMIT_MESSAGE = ("Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted "
                       "simultaneously")
# planner(request, invocation id, attempt) -> the fault kind for this request, or None
Planner = Callable[[RequestInfo, str, int], str | None]


def _header(info: RequestInfo, name: str) -> str:
    for k, v in info.headers.items():
        if k.lower() == name:
            return v
    return ""


def attempt_of(info: RequestInfo) -> int:
    """botocore's attempt number of a request (1 when the header is absent)."""
    text = _header(info, "amz-sdk-request")
    for part in text.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


def mangle(kind: str, operation: str | None, body: bytes) -> bytes:
    """The 200 body a body fault sends instead of ``body``."""
    if kind == "truncated":
        return body[: max(1, len(body) // 2)]
    if kind == "garbage":
        return b"<html><body><h1>502 Bad Gateway</h1><p>upstream sent nonsense</p></body></html>"
    if kind == "not_utf8":
        head, quote, tail = body.partition(b'"')
        return head + quote + b"\xff\xfe\xc3(" + tail if quote else b"\xff\xfe" + body
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return b"{}"
    key = MAIN_KEYS.get(operation or "", "")
    if kind == "missing_field":
        obj.pop(key, None)
        return json.dumps(obj).encode()
    # bad_type: a number where a structure or list belongs, text where a number belongs
    table = obj.get("Table")
    if operation == "DescribeTable" and isinstance(table, dict) \
            and isinstance(table.get("ProvisionedThroughput"), dict):
        table["ProvisionedThroughput"]["ReadCapacityUnits"] = "lots"
    elif key in obj and isinstance(obj[key], list):
        obj[key] = 7
    else:
        obj[key] = "unexpected text"
    return json.dumps(obj).encode()


def answer_summary(operation: str | None, body: bytes) -> Any:
    """What a clean 200 told the client, as far as a soak needs it."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if operation == "ListTables":
        return {"names": list(obj.get("TableNames") or []), "last": obj.get("LastEvaluatedTableName")}
    if operation == "DescribeTable":
        t = obj.get("Table") or {}
        billing = (t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        pt = t.get("ProvisionedThroughput") or {}
        out = {"table": t.get("TableName"), "status": t.get("TableStatus"), "billing": billing,
               "id": t.get("TableId") or t.get("CreationDateTime"),
               "capacity": (pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits")), "indexes": {}}
        for g in t.get("GlobalSecondaryIndexes") or []:
            gpt = g.get("ProvisionedThroughput") or {}
            out["indexes"][g.get("IndexName")] = {
                "status": g.get("IndexStatus"),
                "capacity": (gpt.get("ReadCapacityUnits"), gpt.get("WriteCapacityUnits"))}
        return out
    return None


class _Local(threading.local):
    kind: str | None = None
    entry: dict | None = None


class FaultProxy(RulesProxy):
    """The rules proxy with a fault planner; ``start()`` runs it in a daemon thread."""

    name = "fault-proxy"

    def __init__(self, upstream: str, planner: Planner | None = None,
                 hang_seconds: float | dict[str, float] = 11.0,
                 before_answer: Callable[[dict], None] | None = None, **kwargs: Any) -> None:
        self.planner = planner
        self.hang_seconds = hang_seconds
        # called with the log entry just before a forwarded answer goes out (a soak kills
        # the daemon there: the update applied, its answer never read)
        self.before_answer = before_answer
        self._local = _Local()
        super().__init__(upstream, **kwargs)

    def handler(self) -> type:
        return type("Handler", (_FaultHandler,), {"proxy": self})

    def forget_table(self, name: str) -> None:
        """Drop a table's decrease counters and UPDATING state (it was deleted behind our back)."""
        self._forget_table(name)

    # ---- hooks into the rules proxy's handler -------------------------------------------
    def _record(self, info: RequestInfo) -> dict:
        entry = super()._record(info)
        entry.update(invocation=_header(info, "amz-sdk-invocation-id"), attempt=attempt_of(info),
                     kind=None, end=None, answer=None)
        if info.operation != "UpdateTable":
            entry["params"] = None  # metric queries are large: the table list says enough
        self._local.entry, self._local.kind = entry, None
        return entry

    def _take_fault(self, info: RequestInfo) -> dict | None:
        queued = super()._take_fault(info)
        if queued is not None or self.planner is None:
            return queued
        entry = self._local.entry
        kind = self.planner(info, entry["invocation"] if entry else "", entry["attempt"] if entry else 1)
        if kind is None:
            return None
        if entry is not None:
            entry["kind"] = kind
        cloudwatch = info.service == "cloudwatch"
        if kind == "http500":
            return {"status": 500, "code": "InternalServiceFault" if cloudwatch else "InternalServerError",
                    "message": "injected: internal error"}
        if kind == "http503":
            return {"status": 503, "code": "ServiceUnavailable", "message": "injected: service unavailable"}
        if kind == "throttle":
            return {"status": 400, "code": "Throttling" if cloudwatch else "ThrottlingException",
                    "message": "injected: rate exceeded"}
        if kind == "in_use":
            return {"status": 400, "code": "ResourceInUseException",
                    "message": f"Attempt to change a resource which is still in use: {info.table}"}
        if kind == "limit_exceeded":
            return {"status": 400, "code": "LimitExceededException", "message": OTHER_LIMIT_MESSAGE}
        if kind == "reset":
            return {"reset": True}
        if kind == "hang":
            hang = self.hang_seconds
            time.sleep(hang.get(info.service or "", max(hang.values())) if isinstance(hang, dict) else hang)
            return {"drop": True}
        self._local.kind = kind  # reset_after and the body kinds act on the answer
        return None


class _FaultHandler(_Handler):
    proxy: FaultProxy

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client gave up on a hang or reset: nothing to answer, nothing to print

    def _handle(self) -> None:
        local = self.proxy._local
        local.entry, local.kind = None, None
        try:
            super()._handle()
        finally:
            if local.entry is not None and local.entry.get("end") is None:
                local.entry["end"] = self.proxy.now()
            local.entry, local.kind = None, None

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        local = self.proxy._local
        entry, kind = local.entry, local.kind
        if entry is not None:
            if self.proxy.before_answer is not None:
                self.proxy.before_answer(entry)
            if kind == "reset_after":
                entry["status"] = "reset"
                entry["end"] = self.proxy.now()
                self._reset_connection()
                return
            if kind in BODY_KINDS and status == 200:
                body = mangle(kind, entry.get("operation"), body)
            elif kind is None and status == 200:
                entry["answer"] = answer_summary(entry.get("operation"), body)
            entry["end"] = self.proxy.now()
        super()._send(status, body, headers)


@dataclass
class RandomFaults:
    """A seeded planner: each logical call is hit with probability ``rate``; a hit call is
    hit on every attempt with probability ``persistent`` (else on its first attempt only).

    ``allowed(info)`` may veto faults (e.g. none once a soak's faults stop); ``hang_budget``
    caps the hangs, each of which costs the client a whole read timeout."""

    seed: int = 1
    rate: float = 0.2
    update_rate: float = 0.4  # UpdateTable is rare (only when a change is due), so hit it more
    persistent: float = 0.5
    hang_budget: int = 10
    hang_weight: float = 0.25  # a hang is drawn a quarter as often as another kind
    enabled: bool = True
    kinds: tuple[str, ...] = KINDS
    counts: dict[str, int] = field(default_factory=dict)  # faults injected, by kind

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._calls: dict[str, tuple[str, bool] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, info: RequestInfo, invocation: str, attempt: int) -> str | None:
        if info.service not in ("dynamodb", "cloudwatch"):
            return None
        with self._lock:
            if not self.enabled:
                return None
            if invocation and invocation in self._calls:  # a retry of a call seen before
                plan = self._calls[invocation]
                if plan is None or not plan[1]:
                    return None  # not hit, or hit by a transient fault: the retry goes through
            else:
                plan = self._draw(info)
                if invocation:
                    self._calls[invocation] = plan
                if plan is None:
                    return None
            self.counts[plan[0]] = self.counts.get(plan[0], 0) + 1
            return plan[0]

    def _draw(self, info: RequestInfo) -> tuple[str, bool] | None:
        rng = self._rng
        update = info.operation == "UpdateTable"
        if rng.random() >= (self.update_rate if update else self.rate):
            return None
        kinds = [k for k in self.kinds
                 if (k not in UPDATE_ONLY or update) and (k != "hang" or self.hang_budget > 0)]
        refusals = [k for k in kinds if k in UPDATE_ONLY]
        if refusals and rng.random() < 0.5:
            kinds = refusals  # half of an update's faults are DynamoDB refusing it
        if not kinds:
            return None
        kind = rng.choice(kinds)
        if kind == "hang" and rng.random() >= self.hang_weight:
            kind = rng.choice([k for k in kinds if k != "hang"] or kinds)
        if kind == "hang":
            self.hang_budget -= 1
            return kind, False  # every attempt hanging would cost three read timeouts
        return kind, rng.random() < self.persistent
