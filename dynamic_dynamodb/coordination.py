"""Several daemons, one config: the shell around the leases (see leases.py and statetable.py).

A background thread keeps this daemon's heartbeat and leases alive every third of
`lease-seconds`, and runs the lease plan (take free or expired shards, give back a surplus).
The pass asks `owns()` which tables are its own this pass, `fence()` just before each
UpdateTable, and saves the memory of its shards through the state table, whose writes check the
lease in the same transaction. A shard taken over from another daemon is decided only once a
check interval has passed since its last holder finished a pass over it, so no table is decided
twice in one interval. SIGTERM gives every lease back at once; a killed daemon's leases expire.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .edge import LOGGER
from .leases import SHARDS, Lease, account_of, plan, shard_of
from .model import Target
from .policy import Memory
from .settings import Placement
from .statetable import LeaseLost, StateTable, StateTableError, parse_state_key, state_key

log = logging.getLogger(LOGGER)

EXPIRY_DAYS = 7  # memory of a target not seen for this long is dropped, as in the state file
RENEW_FRACTION = 3  # renew every lease-seconds / 3: two renewals may fail before a lease lapses
SAFETY = 0.2  # a lease with less than this share of lease-seconds left is not acted on
REWRITE_SECONDS = 3600  # unchanged memory is written again this often
VOLATILE = ("last_decided",)  # the time of the last decision: new every pass


def daemon_id() -> str:
    """This daemon's name in the state table: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Held:
    lease: Lease
    loaded: bool = False  # its memory is in the scalers


class Coordinator:
    """This daemon's leases, and the memory of the shards it holds."""

    def __init__(self, table: StateTable, lease_seconds: float, interval: Callable[[], float],
                 encode: Callable[[Memory], dict[str, Any]], decode: Callable[[dict[str, Any]], Memory],
                 clock: Callable[[], float] = time.time, me: str | None = None, shards: int = SHARDS) -> None:
        self.table = table
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.encode, self.decode = encode, decode
        self.clock = clock
        self.me = me or daemon_id()
        self.shards = shards
        self._held: dict[int, _Held] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # sort key -> (what was last written, less its volatile fields; when): unchanged memory is not
        # rewritten every pass, only once an hour (so `seen` and the last decision's time stay fresh)
        self._saved: dict[str, tuple[str, float]] = {}
        self.decidable: set[int] = set()  # the shards of the pass in progress
        self._to_release: set[int] = set()  # the plan's surplus, given back before the next pass
        # set when a shard is taken whose tables are overdue (their holder died): the loop runs a pass now
        self.wake = threading.Event()
        # state-table calls that failed since the last pass ended: that pass's failures (a run-once exits 1)
        self._failures = 0

    # ---- the background round -------------------------------------------------------------

    def start(self) -> None:
        """First round now (so the first pass has its shards), then the renewal thread."""
        self.round()
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / RENEW_FRACTION):
            self.round()

    def round(self) -> None:
        """Heartbeat, renew what we hold, then take or give back shards by the plan."""
        now = self.clock()
        expires = now + self.lease_seconds
        try:
            self.table.heartbeat(self.me, expires)
            with self._lock:
                held = dict(self._held)
            for shard, h in held.items():
                try:
                    self.table.renew(shard, self.me, h.lease.token, expires)
                    self._update(shard, lambda h: _Held(_replace(h.lease, expires_at=expires), h.loaded))
                except LeaseLost as e:
                    log.warning("Lease of shard %d lost: %s", shard, e)
                    self._drop(shard)
            leases = self.table.leases()
            members = self.table.members(now)
        except StateTableError as e:
            log.error("State table %s: %s; keeping the leases held until they expire", self.table.name, e)
            self._failed()
            return
        wanted = plan(self.me, now, leases, members, self.shards)
        with self._lock:
            # given back between passes (begin_pass), never in the middle of one: the shard's
            # decided_at then tells its next holder when this daemon last decided its tables
            self._to_release = set(wanted.release)
        for shard in wanted.take:
            try:
                lease = self.table.take(shard, self.me, now, expires)
            except StateTableError as e:
                log.debug("Shard %d not taken: %s", shard, e)
                continue
            with self._lock:
                self._held[shard] = _Held(lease)
            if now - lease.decided_at >= self.interval():
                self.wake.set()
        if wanted.take:
            log.info("Leases: %d of %d shard(s) held by %s (%d daemon(s) live)", len(self._held), self.shards,
                     self.me, len(members | {self.me}))

    def _failed(self) -> None:
        with self._lock:
            self._failures += 1

    def take_failures(self) -> int:
        """State-table calls that failed since this was last asked (each pass asks once, at its end)."""
        with self._lock:
            failures, self._failures = self._failures, 0
        return failures

    def _update(self, shard: int, change: Callable[[_Held], _Held]) -> None:
        with self._lock:
            if shard in self._held:
                self._held[shard] = change(self._held[shard])

    def _drop(self, shard: int) -> None:
        with self._lock:
            self._held.pop(shard, None)

    def stop(self) -> None:
        """Give every lease back and leave (SIGTERM): the others take the shards at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            held, self._held = self._held, {}
        for shard, h in held.items():
            try:
                self.table.release(shard, self.me, h.lease.token)
            except StateTableError as e:
                log.warning("Release of shard %d: %s", shard, e)
        try:
            self.table.leave(self.me)
        except StateTableError as e:
            log.warning("State table %s: %s", self.table.name, e)
        log.info("Leases released: %d shard(s)", len(held))

    # ---- what the pass asks ---------------------------------------------------------------

    def held_shards(self) -> dict[int, Lease]:
        """The shards held now, with their leases."""
        with self._lock:
            return {s: h.lease for s, h in self._held.items()}

    def shard(self, placement: Placement, table: str) -> int:
        """The shard of a table of a placement."""
        return shard_of(placement.region, account_of(placement.role_arn), table, self.shards)

    def begin_pass(self, scalers: dict[Placement, Any], now: datetime) -> None:
        """Load the memory of newly held shards, drop that of lost ones; fix the shards of this pass."""
        at = now.timestamp()
        margin = self.lease_seconds * SAFETY
        self.wake.clear()  # this pass serves what was taken so far
        with self._lock:
            surplus, self._to_release = self._to_release, set()
        for shard in sorted(surplus):
            with self._lock:
                h = self._held.pop(shard, None)
            if h is None:
                continue
            try:
                self.table.release(shard, self.me, h.lease.token)
            except StateTableError as e:
                log.warning("Release of shard %d: %s", shard, e)
        if surplus:
            log.info("Leases: gave back %d shard(s) for the other daemons; %d held", len(surplus), len(self._held))
        with self._lock:
            held = dict(self._held)
        for shard, h in held.items():
            if not h.loaded:
                try:
                    self._load(shard, scalers, at)
                except StateTableError as e:
                    log.error("Memory of shard %d not loaded: %s; its tables wait", shard, e)
                    self._failed()
                    continue
                self._update(shard, lambda h: _Held(h.lease, True))
        for placement, scaler in scalers.items():
            for target in list(scaler.memory):
                if self.shard(placement, target.table) not in held:
                    del scaler.memory[target]
        with self._lock:
            held = dict(self._held)
        # a shard taken over is decided once an interval has passed since its last holder's pass began
        # (a tenth of it spared for the jitter of the pass schedule)
        interval = self.interval()
        self.decidable = {
            shard for shard, h in held.items()
            if h.loaded and h.lease.expires_at - at > margin and at - h.lease.decided_at >= interval * 0.9}

    def _load(self, shard: int, scalers: dict[Placement, Any], at: float) -> None:
        by_key = {(p.region, p.role_arn or ""): s for p, s in scalers.items()}
        for sk, (raw, seen) in self.table.load(shard).items():
            if at - seen > EXPIRY_DAYS * 86400:
                continue
            try:
                region, role, table, index = parse_state_key(sk)
                memory = self.decode(raw)
            except (ValueError, KeyError, TypeError) as e:
                log.warning("State table: memory of %s unreadable (%s); starting fresh", sk, e)
                continue
            scaler = by_key.get((region, role))
            if scaler is not None:
                scaler.memory[Target(table, index or None)] = memory
                self._saved[sk] = (_fingerprint(raw), seen)

    def owns(self, placement: Placement, table: str) -> bool:
        """Is this table ours to decide in this pass, and is its lease still running by our clock?"""
        shard = self.shard(placement, table)
        if shard not in self.decidable:
            return False
        lease = self.held_shards().get(shard)
        return lease is not None and lease.expires_at > self.clock()

    def fence(self, placement: Placement, table: str) -> bool:
        """Just before an UpdateTable: do we still hold the table's lease (a consistent read)? Says why not."""
        shard = self.shard(placement, table)
        lease = self.held_shards().get(shard)
        if lease is None:
            log.warning("%s: this daemon no longer holds the lease of its shard %d; no update", table, shard)
            return False
        try:
            held = self.table.holds(shard, self.me, lease.token, self.clock())
        except StateTableError as e:
            log.error("Lease check for %s failed: %s; no update", table, e)
            self._failed()
            return False
        if not held:
            log.warning("%s: the lease of its shard %d was lost to another daemon; no update", table, shard)
        return held

    def end_pass(self, scalers: dict[Placement, Any], now: datetime) -> None:
        """Save the changed memory of our shards (fenced) and record that their pass is done."""
        at = now.timestamp()
        held = self.held_shards()
        changes: dict[int, dict[str, dict[str, Any]]] = {}
        for placement, scaler in scalers.items():
            for target, memory in scaler.memory.items():
                shard = self.shard(placement, target.table)
                if shard not in held or memory == Memory():
                    continue
                sk = state_key(placement.region, placement.role_arn, target.table, target.index)
                encoded = self.encode(memory)
                written = self._saved.get(sk)
                if written is None or written[0] != _fingerprint(encoded) or at - written[1] >= REWRITE_SECONDS:
                    changes.setdefault(shard, {})[sk] = encoded
        for shard in sorted(self.decidable & set(held)):
            lease = held[shard]
            if lease.expires_at <= self.clock():
                log.warning("Lease of shard %d expired during the pass; its memory is not saved", shard)
                continue
            try:
                if shard in changes:
                    self.table.save(shard, self.me, lease.token, at, changes[shard])
                    self._saved.update({sk: (_fingerprint(m), at) for sk, m in changes[shard].items()})
                self.table.mark_decided(shard, self.me, lease.token, at)
                self._update(shard, lambda h: _Held(_replace(h.lease, decided_at=at), h.loaded))
            except StateTableError as e:
                log.warning("Memory of shard %d not saved: %s", shard, e)
                self._failed()


def _fingerprint(memory: dict[str, Any]) -> str:
    """The encoded memory without the fields that change every pass by themselves."""
    return json.dumps({k: v for k, v in memory.items() if k not in VOLATILE}, sort_keys=True)


def _replace(lease: Lease, **changes: Any) -> Lease:
    return dataclasses.replace(lease, **changes)


def utc(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (for log lines)."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def summary(leases: Iterable[Lease], now: float) -> dict[str, list[int]]:
    """Which daemon holds which shards (for status and logs)."""
    out: dict[str, list[int]] = {}
    for lease in leases:
        if lease.held(now):
            out.setdefault(lease.owner, []).append(lease.shard)
    return {owner: sorted(shards) for owner, shards in sorted(out.items())}
