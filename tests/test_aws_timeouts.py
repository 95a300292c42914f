"""An endpoint that accepts and never answers: each call, and each pass, is bounded, and a
stop gives up the calls in flight. Real botocore clients against a SilentServer, with short
timeouts (aws.READ_TIMEOUT, aws.CALL_BUDGET) so that the tests take seconds."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from support.metrics import create_table
from support.silent import SilentServer

from dynamic_dynamodb import aws, cli, config
from dynamic_dynamodb.loop import Scaler, utcnow
from dynamic_dynamodb.model import AwsError
from dynamic_dynamodb.reasons import Reason

READ = 0.5  # seconds of the read timeouts below; CALL_BUDGET 1.2 leaves room for two attempts


@pytest.fixture
def short_timeouts(monkeypatch):
    for service in ("default", "cloudwatch"):
        monkeypatch.setitem(aws.READ_TIMEOUT, service, READ)
    monkeypatch.setattr(aws, "CALL_BUDGET", 2.4 * READ)


@pytest.fixture
def silent():
    with SilentServer() as server:
        yield server


def make(service: str, url: str, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    conn = aws.Connection("us-east-1", "k", "s")
    return aws.make_client(aws.make_session(conn), service, conn)


def test_a_timed_out_call_is_retried_only_within_the_call_budget(short_timeouts, silent, monkeypatch):
    ddb = make("dynamodb", silent.url, monkeypatch)
    started = time.monotonic()
    with pytest.raises(AwsError, match="Read timeout") as raised:
        aws.DynamoTables(ddb).list_tables()
    # botocore's standard mode would make 3 attempts; the third could not end within the budget
    assert raised.value.code == "ReadTimeoutError"
    assert silent.connections == 2
    assert time.monotonic() - started < 2 * READ + 1


def test_within_a_pass_an_endpoint_that_timed_out_is_not_asked_again_until_the_next(short_timeouts, silent,
                                                                                      monkeypatch):
    tables = aws.DynamoTables(make("dynamodb", silent.url, monkeypatch))
    tables.begin_pass(threading.Event())
    with pytest.raises(AwsError, match="Read timeout"):
        tables.list_tables()
    sent = silent.connections
    started = time.monotonic()
    with pytest.raises(aws.TimedOutEarlier, match="timed out earlier in this pass") as raised:
        tables.describe("orders")
    assert time.monotonic() - started < READ / 2 and silent.connections == sent  # no read timeout waited
    assert "Read timeout on endpoint URL" in str(raised.value) and raised.value.code == "TimedOutEarlier"
    tables.begin_pass(threading.Event())  # the next pass asks again
    with pytest.raises(AwsError, match="Read timeout"):
        tables.describe("orders")
    assert silent.connections > sent


def test_a_stop_gives_up_a_call_in_flight_at_once(silent, monkeypatch):
    # the real timeouts: without the stop this call would wait 2 x 15 s
    metrics = aws.CloudWatchMetrics(make("cloudwatch", silent.url, monkeypatch))
    stop = threading.Event()
    metrics.begin_pass(stop)
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(aws.Stopping):
        metrics.client.list_metrics()
    assert time.monotonic() - started < 1.0 and silent.connections == 1
    with pytest.raises(aws.Stopping, match="not sent: stopping"):  # and nothing more is sent
        metrics.client.list_metrics()
    assert silent.connections == 1


def test_an_attempt_is_bounded_in_full_not_per_read(monkeypatch):
    """An endpoint that sends a byte now and then never hits the socket's read timeout."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    done = threading.Event()

    def dribble() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not done.wait(0.2):
            try:
                conn.sendall(b" ")
            except OSError:
                return

    threading.Thread(target=dribble, daemon=True).start()
    monkeypatch.setitem(aws.READ_TIMEOUT, "default", READ)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT", READ)
    monkeypatch.setattr(aws, "CALL_BUDGET", 0.1)  # no retry
    ddb = make("dynamodb", f"http://127.0.0.1:{listener.getsockname()[1]}", monkeypatch)
    started = time.monotonic()
    try:
        with pytest.raises(AwsError, match="Read timeout"):
            aws.DynamoTables(ddb).list_tables()
        assert time.monotonic() - started < 2 * READ + 0.5
    finally:
        done.set()
        listener.close()


def test_a_timeout_is_not_a_reason_to_split_a_batch(short_timeouts, silent, monkeypatch):
    from test_aws_answers import fleet_queries

    metrics = aws.CloudWatchMetrics(make("cloudwatch", silent.url, monkeypatch), batch_size=500, concurrency=1)
    with pytest.raises(AwsError, match="Read timeout"):
        metrics.fetch(fleet_queries(125))
    assert silent.connections == 2  # one call, two attempts: no halves


CONFIG = """[global]
check-interval: 5
metrics-batch-size: 4
[default_options]
scaling-policy: forecast
[table: {prefix}.*]
"""


def test_a_pass_against_a_cloudwatch_that_never_answers_costs_one_call_not_one_per_batch(
        short_timeouts, silent, moto, monkeypatch, tmp_path, caplog):
    ddb = make("dynamodb", moto.url, monkeypatch)
    prefix = f"silent-{uuid.uuid4().hex[:8]}-"  # the server is shared by the worker's tests
    for i in range(12):
        create_table(ddb, f"{prefix}{i:02d}", 50, 50)
    path = tmp_path / "dd.conf"
    path.write_text(CONFIG.format(prefix=prefix))
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", silent.url)
    settings = config.load_settings(["-c", str(path)])
    scaler = Scaler(settings, cli.build_ports(settings))
    started = time.monotonic()
    report = scaler.run_pass(utcnow())
    elapsed = time.monotonic() - started
    # 12 tables of 12 series in batches of 4 (36 calls, and the start-up history's): before,
    # each batch waited its own three timeouts and was then tried again in halves
    assert elapsed < aws.CALL_BUDGET + 1.5, elapsed
    assert silent.connections <= 2 * aws.METRICS_CONCURRENCY
    assert len(report.decisions) == 12 and report.failures == 12
    assert all(d.skipped is Reason.METRICS_UNAVAILABLE and not d.decreasing for d in report.decisions)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("Cannot read CloudWatch metrics" in line for line in lines) == 1
    assert sum("Cannot read the recent history" in line for line in lines) == 1
    assert not any(r.exc_info for r in caplog.records)
    sent = silent.connections
    scaler.run_pass(utcnow())  # the next pass asks CloudWatch again
    assert silent.connections > sent
