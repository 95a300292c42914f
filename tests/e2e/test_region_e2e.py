"""End to end: the region of a run comes from --region/config, else boto3's chain, and a run
that matches no table in any region says where it looked (issue 10, point 1)."""
from __future__ import annotations

import re
import signal
import subprocess
import sys

import boto3
import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe
from support.moto import CLIENT_CONFIG
from support.wait import wait_for

pytestmark = pytest.mark.e2e

NO_REGION = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None}


def regional(endpoint: str, region: str):
    """(dynamodb, cloudwatch) clients of one region."""
    session = boto3.session.Session()
    return tuple(session.client(s, region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
                 for s in ("dynamodb", "cloudwatch"))


def once(cli, tmp_path, *args: str, env: dict):
    result = cli(["--run-once", "--state-file", str(tmp_path / "state.json"), *args], env_extra=env)
    assert_no_traceback(result)
    return result


def test_readmes_first_command_looks_in_aws_default_region(rules_proxy, tmp_path, cli):
    ddb, cw = regional(rules_proxy.url, "eu-west-1")
    M.create_table(ddb, "orders", 10, 10)
    M.put_consumption(cw, "orders", read_per_second=9.5, write_per_second=5)
    result = once(cli, tmp_path, "--table-name", "orders", "--dry-run",
                  env={**NO_REGION, "AWS_DEFAULT_REGION": "eu-west-1"})
    assert result.returncode == 0, describe(result)
    assert "Regions: eu-west-1 (AWS_DEFAULT_REGION)" in result.stderr
    assert re.search(r"orders: reads 95\.0% of 10 -> 15", result.stderr), describe(result)


def test_aws_region_is_read_although_this_botocore_does_not(rules_proxy, tmp_path, cli, config_file):
    ddb, _ = regional(rules_proxy.url, "ap-southeast-2")
    M.create_table(ddb, "orders", 10, 10)
    result = once(cli, tmp_path, "--config", str(config_file("[table: orders]\n")),
                  env={**NO_REGION, "AWS_REGION": "ap-southeast-2"})
    assert result.returncode == 0, describe(result)
    assert "Regions: ap-southeast-2 (AWS_REGION)" in result.stderr


def test_no_table_in_any_region_is_exit_1_naming_regions_and_sections(rules_proxy, proxy_aws, tmp_path, cli,
                                                                       config_file):
    M.create_table(proxy_aws.dynamodb, "orders")  # in us-east-1, where the run does not look
    path = config_file("[table: orders]\n[table: events]\nregion: eu-central-1\n")
    result = once(cli, tmp_path, "--config", str(path), env={**NO_REGION, "AWS_DEFAULT_REGION": "eu-west-1"})
    assert result.returncode == 1, describe(result)
    [line] = [line for line in result.stderr.splitlines() if " - ERROR - " in line]
    assert line.endswith("No table matches any section: looked in eu-west-1 (AWS_DEFAULT_REGION), "
                         "eu-central-1 (region of [table: events]) for [table: orders], [table: events]"), line


def test_the_built_in_region_is_named_as_such(rules_proxy, proxy_aws, tmp_path, cli):
    M.create_table(proxy_aws.dynamodb, "orders")
    result = once(cli, tmp_path, "--table-name", "orders", env=NO_REGION)
    assert result.returncode == 0, describe(result)
    assert "Regions: us-east-1 (built-in default)" in result.stderr


def test_foreground_logs_no_match_every_pass_and_an_unscaled_gsi_once(rules_proxy, proxy_aws, tmp_path):
    M.create_table(proxy_aws.dynamodb, "orders", gsis={"by-date": (5, 5)})
    console = tmp_path / "console.txt"
    procs = []
    for table in ("orders", "nothing-here"):
        out = open(tmp_path / f"{table}.txt", "w")
        procs.append((table, out, subprocess.Popen(
            [sys.executable, "-m", "dynamic_dynamodb", "--table-name", table, "--check-interval", "1",
             "--state-file", str(tmp_path / f"{table}.state.json")],
            env=cli_env(rules_proxy.url), cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)))
    try:
        for table, _, _ in procs:
            console = tmp_path / f"{table}.txt"
            wait_for(lambda c=console: c.read_text().count("Pass done") >= 3, 30, f"three passes for {table}")
        for _, _, proc in procs:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    finally:
        for _, out, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
    scaled = (tmp_path / "orders.txt").read_text()
    assert scaled.count("orders/by-date: GSI left unscaled: --table-name scales the table only") == 1, scaled
    missing = (tmp_path / "nothing-here.txt").read_text()
    errors = [line for line in missing.splitlines() if " - ERROR - No table matches any section" in line]
    assert len(errors) >= 3 and len(errors) == missing.count("Pass done"), missing
    assert "Traceback" not in scaled + missing


def test_regions_from_global_regions_are_named_as_such(rules_proxy, tmp_path, cli, config_file):
    for region in ("eu-west-1", "ap-southeast-2"):
        ddb, _ = regional(rules_proxy.url, region)
        M.create_table(ddb, "orders", 10, 10)
    path = config_file("[global]\nregions: eu-west-1, ap-southeast-2\n[table: orders]\n")
    result = once(cli, tmp_path, "--config", str(path), "--dry-run", env=NO_REGION)
    assert result.returncode == 0, describe(result)
    # not "(built-in default)" nor "(profile default)": [global] region was not used
    assert (f"Regions: eu-west-1 ({path} [global] regions), ap-southeast-2 ({path} [global] regions)"
            in result.stderr), describe(result)


@pytest.mark.parametrize("how", ["--profile", "[global] profile"])
def test_the_profile_option_picks_the_profiles_region_and_credentials_over_aws_profile(rules_proxy, tmp_path, cli,
                                                                                     config_file, how):
    ddb, cw = regional(rules_proxy.url, "eu-west-1")
    M.create_table(ddb, "orders", 10, 10)
    M.put_consumption(cw, "orders", read_per_second=9.5, write_per_second=5)
    aws_config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    aws_config.write_text("[profile staging]\nregion = eu-west-1\n[profile other]\nregion = us-east-1\n")
    # the keys are the profile's only: without it, the run has none (and AWS_PROFILE's has none either)
    credentials.write_text("[staging]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = {**NO_REGION, "AWS_CONFIG_FILE": str(aws_config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
           "AWS_PROFILE": "other", "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    given = ["--profile", "staging"] if how == "--profile" else []
    path = config_file(("" if given else "[global]\nprofile: staging\n") + "[table: orders]\n")
    result = once(cli, tmp_path, "--config", str(path), "--dry-run", *given, env=env)
    assert result.returncode == 0, describe(result)
    assert "Regions: eu-west-1 (profile staging)" in result.stderr, describe(result)
    assert re.search(r"orders: reads 95\.0% of 10 -> 15", result.stderr), describe(result)
    # AWS_PROFILE's own profile: us-east-1 and no keys, so the same run fails there
    without = once(cli, tmp_path, "--config", str(config_file("[table: orders]\n")), "--dry-run", env=env)
    assert without.returncode == 1 and "Regions: us-east-1 (profile other)" in without.stderr, describe(without)
