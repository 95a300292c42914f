"""A small, indexed CloudWatch endpoint that speaks botocore 1.44's CloudWatch protocol, and
a counting pass-through for every other AWS request (DynamoDB, STS, ... to moto_server).

moto's GetMetricData scans every stored datapoint for every query, accepts any number of
queries and ignores pagination (/work/shared/TESTING.md, 2b), so it can neither serve a
1,000-table fleet quickly nor tell a client that breaks the API's rules. This endpoint:

* answers ``GetMetricData`` and ``PutMetricData`` in the JSON 1.0 protocol botocore 1.44
  uses for CloudWatch (``X-Amz-Target: GraniteServiceVersion20100801.<Operation>``, request
  and response shapes of ``botocore/data/cloudwatch/2010-08-01/service-2.json``: epoch-second
  timestamps, ``MetricDataResults`` with ``Id``/``Label``/``Timestamps``/``Values``/
  ``StatusCode``, ``NextToken``); errors carry ``__type`` and the ``x-amzn-query-error``
  header botocore reads for query-compatible services;
* enforces the API's limits: at most 500 ``MetricDataQueries`` per call, ids unique within
  a call and shaped ``[a-z][A-Za-z0-9_]*``; ``MaxDatapoints`` (default 100,800) pages the
  answer with ``NextToken``;
* keeps datapoints in a dict keyed by (region of the SigV4 scope, namespace, metric,
  dimensions), so regions stay apart as in AWS and a query costs
  the few points of its own series (Sum, SampleCount, Average, Minimum, Maximum per
  period, periods anchored at the rounded-down StartTime);
* sleeps a configurable latency (default 100 ms) before each ``GetMetricData`` answer,
  concurrently for concurrent calls (PutMetricData, the test's seeding, is not delayed);
* counts every request by service and operation and records the queries of each
  GetMetricData call.

Control endpoints: ``GET /__stats__`` (calls by operation, queries per GetMetricData
call), ``POST /__reset__`` (counters), ``POST /__clear__`` (datapoints),
``POST /__config__`` (``{"latency_ms": 100, "max_datapoints": 100800}``).

    python benchmarks/cloudwatch_stub.py [--port 0] [--latency-ms 100] [--upstream URL]
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "GraniteServiceVersion20100801."
JSON_CT = "application/x-amz-json-1.0"
MAX_QUERIES = 500
MAX_DATAPOINTS = 100_800
MAX_PUT_DATUMS = 1000
_ID = re.compile(r"[a-z][A-Za-z0-9_]*")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length", "host", "expect"}
_SCOPE_NAMES = {"monitoring": "cloudwatch"}
STATS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")

SeriesKey = tuple[str, str, str, frozenset]



def _add(aggregates: dict, key: int, total: float, count: float, lo: float, hi: float) -> None:
    """Fold (sum, sample count, minimum, maximum) into the aggregate at `key`."""
    agg = aggregates.get(key)
    if agg is None:
        aggregates[key] = [total, count, lo, hi]
    else:
        agg[0] += total
        agg[1] += count
        agg[2] = min(agg[2], lo)
        agg[3] = max(agg[3], hi)

class ApiError(Exception):
    """An error answer in CloudWatch's JSON protocol."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def series_key(region: str, namespace: str, metric: str, dimensions: Iterable[dict]) -> SeriesKey:
    return (region, namespace, metric, frozenset((d["Name"], d["Value"]) for d in dimensions or ()))


class MetricStore:
    """Datapoints by series, aggregated per second: [sum, count, min, max]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.series: dict[SeriesKey, dict[int, list[float]]] = defaultdict(dict)

    def clear(self) -> None:
        with self._lock:
            self.series.clear()

    def put(self, key: SeriesKey, timestamp: float, value: float, count: float = 1.0,
            minimum: float | None = None, maximum: float | None = None) -> None:
        ts = int(timestamp)
        lo = value if minimum is None else minimum
        hi = value if maximum is None else maximum
        with self._lock:
            points = self.series[key]
            _add(points, ts, value, count, lo, hi)

    def query(self, key: SeriesKey, start: int, end: int, period: int, stat: str) -> list[tuple[int, float]]:
        """(bucket start, statistic) for buckets with data, oldest first."""
        points = self.series.get(key)
        if not points:
            return []
        buckets: dict[int, list[float]] = {}
        for ts, (total, count, lo, hi) in list(points.items()):
            if start <= ts < end:
                _add(buckets, start + (ts - start) // period * period, total, count, lo, hi)
        out = []
        for b in sorted(buckets):
            total, count, lo, hi = buckets[b]
            value = {"Sum": total, "SampleCount": count, "Average": total / count if count else 0.0,
                     "Minimum": lo, "Maximum": hi}[stat]
            out.append((b, value))
        return out


def _epoch(value: Any, name: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        from datetime import datetime
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ApiError("InvalidParameterValue", f"The parameter {name} must be a timestamp.")


class CloudWatchStub:
    """The endpoint: ``start()``, ``.url``, ``stop()``, ``stats()``, ``reset_stats()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 100.0,
                 upstream: str | None = None, max_datapoints: int = MAX_DATAPOINTS) -> None:
        self.host, self.port = host, port
        self.latency_ms = latency_ms
        self.max_datapoints = max_datapoints
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        self.store = MetricStore()
        self._lock = threading.Lock()
        self._calls: Counter = Counter()
        self._queries: list[int] = []
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> CloudWatchStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="cloudwatch-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CloudWatchStub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- counters ---------------------------------------------------------------------
    def count(self, service: str, operation: str, queries: int | None = None) -> None:
        with self._lock:
            self._calls[f"{service}.{operation}"] += 1
            if queries is not None:
                self._queries.append(queries)

    def stats(self) -> dict:
        with self._lock:
            return {"calls": dict(sorted(self._calls.items())), "queries_per_call": list(self._queries)}

    def reset_stats(self) -> None:
        with self._lock:
            self._calls.clear()
            self._queries.clear()

    # ---- seeding without HTTP (the same store PutMetricData fills) ----------------------
    def put(self, namespace: str, metric: str, dimensions: Iterable[dict], timestamp: float, value: float,
            region: str = "us-east-1") -> None:
        self.store.put(series_key(region, namespace, metric, dimensions), timestamp, value)

    # ---- CloudWatch operations -----------------------------------------------------------
    def get_metric_data(self, params: dict, region: str = "us-east-1") -> dict:
        queries = params.get("MetricDataQueries")
        if not isinstance(queries, list) or not queries:
            raise ApiError("MissingParameter", "The parameter MetricDataQueries is required.")
        if len(queries) > MAX_QUERIES:
            raise ApiError("ValidationError", f"1 validation error detected: Value at 'metricDataQueries' failed to "
                           f"satisfy constraint: Member must have length less than or equal to {MAX_QUERIES} "
                           f"(got {len(queries)})")
        ids = [q.get("Id") for q in queries]
        for qid in ids:
            if not isinstance(qid, str) or not _ID.fullmatch(qid):
                raise ApiError("ValidationError", f"Invalid metric data query id {qid!r}: must start with a "
                               "lowercase letter and contain only letters, numbers and underscores.")
        if len(set(ids)) != len(ids):
            raise ApiError("ValidationError", "The values for parameter id in MetricDataQueries are not unique.")
        start = int(_epoch(params.get("StartTime"), "StartTime")) // 60 * 60
        end = int(_epoch(params.get("EndTime"), "EndTime"))
        if end <= start:
            raise ApiError("ValidationError", "The parameter StartTime must be less than the parameter EndTime.")
        ascending = params.get("ScanBy") == "TimestampAscending"
        limit = int(params.get("MaxDatapoints") or self.max_datapoints)
        offset = int(params.get("NextToken") or 0) if str(params.get("NextToken") or "0").isdigit() else None
        if offset is None:
            raise ApiError("InvalidNextToken", "The service returned an invalid NextToken.")
        answers = []
        for q in queries:
            stat = q.get("MetricStat")
            if not isinstance(stat, dict):
                raise ApiError("ValidationError", "Only MetricStat queries are supported by this stub.")
            metric = stat.get("Metric") or {}
            period = int(stat.get("Period") or 0)
            if period <= 0 or period % 60:
                raise ApiError("ValidationError", f"The parameter Period must be a multiple of 60, got {period}.")
            if stat.get("Stat") not in STATS:
                raise ApiError("ValidationError", f"Unsupported statistic {stat.get('Stat')!r}.")
            key = series_key(region, metric.get("Namespace", ""), metric.get("MetricName", ""),
                             metric.get("Dimensions"))
            points = self.store.query(key, start, end, period, stat["Stat"])
            if not ascending:
                points.reverse()
            answers.append((q, metric, points))
        # pages of at most `limit` datapoints, in query order; a query without data is
        # answered (empty, Complete) on the first page
        stop = offset + limit
        results, first = [], 0
        for q, metric, points in answers:
            last = first + len(points)
            lo, hi = max(first, offset), min(last, stop)
            if hi > lo or (not points and offset == 0):
                page = points[lo - first:hi - first] if hi > lo else []
                results.append({
                    "Id": q["Id"],
                    "Label": q.get("Label") or metric.get("MetricName", ""),
                    "Timestamps": [ts for ts, _ in page],
                    "Values": [v for _, v in page],
                    "StatusCode": "PartialData" if last > stop else "Complete",
                })
            first = last
        answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if first > stop:
            answer["NextToken"] = str(stop)
        return answer

    def put_metric_data(self, params: dict, region: str = "us-east-1") -> dict:
        namespace = params.get("Namespace")
        if not namespace:
            raise ApiError("MissingParameter", "The parameter Namespace is required.")
        data = params.get("MetricData") or []
        if len(data) > MAX_PUT_DATUMS:
            raise ApiError("InvalidParameterValue", f"The collection MetricData must not have a size greater "
                           f"than {MAX_PUT_DATUMS}.")
        now = time.time()
        for datum in data:
            key = series_key(region, namespace, datum.get("MetricName", ""), datum.get("Dimensions"))
            ts = _epoch(datum["Timestamp"], "Timestamp") if "Timestamp" in datum else now
            if "StatisticValues" in datum:
                sv = datum["StatisticValues"]
                self.store.put(key, ts, float(sv["Sum"]), float(sv["SampleCount"]), float(sv["Minimum"]),
                               float(sv["Maximum"]))
            elif "Values" in datum:
                counts = datum.get("Counts") or [1.0] * len(datum["Values"])
                for value, count in zip(datum["Values"], counts, strict=False):
                    self.store.put(key, ts, float(value) * float(count), float(count), float(value), float(value))
            else:
                self.store.put(key, ts, float(datum.get("Value", 0.0)))
        return {}

    # ---- pass-through ----------------------------------------------------------------
    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        if self.upstream is None:
            raise ApiError("UnknownService", "this stub serves CloudWatch only (no --upstream given)")
        out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        out["Host"] = self.upstream.netloc
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port or 80, timeout=120)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=out)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self._local.conn = None
                return resp.status, resp.getheaders(), data
            except (TimeoutError, http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _region(headers: dict[str, str]) -> str:
    """The region of the request's SigV4 scope."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) >= 4 else "us-east-1"


def _service_and_operation(headers: dict[str, str], body: bytes) -> tuple[str, str]:
    lower = {k.lower(): v for k, v in headers.items()}
    service = "unknown"
    auth = lower.get("authorization", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = _SCOPE_NAMES.get(scope[3], scope[3])
    target = lower.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if body and "x-www-form-urlencoded" in lower.get("content-type", ""):
        action = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))).get("Action")
        return service, action or "unknown"
    return service, "unknown"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stub: CloudWatchStub

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle and delayed ACKs add 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP_BY_HOP and k.lower() not in ("date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, extra: Iterable[tuple[str, str]] = ()) -> None:
        self._send(status, json.dumps(obj).encode(), [("Content-Type", JSON_CT), *extra])

    def do_GET(self) -> None:
        if self.path.startswith("/__stats__"):
            return self._json(200, self.stub.stats())
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._body())

    def _control(self, path: str, body: bytes) -> None:
        stub = self.stub
        if path == "/__reset__":
            stub.reset_stats()
        elif path == "/__clear__":
            stub.store.clear()
        elif path == "/__config__":
            cfg = json.loads(body or b"{}")
            if "latency_ms" in cfg:
                stub.latency_ms = float(cfg["latency_ms"])
            if "max_datapoints" in cfg:
                stub.max_datapoints = int(cfg["max_datapoints"])
        else:
            return self._json(404, {"error": f"unknown control endpoint {path}"})
        self._json(200, {"latency_ms": stub.latency_ms, "max_datapoints": stub.max_datapoints})

    def _handle(self, body: bytes) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/__") and path.endswith("__"):
            return self._control(path, body)
        headers = dict(self.headers.items())
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        stub = self.stub
        if not target.startswith(TARGET_PREFIX):
            service, operation = _service_and_operation(headers, body)
            stub.count(service, operation)
            try:
                status, out_headers, raw = stub.forward(self.command, self.path, headers, body)
            except ApiError as e:
                return self._json(e.status, {"__type": e.code, "message": e.message})
            except (OSError, http.client.HTTPException) as e:
                return self._json(502, {"__type": "BadGateway", "message": f"upstream failed: {e!r}"})
            return self._send(status, raw, out_headers)
        operation = target[len(TARGET_PREFIX):]
        if headers.get("Content-Encoding", headers.get("content-encoding", "")).lower() == "gzip":
            body = gzip.decompress(body)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            stub.count("cloudwatch", operation)
            return self._error(ApiError("SerializationException", "The request body is not valid JSON."))
        queries = len(params.get("MetricDataQueries") or []) if operation == "GetMetricData" else None
        stub.count("cloudwatch", operation, queries)
        try:
            if operation == "GetMetricData":
                if stub.latency_ms > 0:
                    time.sleep(stub.latency_ms / 1000.0)
                answer = stub.get_metric_data(params, _region(headers))
            elif operation == "PutMetricData":
                answer = stub.put_metric_data(params, _region(headers))
            else:
                raise ApiError("UnknownOperationException", f"{operation} is not served by this stub.")
        except ApiError as e:
            return self._error(e)
        except (KeyError, TypeError, ValueError) as e:
            return self._error(ApiError("InvalidParameterValue", f"malformed request: {e!r}"))
        self._json(200, answer)

    def _error(self, e: ApiError) -> None:
        self._json(e.status, {"__type": e.code, "message": e.message},
                   [("x-amzn-query-error", f"{e.code};Sender")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--upstream", help="where other AWS requests go (e.g. moto_server's URL)")
    args = parser.parse_args()
    stub = CloudWatchStub(args.host, args.port, args.latency_ms, args.upstream).start()
    print(stub.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stub.stop()


if __name__ == "__main__":
    main()
