"""End to end: bad input and bad environments through the real CLI: one line, the right exit
status, no traceback, no hang, no secret echoed."""
from __future__ import annotations

import os

import pytest
from support import metrics as M
from support.cli import assert_no_traceback, describe, run_cli

pytestmark = pytest.mark.e2e

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYE2ESECRET"


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "big"])
def test_a_special_or_huge_config_file_is_exit_2_at_once(cli, tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "dd.conf"
        os.mkfifo(path)  # nobody writes to it: reading it would block for ever
    elif kind == "big":
        path = tmp_path / "dd.conf"
        path.write_text("[table: x]\n" + "#" * (2 << 20) + "\n")
    else:
        path = kind
    result = cli(["--config", str(path), "--run-once"], timeout=20)
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"dynamic-dynamodb: error: -c/--config: '{path}' is "), line


def test_secrets_are_not_echoed_by_config_or_parser_errors(cli, tmp_path):
    path = tmp_path / "dd.conf"
    path.write_text(f"aws-secret-access-key-id: {SECRET}\n[global]\n")
    for args in (["--config", str(path)], ["--table-name", "x", "--aws-secret-acess-key", SECRET],
                 ["--table-name", "x", f"--aws={SECRET}"]):
        result = cli([*args, "--run-once"])
        assert_no_traceback(result)
        assert result.returncode == 2, describe(result)
        assert len(result.stderr.splitlines()) == 1 and SECRET not in result.stderr + result.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_file_on_a_full_disk_is_one_warning_and_the_pass_goes_on(cli, rules_proxy, proxy_aws, tmp_path):
    M.create_table(proxy_aws.dynamodb, "orders", 10, 10)
    M.put_consumption(proxy_aws.cloudwatch, "orders", read_per_second=9.5, write_per_second=5)
    result = cli(["--table-name", "orders", "--run-once", "--log-file", "/dev/full", "--log-level", "debug"])
    assert_no_traceback(result)
    assert result.returncode == 0, describe(result)
    assert result.stderr.count("warning: log-file /dev/full: cannot write (No space left on device)") == 1
    assert "Logging error" not in result.stderr
    assert "orders: reads 95.0% of 10 -> 15" in result.stderr  # the console still has every line
    assert M.provisioned(proxy_aws.dynamodb, "orders") == (15, 10)


@pytest.mark.parametrize("given", ["command line", "config file"])
def test_a_log_file_that_cannot_be_opened_names_where_it_was_given(tmp_path, given):
    missing = tmp_path / "nowhere" / "dd.log"
    conf = tmp_path / "dd.conf"
    if given == "config file":
        conf.write_text(f"[logging]\nlog-file: {missing}\n[table: orders]\n")
        args, source = ["--config", conf], f"{conf} [logging] log-file"
    else:
        conf.write_text("[table: orders]\n")
        args, source = ["--config", conf, "--log-file", missing], "command line --log-file"
    # the error comes before any AWS call: nothing listens at the endpoint
    result = run_cli([*args, "--run-once", "--state-file", tmp_path / "st.json"], endpoint_url="http://127.0.0.1:9")
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [
        f"dynamic-dynamodb: error: {source}: cannot open {missing}: No such file or directory"], describe(result)
