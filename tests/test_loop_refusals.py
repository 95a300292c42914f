"""A pass against DynamoDB's refusals and unreadable answers, with in-memory fakes of the
ports; and the pure clamp to DescribeLimits' maxima, with tables of cases and properties."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import maxima
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import (
    AwsError,
    Capacity,
    CapacityLimits,
    Dim,
    LimitExceeded,
    MetricsUnavailable,
    TableDescription,
    Target,
    TargetStatus,
    UnreadableAnswer,
    Update,
)
from dynamic_dynamodb.policy import Decision, DimDecision
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.rules import DimensionRules, TargetRules
from dynamic_dynamodb.settings import GsiSection, Settings, TableSection

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
TOO_MANY_UPDATES = ("LimitExceededException: Subscriber limit exceeded: Only 10 tables can be created, updated, "
                    "or deleted simultaneously")


class Tables:
    """TableAdmin over descriptions; `errors[table]` is raised by that table's next call."""

    def __init__(self, *descriptions: TableDescription) -> None:
        self.descriptions = {d.table.target.table: d for d in descriptions}
        self.updates: list[Update] = []
        self.describe_errors: dict[str, Exception] = {}
        self.update_errors: list[Exception] = []

    def list_tables(self) -> list[str]:
        return list(self.descriptions)

    def describe(self, table: str) -> TableDescription:
        if table in self.describe_errors:
            raise self.describe_errors[table]
        return self.descriptions[table]

    def update(self, update: Update) -> None:
        self.updates.append(update)
        if self.update_errors:
            raise self.update_errors.pop(0)


class Metrics:
    """Every target consumes `pct` percent of what it has; `failed` tables' series are unreadable."""

    def __init__(self, tables: Tables, pct: float, failed: frozenset[str] = frozenset()) -> None:
        self.tables, self.pct, self.failed = tables, pct, failed

    def capacity(self, target: Target) -> Capacity:
        desc = self.tables.descriptions[target.table]
        return next(s.capacity for s in (desc.table, *desc.indexes) if s.target == target)

    def fetch(self, queries):
        data, failed = {}, {}
        for q in queries:
            cap = self.capacity(q.target)
            if q.target.table in self.failed:
                failed[q] = UnreadableAnswer("unreadable answer (ValueError: x)", "UnreadableAnswer")
            elif q.metric.startswith("Consumed"):
                units = cap.reads if "Read" in q.metric else cap.writes
                data[q] = [(q.start, self.pct / 100 * units * 300)]
            else:
                data[q] = [(q.start, 0.0)]
        if failed:
            raise MetricsUnavailable("some series unreadable", failed, data)
        return data


class Limits:
    def __init__(self, limits: CapacityLimits | None) -> None:
        self.limits, self.asked = limits, 0

    def current(self, now):
        self.asked += 1
        return self.limits


def status(table: str, index: str | None = None, cap: Capacity = Capacity(100, 100), state: str = "ACTIVE"):
    return TargetStatus(Target(table, index), state, "PROVISIONED", cap)


def scaler(tables: Tables, pct: float = 95, failed=frozenset(), limits=None, rules=TargetRules()) -> Scaler:
    section = TableSection(".*", re.compile(".*"), rules, gsis=(GsiSection(".*", re.compile(".*"), ".*", rules),))
    return Scaler(Settings(tables=(section,)), Ports(tables, Metrics(tables, pct, failed), limits=limits))


# ---- LimitExceededException of another kind ---------------------------------------------

def test_a_limit_other_than_the_decrease_rule_fails_the_table_and_is_not_retried(caplog):
    tables = Tables(TableDescription(status("a-table")), TableDescription(status("b-table")))
    tables.update_errors.append(LimitExceeded(TOO_MANY_UPDATES, "LimitExceededException"))
    report = scaler(tables, pct=10).run_pass(NOW)  # both decrease
    assert [u.table for u in tables.updates] == ["a-table", "b-table"]  # no increases-only retry of a-table
    assert report.failures == 1 and report.updates == 1
    assert "a-table: UpdateTable refused, trying again next pass: " + TOO_MANY_UPDATES in caplog.text


# ---- metrics unavailable ------------------------------------------------------------------

def test_a_table_whose_metrics_cannot_be_read_lowers_nothing_and_the_others_are_decided(caplog):
    tables = Tables(TableDescription(status("a-table")), TableDescription(status("b-table")))
    s = scaler(tables, pct=10, failed=frozenset({"a-table"}))
    report = s.run_pass(NOW)
    assert [u.table for u in tables.updates] == ["b-table"] and report.failures == 1
    assert "a-table: GetMetricData failed, no decrease this pass: unreadable answer" in caplog.text
    assert Target("a-table") not in s.memory


def test_when_no_metric_can_be_read_no_table_is_lowered_and_each_is_a_failure():
    tables = Tables(TableDescription(status("a-table")), TableDescription(status("b-table")))
    s = scaler(tables, pct=10)

    def down(queries):
        raise AwsError("ThrottlingException: Rate exceeded", "Throttling")

    s.ports.metrics.fetch = down
    report = s.run_pass(NOW)
    assert tables.updates == [] and report.failures == 2


def test_an_unreadable_describe_table_costs_that_table_only():
    tables = Tables(TableDescription(status("a-table")), TableDescription(status("b-table")))
    tables.describe_errors["a-table"] = UnreadableAnswer("unreadable answer (KeyError: 'Table')", "UnreadableAnswer")
    report = scaler(tables).run_pass(NOW)
    assert [u.table for u in tables.updates] == ["b-table"] and report.failures == 1


# ---- statuses ---------------------------------------------------------------------------

def test_a_gsi_that_is_not_active_is_left_out_and_the_table_and_its_other_gsis_go_ahead():
    desc = TableDescription(status("orders"), (status("orders", "busy", state="UPDATING"), status("orders", "idle")))
    tables = Tables(desc)
    scaler(tables).run_pass(NOW)
    [update] = tables.updates
    assert update.table_capacity == Capacity(150, 150) and set(update.index_capacities) == {"idle"}


def test_a_table_that_is_not_active_is_skipped_with_its_gsis():
    for state in ("UPDATING", "CREATING"):
        tables = Tables(TableDescription(status("orders", state=state), (status("orders", "idle"),)))
        report = scaler(tables).run_pass(NOW)
        assert tables.updates == [] and report.ok and report.skipped == 1


# ---- the clamp in the pass ----------------------------------------------------------------

def test_increases_are_held_to_the_table_maximum_with_a_warning(caplog):
    tables = Tables(TableDescription(status("orders"), (status("orders", "by-day"),)))
    limits = Limits(CapacityLimits(Capacity(120, 40000), Capacity(80000, 80000)))
    report = scaler(tables, limits=limits).run_pass(NOW)
    [update] = tables.updates
    assert update.table_capacity == Capacity(120, 150) and update.index_capacities == {"by-day": Capacity(120, 150)}
    assert ("orders: reads increase to 150 held at 120: DynamoDB's table maximum is 120 read capacity units"
            in caplog.text)
    assert "orders/by-day: reads increase to 150 held at 120" in caplog.text and report.ok


def test_without_limits_increases_go_out_as_decided():
    tables = Tables(TableDescription(status("orders")))
    limits = Limits(None)
    scaler(tables, limits=limits).run_pass(NOW)
    assert tables.updates[0].table_capacity == Capacity(150, 150) and limits.asked == 1


def test_a_pass_without_changes_does_not_ask_for_limits():
    tables = Tables(TableDescription(status("orders")))
    limits = Limits(CapacityLimits(Capacity(1, 1), Capacity(1, 1)))
    scaler(tables, pct=50, limits=limits).run_pass(NOW)
    assert tables.updates == [] and limits.asked == 0


# ---- maxima.clamp: cases and properties ---------------------------------------------------

def decision(target: Target, reads: tuple[int, int], writes: tuple[int, int]) -> Decision:
    def dim(d, pair):
        code = Reason.HIGH_LOAD if pair[1] > pair[0] else Reason.LOW_LOAD if pair[1] < pair[0] else Reason.WITHIN_BAND
        return DimDecision(d, pair[0], pair[1], 50.0, "test", code)
    return Decision(TargetStatus(target, "ACTIVE", "PROVISIONED", Capacity(reads[0], writes[0])),
                    dim(Dim.READS, reads), dim(Dim.WRITES, writes))


T, G1, G2 = Target("t"), Target("t", "g1"), Target("t", "g2")
ONE = Capacity(1, 1)


def news(decisions):
    return [(d.reads.new, d.writes.new) for d in decisions]


def test_clamp_cases():
    limits = CapacityLimits(Capacity(100, 100), Capacity(250, 1000))
    floors = {T: ONE, G1: ONE, G2: ONE}
    cases = [
        # (current, new) for reads and writes, per target  ->  expected (reads, writes)
        ([((10, 50), (10, 50))], [(50, 50)]),  # within the maxima: untouched
        ([((10, 500), (10, 50))], [(100, 50)]),  # the table maximum
        ([((150, 300), (10, 10))], [(150, 10)]),  # already above it: not lowered, not raised
        ([((150, 100), (10, 10))], [(100, 10)]),  # a decrease is never touched
        ([((90, 100), (1, 1)), ((90, 100), (1, 1)), ((40, 90), (1, 1))], [(100, 1), (100, 1), (50, 1)]),  # account
    ]
    for rows, expected in cases:
        targets = [T, G1, G2][:len(rows)]
        held, notes = maxima.clamp([decision(t, r, w) for t, (r, w) in zip(targets, rows, strict=True)], limits, floors)
        assert news(held) == expected, rows
        assert len(notes) == sum(e != (r[1], w[1]) for e, (r, w) in zip(expected, rows, strict=True))


def test_clamp_never_goes_below_the_min_rule():
    limits = CapacityLimits(Capacity(100, 100), Capacity(1000, 1000))
    held, _ = maxima.clamp([decision(T, (10, 500), (10, 20))], limits, {T: Capacity(200, 1)})
    assert news(held) == [(200, 20)]  # the min wins; DynamoDB refuses it and says why


pairs = st.tuples(st.integers(1, 5000), st.integers(1, 5000))


@given(rows=st.lists(st.tuples(pairs, pairs, st.integers(1, 3000)), min_size=1, max_size=3),
       table_max=st.integers(1, 4000), account_max=st.integers(1, 8000))
def test_clamp_only_ever_holds_increases_back_within_current_min_and_decided(rows, table_max, account_max):
    targets = [T, G1, G2][:len(rows)]
    decisions = [decision(t, r, w) for t, (r, w, _) in zip(targets, rows, strict=True)]
    floors = {t: Capacity(min(f, r[1]), min(f, w[1])) for t, (r, w, f) in zip(targets, rows, strict=True)}
    held, _ = maxima.clamp(decisions, CapacityLimits(Capacity(table_max, table_max),
                                                     Capacity(account_max, account_max)), floors)
    for before, after in zip(decisions, held, strict=True):
        for dim in Dim:
            floor = floors[before.target].reads if dim is Dim.READS else floors[before.target].writes
            x = before.reads if dim is Dim.READS else before.writes
            y = after.reads if dim is Dim.READS else after.writes
            if x.new <= x.current:
                assert y.new == x.new
            else:
                assert max(x.current, floor) <= y.new <= x.new
                assert y.new <= max(table_max, x.current, floor)
    for dim in Dim:
        lows = [max(d.reads.current if dim is Dim.READS else d.writes.current,
                    floors[d.target].reads if dim is Dim.READS else floors[d.target].writes) for d in decisions]
        total = sum(a.reads.new if dim is Dim.READS else a.writes.new for a in held)
        baseline = sum(min(low, (d.reads if dim is Dim.READS else d.writes).new)
                       for low, d in zip(lows, decisions, strict=True))
        assert total <= max(account_max, baseline)


def test_the_rules_floor_is_the_min_of_the_section():
    assert DimensionRules(min_provisioned=7).floor == 7
