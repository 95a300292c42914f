"""scaling-policy: forecast: what it learns, when it acts, and what it does on a rhythm and without one."""
from __future__ import annotations

import csv
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dynamic_dynamodb import forecast, state
from dynamic_dynamodb.config import load_settings
from dynamic_dynamodb.forecast import SLOT_MINUTES, SLOTS_PER_DAY, ForecastState
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import Capacity, Dim, TableDescription, Target, TargetStatus
from dynamic_dynamodb.policy import Memory
from dynamic_dynamodb.simulation import simulate
from dynamic_dynamodb.simulation.trace import write_trace

UTC = timezone.utc
T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00
RECOMMENDED = Path(__file__).resolve().parents[1] / "examples" / "recommended.conf"


def minutes(demand_of, days: float, start: datetime = T0):
    """A per-minute series (minute, consumed units, 0 throttled) from demand_of(minute index) units/s."""
    return [(start + timedelta(minutes=m), demand_of(m) * 60.0, 0.0) for m in range(int(days * 1440))]


def jump(m: int) -> float:
    """50 units/s, ten times that from 13:00 to 16:00 UTC."""
    return 500.0 if 13 * 60 <= m % 1440 < 16 * 60 else 50.0


# ---- learning -------------------------------------------------------------------------


def test_a_slot_is_learned_as_its_mean_once_it_has_ended():
    s = forecast.learn(minutes(lambda m: float(m % SLOT_MINUTES), SLOT_MINUTES / 1440 * 1.5))
    slot = forecast.slot_of(T0)
    assert forecast._known(s, slot) == pytest.approx(sum(range(SLOT_MINUTES)) / SLOT_MINUTES)
    assert forecast._known(s, slot + 1) is None  # the open slot is not learned yet
    assert s.open_minutes == SLOT_MINUTES // 2


def test_folding_in_pieces_learns_what_folding_at_once_does():
    series = minutes(jump, 3)
    whole = forecast.learn(series)
    pieces = ForecastState()
    for i in range(0, len(series), 7):  # overlapping windows, as the passes read them
        pieces = forecast.fold(pieces, series[max(0, i - 5):i + 7])
    assert pieces == whole


EXPECTED_CASES = [
    ("nothing before", 0, 0.0),
    ("once before is not yet a rhythm", 1, 0.0),
    ("twice before is", 2, 500.0),
]


@pytest.mark.parametrize("days,want", [c[1:] for c in EXPECTED_CASES], ids=[c[0] for c in EXPECTED_CASES])
def test_a_rise_is_expected_once_it_has_happened_on_two_days(days, want):
    s = forecast.learn(minutes(jump, days + 13 / 24 - 1 / 1440))
    assert forecast.expected_peak(s, T0 + timedelta(days=days, hours=12, minutes=45), 20) == want


@pytest.mark.parametrize("first,second,want", [(200.0, 280.0, 200.0), (280.0, 200.0, 200.0), (100.0, 300.0, 0.0)],
                         ids=["the lower of two days that agree", "in either order", "days that disagree: none"])
def test_two_days_recur_when_they_agree(first, second, want):
    s = forecast.learn(minutes(lambda m: first if m < 1440 else second, 2.5))
    assert forecast.expected(s, forecast.slot_of(T0 + timedelta(days=2))) == pytest.approx(want)


def test_a_weekly_rise_is_expected_on_its_weekday():
    # Mondays only: 10x from 09:00 to 12:00
    def monday(m: int) -> float:
        return 400.0 if m // 1440 % 7 == 0 and 9 * 60 <= m % 1440 < 12 * 60 else 40.0
    s = forecast.learn(minutes(monday, 14 + 9 / 24 - 0.01))
    assert forecast.expected_peak(s, T0 + timedelta(days=14, hours=8, minutes=50), 20) == pytest.approx(400.0)
    assert forecast.expected_peak(s, T0 + timedelta(days=13, hours=8, minutes=50), 20) == pytest.approx(40.0)


@hsettings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 3 * 1440))
def test_strictly_causal_the_future_does_not_change_what_is_expected_now(seed, cut):
    rng = random.Random(seed)
    values = [rng.uniform(0, 100) for _ in range(4 * 1440)]
    series = minutes(lambda m: values[m], 4)
    now = T0 + timedelta(minutes=cut)
    seen = forecast.learn(series[:cut])
    everything = forecast.learn(series)
    for k in range(forecast.slot_of(now), forecast.slot_of(now) + 3):
        past_only = [v for v in (forecast._known(everything, k - p) for p in (SLOTS_PER_DAY, 2 * SLOTS_PER_DAY))]
        if all(v is not None for v in past_only) and k - SLOTS_PER_DAY < forecast.slot_of(now):
            assert forecast.expected(seen, k) == forecast.expected(everything, k)


@hsettings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), step=st.integers(1, 90))
def test_the_memo_answers_as_the_rules_do_for_each_target_while_the_rings_change(seed, step):
    """expected() and trusted() keep answers per ring: two targets folded side by side each get their own."""
    rng = random.Random(seed)
    levels = [[rng.choice((10.0, 50.0, 52.0, 500.0)) for _ in range(3 * 1440)] for _ in range(2)]
    traces = [minutes(v.__getitem__, 3) for v in levels]
    states = [ForecastState(), ForecastState()]
    for i in range(0, 3 * 1440, step):
        for t, series in enumerate(traces):
            state = states[t] = forecast.fold(states[t], series[i:i + step])
            if state.newest_slot is None:
                continue
            for k in range(state.newest_slot - 1, state.newest_slot + 3):
                assert forecast.expected(state, k) == forecast._expected(state, k)
            assert forecast.trusted(state) == forecast._trusted(state, state.newest_slot)


# ---- acting ----------------------------------------------------------------------------

LEARNED = forecast.learn(minutes(jump, 3 + 12.5 / 24))  # three days, up to 12:30 on the fourth
BEFORE_RISE = T0 + timedelta(days=3, hours=12, minutes=45)
LONG_BEFORE = T0 + timedelta(days=3, hours=10)

ADJUST_CASES = [
    ("ahead of a recurring rise, capacity rises", 80, 80, BEFORE_RISE, (625, "a recurring rise expected")),
    ("a larger proposal stands", 80, 900, BEFORE_RISE, (900, "")),
    ("a decrease just before a rise is held", 680, 100, BEFORE_RISE, (680, "held")),
    ("a decrease an hour before a rise goes no lower than the rise needs",
     700, 100, T0 + timedelta(days=3, hours=12, minutes=5), (625, "no lower than")),
    ("far from any rise the demand policy decides", 700, 100, LONG_BEFORE, (100, "")),
]


@pytest.mark.parametrize("cur,new,now,want", [c[1:] for c in ADJUST_CASES], ids=[c[0] for c in ADJUST_CASES])
def test_adjust(cur, new, now, want):
    value, reason = forecast.adjust(cur, new, "", LEARNED, now, 0.8, recent=50.0)
    assert value == want[0] and want[1] in reason


# ---- in the simulator ------------------------------------------------------------------


def _simulate(tmp_path, name, reads, policy):
    trace = tmp_path / f"{name}.csv"
    write_trace(trace, T0, reads, [r / 5 for r in reads])
    conf = tmp_path / f"{name}-{policy}.conf"
    conf.write_text(re.sub(r"scaling-policy: \w+", f"scaling-policy: {policy}", RECOMMENDED.read_text()))
    out = tmp_path / f"{name}-{policy}"
    report = simulate(load_settings(["--config", str(conf)]), trace, out, progress=None)
    with open(out / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    throttled = [float(r["throttled_reads"]) + float(r["throttled_writes"]) for r in rows]
    return report.config, throttled


def test_the_same_jump_every_day_for_two_weeks_throttles_far_less_in_the_second(tmp_path):
    rng = random.Random(13)
    reads = [round(jump(m) * rng.gauss(1, 0.05), 3) for m in range(14 * 1440)]
    figures, throttled = _simulate(tmp_path, "jump", reads, "forecast")
    first, second = sum(throttled[:7 * 1440]), sum(throttled[7 * 1440:])
    assert first > 0 and second <= first / 4, (first, second)
    assert figures.illegal_decreases == 0


def test_traffic_without_a_rhythm_is_no_worse_than_with_the_demand_policy(tmp_path):
    rng = random.Random(5)
    level, reads = 200.0, []
    for _ in range(4 * 1440):  # a random walk with random bursts: no day is like another
        level = min(2000.0, max(20.0, level * rng.gauss(1, 0.02)))
        reads.append(round(level * (4 if rng.random() < 0.003 else 1), 3))
    fc, _ = _simulate(tmp_path, "walk", reads, "forecast")
    dm, _ = _simulate(tmp_path, "walk", reads, "demand")
    assert fc.cost_usd <= dm.cost_usd * 1.01 and fc.throttled_share <= dm.throttled_share * 1.01 + 1e-6


# ---- kept across restarts, and learned from CloudWatch at start ------------------------


def test_the_learned_rhythm_survives_the_state_file(tmp_path):
    memory = {Target("orders"): Memory(reads_forecast=LEARNED, writes_forecast=ForecastState())}
    path = tmp_path / "state.json"
    state.save(str(path), memory)
    assert state.load(str(path)) == memory
    assert path.stat().st_size < 40_000


class Tables:
    def list_tables(self):
        return ["orders"]

    def describe(self, table):
        return TableDescription(TargetStatus(Target(table), "ACTIVE", "PROVISIONED", Capacity(80, 16)))

    def update(self, update):
        self.updated = update


class History:
    """CloudWatch with two weeks of the daily jump, answering fetch (the pass) and fetch_history (start)."""

    def __init__(self, now):
        self.now, self.history_calls = now, []

    def _points(self, q):
        per = {Dim.READS: 1.0, Dim.WRITES: 0.2}[Dim.READS if "Read" in q.metric else Dim.WRITES]
        if "Throttle" in q.metric:
            return []
        m, out = q.start, []
        while m < q.end:
            out.append((m, jump(int((m - T0).total_seconds() // 60)) * 60.0 * per))
            m += timedelta(minutes=1)
        return out

    def fetch(self, queries):
        return {q: self._points(q) for q in queries}

    def fetch_history(self, queries, stat="Sum"):
        self.history_calls.append(list(queries))
        return {q: self._points(q) for q in queries}


def test_at_start_the_daemon_learns_from_two_weeks_of_cloudwatch_and_raises_ahead(tmp_path):
    now = T0 + timedelta(days=14, hours=12, minutes=45)
    conf = tmp_path / "c.conf"
    conf.write_text(re.sub(r"scaling-policy: \w+", "scaling-policy: forecast", RECOMMENDED.read_text()))
    settings = load_settings(["--config", str(conf)])
    history, tables = History(now), Tables()
    scaler = Scaler(settings, Ports(tables=tables, metrics=history, notifier=None, breaker=None), dry_run=False)
    report = scaler.run_pass(now)
    assert len(history.history_calls) == 1 and len(history.history_calls[0]) == 4  # one batched call
    (decision,) = report.decisions
    assert decision.reads.new >= 500 and "recurring rise" in decision.reads.reason
    scaler.run_pass(now + timedelta(minutes=1))
    assert len(history.history_calls) == 1  # learned once; later passes fold the newest minutes
