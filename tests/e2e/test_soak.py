"""The fault soak in short (benchmarks/soak.py, 30 passes), and the fault proxy it stands on.

The proxy tests check each fault kind against a real boto3 client: what surfaces, and
how many attempts botocore made (a body fault must reach the parser once, not be retried
as a checksum mismatch). The soak test runs the real daemon in the foreground through the
proxy and checks the soak's figures.

Set SOAK_STRICT=1 to turn the known-bug expectations below into plain failures.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from support.cli import REPO
from support.faults import KINDS, FaultProxy, RandomFaults, mangle
from support.metrics import create_table
from support.moto import make_client

pytestmark = pytest.mark.e2e

TABLE = "soak-proxy-orders"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak_benchmark", REPO / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fault_proxy(moto):
    chosen: dict[str, str | None] = {"kind": None}
    proxy = FaultProxy(moto.url, planner=lambda info, invocation, attempt: chosen["kind"]
                       if info.operation == "DescribeTable" else None, hang_seconds=2.5).start()
    proxy.choose = lambda kind: chosen.update(kind=kind)
    create_table(make_client("dynamodb", moto.url), TABLE, 5, 5, gsis={"by-customer": (3, 3)})
    yield proxy
    proxy.stop()


def client(url: str):
    return make_client("dynamodb", url, Config(retries={"mode": "standard", "total_max_attempts": 3},
                                               read_timeout=1, connect_timeout=2))


# kind -> (what the client sees: an exception class name, a ClientError code, or "parsed")
EXPECTED = {
    "http500": "InternalServerError",
    "http503": "ServiceUnavailable",
    "throttle": "ThrottlingException",
    "reset": "ConnectionClosedError",
    "reset_after": "ConnectionClosedError",
    "hang": "ReadTimeoutError",
}
BODY_KINDS = ("truncated", "garbage", "not_utf8", "missing_field", "bad_type")


@pytest.mark.parametrize("kind", sorted(EXPECTED) + list(BODY_KINDS))
def test_each_fault_kind_reaches_the_client_as_on_a_real_network(fault_proxy, kind):
    fault_proxy.choose(kind)
    outcome = "parsed"
    answer = None
    try:
        answer = client(fault_proxy.url).describe_table(TableName=TABLE)
    except ClientError as e:
        outcome = e.response["Error"]["Code"]
    except (BotoCoreError, ValueError) as e:
        outcome = type(e).__name__
    attempts = [r for r in fault_proxy.calls("DescribeTable") if r["kind"] == kind]
    if kind in BODY_KINDS:
        # botocore raises a parser error, or hands back a dict without a usable description
        if outcome == "parsed":
            table = answer.get("Table")
            assert not isinstance(table, dict) or table["ProvisionedThroughput"]["ReadCapacityUnits"] == "lots"
        assert len(attempts) == 1, "a body fault is parsed once (its checksum matches), not retried"
        return
    assert outcome == EXPECTED[kind], outcome
    assert len(attempts) == 3, "the planner hit every attempt of the call"


def test_update_only_kinds_and_the_rules_behind_them(moto):
    planner = RandomFaults(seed=3, rate=1.0, update_rate=1.0, persistent=1.0, kinds=("in_use", "limit_exceeded"))
    with FaultProxy(moto.url, planner=planner) as proxy:
        ddb = make_client("dynamodb", moto.url)
        create_table(ddb, TABLE, 5, 5)
        answer = client(proxy.url).describe_table(TableName=TABLE)  # not an update: never hit
        assert answer["Table"]["TableName"] == TABLE
        with pytest.raises(ClientError) as refused:
            client(proxy.url).update_table(TableName=TABLE, ProvisionedThroughput={
                "ReadCapacityUnits": 6, "WriteCapacityUnits": 5})
    assert refused.value.response["Error"]["Code"] in ("ResourceInUseException", "LimitExceededException")
    assert sum(planner.counts.values()) >= 1


def test_planner_is_seeded_and_persistent_faults_hit_every_attempt():
    from support.rules_proxy import RequestInfo

    def info(op: str) -> RequestInfo:
        return RequestInfo("POST", "/", "dynamodb", op, [TABLE], {})

    def draws(seed: int) -> list:
        planner = RandomFaults(seed=seed, rate=0.5, hang_budget=0)
        return [planner(info("DescribeTable"), f"call-{i}", 1) for i in range(200)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    hit = [k for k in draws(5) if k]
    assert 60 < len(hit) < 140 and "hang" not in hit and "in_use" not in hit
    planner = RandomFaults(seed=1, rate=1.0, persistent=1.0, kinds=("http500",))
    assert [planner(info("ListTables"), "same-call", a) for a in (1, 2, 3)] == ["http500"] * 3
    planner = RandomFaults(seed=1, rate=1.0, persistent=0.0, kinds=("http500",))
    assert [planner(info("ListTables"), "same-call", a) for a in (1, 2, 3)] == ["http500", None, None]


def test_mangled_bodies_are_what_their_names_say():
    body = b'{"Table": {"TableName": "t", "ProvisionedThroughput": {"ReadCapacityUnits": 5}}}'
    assert len(mangle("truncated", "DescribeTable", body)) < len(body)
    with pytest.raises(UnicodeDecodeError):
        mangle("not_utf8", "DescribeTable", body).decode("utf-8")
    assert b"Table" not in mangle("missing_field", "DescribeTable", body)
    assert b'"lots"' in mangle("bad_type", "DescribeTable", body)
    assert mangle("bad_type", "ListTables", b'{"TableNames": ["a"]}') == b'{"TableNames": 7}'
    assert set(KINDS) >= set(EXPECTED) | set(BODY_KINDS)


@pytest.mark.xdist_group("daemons")  # with the shared-state tests: one busy daemon run at a time
def test_thirty_passes_under_faults(moto, tmp_path):
    soak = load_soak()
    figures = soak.run_soak(passes=30, seed=7, workdir=tmp_path / "soak", moto_url=moto.url)
    report = figures.report()
    # the instrument did its job: every pass ran, faults of most kinds, every disturbance
    assert figures.passes >= figures.passes_target, report
    assert len([k for k, n in figures.faults.items() if n]) >= 7, report
    assert figures.recreations >= 2 and figures.moves >= 1, report
    assert sum(figures.kills.values()) >= 3, report
    assert figures.owed > 30 * 4, report
    # what today's daemon already gets right
    assert figures.deaths == 0, report
    assert figures.outside_limits == 0, report
    assert figures.refused_decreases == 0 and figures.refused_noops == 0, report
    assert figures.state_corrupt == 0, report
    known = []
    if figures.passes_lost or figures.unexpected_errors or figures.tracebacks:
        known.append("issue 10.3: an unreadable DescribeTable/ListTables answer escapes the adapter "
                     "(KeyError 'Table', ValueError on a mistyped number) and a failed GetMetricData "
                     "batch is not split, so whole passes are lost")
    if figures.temp_left_behind:
        known.append("issue 10.2: a SIGKILL during the state write leaves its temporary file behind")
    if figures.foreign_lost:
        known.append("issue 10.2: saving the state drops the entries of other configurations and regions")
    if figures.convergence is None or figures.convergence > soak.CONVERGENCE_TARGET:
        known.append("issue 10.2: memory is keyed by table name, so a recreated table inherits the old "
                     "incarnation's spent decrease budget and its decrease waits (not converged)")
    if figures.limit_exceeded_resent:
        known.append("issue 10.4: botocore resends a LimitExceededException that is not the decrease rule")
    if known and not os.environ.get("SOAK_STRICT"):
        pytest.xfail("; ".join(known) + "\n" + report)
    assert figures.ok, report
