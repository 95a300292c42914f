"""End to end against moto_server: throttles by cause (CloudWatch history fed by PutMetricData)."""
from __future__ import annotations

import pytest

from support import metrics as M
from support.cli import assert_no_traceback, describe

pytestmark = pytest.mark.e2e


@pytest.fixture
def run_once(cli, tmp_path):
    def run(config: str, *args: str, timeout: float = 60):
        path = tmp_path / "dynamic-dynamodb.conf"
        path.write_text(config, encoding="utf-8")
        result = cli(["--config", str(path), "--run-once", "--state-file", str(tmp_path / "state.json"),
                      "--pid-file-dir", str(tmp_path), *args], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


CONF = """[global]
region: us-east-1
check-interval: 300

[logging]
log-level: info

[table: (hot|busy)]
throttled-reads-upper-threshold: 10
"""


def test_key_range_throttles_raise_nothing_and_are_reported_provisioned_ones_raise(proxy_aws, aws, run_once):
    for name, cause in (("hot", "KeyRangeThroughput"), ("busy", "ProvisionedThroughput")):
        M.create_table(proxy_aws.dynamodb, name, 10, 10)
        M.put_consumption(proxy_aws.cloudwatch, name, read_per_second=5, write_per_second=5,
                          read_throttles_per_minute=50)
        M.put_metric_minutes(proxy_aws.cloudwatch, f"Read{cause}ThrottleEvents", name, 50)
    r = run_once(CONF)
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "hot") == (10, 10)
    assert M.provisioned(aws.dynamodb, "busy") == (15, 10)
    output = r.stdout + r.stderr
    [line] = [x for x in output.splitlines() if "hot key range" in x]
    assert "hot:" in line and "100% key range" in line and "Contributor Insights" in line
    assert "busy" not in line
