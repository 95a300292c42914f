"""Shared fixtures: a fake AWS (moto_server), the DynamoDB rules proxy in front of it,
boto3 clients, a circuit-breaker endpoint and a runner for the daemon's CLI.

Fixtures (function scope unless noted):

``moto_server`` (session)   the moto_server subprocess of this (xdist) worker: ``.url``,
                            ``.reset()``, ``.data()``, ``.sns_notifications()``
``moto``                    the same server, wiped before the test
``aws``                     boto3 clients straight to moto (``aws.dynamodb``,
                            ``aws.cloudwatch``, ``aws.sns``, ``aws.sqs``), moto wiped
``rules_proxy``             a ``RulesProxy`` in front of moto, its state and moto wiped
``proxy_aws``               boto3 clients through the rules proxy
``breaker``                 a ``BreakerServer``: ``.url``, ``.status = 503``, ``.requests``
``cli``                     ``cli(args, env_extra=None, timeout=60)`` runs
                            ``python -m dynamic_dynamodb`` against the rules proxy, with
                            ``--state-file`` in tmp_path unless ``args`` give one
``config_file``             ``config_file(text, name="dynamic-dynamodb.conf")`` writes a
                            config into tmp_path and returns its path

Every test (autouse ``_state_directory``) has ``$STATE_DIRECTORY`` set to tmp_path/state, so
the default state file of any run it starts is never the machine's (tests run as root here:
that would be /var/lib/dynamic-dynamodb).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

# properties are about behaviour, not speed: a busy CI machine must not fail them on a deadline
settings.register_profile("project", deadline=None)
settings.load_profile("project")

from support.moto import AwsClients, MotoServer, apply_fake_aws_env  # noqa: E402

# Before anything creates a boto3 session: dummy credentials, no real AWS reachable.
apply_fake_aws_env(os.environ)
# The tests start the command hundreds of times: with PYTHONDONTWRITEBYTECODE in the environment
# each start would compile the whole package again (about 0.2 s of CPU); its __pycache__ is ignored
# by git and left out of the sdist.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from support.breaker import BreakerServer  # noqa: E402
from support.cli import run_cli  # noqa: E402
from support.rules_proxy import RulesProxy  # noqa: E402

# The longest tests, collected first (9 to 42 s each by --durations on 2 cores): pytest-xdist deals
# the tests out in collection order, so one of these collected last would keep a worker busy after the
# others are done.
SLOWEST_FIRST = (
    # the compiled build (half a minute) and what runs on it, one worker's work
    "tests/test_compiled_build.py::test_the_compiled_modules_are_extensions_and_the_rest_is_python",
    "tests/test_compiled_build.py::test_the_compiled_modules_pass_their_unit_tests",
    "tests/test_compiled_build.py::test_a_simulation_is_the_same_byte_for_byte_in_both_builds",
    "tests/e2e/test_soak.py::test_thirty_passes_under_faults",
    "tests/e2e/test_shared_state.py::test_three_daemons_share_the_tables_take_over_from_a_killed_one_and_rebalance",
    "tests/e2e/test_shared_state.py::test_a_partitioned_daemon_loses_its_shards_and_acts_on_none_when_it_returns",
    "tests/e2e/test_ops.py::test_metrics_scrape_parses_and_healthz_turns_503_when_passes_stop",
    "tests/test_forecast.py::test_the_same_jump_every_day_for_two_weeks_throttles_far_less_in_the_second",
    "tests/e2e/test_gsis_notices_and_state.py::test_a_burst_of_runs_never_sends_a_refused_decrease",
    "tests/test_capacity_mode.py::test_a_simulated_bursty_table_with_auto_costs_no_more_than_on_demand_and_throttles_less",
    "tests/e2e/test_gsis_notices_and_state.py::test_a_throughput_alarm_is_sent_on_entering_the_state_and_again_only_"
    "after_it_cleared",
    "tests/e2e/test_capacity_modes.py::test_the_fleet_backtest_recommends_a_mode_per_table",
    "tests/e2e/test_daemon.py::test_two_instances_run_side_by_side_and_restart_keeps_every_option",
    "tests/e2e/test_capacity_modes.py::test_auto_never_switches_a_table_to_on_demand_a_fifth_time_in_24_hours",
)


def pytest_collection_modifyitems(items):
    """Move SLOWEST_FIRST to the front, in that order; the others keep theirs (the sort is stable)."""
    rank = {nodeid: i for i, nodeid in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("[", 1)[0], len(rank)))


@pytest.fixture(autouse=True)
def _state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _project_logger():
    """Every test starts with the project's logger as it found it: a test that runs cli.main() in
    process (which sets up logging) must not change what the next test in that worker logs."""
    logger = logging.getLogger("dynamic-dynamodb")
    saved = (logger.level, list(logger.handlers), list(logger.filters), logger.propagate, logger.disabled)
    yield
    for handler in logger.handlers:
        if handler not in saved[1]:
            handler.close()  # a file handler the test's setup_logging opened
    logger.setLevel(saved[0])
    logger.handlers[:], logger.filters[:] = saved[1], saved[2]
    logger.propagate, logger.disabled = saved[3], saved[4]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto_server.log").start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server):
    moto_server.reset()
    return moto_server


@pytest.fixture
def aws(moto):
    return AwsClients(moto.url)


@pytest.fixture(scope="session")
def _rules_proxy_session(moto_server):
    proxy = RulesProxy(moto_server.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def rules_proxy(_rules_proxy_session, moto):
    _rules_proxy_session.reset()
    yield _rules_proxy_session
    _rules_proxy_session.reset()


@pytest.fixture
def proxy_aws(rules_proxy):
    return AwsClients(rules_proxy.url)


@pytest.fixture(scope="session")
def _breaker_session():
    server = BreakerServer().start()
    yield server
    server.stop()


@pytest.fixture
def breaker(_breaker_session):
    _breaker_session.reset()
    return _breaker_session


@pytest.fixture
def cli(rules_proxy, tmp_path):
    def run(args, env_extra=None, timeout=60):
        return run_cli(args, env_extra=env_extra, timeout=timeout, endpoint_url=rules_proxy.url,
                       state_file=tmp_path / "cli-state.json")
    return run


@pytest.fixture
def config_file(tmp_path):
    def write(text: str, name: str = "dynamic-dynamodb.conf") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write
