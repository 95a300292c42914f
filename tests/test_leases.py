"""Shards, the lease plan and the coordinator's rules, with an in-memory state table."""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb.coordination import Coordinator
from dynamic_dynamodb.edge import LOGGER
from dynamic_dynamodb.leases import SHARDS, Lease, account_of, plan, shard_of
from dynamic_dynamodb.model import Target
from dynamic_dynamodb.policy import Memory
from dynamic_dynamodb.settings import Placement
from dynamic_dynamodb.state import decode_memory, encode_memory
from dynamic_dynamodb.statetable import LeaseLost, StateTableError


class FakeStateTable:
    """The StateTable methods over dicts, with the same conditions as the real writes."""

    name = "fake"

    def __init__(self) -> None:
        self.lease: dict[int, Lease] = {}
        self.heartbeats: dict[str, float] = {}
        self.memory: dict[int, dict[str, tuple[dict, float]]] = {}
        self.down = False  # a partition: every call fails
        self.tokens: dict[tuple[int, str], int] = {}
        self.writes = 0

    def _up(self) -> None:
        if self.down:
            raise StateTableError("connection timed out")

    def heartbeat(self, me, expires_at):
        self._up()
        self.heartbeats[me] = expires_at

    def leave(self, me):
        self._up()
        self.heartbeats.pop(me, None)

    def members(self, now):
        self._up()
        return {m for m, t in self.heartbeats.items() if t > now}

    def leases(self):
        self._up()
        return dict(self.lease)

    def take(self, shard, me, now, expires_at):
        self._up()
        old = self.lease.get(shard)
        if old is not None and old.expires_at > now and old.owner != me:
            raise LeaseLost("held")
        new = Lease(shard, me, expires_at, (old.token if old else 0) + 1, old.decided_at if old else 0.0)
        self.lease[shard] = new
        return new

    def _check(self, shard, me, token):
        self._up()
        old = self.lease.get(shard)
        if old is None or old.owner != me or old.token != token:
            raise LeaseLost("lost")
        return old

    def renew(self, shard, me, token, expires_at):
        self.lease[shard] = dataclasses.replace(self._check(shard, me, token), expires_at=expires_at)

    def mark_decided(self, shard, me, token, at):
        self.lease[shard] = dataclasses.replace(self._check(shard, me, token), decided_at=at)

    def release(self, shard, me, token):
        self.lease[shard] = dataclasses.replace(self._check(shard, me, token), expires_at=0)

    def holds(self, shard, me, token, now):
        self._up()
        lease = self.lease.get(shard)
        return lease is not None and lease.owner == me and lease.token == token and lease.expires_at > now

    def load(self, shard):
        self._up()
        return dict(self.memory.get(shard, {}))

    def save(self, shard, me, token, now, puts):
        self._up()
        for sk, m in puts.items():
            old = self.tokens.get((shard, sk))
            if old is not None and old > token:
                raise LeaseLost("a newer holder wrote it")
            self.tokens[(shard, sk)] = token
            self.writes += 1
            self.memory.setdefault(shard, {})[sk] = (m, now)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeScaler:
    def __init__(self) -> None:
        self.memory: dict[Target, Memory] = {}


HERE = Placement("us-east-1")


def coordinator(table, clock, me, interval=60.0, lease=30.0):
    return Coordinator(table, lease, lambda: interval, encode_memory, decode_memory, clock=clock, me=me)


def at(clock) -> datetime:
    return datetime.fromtimestamp(clock.t, tz=timezone.utc)


# ---- the pure parts ------------------------------------------------------------------------


def test_a_shard_is_stable_and_spreads_tables():
    assert shard_of("us-east-1", None, "orders") == shard_of("us-east-1", None, "orders")
    assert shard_of("us-east-1", None, "orders") != shard_of("eu-west-1", None, "orders") or \
        shard_of("us-east-1", None, "orders") != shard_of("us-east-1", "111122223333", "orders")
    counts = [0] * SHARDS
    for i in range(6400):
        counts[shard_of("us-east-1", None, f"t{i}")] += 1
    assert min(counts) > 50 and max(counts) < 160


def test_the_account_of_a_role_is_its_arns_account():
    assert account_of("arn:aws:iam::111122223333:role/x") == "111122223333"
    assert account_of(None) is None


@pytest.mark.parametrize("members, mine, expected_take, expected_release", [
    pytest.param({"a"}, 0, SHARDS, 0, id="alone-it-takes-every-shard"),
    pytest.param({"a", "b"}, 0, 32, 0, id="with-a-second-daemon-it-takes-half-of-the-free-ones"),
    pytest.param({"a", "b"}, 64, 0, 32, id="a-newcomer-makes-it-give-back-half"),
    pytest.param({"a", "b", "c"}, 10, 12, 0, id="below-its-share-it-takes-up-to-ceil-of-a-third"),
])
def test_the_plan_aims_at_an_even_share(members, mine, expected_take, expected_release):
    now = 100.0
    leases = {s: Lease(s, "a", now + 30, 1) for s in range(mine)}
    p = plan("a", now, leases, members)
    assert (len(p.take), len(p.release)) == (expected_take, expected_release)


@given(st.integers(1, 8), st.dictionaries(st.integers(0, SHARDS - 1),
                                          st.tuples(st.sampled_from("abcdefgh"), st.booleans())))
def test_a_plan_never_takes_a_shard_someone_else_holds(n, held):
    now = 100.0
    leases = {s: Lease(s, owner, now + 10 if live else now - 1, 1) for s, (owner, live) in held.items()}
    p = plan("a", now, leases, "abcdefgh"[:n])
    for s in p.take:
        assert s not in leases or not leases[s].held(now) or leases[s].owner == "a"
    for s in p.release:
        assert leases[s].owner == "a"
    assert not set(p.take) & set(p.release)


# ---- the coordinator -------------------------------------------------------------------------


def test_two_daemons_split_the_shards_and_a_newcomer_waits_an_interval_after_the_last_pass():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    assert len(a.held_shards()) == SHARDS
    scalers = {HERE: FakeScaler()}
    a.begin_pass(scalers, at(clock))
    assert a.decidable == set(range(SHARDS))
    a.end_pass(scalers, at(clock))
    clock.t += 5
    b = coordinator(table, clock, "b")
    b.round()  # nothing free yet
    a.round()  # a sees b: half of its shards are its surplus
    assert len(a.held_shards()) == SHARDS, "given back between passes, not in the middle of one"
    a.begin_pass(scalers, at(clock))
    b.round()
    assert len(a.held_shards()) == len(b.held_shards()) == SHARDS // 2
    b.begin_pass({HERE: FakeScaler()}, at(clock))
    assert b.decidable == set(), "its shards were decided 5 s ago, in this interval"
    clock.t += 60
    a.round()
    b.round()
    b.begin_pass({HERE: FakeScaler()}, at(clock))
    assert b.decidable == set(b.held_shards())


def test_a_daemon_that_lost_its_lease_in_a_partition_never_updates_nor_saves():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    scalers = {HERE: FakeScaler()}
    a.begin_pass(scalers, at(clock))
    table.down = True  # partition: a cannot renew
    for _ in range(3):
        clock.t += 10
        a.round()
    clock.t += 5
    table.down = False
    b = coordinator(table, clock, "b")
    b.round()  # a's leases (30 s) have expired: b takes them all
    assert len(b.held_shards()) == SHARDS
    # a still believes in its leases (no round since the partition healed): fencing says no
    shard = a.shard(HERE, "orders")
    assert shard in a.held_shards()
    assert a.fence(HERE, "orders") is False
    scalers[HERE].memory[Target("orders")] = Memory(decreases_today=1)
    writes = table.writes
    a.end_pass(scalers, at(clock))
    assert table.writes == writes, "the state write of a lost lease is refused"
    a.round()
    assert a.held_shards() == {} or shard not in a.held_shards()


def test_the_lease_check_says_once_why_there_is_no_update(caplog):
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    a.begin_pass({HERE: FakeScaler()}, at(clock))
    shard = a.shard(HERE, "orders")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        caplog.clear()  # only what the checks below log counts (the round above may log at INFO)
        assert a.fence(HERE, "orders") is True
        assert caplog.records == []
        table.down = True  # the check itself fails: an error, not a lost lease
        assert a.fence(HERE, "orders") is False
        table.down = False
        clock.t += 31  # expired: another daemon takes it
        b = coordinator(table, clock, "b")
        b.round()
        assert a.fence(HERE, "orders") is False
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0][0] == "ERROR" and lines[0][1].startswith("Lease check for orders failed: "), lines
    assert lines[1] == ("WARNING", f"orders: the lease of its shard {shard} was lost to another daemon; no update")


def test_memory_moves_with_its_shard():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    scalers = {HERE: FakeScaler()}
    a.begin_pass(scalers, at(clock))
    scalers[HERE].memory[Target("orders")] = Memory(decreases_today=2)
    a.end_pass(scalers, at(clock))
    a.stop()
    clock.t += 1
    b = coordinator(table, clock, "b")
    b.round()
    theirs = {HERE: FakeScaler()}
    b.begin_pass(theirs, at(clock))
    assert theirs[HERE].memory[Target("orders")].decreases_today == 2


def test_unchanged_memory_is_not_written_again():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    scalers = {HERE: FakeScaler()}
    a.begin_pass(scalers, at(clock))
    scalers[HERE].memory[Target("orders")] = Memory(decreases_today=1)
    a.end_pass(scalers, at(clock))
    writes = table.writes
    clock.t += 60
    a.round()
    a.begin_pass(scalers, at(clock))
    a.end_pass(scalers, at(clock))
    assert table.writes == writes


def test_a_pass_that_stalled_past_its_lease_no_longer_owns_its_tables():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    a.begin_pass({HERE: FakeScaler()}, at(clock))
    assert a.owns(HERE, "orders")
    clock.t += 31  # the pass hangs past the 30 s lease (no round could renew it)
    assert not a.owns(HERE, "orders")


def test_each_state_table_failure_is_counted_once_for_the_pass_that_asks():
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    assert a.take_failures() == 0
    scalers = {HERE: FakeScaler()}
    table.down = True
    a.round()  # heartbeat: one failure
    a.begin_pass(scalers, at(clock))  # the memory of every held, unloaded shard: one each
    held = len(a.held_shards())
    assert held == SHARDS
    assert a.fence(HERE, "orders") is False  # the lease check: one
    scalers[HERE].memory[Target("orders")] = Memory(decreases_today=1)
    a.decidable = set(a.held_shards())
    a.end_pass(scalers, at(clock))  # mark_decided of every decidable shard: one each
    assert a.take_failures() == 1 + held + 1 + held
    assert a.take_failures() == 0, "asked again: nothing new failed"


@pytest.mark.parametrize("sk, raw", [
    ("nonsense", encode_memory(Memory(decreases_today=3))),  # not REGION|ROLE|TABLE|INDEX
    ("us-east-1||orders|", [1, 2]),
    ("us-east-1||orders|", {"decreases_today": "many"}),
    ("us-east-1||orders|", {"decreases_today": -3}),
    ("us-east-1||orders|", {"last_decrease": "yesterday"}),
    ("us-east-1||orders|", None),
], ids=["sort key", "a list", "a word", "negative", "no time", "null"])
def test_an_impossible_memory_item_is_skipped_and_the_others_are_loaded(caplog, sk, raw):
    # written by another version, or by hand: it costs that item, never the shard or the pass
    table, clock = FakeStateTable(), Clock()
    a = coordinator(table, clock, "a")
    a.round()
    shard, other = a.shard(HERE, "orders"), a.shard(HERE, "events")
    table.memory.setdefault(shard, {})[sk] = (raw, clock.t)
    table.memory.setdefault(other, {})["us-east-1||events|"] = (encode_memory(Memory(decreases_today=2)), clock.t)
    scalers = {HERE: FakeScaler()}
    a.begin_pass(scalers, at(clock))
    assert scalers[HERE].memory == {Target("events"): Memory(decreases_today=2)}
    assert f"State table: memory of {sk} unreadable" in caplog.text
    assert a.take_failures() == 0, "an unreadable item is a warning, not a failed call"


class _Pages:
    """The query paginator of a client whose table holds these items."""

    def __init__(self, items: list) -> None:
        self.items = items

    def get_paginator(self, name: str) -> _Pages:
        assert name == "query"
        return self

    def paginate(self, **kwargs) -> list:
        return [{"Items": self.items}]


def test_a_state_item_that_cannot_be_read_is_skipped_by_the_state_table(caplog):
    from dynamic_dynamodb.statetable import StateTable

    good = {"pk": {"S": "state#3"}, "sk": {"S": "us-east-1||orders|"}, "memory": {"S": '{"decreases_today": 1}'},
            "seen": {"N": "1000"}}
    broken = [
        {"pk": {"S": "state#3"}, "sk": {"S": "a"}},  # no memory
        {"pk": {"S": "state#3"}, "sk": {"S": "b"}, "memory": {"S": "{not json"}},
        {"pk": {"S": "state#3"}, "sk": {"S": "c"}, "memory": {"N": "1"}},  # not a string
        {"pk": {"S": "state#3"}, "sk": {"S": "d"}, "memory": {"S": "{}"}, "seen": {"N": "soon"}},
        {"pk": {"S": "state#3"}, "sk": {"S": "e"}, "memory": {"S": "[" * 100_000 + "]" * 100_000}},
        {"pk": {"S": "state#3"}, "memory": {"S": "{}"}},  # no sort key
    ]
    found = StateTable(_Pages([*broken, good]), "dd-state").load(3)
    assert found == {"us-east-1||orders|": ({"decreases_today": 1}, 1000.0)}
    assert caplog.text.count("unreadable memory item in shard 3 skipped") == len(broken)
