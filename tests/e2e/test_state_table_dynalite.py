"""The state table's conditional writes against a second DynamoDB implementation, dynalite.

dynalite implements DynamoDB's condition expressions on its own, so the lease rules are checked
against more than moto. Skipped where node or dynalite is missing (support/dynalite.py).
"""
from __future__ import annotations

import time

import pytest
from support.dynalite import dynalite as start_dynalite

from dynamic_dynamodb.statetable import LeaseLost, StateTable

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dynalite():
    with start_dynalite() as (_, client):
        yield client


def test_leases_and_fenced_memory_writes_hold_on_dynalite(dynalite):
    table = StateTable(dynalite, f"state-{time.monotonic_ns()}")
    assert table.ensure(create=True) is True
    assert table.ensure(create=True) is False
    now = time.time()
    a = table.take(3, "a", now, now + 30)
    with pytest.raises(LeaseLost):
        table.take(3, "b", now + 1, now + 31)  # held
    b = table.take(3, "b", now + 31, now + 61)  # expired: taken over with a newer token
    assert b.token == a.token + 1
    assert not table.holds(3, "a", a.token, now + 32) and table.holds(3, "b", b.token, now + 32)
    with pytest.raises(LeaseLost):
        table.renew(3, "a", a.token, now + 90)
    table.save(3, "b", b.token, now + 32, {"us-east-1||orders|": {"decreases_today": 2}})
    with pytest.raises(LeaseLost):  # the stale holder cannot overwrite what the new one wrote
        table.save(3, "a", a.token, now + 33, {"us-east-1||orders|": {"decreases_today": 0}})
    assert table.load(3)["us-east-1||orders|"][0] == {"decreases_today": 2}
    table.release(3, "b", b.token)
    c = table.take(3, "c", now + 34, now + 64)  # released: free at once
    assert c.token == b.token + 1
    table.heartbeat("c", now + 64)
    assert table.members(now + 35) == {"c"}
    table.leave("c")
    assert table.members(now + 35) == set()
