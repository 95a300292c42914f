"""Prometheus metrics and the health check: an observer of pass reports, never part of a decision.

The loop's shell hands every finished pass to `Metrics.observe`; `/metrics` and `/healthz`
are served from a background thread by the standard library's WSGI server and
prometheus-client's own exposition.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from . import policy
from .model import Dim, Target
from .policy import Decision, Memory
from .settings import ConfigError

PREFIX = "dynamic_dynamodb"
TARGET_LABELS = ("table", "index", "region", "dimension")
HEALTH_GRACE_SECONDS = 60.0  # on top of two check intervals (health-grace)


def healthy(last_pass_end: float, now: float, interval: float, grace: float = HEALTH_GRACE_SECONDS) -> bool:
    """True while the last pass (or the start, before any) ended within two intervals plus the grace."""
    return now - last_pass_end <= 2 * interval + grace


@dataclass
class Liveness:
    """When the loop last finished a pass, on the monotonic clock; read by /healthz and the watchdog."""

    interval: Callable[[], float]
    clock: Callable[[], float] = time.monotonic
    grace: Callable[[], float] = lambda: HEALTH_GRACE_SECONDS  # health-grace, re-read with the interval
    last_pass_end: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last_pass_end = self.clock()  # the start counts as the first "pass" until one ends

    def pass_ended(self) -> None:
        """A pass has just finished."""
        self.last_pass_end = self.clock()

    def healthy(self) -> bool:
        """See `healthy`."""
        return healthy(self.last_pass_end, self.clock(), self.interval(), self.grace())


@dataclass(frozen=True)
class TargetSample:
    """One table or GSI after a pass, as the metrics show it."""

    target: Target
    region: str
    decision: Decision
    memory: Memory


def decreases_left(decision: Decision, memory: Memory, now: datetime) -> int:
    """Free decreases of the UTC day still unspent, as the decrease planner counts them."""
    spent, _ = policy.decreases_spent(decision.status, memory, now)
    return max(0, policy.FREE_DECREASES_PER_DAY - spent)


class Metrics:
    """The daemon's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.provisioned = Gauge(f"{PREFIX}_provisioned_units", "Provisioned capacity units", TARGET_LABELS,
                                 registry=r)
        self.consumed = Gauge(f"{PREFIX}_consumed_units", "Consumed capacity units per second over the lookback "
                              "window", TARGET_LABELS, registry=r)
        self.utilisation = Gauge(f"{PREFIX}_utilisation_ratio", "Consumed over provisioned capacity (1 = 100 %)",
                                 TARGET_LABELS, registry=r)
        self.decreases_left = Gauge(f"{PREFIX}_decreases_left_today", "Free decreases of the UTC day still unspent",
                                    ("table", "index", "region"), registry=r)
        self.decisions = Counter(f"{PREFIX}_decisions", "Decisions by reason code", ("reason", "dimension"),
                                 registry=r)
        self.updates = Counter(f"{PREFIX}_updates", "UpdateTable calls DynamoDB accepted", registry=r)
        self.prewarms = Counter(f"{PREFIX}_prewarms", "Warm-throughput raises asked for ahead of a peak, by "
                                "outcome (pre_warmed, pre_warm_refused)", ("reason",), registry=r)
        self.aws_errors = Counter(f"{PREFIX}_aws_errors", "AWS calls that failed, by operation and error code",
                                  ("operation", "code"), registry=r)
        self.pass_duration = Histogram(f"{PREFIX}_pass_duration_seconds", "Duration of a pass", registry=r,
                                       buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
        self.last_pass = Gauge(f"{PREFIX}_last_pass_timestamp_seconds", "Unix time the last pass ended",
                               registry=r)
        self.passes_failed = Counter(f"{PREFIX}_pass_failures", "Unexpected failures in passes", registry=r)
        self.shards_held = Gauge(f"{PREFIX}_shards_held", "Shards of the tables this daemon holds a lease on "
                                 "(with a state table)", ("daemon",), registry=r)
        self._targets: set[tuple[str, str, str]] = set()  # (table, index, region) with gauges

    def observe(self, samples: Iterable[TargetSample], updates: int, failures: int,
                aws_errors: Iterable[tuple[str, str]], now: datetime, seconds: float,
                shards: tuple[str, int] | None = None, prewarms: Iterable[tuple[Target, Any]] = ()) -> None:
        """Record one finished pass (`shards`: this daemon's id and the shards it holds; `prewarms`:
        the pass's warm-throughput requests, by target and reason code)."""
        for _target, code in prewarms:
            self.prewarms.labels(str(code)).inc()
        if shards is not None:
            self.shards_held.labels(shards[0]).set(shards[1])
        seen: set[tuple[str, str, str]] = set()
        for s in samples:
            index = s.target.index or ""
            seen.add((s.target.table, index, s.region))
            for d in s.decision.dims():
                self.decisions.labels(d.code.value, d.dim.value).inc()
            if s.decision.skipped is not None:  # no capacity was looked at, or no data came
                continue
            for d in s.decision.dims():
                labels = (s.target.table, index, s.region, d.dim.value)
                self.provisioned.labels(*labels).set(d.current)
                if d.consumed_pct is not None:
                    self.consumed.labels(*labels).set(d.consumed_pct * d.current / 100.0)
                    self.utilisation.labels(*labels).set(d.consumed_pct / 100.0)
            self.decreases_left.labels(s.target.table, index, s.region).set(decreases_left(s.decision, s.memory, now))
        self.updates.inc(updates)
        if failures:
            self.passes_failed.inc(failures)
        aws_errors = list(aws_errors)
        for operation, code in aws_errors:
            self.aws_errors.labels(operation, code or "none").inc()
        # a pass that missed nothing and no longer sees a target (deleted, no longer matched, or
        # its shard handed to another daemon) drops its gauges; after a failure it may be back
        if not failures and not aws_errors:
            for gone in self._targets - seen:
                self._forget(*gone)
            self._targets = seen
        else:
            self._targets |= seen
        self.pass_duration.observe(seconds)
        self.last_pass.set(now.timestamp() + seconds)

    def _forget(self, table: str, index: str, region: str) -> None:
        """Remove the per-target gauges of one table or GSI."""
        for gauge in (self.provisioned, self.consumed, self.utilisation):
            for dim in Dim:
                with contextlib.suppress(KeyError):
                    gauge.remove(table, index, region, dim.value)
        with contextlib.suppress(KeyError):
            self.decreases_left.remove(table, index, region)

    def names(self) -> set[str]:
        """Every series name a scrape can show (a counter's _total, a histogram's _bucket...)."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names: set[str] = set()
        for family in self.registry.collect():
            names |= {family.name, *(family.name + suffix for suffix in suffixes.get(family.type, ()))}
        return names


def prewarms_of(fleet) -> Iterator[tuple[Target, Any]]:
    """The warm-throughput requests of a Fleet's last pass (target, reason code)."""
    for scaler in fleet.scalers.values():
        if scaler.last_report is not None:
            yield from scaler.last_report.prewarms


def samples_of(fleet) -> Iterator[TargetSample]:
    """The targets of a Fleet's last pass, with their region and memory."""
    for placement, scaler in fleet.scalers.items():
        report = scaler.last_report
        if report is None:
            continue
        for d in report.decisions:
            yield TargetSample(d.target, placement.region, d, scaler.memory.get(d.target, Memory()))


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not log lines."""


def serve(metrics: Metrics, liveness: Liveness, port: int, address: str = "127.0.0.1"):
    """Start /metrics and /healthz in a daemon thread; the server (call .shutdown() to stop it).

    A port that cannot be bound is a configuration error naming it."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            ok = liveness.healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"no pass finished in two check intervals plus health-grace\n"]
        return exposition(environ, start_response)

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

    try:
        httpd = make_server(address, port, app, Server, handler_class=_Quiet)
    except OSError as e:
        raise ConfigError(f"metrics-port {port}: cannot listen on {address}: {e.strerror or e}") from None
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()
    return httpd

