"""The state table's conditional writes against a second DynamoDB implementation, dynalite.

dynalite (an npm package; `make venv` installs it into .venv/node_modules when npm is there)
implements DynamoDB's condition expressions on its own, so the lease rules are checked
against more than moto. Skipped where node or dynalite is missing.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from support.moto import CLIENT_CONFIG, free_port
from support.wait import wait_for

from dynamic_dynamodb.statetable import LeaseLost, StateTable

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DYNALITE = REPO / ".venv" / "node_modules" / ".bin" / "dynalite"


@pytest.fixture(scope="module")
def dynalite():
    binary = str(DYNALITE) if DYNALITE.exists() else shutil.which("dynalite")
    if binary is None or shutil.which("node") is None:
        pytest.skip("dynalite is not installed (npm install dynalite)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id="x", aws_secret_access_key="x", config=CLIENT_CONFIG)

    def up() -> bool:
        try:
            client.list_tables()
            return True
        except Exception:  # noqa: BLE001 - not listening yet
            return False
    wait_for(up, timeout=20, what="dynalite listening")
    yield client
    proc.terminate()
    proc.wait(timeout=10)


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
