"""Sharing the work of one config between several daemons: shards and the lease plan (pure).

Targets are split into SHARDS shards by a stable hash of (region, account, table), so a table
and its GSIs always share a shard. Each shard is held by at most one daemon at a time through
a lease (owner, expiry, fencing token) kept in the state table (statetable.py). Every daemon
runs the same plan each round: with M live daemons each aims at ceil(SHARDS / M) shards; it
takes free or expired shards while it holds fewer, and gives back its surplus when it holds
more, so daemons joining or leaving rebalance within a few rounds without stealing.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SHARDS = 64  # enough to spread 10,000 tables over a few dozen daemons; fixed, so hashes never move


def shard_of(region: str, account: str | None, table: str, shards: int = SHARDS) -> int:
    """The shard of a table: the same on every daemon, in every run (not Python's salted hash)."""
    key = f"{region}\x00{account or ''}\x00{table}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % shards


def account_of(role_arn: str | None) -> str | None:
    """The account id in a role ARN (arn:aws:iam::123456789012:role/x); None for our own account."""
    if not role_arn:
        return None
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


@dataclass(frozen=True)
class Lease:
    """One shard's lease item."""

    shard: int
    owner: str
    expires_at: float  # epoch seconds
    token: int  # raised by every take: a holder whose token changed has lost the lease
    decided_at: float = 0.0  # when its holder last finished a pass over the shard

    def held(self, now: float) -> bool:
        """True while someone holds it."""
        return bool(self.owner) and self.expires_at > now


@dataclass(frozen=True)
class Plan:
    """What a daemon does with the leases this round."""

    take: tuple[int, ...] = ()
    release: tuple[int, ...] = ()
    target: int = 0  # the number of shards it aims at


def _spread(me: str, shard: int) -> int:
    """A per-daemon order of the shards, so daemons starting together reach for different ones."""
    return int.from_bytes(hashlib.blake2b(f"{me}\x00{shard}".encode(), digest_size=4).digest(), "big")


def plan(me: str, now: float, leases: Mapping[int, Lease], members: Iterable[str], shards: int = SHARDS) -> Plan:
    """Which shards to take and which to give back, from the leases and the live daemons (me included)."""
    live = set(members) | {me}
    target = math.ceil(shards / len(live))
    mine = sorted(s for s, lease in leases.items() if lease.owner == me and lease.held(now))
    if len(mine) > target:
        # give back the surplus (the last in my own order), so the newcomers find free shards
        surplus = sorted(mine, key=lambda s: _spread(me, s))[target:]
        return Plan(release=tuple(sorted(surplus)), target=target)
    free = [s for s in range(shards) if s not in leases or not leases[s].held(now)]
    wanted = sorted(free, key=lambda s: _spread(me, s))[:target - len(mine)]
    return Plan(take=tuple(sorted(wanted)), target=target)
