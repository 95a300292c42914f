"""The daemon's own job against a second DynamoDB implementation: dynalite for DynamoDB, moto for CloudWatch.

Each service's endpoint comes from boto3's own variables (AWS_ENDPOINT_URL_DYNAMODB,
AWS_ENDPOINT_URL_CLOUDWATCH), in another region than us-east-1. dynalite keeps a table
UPDATING for a while after an update, refuses an update that changes nothing and has no
DescribeLimits: the daemon must scale through all of that without one refused call (with the demand
policy's own default window, the newest five minutes).
"""
from __future__ import annotations

import boto3
import pytest
from support import metrics as M
from support.cli import assert_no_traceback, describe, run_cli
from support.dynalite import dynalite
from support.moto import CLIENT_CONFIG
from support.wait import wait_for

pytestmark = pytest.mark.e2e

REGION = "eu-west-1"
CONFIG = f"""\
[global]
region: {REGION}
check-interval: 60

[default_options]
scaling-policy: demand
target-utilization: 80

[table: .*]

[gsi: .* table: .*]
"""
UPDATING_MS = 4000


def create(ddb, name: str, read: int, write: int, gsi: bool) -> None:
    extra: dict = {}
    attributes = [{"AttributeName": "id", "AttributeType": "S"}]
    if gsi:
        attributes.append({"AttributeName": "customer", "AttributeType": "S"})
        extra["GlobalSecondaryIndexes"] = [{
            "IndexName": "by_customer", "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write}}]
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=attributes,
                     ProvisionedThroughput={"ReadCapacityUnits": read, "WriteCapacityUnits": write}, **extra)


def throughput(ddb, table: str) -> tuple[str, tuple[int, int], tuple[int, int] | None]:
    """(status, table capacity, GSI capacity or None) as dynalite describes them."""
    t = ddb.describe_table(TableName=table)["Table"]
    def pair(pt):
        return pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]
    gsis = t.get("GlobalSecondaryIndexes") or []
    return t["TableStatus"], pair(t["ProvisionedThroughput"]), pair(gsis[0]["ProvisionedThroughput"]) if gsis else None


def test_a_table_and_its_gsi_scale_on_dynalite_and_an_updating_table_waits(moto, tmp_path):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto.url, config=CLIENT_CONFIG)
    for table, index, per_second in (("orders", None, 9.5), ("orders", "by_customer", 9.5), ("archive", None, 1.0)):
        for metric in (M.CONSUMED_READ, M.CONSUMED_WRITE):
            M.put_metric_minutes(cloudwatch, metric, table, per_second * 60, index=index, minutes=40)
    config = tmp_path / "dynamic-dynamodb.conf"
    config.write_text(CONFIG, encoding="utf-8")
    with dynalite("--createTableMs", "50", "--updateTableMs", str(UPDATING_MS), region=REGION) as (url, ddb):
        create(ddb, "orders", 10, 10, gsi=True)
        create(ddb, "archive", 100, 40, gsi=False)
        wait_for(lambda: all(throughput(ddb, t)[0] == "ACTIVE" for t in ("orders", "archive")),
                 timeout=10, what="dynalite's new tables ACTIVE")
        env = {"AWS_ENDPOINT_URL": None, "AWS_ENDPOINT_URL_DYNAMODB": url,
               "AWS_ENDPOINT_URL_CLOUDWATCH": moto.url, "AWS_REGION": None, "AWS_DEFAULT_REGION": None}

        def run():
            r = run_cli(["--config", config, "--run-once"], env_extra=env, state_file=tmp_path / "state.json")
            assert_no_traceback(r)
            assert r.returncode == 0, describe(r)
            for refused in ("ValidationException", "ResourceInUseException", "UpdateTable refused", "failed"):
                assert refused not in r.stderr, describe(r)
            return r

        first = run()
        assert first.stderr.count("does not implement DescribeLimits") == 1, describe(first)
        assert "Regions: eu-west-1 (" in first.stderr and "[global] region)" in first.stderr
        assert throughput(ddb, "orders")[0] == "UPDATING" and throughput(ddb, "archive")[0] == "UPDATING"

        busy = run()  # within the update: every table is UPDATING, and nothing is sent to it
        assert "orders: status UPDATING, skipped until ACTIVE" in busy.stderr, describe(busy)
        assert "0 update(s)" in busy.stderr, describe(busy)

        wait_for(lambda: all(throughput(ddb, t)[0] == "ACTIVE" for t in ("orders", "archive")),
                 timeout=UPDATING_MS / 1000 + 10, what="dynalite's tables ACTIVE again")
        _, table, gsi = throughput(ddb, "orders")
        assert table[0] > 10 and table[1] > 10 and gsi is not None and gsi[0] > 10 and gsi[1] > 10, (table, gsi)
        _, quiet, _ = throughput(ddb, "archive")
        assert quiet[0] < 100 and quiet[1] < 40, quiet

        run()  # settled: whatever it sends, dynalite accepts (no update equal to the capacity in force)
