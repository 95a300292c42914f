"""Capacity schedules: when they are in force, what they override, how they are configured."""
from __future__ import annotations

import csv
import re
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dynamic_dynamodb import config, schedule
from dynamic_dynamodb.config import load_settings
from dynamic_dynamodb.model import Capacity, Target, TargetStatus
from dynamic_dynamodb.policy import FREE_DECREASES_PER_DAY, Memory, Observed, decide
from dynamic_dynamodb.rules import DimensionRules, Schedule, TargetRules, Window
from dynamic_dynamodb.settings import ConfigError
from dynamic_dynamodb.simulation import simulate
from dynamic_dynamodb.simulation.trace import parse_timestamp, write_trace

UTC = timezone.utc


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sales(**kw) -> Schedule:
    values = dict(name="sales", hours=(Window(time(16), time(22)),), lead_minutes=10, min_reads=500)
    values.update(kw)
    return Schedule(**values)


# 2026-11-30 is a Monday; 2026-11-28 a Saturday.
IN_FORCE_CASES = [
    ("inside the hours", sales(), "2026-11-30 18:00", True),
    ("at the start", sales(lead_minutes=0), "2026-11-30 16:00", True),
    ("a minute before the start, no lead", sales(lead_minutes=0), "2026-11-30 15:59", False),
    ("within the lead before the start", sales(), "2026-11-30 15:50", True),
    ("just before the lead", sales(), "2026-11-30 15:49", False),
    ("at the end (the end is exclusive)", sales(), "2026-11-30 22:00", False),
    ("a minute before the end", sales(), "2026-11-30 21:59", True),
    ("a day it may start on", sales(days=(0, 1, 2, 3, 4)), "2026-11-30 17:00", True),
    ("a day it may not start on", sales(days=(0, 1, 2, 3, 4)), "2026-11-28 17:00", False),
    ("wrapping midnight, before it", sales(hours=(Window(time(22), time(2)),)), "2026-11-30 23:30", True),
    ("wrapping midnight, after it", sales(hours=(Window(time(22), time(2)),)), "2026-12-01 01:30", True),
    ("wrapping midnight, after its end", sales(hours=(Window(time(22), time(2)),)), "2026-12-01 02:00", False),
    ("an interval started on Friday lasts into Saturday",
     sales(days=(4,), hours=(Window(time(22), time(2)),)), "2026-11-28 01:00", True),
    ("an interval started on Saturday does not, on a mon-fri schedule",
     sales(days=(0, 1, 2, 3, 4), hours=(Window(time(22), time(2)),)), "2026-11-29 01:00", False),
    ("the lead reaches back over midnight into the day before",
     sales(days=(0,), hours=(Window(time(0), time(6)),)), "2026-11-29 23:55", True),
    ("local time: 16:00 in Paris is 15:00 UTC in winter", sales(timezone="Europe/Paris", lead_minutes=0),
     "2026-11-30 15:00", True),
    ("local time: 21:30 UTC is 22:30 in Paris in winter", sales(timezone="Europe/Paris", lead_minutes=0),
     "2026-11-30 21:30", False),
    ("summer time: 16:00 in Paris is 14:00 UTC", sales(timezone="Europe/Paris", lead_minutes=0),
     "2026-07-01 14:00", True),
    ("summer time: 15:00 UTC in July is 17:00 in Paris", sales(timezone="Europe/Paris", lead_minutes=0),
     "2026-07-01 20:00", False),
    ("a second interval", sales(hours=(Window(time(8), time(9)), Window(time(16), time(22)))),
     "2026-11-30 08:30", True),
    ("between the intervals", sales(hours=(Window(time(8), time(9)), Window(time(16), time(22)))),
     "2026-11-30 12:00", False),
    ("00:00-24:00 holds at 23:59", sales(hours=config.to_hours("00:00-24:00"), days=(0,), lead_minutes=0),
     "2026-11-30 23:59", True),
    ("00:00-24:00 ends at midnight", sales(hours=config.to_hours("00:00-24:00"), days=(0,), lead_minutes=0),
     "2026-12-01 00:00", False),
    ("00:00-00:00 is the same whole day", sales(hours=config.to_hours("00:00-00:00"), days=(0,), lead_minutes=0),
     "2026-11-30 23:59", True),
    ("16:00-24:00 holds at 23:59", sales(hours=config.to_hours("16:00-24:00"), lead_minutes=0),
     "2026-11-30 23:59", True),
    ("16:00-24:00 ends at midnight", sales(hours=config.to_hours("16:00-24:00"), days=(0,), lead_minutes=0),
     "2026-12-01 00:00", False),
    ("09:00-09:00 lasts into the next morning", sales(hours=config.to_hours("09:00-09:00"), days=(0,)),
     "2026-12-01 08:59", True),
    ("09:00-09:00 ends at 09:00 the next day", sales(hours=config.to_hours("09:00-09:00"), days=(0,)),
     "2026-12-01 09:00", False),
]


@pytest.mark.parametrize("s,now,expected", [c[1:] for c in IN_FORCE_CASES], ids=[c[0] for c in IN_FORCE_CASES])
def test_in_force(s: Schedule, now: str, expected: bool) -> None:
    assert schedule.is_in_force(s, at(now)) is expected


def test_the_day_the_clocks_change_keeps_local_hours():
    # Europe/Paris leaves summer time on 2026-10-25 at 03:00: 16:00 local is 15:00 UTC that day
    s = sales(timezone="Europe/Paris", lead_minutes=0)
    assert schedule.is_in_force(s, at("2026-10-25 15:00"))
    assert not schedule.is_in_force(s, at("2026-10-25 14:59"))
    assert schedule.is_in_force(s, at("2026-10-24 14:00"))  # the day before, still summer time


# A wall time the clocks skip (spring forward) means the moment the gap ends; an ambiguous one
# (fall back) its first occurrence. New York skips 02:00-03:00 on Sunday 2026-03-08 (03:00 EDT is
# 07:00 UTC) and repeats 01:00-02:00 on 2026-11-01; Sydney skips 02:00-03:00 on 2026-10-04 (03:00
# AEDT is 16:00 UTC on the 3rd).
DST_CASES = [
    ("a start in the gap is the gap's end", "America/New_York", "02:30-04:00", "2026-03-08",
     ("2026-03-08 07:00", "2026-03-08 08:00")),
    ("an end in the gap is the gap's end", "America/New_York", "01:00-02:30", "2026-03-08",
     ("2026-03-08 06:00", "2026-03-08 07:00")),
    ("a window from the gap runs from its end", "America/New_York", "02:30-03:30", "2026-03-08",
     ("2026-03-08 07:00", "2026-03-08 07:30")),
    ("a window wholly in the gap is empty", "America/New_York", "02:10-02:50", "2026-03-08",
     ("2026-03-08 07:00", "2026-03-08 07:00")),
    ("a start at the gap's beginning", "Australia/Sydney", "02:00-03:00", "2026-10-04",
     ("2026-10-03 16:00", "2026-10-03 16:00")),
    ("a start at the gap's beginning, ending after it", "Australia/Sydney", "02:00-04:00", "2026-10-04",
     ("2026-10-03 16:00", "2026-10-03 17:00")),
    ("an ambiguous start is its first occurrence (EDT)", "America/New_York", "01:30-03:00", "2026-11-01",
     ("2026-11-01 05:30", "2026-11-01 08:00")),
    ("an ambiguous end is its first occurrence (EDT)", "America/New_York", "00:00-01:30", "2026-11-01",
     ("2026-11-01 04:00", "2026-11-01 05:30")),
    ("a whole day that loses an hour lasts 23 hours", "America/New_York", "00:00-24:00", "2026-03-08",
     ("2026-03-08 05:00", "2026-03-09 04:00")),
    ("a whole day that repeats an hour lasts 25 hours", "America/New_York", "00:00-00:00", "2026-11-01",
     ("2026-11-01 04:00", "2026-11-02 05:00")),
]


@pytest.mark.parametrize("zone,hours,day,expected", [c[1:] for c in DST_CASES], ids=[c[0] for c in DST_CASES])
def test_dst_gaps_and_repeats(zone, hours, day, expected):
    s = Schedule("s", config.to_hours(hours), timezone=zone, lead_minutes=0)
    got = list(schedule._local_intervals(s, datetime.fromisoformat(day).date()))
    assert got == [(at(expected[0]), at(expected[1]))]


def test_a_window_starting_in_the_gap_is_in_force_from_the_gaps_end():
    ny = dict(days=(6,), timezone="America/New_York", lead_minutes=0)
    minutes = [at("2026-03-08 06:00") + timedelta(minutes=m) for m in range(150)]
    inside = Schedule("gap", config.to_hours("02:10-02:50"), **ny)
    assert not any(schedule.is_in_force(inside, t) for t in minutes)
    for hours, end in (("02:30-03:30", at("2026-03-08 07:30")), ("02:30-04:00", at("2026-03-08 08:00"))):
        s = Schedule("gap", config.to_hours(hours), **ny)
        expected = [t for t in minutes if at("2026-03-08 07:00") <= t < end]
        assert [t for t in minutes if schedule.is_in_force(s, t)] == expected
        assert schedule.next_change((s,), at("2026-03-08 06:00")) == at("2026-03-08 07:00")


DST_ZONES = ["America/New_York", "Australia/Sydney", "Europe/Paris", "Australia/Lord_Howe", "America/Santiago",
             "Pacific/Apia"]


def _clock_change_days(zone: str, year: int) -> list:
    """The local days of `year` on which `zone`'s offset changes (found hour by hour)."""
    tz, t = ZoneInfo(zone), datetime(year, 1, 1, tzinfo=UTC)
    days = []
    while t.year == year:
        if (t + timedelta(hours=1)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            days.append((zone, (t + timedelta(hours=1)).astimezone(tz).date()))
        t += timedelta(hours=1)
    return days


# the days the clocks change (a uniform day almost never is one), Samoa's skipped day of 2011 among them
CLOCK_CHANGES = [d for zone in DST_ZONES for d in _clock_change_days(zone, 2026)] + _clock_change_days(
    "Pacific/Apia", 2011) + [("Pacific/Apia", datetime(2011, 12, 30).date())]  # the day Samoa skipped whole


@hsettings(max_examples=300, deadline=None)
@given(zone_day=st.one_of(st.sampled_from(CLOCK_CHANGES),
                          st.tuples(st.sampled_from(DST_ZONES),
                                    st.dates(datetime(2026, 1, 1).date(), datetime(2027, 1, 1).date()))),
       minute=st.integers(0, 1439))
def test_a_wall_time_is_the_first_moment_at_or_after_it(zone_day, minute):
    zone, day = zone_day
    tz = ZoneInfo(zone)
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    moment = schedule._moment(day, wall.time(), tz)
    assert moment.astimezone(tz).replace(tzinfo=None) >= wall
    assert (moment - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wall


def test_next_change_is_the_next_start_minus_lead_or_the_next_end():
    s = sales()
    assert schedule.next_change((s,), at("2026-11-30 12:00")) == at("2026-11-30 15:50")
    assert schedule.next_change((s,), at("2026-11-30 17:00")) == at("2026-11-30 22:00")
    assert schedule.next_change((s,), at("2026-11-30 22:00")) == at("2026-12-01 15:50")
    weekend = sales(days=(5,))
    assert schedule.next_change((weekend,), at("2026-11-30 12:00")) == at("2026-12-05 15:50")


def test_several_in_force_give_the_highest_min_and_the_lowest_max():
    a = sales(name="a", min_reads=100, max_reads=900)
    b = sales(name="b", min_reads=300, max_reads=700, min_writes=20)
    rules = TargetRules(reads=DimensionRules(min_provisioned=5, max_provisioned=1000),
                        writes=DimensionRules(min_provisioned=2), schedules=(a, b))
    eff, active = schedule.effective_rules(rules, at("2026-11-30 17:00"))
    assert active == (a, b)
    assert (eff.reads.min_provisioned, eff.reads.max_provisioned) == (300, 700)
    assert (eff.writes.min_provisioned, eff.writes.max_provisioned) == (20, None)
    eff, active = schedule.effective_rules(rules, at("2026-11-30 12:00"))
    assert active == () and eff == rules


@hsettings(max_examples=200, deadline=None)
@given(minute=st.integers(0, 14 * 1440), start=st.integers(0, 1439), length=st.integers(1, 1440),
       lead=st.integers(0, 120), zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]))
def test_in_force_changes_only_at_the_times_next_change_names(minute, start, length, lead, zone):
    s = Schedule("s", (Window(time(start // 60, start % 60), time((start + length) // 60 % 24,
                                                                    (start + length) % 60)),),
                 timezone=zone, lead_minutes=lead, min_reads=10)
    now = at("2026-03-20 00:00") + timedelta(minutes=minute)
    change = schedule.next_change((s,), now)
    if change is None:  # the lead joins each interval to the next: in force all the time
        assert all(schedule.is_in_force(s, now + timedelta(minutes=m)) for m in range(0, 8 * 1440, 7))
        return
    assert change > now
    probe = now + (change - now) / 2
    assert schedule.is_in_force(s, probe) == schedule.is_in_force(s, now)
    assert schedule.is_in_force(s, change) != schedule.is_in_force(s, now)


# ---- the policy ------------------------------------------------------------------------

WINDOW = 300


def quiet(units: float) -> Observed:
    return Observed(units * WINDOW, 0.0, WINDOW)


def status(reads: int, writes: int = 10, decreases: int = 0, last: datetime | None = None) -> TargetStatus:
    return TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(reads, writes), decreases, last)


@pytest.mark.parametrize("policy", ["threshold", "demand"])
def test_a_schedule_raises_capacity_to_its_min_at_low_traffic(policy):
    rules = TargetRules(scaling_policy=policy, schedules=(sales(),),
                        maintenance_windows=(Window(time(3), time(4)),))
    # the day's decreases are spent and we are outside the maintenance window: an increase still goes
    decision, _ = decide(status(50, decreases=9, last=at("2026-11-30 15:40")), quiet(5), quiet(5), rules,
                         Memory(), at("2026-11-30 15:50"))
    assert decision.reads.new == 500
    assert "schedule sales in force" in decision.reads.reason


def test_a_schedule_max_caps_an_increase():
    rules = TargetRules(schedules=(sales(min_reads=None, max_reads=120),))
    decision, _ = decide(status(100), quiet(99), quiet(5), rules, Memory(), at("2026-11-30 17:00"))
    assert decision.reads.new == 120
    decision, _ = decide(status(100), quiet(99), quiet(5), rules, Memory(), at("2026-11-30 12:00"))
    assert decision.reads.new == 150


def test_when_the_schedule_ends_normal_scaling_resumes():
    rules = TargetRules(schedules=(sales(),))
    decision, _ = decide(status(500), quiet(10), quiet(5), rules, Memory(), at("2026-11-30 21:59"))
    assert decision.reads.new == 500
    decision, _ = decide(status(500), quiet(10), quiet(5), rules, Memory(), at("2026-11-30 22:00"))
    assert decision.reads.new == 250


def test_a_free_decrease_is_kept_for_the_end_of_a_scheduled_floor():
    rules = TargetRules(schedules=(sales(),))
    spent = FREE_DECREASES_PER_DAY - 1
    # three decreases spent, the last one 10 minutes ago: the fourth waits for the schedule's end
    before = status(100, decreases=spent, last=at("2026-11-30 09:50"))
    decision, _ = decide(before, quiet(10), quiet(5), rules, Memory(), at("2026-11-30 10:00"))
    assert decision.reads.new == 100 and "decrease budget spent" in decision.reads.reason
    ending = status(500, decreases=spent, last=at("2026-11-30 21:55"))
    decision, _ = decide(ending, quiet(10), quiet(5), rules, Memory(), at("2026-11-30 22:00"))
    assert decision.reads.new == 250
    # without a schedule the same fourth decrease would have gone at 10:00
    decision, _ = decide(before, quiet(10), quiet(5), TargetRules(), Memory(), at("2026-11-30 10:00"))
    assert decision.reads.new == 50


@hsettings(max_examples=300, deadline=None)
@given(cur=st.integers(1, 2000), consumed=st.floats(0, 3000), minute=st.integers(0, 3 * 1440),
       smin=st.integers(1, 800), smax=st.integers(800, 1500), policy=st.sampled_from(["threshold", "demand"]))
def test_never_outside_the_limits_in_force(cur, consumed, minute, smin, smax, policy):
    now = at("2026-11-30 00:00") + timedelta(minutes=minute)
    s = sales(min_reads=smin, max_reads=smax)
    rules = TargetRules(scaling_policy=policy, schedules=(s,), reads=DimensionRules(max_provisioned=1800))
    decision, _ = decide(status(cur), quiet(consumed), quiet(1), rules, Memory(), now)
    new = decision.reads.new
    if schedule.is_in_force(s, now):
        assert new >= smin and (new <= smax or new <= cur)
    else:
        assert new <= max(1800, cur)


# ---- the config ------------------------------------------------------------------------


@pytest.fixture
def load(tmp_path):
    def run(text: str):
        conf = tmp_path / "c.conf"
        conf.write_text(text)
        return load_settings(["--config", str(conf)])
    return run


GOOD = """\
[schedule: sales]
hours: 16:00-22:00, 08:00-09:00
days: mon-fri
timezone: Europe/Paris
lead-minutes: 15
min-provisioned-reads: 500
max-provisioned-writes: 80

[schedule: weekend]
hours: 22:00-02:00
days: fri-mon
min-provisioned-writes: 40

[default_options]
schedules: weekend

[table: orders]
schedules: sales, weekend
[gsi: .* table: orders]
[table: other]
"""


def test_schedules_are_read_from_their_sections(load):
    tables = load(GOOD).tables
    orders, other = tables
    s, w = orders.rules.schedules
    assert s == Schedule("sales", (Window(time(8), time(9)), Window(time(16), time(22)))[::-1], (0, 1, 2, 3, 4),
                         "Europe/Paris", 15, min_reads=500, max_writes=80)
    assert w.days == (0, 4, 5, 6) and w.lead_minutes == 10 and w.timezone == "UTC"
    assert orders.gsis[0].rules.schedules == (w,)  # from [default_options]
    assert other.rules.schedules == (w,)


BAD = [
    ("an unknown time zone", "timezone: Mars/Olympus", "timezone: expected an IANA time zone"),
    ("the host's time zone", "timezone: localtime", "timezone: expected an IANA time zone"),
    ("the host's posixrules", "timezone: posixrules", "timezone: expected an IANA time zone"),
    ("a min with an underscore", "min-provisioned-reads: 1_000", "min-provisioned-reads: expected an integer"),
    ("hour 25", "hours: 16:00-25:00", "hours: expected times from 00:00 to 24:00"),
    ("minute 60", "hours: 16:00-17:60", "hours: expected times from 00:00 to 24:00"),
    ("a digit of another script", "hours: \u0661\u0666:00-22:00", "hours: expected intervals like 16:00-22:00"),
    ("past 24:00", "hours: 16:00-24:01", "hours: expected times from 00:00 to 24:00"),
    ("24:00 as a start", "hours: 24:00-02:00", "hours: 24:00 ends a day, a start at midnight is 00:00"),
    ("an empty hours", "hours:", "hours: empty value"),
    ("a bad day", "days: mon-funday", "days: expected days such as mon-fri"),
    ("min above max", "min-provisioned-reads: 900\nmax-provisioned-reads: 100",
     "min-provisioned-reads: 900 is above max-provisioned-reads 100"),
    ("a lead of more than a day", "lead-minutes: 2000", "lead-minutes: must be at most 1440"),
    ("a min above the table's max", "min-provisioned-writes: 900",
     "c.conf [table: orders] max-provisioned-writes 100"),
]


@pytest.mark.parametrize("line,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_schedule_is_a_one_line_error(load, line, message):
    text = f"[schedule: s]\n{'hours: 16:00-22:00' if not line.startswith('hours') else ''}\n{line}\n" \
           "[table: orders]\nschedules: s\nmax-provisioned-writes: 100\n"
    with pytest.raises(ConfigError) as error:
        load(text)
    assert message in str(error.value) and "[schedule: s]" in str(error.value) and "\n" not in str(error.value)


WHOLE_DAYS = [
    ("16:00-24:00", (Window(time(16), time(0)),)),
    ("00:00-24:00", (Window(time(0), time(0)),)),
    ("00:00-00:00", (Window(time(0), time(0)),)),
    ("09:00-09:00", (Window(time(9), time(9)),)),
    ("8:00-9:00, 22:00-24:00", (Window(time(8), time(9)), Window(time(22), time(0)))),
]


@pytest.mark.parametrize("text,expected", WHOLE_DAYS, ids=[f"{t} is accepted" for t, _ in WHOLE_DAYS])
def test_24_00_ends_a_day_and_equal_ends_are_a_whole_day(load, text, expected):
    settings = load(f"[schedule: s]\nhours: {text}\n[table: orders]\nschedules: s\n")
    assert settings.tables[0].rules.schedules[0].hours == expected


EMPTIED = [
    ("a table section", "[table: orders]\nschedules:\n[table: other]\n", ((), ("weekend",))),
    ("a GSI section", "[table: orders]\n[gsi: .* table: orders]\nschedules:\n[table: other]\n",
     ((), ("weekend",))),
    ("[default_options] itself", "[table: orders]\n[table: other]\n", ((), ())),
]


@pytest.mark.parametrize("tables,expected", [c[1:] for c in EMPTIED], ids=[f"an empty schedules in {c[0]} means none"
                                                                          for c in EMPTIED])
def test_an_empty_schedules_unsets_the_default_options_one(load, tables, expected):
    defaults = "schedules:" if expected == ((), ()) else "schedules: weekend"
    settings = load(f"[schedule: weekend]\nhours: 00:00-24:00\ndays: sat,sun\n[default_options]\n{defaults}\n"
                    f"{tables}")
    orders, other = settings.tables
    target = orders.gsis[0] if orders.gsis else orders
    assert (tuple(s.name for s in target.rules.schedules), tuple(s.name for s in other.rules.schedules)) \
        == expected


FLOOR = "[schedule: s]\nhours: 16:00-22:00\nmin-provisioned-reads: 60\n[default_options]\nschedules: s\n"
ABOVE_THE_MAX = [
    ("the max of the table's own section", FLOOR + "[table: t]\nmax-provisioned-reads: 20\n", [],
     "c.conf [schedule: s] min-provisioned-reads: 60 is above c.conf [table: t] max-provisioned-reads 20"),
    ("the max of [default_options], for the table using it",
     FLOOR + "max-provisioned-reads: 20\n[table: t]\n", [],
     "c.conf [schedule: s] min-provisioned-reads: 60 is above c.conf [default_options] max-provisioned-reads 20 "
     "(for [table: t])"),
    ("the max of [default_options], for a GSI using it",
     FLOOR + "max-provisioned-reads: 20\n[table: t]\nschedules:\n[gsi: g table: t]\nschedules: s\n", [],
     "c.conf [schedule: s] min-provisioned-reads: 60 is above c.conf [default_options] max-provisioned-reads 20 "
     "(for [gsi: g table: t])"),
    ("--max-provisioned-reads with --table-name", FLOOR, ["-t", "tov1", "--max-provisioned-reads", "20"],
     "c.conf [schedule: s] min-provisioned-reads: 60 is above command line --max-provisioned-reads 20"),
    ("the max of [default_options] with --table-name", FLOOR + "max-provisioned-reads: 20\n", ["-t", "tov1"],
     "c.conf [schedule: s] min-provisioned-reads: 60 is above c.conf [default_options] max-provisioned-reads 20 "
     "(for --table-name tov1)"),
]


@pytest.mark.parametrize("text,argv,message", [c[1:] for c in ABOVE_THE_MAX], ids=[c[0] for c in ABOVE_THE_MAX])
def test_a_scheduled_min_above_the_max_names_where_the_max_was_set(tmp_path, text, argv, message):
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(["--config", str(conf), *argv])
    assert str(error.value) == f"{tmp_path}/{message}".replace(" c.conf", f" {tmp_path}/c.conf")


@pytest.mark.parametrize("header", ["[schedule: a,b]", "[schedule: a, b]", "[schedule: ,]"])
def test_a_schedule_name_with_a_comma_is_an_error(load, header):
    with pytest.raises(ConfigError) as error:
        load(f"{header}\nhours: 16:00-22:00\n[table: orders]\n")
    message = str(error.value)
    assert f"{header}: a schedule name has no comma" in message and "\n" not in message


def test_a_reference_to_a_missing_schedule_is_an_error(load):
    with pytest.raises(ConfigError, match=r"\[table: orders\] schedules: no \[schedule: nightly\] section "
                                          r"\(known: 'sales'\)"):
        load("[schedule: sales]\nhours: 16:00-22:00\n[table: orders]\nschedules: sales, nightly\n")


def test_a_schedule_without_hours_is_an_error(load):
    with pytest.raises(ConfigError, match=r"\[schedule: s\]: hours is required"):
        load("[schedule: s]\ndays: mon\n[table: orders]\n")


def test_an_unknown_key_of_a_schedule_is_named(load):
    settings = load("[schedule: s]\nhours: 16:00-22:00\nmin-provisoned-reads: 5\n[table: orders]\n")
    assert any("[schedule: s]: unknown key 'min-provisoned-reads' (did you mean 'min-provisioned-reads'?)" in w
               for w in settings.warnings)


def test_the_cli_exits_2_on_a_bad_schedule(tmp_path, capsys):
    from dynamic_dynamodb import cli
    conf = tmp_path / "c.conf"
    conf.write_text("[schedule: s]\nhours: 25:00-26:00\n[table: t]\nschedules: s\n")
    assert cli.main(["--config", str(conf), "--run-once"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "[schedule: s] hours" in err


# ---- the simulator ---------------------------------------------------------------------


def test_the_simulator_replays_a_schedule_at_the_traces_own_times(tmp_path):
    # two quiet days starting on a Monday; a 16:00-22:00 Paris floor of 500 reads
    start = datetime(2026, 11, 30, tzinfo=UTC)
    trace = tmp_path / "quiet.csv"
    write_trace(trace, start, [20.0] * 2880, [5.0] * 2880)
    conf = tmp_path / "c.conf"
    conf.write_text("[global]\ncheck-interval: 60\n[schedule: sales]\nhours: 16:00-22:00\ntimezone: Europe/Paris\n"
                    "min-provisioned-reads: 500\n[table: quiet]\nscaling-policy: demand\nschedules: sales\n")
    settings = load_settings(["--config", str(conf)])
    simulate(settings, trace, tmp_path / "out", progress=None)
    with open(tmp_path / "out" / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_minute = {parse_timestamp(r["timestamp"]): int(r["provisioned_reads"]) for r in rows}
    for day in (0, 1):
        base = start + timedelta(days=day)
        # in force from 14:50 UTC (15:00 local minus the 10 lead minutes); the increase arrives a minute later
        assert by_minute[base + timedelta(hours=14, minutes=49)] < 500
        assert by_minute[base + timedelta(hours=14, minutes=51)] == 500
        assert by_minute[base + timedelta(hours=20, minutes=59)] == 500
        # 22:00 Paris is 21:00 UTC: the floor is gone and the next decrease lowers it
        assert by_minute[base + timedelta(hours=21, minutes=2)] < 500


# ---- the docs --------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("key", config.SCHEDULE_KEYS, ids=lambda k: f"the docs give [schedule:] {k.name} its row")
def test_the_docs_give_every_schedule_key_its_type_and_default(key) -> None:
    page = (DOCS / "configuration.rst").read_text().split("\n[schedule: NAME]\n", 1)[1]
    row = re.search(rf"^\s*\* - ``{re.escape(key.name)}``\n\s*- (.*)\n\s*- (.*)\n", page, re.M)
    assert row, key.name
    assert (row[1], row[2]) == (key.type_name, key.shown_default)


def test_the_schedules_page_is_in_the_index_and_shows_its_plot() -> None:
    assert "schedules" in (DOCS / "index.rst").read_text().split()
    page = (DOCS / "schedules.rst").read_text()
    assert "16:00-22:00" in page and (DOCS / "_static" / "sales-hours-plot.png").is_file()
