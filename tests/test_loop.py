"""One pass with in-memory fakes of the ports: order of work, dry run, errors, stopping."""
from __future__ import annotations

import re
from datetime import timedelta

from fakes import DECREASE_RULE, NOW, FakeMetrics, FakeTables, status

from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import (
    AwsError,
    Capacity,
    LimitExceeded,
    TableBusy,
    TableDescription,
    TableNotFound,
    Target,
    Update,
)
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.rules import TargetRules
from dynamic_dynamodb.settings import Settings, TableSection


def scaler(tables: FakeTables, pct: dict[str, tuple[float, float]], **settings) -> Scaler:
    section = TableSection(".*", re.compile(".*"), TargetRules())
    return Scaler(Settings(tables=(section,), **settings), Ports(tables, FakeMetrics(tables, pct)))


def test_a_pass_sends_one_update_per_table_with_both_dimensions():
    tables = FakeTables({"orders": Capacity(100, 100)})
    report = scaler(tables, {"orders": (95, 10)}).run_pass(NOW)
    assert tables.updates == [Update("orders", Capacity(150, 50), {})] and report.updates == 1


def test_a_dry_run_never_calls_update_table():
    tables = FakeTables({"orders": Capacity(100, 100)})
    report = scaler(tables, {"orders": (95, 10)}, dry_run=True).run_pass(NOW)
    assert tables.updates == [] and report.decisions[0].changed


def test_a_refused_update_is_retried_once_with_only_its_increases():
    tables = FakeTables({"orders": Capacity(100, 100)})
    tables.update_errors.append(LimitExceeded(DECREASE_RULE, "LimitExceededException"))
    report = scaler(tables, {"orders": (95, 10)}).run_pass(NOW)
    assert [u.table_capacity for u in tables.updates] == [Capacity(150, 50), Capacity(150, 100)]
    assert report.ok


def test_a_busy_table_is_skipped_and_the_pass_goes_on():
    tables = FakeTables({"a-table": Capacity(100, 100), "b-table": Capacity(100, 100)})
    tables.update_errors.append(TableBusy("ResourceInUseException: updating", "ResourceInUseException"))
    report = scaler(tables, {"a-table": (95, 50), "b-table": (95, 50)}).run_pass(NOW)
    assert len(tables.updates) == 2 and report.updates == 1 and report.skipped == 1 and report.ok


def test_an_unexpected_aws_error_fails_the_pass_but_not_the_other_tables():
    tables = FakeTables({"a-table": Capacity(100, 100), "b-table": Capacity(100, 100)})
    tables.update_errors.append(AwsError("AccessDeniedException: no", "AccessDeniedException"))
    report = scaler(tables, {"a-table": (95, 50), "b-table": (95, 50)}).run_pass(NOW)
    assert report.failures == 1 and tables.tables["b-table"] == Capacity(150, 100)


def test_a_stop_request_finishes_the_table_in_progress_and_leaves_the_rest():
    tables = FakeTables({"a-table": Capacity(100, 100), "b-table": Capacity(100, 100), "c-table": Capacity(1, 1)})
    s = scaler(tables, {"a-table": (95, 50), "b-table": (95, 50), "c-table": (95, 50)})
    tables.on_update = lambda update: s.stop.set()
    s.run_pass(NOW)
    assert [u.table for u in tables.updates] == ["a-table"]


def test_a_section_that_matches_no_table_is_warned_every_pass(caplog):
    tables = FakeTables({"orders": Capacity(100, 100)})
    section = TableSection("ordres", re.compile("ordres"), TargetRules())
    s = Scaler(Settings(tables=(section,)), Ports(tables, FakeMetrics(tables, {})))
    s.run_pass(NOW)
    s.run_pass(NOW)
    assert caplog.text.count("No table matches [table: ordres]") == 2


def test_a_section_shadowed_by_an_earlier_one_is_not_said_to_match_nothing(caplog):
    tables = FakeTables({"my_table": Capacity(100, 100), "my_table_v2": Capacity(100, 100)})
    wide = TableSection("my_table.*", re.compile("my_table.*"), TargetRules())
    shadowed = TableSection("my_table", re.compile("my_table"), TargetRules())
    typo = TableSection("ordres", re.compile("ordres"), TargetRules())
    s = Scaler(Settings(tables=(wide, shadowed, typo)), Ports(tables, FakeMetrics(tables, {})))
    s.run_pass(NOW)
    s.run_pass(NOW)
    assert caplog.text.count("my_table: matches more than one section (my_table.*, my_table); "
                             "using [table: my_table.*]") == 1
    assert caplog.text.count("No table matches [table: ordres]\n") == 2  # the typo alone
    assert caplog.text.count("No table uses [table: my_table]: each table it matches uses an earlier "
                             "section") == 2


def test_a_table_reported_with_0_provisioned_units_is_skipped_and_the_others_still_scale(caplog):
    # 0 / 0 % used to raise ZeroDivisionError in the policy and cost every table its pass
    tables = FakeTables({"a-zero": Capacity(0, 0), "b-half": Capacity(5, 0), "c-table": Capacity(100, 100)})
    report = scaler(tables, {"a-zero": (95, 95), "b-half": (95, 95), "c-table": (95, 50)}).run_pass(NOW)
    assert [u.table for u in tables.updates] == ["c-table"] and tables.tables["c-table"] == Capacity(150, 100)
    assert report.skipped == 2 and report.ok
    assert "a-zero: DescribeTable reports 0 read and 0 write units provisioned, skipped" in caplog.text
    assert [(str(d.target), d.code) for d in report.decisions] == [
        ("a-zero", Reason.NO_CAPACITY), ("b-half", Reason.NO_CAPACITY), ("c-table", Reason.HIGH_LOAD)]


class BrokenMetrics:
    def fetch(self, queries):
        raise AwsError("ThrottlingException: rate exceeded", "ThrottlingException")


def test_every_skipped_table_is_a_decision_with_its_code():
    tables = FakeTables({"a-gone": Capacity(1, 1), "b-denied": Capacity(1, 1),
                         "c-ondemand": TableDescription(status("c-ondemand", billing="PAY_PER_REQUEST")),
                         "d-creating": TableDescription(status("d-creating", state="CREATING")),
                         "e-table": Capacity(100, 100)})
    tables.describe_errors = {"a-gone": TableNotFound("ResourceNotFoundException: gone"),
                              "b-denied": AwsError("AccessDeniedException: no", "AccessDeniedException")}
    report = scaler(tables, {name: (50, 50) for name in tables.tables}).run_pass(NOW)
    assert sorted((str(d.target), d.code) for d in report.decisions) == [
        ("a-gone", Reason.NOT_FOUND), ("b-denied", Reason.AWS_ERROR), ("c-ondemand", Reason.ON_DEMAND),
        ("d-creating", Reason.NOT_ACTIVE), ("e-table", Reason.WITHIN_BAND)]
    assert [str(d.target) for d in report.decided] == ["e-table"] and not any(d.changed for d in report.decisions)


def test_decisions_made_while_cloudwatch_cannot_be_read_say_so():
    tables = FakeTables({"orders": Capacity(100, 100)})
    section = TableSection(".*", re.compile(".*"), TargetRules())
    report = Scaler(Settings(tables=(section,)), Ports(tables, BrokenMetrics())).run_pass(NOW)
    assert [d.code for d in report.decisions] == [Reason.METRICS_UNAVAILABLE] and tables.updates == []
    assert report.decisions[0].reads.code is Reason.NO_DATA and report.failures == 1


def test_the_demand_policy_reads_back_over_the_whole_check_interval():
    from dynamic_dynamodb.observe import queries as _queries

    rules = TargetRules(scaling_policy="demand", lookback_window_start=5, lookback_period=5)
    q = _queries(Target("orders"), rules, NOW, interval=600)[0]
    assert (q.end - q.start).total_seconds() == (10 + 3) * 60 and q.end == NOW


def test_the_threshold_policy_reads_exactly_its_lookback_window():
    from dynamic_dynamodb.observe import queries as _queries

    q = _queries(Target("orders"), TargetRules(), NOW, interval=600)[0]
    assert (q.start, q.end) == (NOW - timedelta(minutes=15), NOW - timedelta(minutes=10))
