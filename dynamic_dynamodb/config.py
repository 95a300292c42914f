"""Command line and config file: parse, merge and validate them into one frozen Settings.

This is the only module that touches argparse and configparser. Order of precedence:
built-in default < `[default_options]` < `[table: ...]`/`[gsi: ...]` section for table keys
(or < command line with `--table-name`), and built-in default < config file < command line
for the `[global]` and `[logging]` options.
"""
from __future__ import annotations

import argparse
import ast
import configparser
import dataclasses
import difflib
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from enum import Enum
from typing import Any, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import __version__, edge, policy
from .breaker import redact_url
from .capacity_mode import CAPACITY_MODES, MAX_DAYS, ModeRules
from .edge import EXIT_USAGE
from .model import Dim
from .rules import (
    PERCENT,
    SNS_MESSAGE_TYPES,
    UNIT_CHOICES,
    UNITS,
    DimensionRules,
    Schedule,
    TargetRules,
    Window,
)
from .settings import ConfigError, GsiSection, Settings, TableSection

LOG_LEVELS = ("debug", "info", "warning", "error")
DAEMON_COMMANDS = ("start", "stop", "restart", "status", "foreground", "fg")
LOG_FORMATS = ("text", "json")
MAX_BACKTEST_DAYS = 15
MAX_CHECK_INTERVAL = 86400  # a day: DynamoDB's decrease allowance is per day
MAX_LOOKBACK_MINUTES = 15 * 24 * 60  # CloudWatch keeps 1-minute datapoints 15 days
MAX_BREAKER_TIMEOUT_MS = 3_600_000  # an hour
AWS_TARGET_RANGE = (20.0, 90.0)  # what AWS target tracking accepts for DynamoDB, percent
MASK = "***"

GLOBAL = "global"
LOGGING = "logging"
DEFAULT_OPTIONS = "default_options"
COMMAND_LINE = "command line"
BUILT_IN = "built-in default"
HISTORY_WINDOW_START = 5  # lookback-window-start of scaling-policy demand and forecast when none is set

EPILOG = """\
exit status:
  0  success (also after --help, --version and --show-config)
  1  runtime failure
  2  usage or configuration error

Table keys are regular expressions matched against whole table names
(re.fullmatch): 'my_table' matches only my_table; write 'my_table.*' for a prefix."""


# ---- converters: text -> value, ValueError naming the value ------------------------------


def to_str(text: str) -> str:
    """Any non-empty text, stripped."""
    value = text.strip()
    if not value:
        raise ValueError(f"expected a non-empty value, got {text!r}")
    return value


_INTEGER = re.compile(r"[+-]?[0-9]+")


def to_int(text: str) -> int:
    """A whole number such as 300, in ASCII digits (int() also reads 1_000 and other scripts' digits)."""
    if not _INTEGER.fullmatch(text.strip()):
        raise ValueError(f"expected an integer, got {text!r}")
    return int(text.strip())


def to_limit(text: str) -> int | None:
    """A min or max of provisioned units; 0 means no limit, as in 1.6.0."""
    value = to_int(text)
    if value < 0:
        raise ValueError(f"must be at least 0 (0: no limit), got {value}")
    return value or None


def to_float(text: str) -> float:
    """A finite number such as 90 or 12.5 (not 1_000, nor in other scripts' digits, which float() reads)."""
    try:
        if "_" in text or not text.isascii():
            raise ValueError(text)
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return value


def to_amount(text: str) -> float:
    """A number, kept as an int when it is whole (so unit amounts stay integers)."""
    value = to_float(text)
    return int(value) if value.is_integer() else value


def to_bool(text: str) -> bool:
    """true/false, yes/no, on/off or 1/0, in any case."""
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {text!r}") from None


def _choice(text: str, choices: Sequence[str]) -> str:
    """One of `choices`, case-insensitive."""
    value = text.strip().lower()
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
    return value


def to_unit(text: str) -> str:
    """percent or units."""
    return _choice(text, UNIT_CHOICES)


def to_policy(text: str) -> str:
    """threshold, demand or forecast."""
    return _choice(text, policy.SCALING_POLICIES)


def to_capacity_mode(text: str) -> str:
    """provisioned, on-demand or auto."""
    return _choice(text, CAPACITY_MODES)


def to_log_level(text: str) -> str:
    """debug, info, warning or error."""
    return _choice(text, LOG_LEVELS)


def to_log_format(text: str) -> str:
    """text or json."""
    return _choice(text, LOG_FORMATS)


def to_daemon(text: str) -> str:
    """start, stop, restart, foreground or its alias fg."""
    return _choice(text, DAEMON_COMMANDS)


def to_instance(text: str) -> str:
    """An instance name: part of the pid and state file names, so no / and not . or .."""
    value = to_str(text)
    if "/" in value or "\0" in value or value in (".", ".."):
        raise ValueError(f"expected a name usable in a file name, got {text!r}")
    return value


def to_path(text: str) -> str:
    """A file or directory path; a leading ~ is expanded."""
    return os.path.expanduser(to_str(text))


def to_profile(text: str) -> str:
    """The name of an AWS profile, such as prod (no spaces or brackets: the files could not hold it)."""
    value = text.strip()
    if not re.fullmatch(r"[^\s\[\]]+", value):
        raise ValueError(f"expected an AWS profile name such as prod, got {text!r}")
    return value


def to_region(text: str) -> str:
    """An AWS region name such as eu-west-1."""
    value = text.strip()
    if not re.fullmatch(r"[a-z]+(-[a-z]+)+-[0-9]+", value):
        raise ValueError(f"expected an AWS region such as us-east-1, got {text!r}")
    return value


def to_regions(text: str) -> tuple[str, ...]:
    """Comma-separated AWS region names such as us-east-1, eu-west-1 (duplicates dropped)."""
    regions: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part and to_region(part) not in regions:
            regions.append(part)
    if not regions:
        raise ValueError(f"expected regions such as us-east-1, eu-west-1, got {text!r}")
    return tuple(regions)


_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)


def to_role_arn(text: str) -> str:
    """An IAM role ARN such as arn:aws:iam::123456789012:role/dynamic-dynamodb."""
    value = text.strip()
    if not _ROLE_ARN.fullmatch(value) or value.endswith("/"):
        raise ValueError(f"expected an IAM role ARN such as arn:aws:iam::123456789012:role/dynamic-dynamodb, "
                         f"got {text!r}")
    return value


def to_batch_size(text: str) -> int:
    """GetMetricData queries per call: 1 to 500 (the API's limit)."""
    value = to_int(text)
    if not 1 <= value <= 500:
        raise ValueError(f"expected 1 to 500 queries per call, got {text!r}")
    return value


def to_scale(text: str) -> dict:
    """A dict of numbers to numbers such as {0: 0, 0.25: 5, 1: 20}, sorted by key."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"expected a dict such as {{0: 0, 25: 10}}, got {text!r}") from None
    if not isinstance(value, dict) or not value:
        raise ValueError(f"expected a non-empty dict such as {{0: 0, 25: 10}}, got {text!r}")
    for number in (*value.keys(), *value.values()):
        # bool is an int subclass, but True: 5 is surely a typo
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ValueError(f"expected numbers only in the dict, got {number!r} in {text!r}")
        if number < 0:
            raise ValueError(f"expected no negative numbers in the dict, got {number!r} in {text!r}")
    return dict(sorted(value.items()))


_WINDOW = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")


def _clock(hours: str, minutes: str, window: str, last: str = "23:59") -> time:
    """HH and MM of one end of a window; `last` is the latest time the message names."""
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(f"expected times from 00:00 to {last}, got {window!r}")
    return time(h, m)


def to_windows(text: str) -> tuple[Window, ...]:
    """Comma-separated UTC windows HH:MM-HH:MM; a window may wrap midnight."""
    return _intervals(text, "windows like 22:00-23:59,00:00-06:00")


def _intervals(text: str, example: str, day_end: bool = False) -> tuple[Window, ...]:
    """The HH:MM-HH:MM intervals of a comma-separated list (maintenance windows, schedule hours);
    with `day_end`, 24:00 is an end: the midnight that ends the day, kept as 00:00."""
    last = "24:00" if day_end else "23:59"
    windows = []
    for part in (p.strip() for p in text.split(",")):
        match = _WINDOW.fullmatch(part)
        if not match:
            raise ValueError(f"expected {example}, got {part!r} in {text!r}")
        h1, m1, h2, m2 = match.groups()
        if day_end and (int(h1), int(m1)) == (24, 0):
            raise ValueError(f"24:00 ends a day, a start at midnight is 00:00, got {part!r}")
        end = time(0) if day_end and (int(h2), int(m2)) == (24, 0) else _clock(h2, m2, part, last)
        windows.append(Window(_clock(h1, m1, part, last), end))
    return tuple(windows)


def mask_url(url: str) -> str:
    """The URL with the password (or a lone user name) replaced by ***."""
    return redact_url(url)


def to_url(text: str) -> str:
    """An http:// or https:// URL, optionally with user:password@."""
    value = text.strip()
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ValueError(f"expected an http:// or https:// URL, got {redact_url(value, malformed=True)!r}")
    return value


def to_sns_types(text: str) -> tuple[str, ...]:
    """Comma-separated SNS message types; empty means none."""
    types: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part not in SNS_MESSAGE_TYPES:
            raise ValueError(f"expected message types among {', '.join(SNS_MESSAGE_TYPES)}, got {part!r} in {text!r}")
        if part not in types:
            types.append(part)
    return tuple(types)


def to_sns_arn(text: str) -> str:
    """An SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:my-topic."""
    value = text.strip()
    if not re.fullmatch(r"arn:[\w-]+:sns:[\w-]+:[0-9]{12}:[\w.-]+", value, re.ASCII):
        raise ValueError(f"expected an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:topic, got {text!r}")
    return value


_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
STATE_TABLE_CREATE = ("auto", "never")
MAX_LEASE_SECONDS = 3600


def to_table_name(text: str) -> str:
    """A DynamoDB table name: 3 to 255 of letters, digits, '_', '-' and '.'."""
    name = text.strip()
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)")
    return name


def to_state_table_create(text: str) -> str:
    """auto (create the state table when absent) or never."""
    return _choice(text, STATE_TABLE_CREATE)


def to_days(text: str) -> int:
    """Days of CloudWatch history for --backtest: 1 to 15 (CloudWatch keeps 1-minute data 15 days)."""
    value = to_int(text)
    if not 1 <= value <= MAX_BACKTEST_DAYS:
        raise ValueError(f"expected 1 to {MAX_BACKTEST_DAYS} days, got {text!r}")
    return value


def to_target_utilization(text: str) -> float:
    """Target utilisation of the AWS target-tracking baseline: 20 to 90 percent."""
    value = to_float(text)
    low, high = AWS_TARGET_RANGE
    if not low <= value <= high:
        raise ValueError(f"expected a percent from {low:g} to {high:g}, got {text!r}")
    return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_LEAD_MINUTES = 24 * 60


def to_schedule_names(text: str) -> tuple[str, ...]:
    """Comma-separated names of [schedule: NAME] sections; empty means none."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part and part not in names:
            names.append(part)
    return tuple(names)


def to_hours(text: str) -> tuple[Window, ...]:
    """Comma-separated local intervals HH:MM-HH:MM (may wrap midnight); at least one.

    An end of 24:00 is the midnight that ends the day, kept as 00:00: an end at or before its start
    is on the next day, so equal ends are the whole day round (00:00-24:00 is 00:00-00:00)."""
    if not text.strip():
        raise ValueError("expected at least one interval such as 16:00-22:00, got nothing")
    return _intervals(text, "intervals like 16:00-22:00,00:00-24:00", day_end=True)


WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(name: str, text: str) -> int:
    """Monday 0 ... Sunday 6, from mon or monday in any case."""
    key = name.strip().lower()
    for names in (WEEKDAYS, WEEKDAY_NAMES):
        if key in names:
            return names.index(key)
    raise ValueError(f"expected days such as mon-fri or sat,sun, got {name.strip()!r} in {text!r}")


def to_weekdays(text: str) -> tuple[int, ...]:
    """Comma-separated days or ranges of days (mon-fri, sat,sun; fri-mon wraps the week), Monday 0."""
    days: set[int] = set()
    for part in (p for p in text.split(",")):
        if not part.strip():
            raise ValueError(f"expected days such as mon-fri or sat,sun, got {text!r}")
        first, sep, last = part.partition("-")
        start = _weekday(first, text)
        end = _weekday(last, text) if sep else start
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return tuple(sorted(days))


# files of the host's zoneinfo directory that are links to whatever zone the host is set to, not zones
HOST_ZONE_LINKS = ("localtime", "posixrules")


def to_timezone(text: str) -> str:
    """An IANA time zone name such as Europe/Paris or America/New_York."""
    value = text.strip()
    if value.lower() in HOST_ZONE_LINKS:
        raise ValueError(f"expected an IANA time zone such as Europe/Paris, got {text!r} (the host's own zone, "
                         f"which changes with the host)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"expected an IANA time zone such as Europe/Paris, got {text!r}") from None
    return value


TYPE_NAMES: dict[Callable[[str], Any], str] = {
    to_str: "string",
    to_int: "integer",
    to_limit: "integer",
    to_float: "number",
    to_amount: "number",
    to_bool: "boolean",
    to_unit: "percent/units",
    to_policy: "threshold/demand/forecast",
    to_capacity_mode: "provisioned/on-demand/auto",
    to_log_level: "log level",
    to_log_format: "text/json",
    to_daemon: "command",
    to_path: "path",
    to_instance: "string",
    to_profile: "profile",
    to_region: "region",
    to_regions: "list of regions",
    to_role_arn: "ARN",
    to_batch_size: "integer",
    to_scale: "dict",
    to_windows: "windows",
    to_url: "URL",
    to_sns_types: "list",
    to_sns_arn: "ARN",
    to_days: "integer",
    to_target_utilization: "number",
    to_table_name: "table name",
    to_state_table_create: "auto/never",
    to_schedule_names: "list of schedules",
    to_hours: "intervals",
    to_weekdays: "days",
    to_timezone: "time zone",
}


# ---- the option tables ----------------------------------------------------------------


TABLE = "table"  # kind of option: a key of [default_options], [table: ...] and [gsi: ...]
PLACEMENT = "placement"  # a key of [default_options] and [table: ...] that says where the tables live
MODE = "mode"  # a key of [default_options] and [table: ...] about the table's capacity mode
SCHEDULE = "schedule"


@dataclass(frozen=True)
class Option:
    """One option: a key of some config section, maybe also a command-line flag."""

    kind: str  # TABLE, GLOBAL, LOGGING, PLACEMENT, MODE or SCHEDULE: where the key is valid
    name: str
    attr: str  # the field it fills in the dataclass that owner() names
    convert: Callable[[str], Any]
    help: str
    dim: Dim | None = None  # table keys: the dimension whose DimensionRules it fills
    low: float | None = None
    high: float | None = None
    optional: bool = False  # an empty value means "not set": the built-in default (None, or no schedules)
    flag: str | None = None  # the command-line option that sets or overrides it
    default_text: str | None = None  # when the dataclass default alone says too little

    @property
    def owner(self) -> Any:
        """The dataclass whose field `attr` this option fills."""
        if self.kind == TABLE:
            return DimensionRules if self.dim else TargetRules
        return {GLOBAL: Settings, LOGGING: Settings, PLACEMENT: TableSection, MODE: ModeRules,
                SCHEDULE: Schedule}[self.kind]

    @property
    def default(self) -> Any:
        """The built-in default, taken from the dataclass the option fills."""
        return self.owner.__dataclass_fields__[self.attr].default

    @property
    def shown_default(self) -> str:
        """The default as --help and the docs show it."""
        return self.default_text or _show(self.default)

    @property
    def section(self) -> str:
        """The section kind of a [global] or [logging] key."""
        return self.kind

    @property
    def cli(self) -> bool:
        """Whether a table key is also `--NAME` on the command line, used with --table-name."""
        return self.flag is not None

    @property
    def dest(self) -> str:
        """The argparse destination."""
        return self.name.replace("-", "_")

    @property
    def type_name(self) -> str:
        """The value type as the docs name it."""
        return TYPE_NAMES[self.convert]


def _table_key(name: str, attr: str, convert: Callable[[str], Any], help: str, dim: Dim | None = None,
               low: float | None = None, high: float | None = None, optional: bool = False, cli: bool = False,
               default_text: str | None = None) -> Option:
    """A key of the table sections; cli: also `--NAME` on the command line."""
    return Option(TABLE, name, attr, convert, help, dim, low, high, optional, "--" + name if cli else None,
                  default_text)


def _global_key(section: str, name: str, attr: str, convert: Callable[[str], Any], help: str,
                low: float | None = None, flag: str | None = None, high: float | None = None) -> Option:
    """A key of [global] or [logging], filling a field of Settings."""
    return Option(section, name, attr, convert, help, low=low, high=high, flag=flag)


def _placement_key(name: str, attr: str, convert: Callable[[str], Any], help: str) -> Option:
    """A placement key, filling a field of TableSection."""
    return Option(PLACEMENT, name, attr, convert, help)


def _mode_key(name: str, attr: str, convert: Callable[[str], Any], help: str, low: float | None = None,
              high: float | None = None, optional: bool = False, default_text: str | None = None) -> Option:
    """A capacity-mode key, filling a field of ModeRules."""
    return Option(MODE, name, attr, convert, help, low=low, high=high, optional=optional, default_text=default_text)


def _schedule_key(name: str, attr: str, convert: Callable[[str], Any], help: str, low: float | None = None,
                  high: float | None = None, default_text: str | None = None) -> Option:
    """A key of a [schedule: NAME] section, filling a field of rules.Schedule."""
    return Option(SCHEDULE, name, attr, convert, help, low=low, high=high, default_text=default_text)




def _show(value: Any) -> str:
    """A default value as text."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


def _dim_keys(dim: Dim) -> tuple[Option, ...]:
    """The per-dimension keys: reads-* for Dim.READS, writes-* for Dim.WRITES."""
    d = dim.value  # reads / writes
    s = d[:-1]  # read / write, as in num-read-checks-*
    inc_unit = f"increase-{d}-unit"
    return (
        _table_key(f"{d}-upper-threshold", "upper_threshold", to_float, dim=dim, low=0, cli=True,
            help=f"Consumed {s} capacity in percent at or above which {d} are increased; 0 disables threshold "
                 f"up-scaling."),
        _table_key(f"{d}-lower-threshold", "lower_threshold", to_float, dim=dim, low=0, cli=True,
            help=f"Consumed {s} capacity in percent at or below which {d} are decreased."),
        _table_key(f"increase-{d}-with", "increase_with", to_amount, dim=dim, low=0, cli=True,
            help=f"How much to increase {d} by, in {inc_unit}; percentages above 100 are allowed."),
        _table_key(f"decrease-{d}-with", "decrease_with", to_amount, dim=dim, low=0, cli=True,
            help=f"How much to decrease {d} by, in decrease-{d}-unit (above 100 in percent means 100)."),
        _table_key(inc_unit, "increase_unit", to_unit, dim=dim, cli=True,
            help=f"Unit of increase-{d}-with: percent of the current provisioning, or units."),
        _table_key(f"decrease-{d}-unit", "decrease_unit", to_unit, dim=dim, cli=True,
            help=f"Unit of decrease-{d}-with: percent of the current provisioning, or units."),
        _table_key(f"min-provisioned-{d}", "min_provisioned", to_limit, dim=dim, optional=True, cli=True,
            default_text="1",
            help=f"Never provision fewer {s} units than this; a table below it is raised (0: DynamoDB's 1)."),
        _table_key(f"max-provisioned-{d}", "max_provisioned", to_limit, dim=dim, optional=True, cli=True,
            default_text="no ceiling",
            help=f"Never provision more {s} units than this; a table above it is lowered (0: no ceiling)."),
        _table_key(f"throttled-{d}-upper-threshold", "throttled_upper_threshold", to_int, dim=dim, low=0, cli=True,
            help=f"Increase {d} when the {s} throttle events in the lookback window exceed this count; 0 disables."),
        _table_key(f"num-{s}-checks-before-scale-down", "checks_before_scale_down", to_int, dim=dim, low=1, cli=True,
            help=f"Consecutive checks that must ask for a {s} decrease before it is made."),
        _table_key(f"num-{s}-checks-reset-percent", "checks_reset_percent", to_float, dim=dim, low=0, cli=True,
            help=f"Consumed {s} percent at or above which that count of checks restarts from 0; 0 disables."),
        _table_key(f"enable-{d}-autoscaling", "enabled", to_bool, f"Scale {d} at all.", dim),
        _table_key(f"enable-{d}-up-scaling", "up_scaling", to_bool, f"Allow {s} increases.", dim),
        _table_key(f"enable-{d}-down-scaling", "down_scaling", to_bool, f"Allow {s} decreases.", dim),
        _table_key(f"allow-scaling-down-{d}-on-0-percent", "allow_scaling_down_on_0_percent", to_bool, dim=dim,
            help=f"Allow {s} decreases when consumption is exactly 0 % (data present)."),
        _table_key(f"{d}-upper-alarm-threshold", "upper_alarm_threshold", to_float, dim=dim, low=0,
            help=f"Send a high-throughput-alarm when consumed {s} percent is at or above this; 0 disables."),
        _table_key(f"{d}-lower-alarm-threshold", "lower_alarm_threshold", to_float, dim=dim, low=0,
            help=f"Send a low-throughput-alarm when consumed {s} percent is below this; 0 disables."),
        _table_key(f"increase-consumed-{d}-unit", "increase_consumed_unit", to_unit, dim=dim, optional=True,
            default_text=inc_unit,
            help=f"Unit of consumption-based {s} increases."),
        _table_key(f"increase-consumed-{d}-with", "increase_consumed_with", to_amount, dim=dim, low=0, optional=True,
            default_text=f"increase-{d}-with",
            help=f"Amount of a consumption-based {s} increase (threshold rule)."),
        _table_key(f"increase-consumed-{d}-scale", "increase_consumed_scale", to_scale, dim=dim, optional=True,
            help=f"Granular up-scaling: consumed {s} percent -> increase amount; replaces {d}-upper-threshold."),
        _table_key(f"increase-throttled-by-provisioned-{d}-unit", "increase_throttled_by_provisioned_unit", to_unit,
            dim=dim, optional=True, default_text=inc_unit,
            help=f"Unit of increase-throttled-by-provisioned-{d}-scale amounts."),
        _table_key(f"increase-throttled-by-provisioned-{d}-scale", "increase_throttled_by_provisioned_scale", to_scale,
            dim=dim, optional=True,
            help=f"Throttled {s}s as percent of provisioned -> increase amount; unset disables."),
        _table_key(f"increase-throttled-by-consumed-{d}-unit", "increase_throttled_by_consumed_unit", to_unit, dim=dim,
            optional=True, default_text=inc_unit,
            help=f"Unit of increase-throttled-by-consumed-{d}-scale amounts."),
        _table_key(f"increase-throttled-by-consumed-{d}-scale", "increase_throttled_by_consumed_scale", to_scale,
            dim=dim, optional=True,
            help=f"Throttled {s}s as percent of consumed -> increase amount; unset disables."),
        _table_key(f"decrease-consumed-{d}-unit", "decrease_consumed_unit", to_unit, dim=dim, optional=True,
            default_text=f"decrease-{d}-unit",
            help=f"Unit of consumption-based {s} decreases."),
        _table_key(f"decrease-consumed-{d}-with", "decrease_consumed_with", to_amount, dim=dim, low=0, optional=True,
            default_text=f"decrease-{d}-with",
            help=f"Amount of a consumption-based {s} decrease (threshold rule)."),
        _table_key(f"decrease-consumed-{d}-scale", "decrease_consumed_scale", to_scale, dim=dim, optional=True,
            help=f"Granular down-scaling: consumed {s} percent -> decrease amount; replaces {d}-lower-threshold."),
    )


TARGET_KEYS: tuple[Option, ...] = (
    _table_key("always-decrease-rw-together", "always_decrease_rw_together", to_bool,
        help="Hold a decrease of one dimension until the other also wants to decrease or is at its minimum."),
    _table_key("maintenance-windows", "maintenance_windows", to_windows, optional=True, default_text="none (any time)",
        help="Comma-separated UTC windows HH:MM-HH:MM (may wrap midnight); outside them decreases wait, increases go "
             "ahead."),
    _table_key("lookback-window-start", "lookback_window_start", to_int, low=1, high=MAX_LOOKBACK_MINUTES,
        default_text="15 (5 with scaling-policy demand or forecast)",
        help="Minutes before now where the CloudWatch window starts."),
    _table_key("lookback-period", "lookback_period", to_int, low=1,
        help="Minutes the CloudWatch window lasts; at most lookback-window-start."),
    _table_key("sns-topic-arn", "sns_topic_arn", to_sns_arn, optional=True,
        help="SNS topic for notifications about this table or GSI."),
    _table_key("sns-message-types", "sns_message_types", to_sns_types,
        help=f"Comma-separated notifications to send: {', '.join(SNS_MESSAGE_TYPES)}."),
    _table_key("circuit-breaker-url", "circuit_breaker_url", to_url, optional=True,
        default_text="[global] circuit-breaker-url",
        help="Per-table circuit breaker: no change unless a GET of this URL answers 2xx; unset: the [global] URL."),
    _table_key("circuit-breaker-timeout", "circuit_breaker_timeout", to_float, low=1, high=MAX_BREAKER_TIMEOUT_MS,
        help="Timeout of that GET in milliseconds (goes with the URL it belongs to)."),
    _table_key("reserved-decreases", "reserved_decreases", to_int, low=0, high=3,
        help="Free decreases of the UTC day (DynamoDB allows 4) kept back: after 4 minus this many, "
             "decreases are spaced an hour apart."),
    _table_key("scaling-policy", "scaling_policy", to_policy,
        help="threshold: the thresholds and scales above (1.6.0/2.x); demand: capacity follows served plus "
             "throttled demand, burst-aware (see the demand policy page); forecast: demand, ahead of the "
             "rises the table has shown on the days before."),
    _table_key("target-utilization", "target_utilization", to_float, low=AWS_TARGET_RANGE[0], high=AWS_TARGET_RANGE[1],
        help="Percent of provisioned capacity that scaling-policy demand aims at."),
    _table_key("schedules", "schedules", to_schedule_names, optional=True, default_text="none",
        help="Comma-separated [schedule: NAME] sections whose min/max override this section's while in force."),
    _table_key("pre-warm", "pre_warm", to_bool,
        help="Raise the warm throughput (UpdateTable WarmThroughput, billed) ahead of a scheduled or forecast peak "
             "that needs more than it; never lowers it."),
)

TABLE_KEYS: tuple[Option, ...] = _dim_keys(Dim.READS) + _dim_keys(Dim.WRITES) + TARGET_KEYS
KEYS_BY_NAME: dict[str, Option] = {key.name: key for key in TABLE_KEYS}


GLOBAL_KEYS: tuple[Option, ...] = (
    _global_key(GLOBAL, "aws-access-key-id", "aws_access_key_id", to_str, flag="--aws-access-key-id",
        help="AWS access key id; used only together with the secret key."),
    _global_key(GLOBAL, "aws-secret-access-key-id", "aws_secret_access_key", to_str, flag="--aws-secret-access-key",
        help="AWS secret access key (the odd -id suffix is the original's name)."),
    _global_key(GLOBAL, "aws-secret-access-key", "aws_secret_access_key", to_str, flag="--aws-secret-access-key",
        help="Alias of aws-secret-access-key-id."),
    _global_key(GLOBAL, "profile", "profile", to_profile, flag="--profile",
        help="AWS profile of the AWS config and credentials files (its credentials, role, SSO and region) "
             "instead of the one AWS_PROFILE names; not together with an access key."),
    _global_key(GLOBAL, "region", "region", to_region, "AWS region of the tables, CloudWatch and SNS; without it, "
        "AWS_REGION, AWS_DEFAULT_REGION, the AWS profile's region, else us-east-1.", flag="--region"),
    _global_key(GLOBAL, "regions", "regions", to_regions,
        help="Comma-separated regions: every table section without its own region applies in each of them "
             "(one process, one pass for all); --region on the command line replaces the list."),
    _global_key(GLOBAL, "role-arn", "role_arn", to_role_arn,
        help="IAM role to assume (STS AssumeRole, refreshed before it expires) for every table section without "
             "its own role-arn, e.g. to reach tables in another account."),
    _global_key(GLOBAL, "metrics-batch-size", "metrics_batch_size", to_batch_size,
        help="CloudWatch GetMetricData queries per call, at most 500 (the default); lower only for debugging."),
    _global_key(GLOBAL, "throttle-causes", "throttle_causes", to_bool,
        help="Also fetch the throttle events by cause (8 more CloudWatch series per table or GSI), so that only "
             "provisioned-throughput throttles raise capacity; false: every throttle counts, as before."),
    _global_key(GLOBAL, "check-interval", "check_interval", to_int, low=0, high=MAX_CHECK_INTERVAL,
        flag="--check-interval", help="Seconds from the start of one pass to the start of the next; 0: back to "
                                      "back, at most one a second."),
    _global_key(GLOBAL, "circuit-breaker-url", "circuit_breaker_url", to_url,
        help="Circuit breaker for every table without its own: no change unless a GET of this URL answers 2xx."),
    _global_key(GLOBAL, "circuit-breaker-timeout", "circuit_breaker_timeout", to_float, low=1,
        high=MAX_BREAKER_TIMEOUT_MS, help="Timeout of that GET in milliseconds."),
    _global_key(GLOBAL, "state-table", "state_table", to_table_name, flag="--state-table",
        help="Keep the state (memory, decrease records) in this DynamoDB table instead of the state file, and share "
             "the tables among every daemon using it (leases); created on first use unless state-table-create is "
             "never."),
    _global_key(GLOBAL, "state-table-region", "state_table_region", to_region,
        help="Region of the state table; default: the first region scaled."),
    _global_key(GLOBAL, "state-table-create", "state_table_create", to_state_table_create, flag="--state-table-create",
        help="auto: create the state table (on-demand) when it does not exist; never: exit 1 instead."),
    _global_key(GLOBAL, "lease-seconds", "lease_seconds", to_int, low=3, high=MAX_LEASE_SECONDS,
        help="Seconds a daemon's lease on a shard of the tables lasts without renewal (renewed every third of it); "
             "a killed daemon's tables are taken over after this long."),
    _global_key(LOGGING, "log-level", "log_level", to_log_level, "debug, info, warning or error.", flag="--log-level"),
    _global_key(LOGGING, "log-file", "log_file", to_path, "Also log to this file.", flag="--log-file"),
    _global_key(LOGGING, "log-config-file", "log_config_file", to_path, flag="--log-config-file",
        help="A Python logging configuration file (logging.config.fileConfig); replaces log-level and log-file."),
    _global_key(LOGGING, "log-format", "log_format", to_log_format, flag="--log-format",
        help="text (a UTC time first) or json (one JSON object a line)."),
    _global_key(GLOBAL, "metrics-port", "metrics_port", to_int, low=1, high=65535, flag="--metrics-port",
        help="Serve Prometheus /metrics and /healthz on this TCP port while the loop runs."),
    _global_key(GLOBAL, "metrics-address", "metrics_address", to_str,
        help="The address metrics-port listens on; 0.0.0.0 for every interface."),
    _global_key(GLOBAL, "health-grace", "health_grace", to_int, low=0, high=MAX_CHECK_INTERVAL,
        help="Seconds on top of two check intervals that /healthz and the systemd watchdog wait for a pass to "
             "end before they call the loop stuck."),
)

SECTION_KEYS: dict[str, dict[str, Option]] = {
    section: {k.name: k for k in GLOBAL_KEYS if k.section == section} for section in (GLOBAL, LOGGING)
}


PLACEMENT_KEYS: tuple[Option, ...] = (
    _placement_key("region", "regions", to_region,
        "Region of the tables of this section; default: each of [global] regions, else [global] region."),
    _placement_key("role-arn", "role_arn", to_role_arn,
        "IAM role to assume for the tables of this section (another account); default: [global] role-arn."),
)
PLACEMENT_KEYS_BY_NAME: dict[str, Option] = {key.name: key for key in PLACEMENT_KEYS}


MODE_KEYS: tuple[Option, ...] = (
    _mode_key("capacity-mode", "mode", to_capacity_mode,
        "provisioned: scale provisioned capacity, leave on-demand tables alone (as before); on-demand: switch "
        "the table to on-demand and keep it there; auto: switch to whichever mode its recent history says."),
    _mode_key("capacity-mode-days", "days", to_int, low=1, high=MAX_DAYS,
        help="Days of CloudWatch history that capacity-mode auto simulates with this config."),
    _mode_key("capacity-mode-margin", "margin", to_float, low=0, high=100,
        help="Percent by which a mode must be cheaper before auto switches to it."),
    _mode_key("capacity-mode-max-throttled", "max_throttled", to_float, low=0, high=100,
        help="Percent of demand provisioned may throttle before auto switches to on-demand whatever the cost."),
    _mode_key("capacity-mode-min-hours", "min_hours", to_float, low=0, high=MAX_DAYS * 24,
        help="Hours a table stays in a mode after auto switched it."),
    _mode_key("on-demand-max-reads", "on_demand_max_reads", to_int, low=1, optional=True, default_text="no cap",
        help="OnDemandThroughput MaxReadRequestUnits set when the table is switched to on-demand: a spend cap."),
    _mode_key("on-demand-max-writes", "on_demand_max_writes", to_int, low=1, optional=True, default_text="no cap",
        help="OnDemandThroughput MaxWriteRequestUnits set when the table is switched to on-demand: a spend cap."),
)
MODE_KEYS_BY_NAME: dict[str, Option] = {key.name: key for key in MODE_KEYS}


def _mode_values(sections: Iterable[_Section], path: str) -> dict[str, Any]:
    """The capacity-mode keys of these sections (later ones win), as ModeRules fields."""
    values: dict[str, Any] = {}
    for section in sections:
        values.update(_section_values(section, MODE_KEYS_BY_NAME, f"{path} {section.where}"))
    return values


def _own_over_defaults(tables: Sequence[TableSection], sections: Sequence[_Section], path: str,
                       from_command_line: bool, values_of: Callable[[Iterable[_Section], str], dict[str, Any]]
                       ) -> Iterator[tuple[TableSection, dict[str, Any]]]:
    """Each table section with some keys' values: its own section's over [default_options]'s
    (a --table-name table has no section of its own)."""
    defaults = values_of([s for s in sections if s.kind == DEFAULT_OPTIONS], path)
    own = {s.key: s for s in sections if s.kind == "table"}
    for table in tables:
        values = dict(defaults)
        if not from_command_line and table.key in own:
            values.update(values_of([own[table.key]], path))
        yield table, values


def _moded(tables: Sequence[TableSection], sections: Sequence[_Section], path: str,
           from_command_line: bool) -> list[TableSection]:
    """Each table section with its capacity-mode keys: its own over [default_options]'s."""
    return [dataclasses.replace(table, mode=ModeRules(**values)) if values else table
            for table, values in _own_over_defaults(tables, sections, path, from_command_line, _mode_values)]


SCHEDULE_KEYS: tuple[Option, ...] = (
    _schedule_key("hours", "hours", to_hours, default_text="required",
        help="Comma-separated intervals HH:MM-HH:MM in the schedule's time zone (may wrap midnight; an end "
             "of 24:00 is the day's end, equal ends a whole day); an interval belongs to the day it starts on."),
    _schedule_key("days", "days", to_weekdays, default_text="every day",
        help="Days an interval may start on: mon-fri, sat,sun, fri-mon ..."),
    _schedule_key("timezone", "timezone", to_timezone,
        help="IANA time zone of hours and days (DST-correct), such as Europe/Paris."),
    _schedule_key("lead-minutes", "lead_minutes", to_int, low=0, high=MAX_LEAD_MINUTES,
        help="The schedule is in force this many minutes before each start: capacity takes minutes to arrive."),
    *(_schedule_key(f"{kind}-provisioned-{dim.value}", f"{kind}_{dim.value}", to_limit, default_text="not set",
                  help=f"While in force, replaces {kind}-provisioned-{dim.value} (0: not set).")
      for kind in ("min", "max") for dim in Dim),
)
SCHEDULE_KEYS_BY_NAME: dict[str, Option] = {key.name: key for key in SCHEDULE_KEYS}

OPTIONS: tuple[Option, ...] = TABLE_KEYS + GLOBAL_KEYS + PLACEMENT_KEYS + MODE_KEYS + SCHEDULE_KEYS
"""Every key of every section: what the config file, the unknown-key warnings, the docs checks read."""

# the kinds of option each kind of section accepts: a GSI lives where its table does, in its table's mode
SECTION_OPTION_KINDS: dict[str, tuple[str, ...]] = {
    GLOBAL: (GLOBAL,),
    LOGGING: (LOGGING,),
    DEFAULT_OPTIONS: (TABLE, PLACEMENT, MODE),
    "table": (TABLE, PLACEMENT, MODE),
    "gsi": (TABLE,),
    SCHEDULE: (SCHEDULE,),
}


def section_options(section_kind: str) -> dict[str, Option]:
    """The options a kind of section accepts, by name."""
    kinds = SECTION_OPTION_KINDS.get(section_kind, ())
    return {option.name: option for kind in kinds for option in OPTIONS if option.kind == kind}


def _setting_default(attr: str) -> Any:
    """A field's built-in default, from Settings."""
    return Settings.__dataclass_fields__[attr].default


@dataclass(frozen=True)
class CliOption:
    """One command-line option."""

    flags: tuple[str, ...]
    group: str
    help: str
    dest: str | None = None
    convert: Callable[[str], Any] | None = None
    action: str | None = None
    default: Any = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    default_text: str | None = None  # the effective default, shown in --help

    @property
    def type_name(self) -> str:
        """The value type as the docs name it."""
        if self.action in ("store_true", "help", "version"):
            return "flag"
        if self.choices:
            return "/".join(self.choices)
        return TYPE_NAMES.get(self.convert, "string") if self.convert else "string"


GENERAL = "General options"
DAEMON = "Daemon options"
DYNAMODB = "DynamoDB options"
READS_GROUP = "Read units scaling properties"
WRITES_GROUP = "Write units scaling properties"
SIMULATION = "Simulation"
GROUPS = (GENERAL, DAEMON, DYNAMODB, READS_GROUP, WRITES_GROUP, SIMULATION)


def _table_cli_options(dim: Dim, group: str) -> tuple[CliOption, ...]:
    """The command-line spelling of the table keys marked cli, for --table-name."""
    return tuple(
        CliOption(
            ("--" + key.name,), group, key.help, dest=key.dest, convert=key.convert,
            choices=UNIT_CHOICES if key.convert is to_unit else None,
            metavar=None if key.convert is to_unit else ("N" if key.convert is to_int else "NUMBER"),
            default_text=key.shown_default,
        )
        for key in TABLE_KEYS if key.cli and key.dim is dim
    )


def _global_flag(name: str, group: str, help: str, metavar: str | None = None,
                 choices: Sequence[str] | None = None, default_text: str | None = None) -> CliOption:
    """The command-line option of a [global] or [logging] key: its flag, field, converter and default."""
    key = next(k for k in GLOBAL_KEYS if k.name == name)
    assert key.flag is not None, name
    shown = default_text or (None if key.default is None else _show(key.default))
    return CliOption((key.flag,), group, help, dest=key.attr, convert=str.lower if choices else key.convert,
                     choices=choices, metavar=metavar, default_text=shown)


CLI_OPTIONS: tuple[CliOption, ...] = (
    CliOption(("-h", "--help"), GENERAL, "Show this help and exit.", action="help"),
    CliOption(("-c", "--config"), GENERAL, dest="config", convert=to_path, metavar="FILE",
        help="Read this configuration file."),
    CliOption(("--dry-run",), GENERAL, dest="dry_run", action="store_true", default=False,
        help="Compute and log the decisions, but never change provisioning."),
    _global_flag("check-interval", GENERAL, metavar="SECONDS",
        help="Seconds from the start of one pass to the start of the next (0: back to back, at most one a "
             "second); overrides [global] check-interval."),
    _global_flag("log-file", GENERAL, metavar="FILE",
        help="Also log to this file; overrides [logging] log-file."),
    _global_flag("log-level", GENERAL, choices=LOG_LEVELS, metavar="{debug,info,warning,error}",
        help="Log level, case-insensitive; overrides [logging] log-level."),
    _global_flag("log-config-file", GENERAL, metavar="FILE",
        help="Python logging configuration file (logging.config.fileConfig); overrides --log-level and --log-file."),
    _global_flag("log-format", GENERAL, choices=LOG_FORMATS, metavar="{text,json}",
        help="text, or json: one JSON object a line; overrides [logging] log-format."),
    _global_flag("metrics-port", GENERAL, metavar="PORT",
        help="Serve Prometheus /metrics and /healthz on this port while the loop runs; overrides [global] "
             "metrics-port."),
    CliOption(("--status",), GENERAL, dest="status", action="store_true", default=False,
        help="Print a table of every matched table and GSI: capacity, last decision, decreases left; no change."),
    CliOption(("--status-json",), GENERAL, dest="status_json", action="store_true", default=False,
        help="The same as --status, as a JSON array on stdout."),
    CliOption(("--version",), GENERAL, "Print the version and exit.", action="version"),
    _global_flag("aws-access-key-id", GENERAL, metavar="KEY_ID",
        help="AWS access key id; used only together with the secret key. Default: the AWS credential chain."),
    _global_flag("aws-secret-access-key", GENERAL, metavar="SECRET",
        help="AWS secret access key (masked in the process list once running, but readable by other users "
             "until then; prefer the environment, the config file or the credential chain)."),
    CliOption(("--show-config",), GENERAL, dest="show_config", action="store_true", default=False,
        help="Print the effective configuration as JSON (secrets masked) and exit."),
    CliOption(("--run-once",), GENERAL, dest="run_once", action="store_true", default=False,
        help="Make exactly one pass over the tables, then exit."),
    CliOption(("--strict-config",), GENERAL, dest="strict_config", action="store_true", default=False,
        help="Treat unknown config sections and keys as errors instead of warnings."),
    CliOption(("--state-file",), GENERAL, dest="state_file", convert=to_path, metavar="FILE",
        default_text="STATE-DIR/INSTANCE.state.json",
        help="Where the consecutive-check counters and decrease history are kept between runs; one process "
             "at a time. STATE-DIR: $STATE_DIRECTORY (systemd), else /var/lib/dynamic-dynamodb as root, else "
             "$XDG_STATE_HOME/dynamic-dynamodb (~/.local/state/dynamic-dynamodb)."),
    _global_flag("state-table", GENERAL, metavar="TABLE",
        help="Keep the state in this DynamoDB table and share the tables among the daemons using it; overrides "
             "[global] state-table."),
    _global_flag("state-table-create", GENERAL, choices=STATE_TABLE_CREATE,
        help="Whether a missing state table is created (auto) or is an error (never); overrides [global] "
             "state-table-create."),
    CliOption(("--daemon",), DAEMON, dest="daemon", convert=str.lower, choices=DAEMON_COMMANDS,
        help="Run as a daemon: start, stop, restart, status, or foreground (alias fg: the loop without forking)."),
    CliOption(("--instance",), DAEMON, dest="instance", convert=to_instance, default=_setting_default("instance"),
        metavar="NAME", default_text=_setting_default("instance"),
        help="Instance name, part of the pid file name, so several daemons can run."),
    CliOption(("--pid-file-dir",), DAEMON, dest="pid_file_dir", convert=to_path,
        default=_setting_default("pid_file_dir"), metavar="DIR", default_text=_setting_default("pid_file_dir"),
        help="Directory of the pid file dynamic-dynamodb.INSTANCE.pid."),
    CliOption(("-r", "--region"), DYNAMODB, dest="region", convert=to_region, metavar="REGION",
        default_text="AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1",
        help="AWS region; overrides [global] region."),
    _global_flag("profile", DYNAMODB, metavar="NAME",
        help="AWS profile to use (credentials, role, SSO, region) instead of AWS_PROFILE's; overrides [global] "
             "profile."),
    CliOption(("-t", "--table-name"), DYNAMODB, dest="table_name", convert=to_str, metavar="REGEX",
        help="Regular expression matched against whole table names (re.fullmatch); the table options then come from "
             "the command line and the config file's [table:] and [gsi:] sections are ignored."),
    *_table_cli_options(Dim.READS, READS_GROUP),
    *_table_cli_options(Dim.WRITES, WRITES_GROUP),
    CliOption(("--simulate",), SIMULATION, dest="simulate", convert=to_path, metavar="TRACE.csv",
        help="Replay a demand trace (CSV: timestamp,reads,writes) through the policy instead of talking to AWS."),
    CliOption(("--simulate-output",), SIMULATION, dest="simulate_output", convert=to_path, metavar="DIR",
        help="Directory for the simulation's results."),
    CliOption(("--backtest",), SIMULATION, dest="backtest", action="store_true", default=False,
        help="Replay the matched tables' CloudWatch history of the last --days days through the policy."),
    CliOption(("--days",), SIMULATION, dest="backtest_days", convert=to_days, metavar="N",
        default_text=_show(_setting_default("backtest_days")),
        help=f"Days of history for --backtest, at most {MAX_BACKTEST_DAYS}."),
    CliOption(("--aws-target-utilization",), SIMULATION, dest="aws_target_utilization",
        convert=to_target_utilization, metavar="PCT", default_text=_show(_setting_default("aws_target_utilization")),
        help="Target utilisation, 20 to 90 percent, of the AWS target-tracking baseline that --simulate and "
             "--backtest compare the config with."),
)

TABLE_CLI_DESTS: dict[str, Option] = {key.dest: key for key in TABLE_KEYS if key.cli}


def _build_note() -> str:
    """' (compiled by mypyc)' in a build made with DYNAMIC_DYNAMODB_COMPILE=1 (setup.py), else nothing."""
    return "" if policy.__file__ is None or policy.__file__.endswith(".py") else " (compiled by mypyc)"


def _argtype(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a converter so argparse prints its message (exit 2)."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: no usage block of 40 lines before the message."""

    argv: Sequence[str] = ()

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.argv = list(sys.argv[1:] if args is None else args)  # what error() must not echo
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        # argparse echoes what it cannot use: a mistyped secret option's value among it
        message = mask_text(" ".join(message.split()), self.argv)
        edge.error(f"{message} (see {self.prog} --help)", EXIT_USAGE)
        self.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every option, in the original's groups."""
    parser = _Parser(
        prog="dynamic-dynamodb",
        description="Autoscaling of provisioned AWS DynamoDB tables and global secondary indexes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    for opt in CLI_OPTIONS:
        help_text = opt.help if opt.default_text is None else f"{opt.help} (default: {opt.default_text})"
        kwargs: dict[str, Any] = {"help": help_text}
        if opt.action == "version":
            kwargs.update(action="version", version=f"Dynamic DynamoDB version: {__version__}{_build_note()}")
        elif opt.action:
            kwargs.update(action=opt.action)
            if opt.action == "store_true":
                kwargs.update(dest=opt.dest, default=opt.default)
        else:
            kwargs.update(dest=opt.dest, default=opt.default, type=_argtype(opt.convert) if opt.convert else str)
            if opt.choices:
                kwargs["choices"] = opt.choices
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
        groups[opt.group].add_argument(*opt.flags, **kwargs)
    return parser


# ---- the config file -------------------------------------------------------------------


class _IniParser(configparser.ConfigParser):
    """INI reader: case-sensitive keys, a section name runs to the last ] of its line."""

    SECTCRE = re.compile(r"\[\s*(?P<header>.+)\]")

    def optionxform(self, optionstr: str) -> str:
        return optionstr


@dataclass(frozen=True)
class _Section:
    """One section of the file, classified."""

    header: str  # as configparser saw it
    kind: str  # global, logging, default_options, table, gsi or unknown
    values: Mapping[str, str]
    key: str = ""  # table key (table), GSI regex (gsi)
    table_key: str = ""  # gsi only

    @property
    def where(self) -> str:
        """How messages name the section."""
        return f"[{self.header.strip()}]"


_TABLE_HEADER = re.compile(r"table\s*:(.*)", re.S)
_SCHEDULE_HEADER = re.compile(r"schedule\s*:(.*)", re.S)
_GSI_HEADER = re.compile(r"gsi\s*:\s*(.+?)\s+table\s*:(.*)", re.S)


def _classify(header: str, values: Mapping[str, str], path: str) -> _Section:
    """Tell which kind of section a header names."""
    name = header.strip()
    if name in (GLOBAL, LOGGING, DEFAULT_OPTIONS):
        return _Section(header, name, values)
    match = _TABLE_HEADER.fullmatch(name)
    if match:
        key = match[1].strip()
        if not key:
            raise ConfigError(f"{path} [{name}]: expected [table: REGEX], got an empty table regex")
        return _Section(header, "table", values, key=key)
    match = _SCHEDULE_HEADER.fullmatch(name)
    if match:
        if not match[1].strip():
            raise ConfigError(f"{path} [{name}]: expected [schedule: NAME], got an empty name")
        if "," in match[1]:
            raise ConfigError(f"{path} [{name}]: a schedule name has no comma (schedules: separates names with "
                              f"commas, so no key could name it), got {match[1].strip()!r}")
        return _Section(header, SCHEDULE, values, key=match[1].strip())
    if re.match(r"gsi\s*:", name):
        match = _GSI_HEADER.fullmatch(name)
        if not match or not match[2].strip():
            raise ConfigError(f"{path} [{name}]: expected a section header [gsi: GSI-REGEX table: TABLE-KEY]")
        if not match[1].strip():  # `[gsi:  table: x]`: the regex is only the spaces before table:
            raise ConfigError(f"{path} [{name}]: expected [gsi: GSI-REGEX table: TABLE-KEY], got an empty GSI regex")
        return _Section(header, "gsi", values, key=match[1].strip(), table_key=match[2].strip())
    return _Section(header, "unknown", values)


def _shown_line(line: str) -> str:
    """A line configparser could not parse, as an error shows it: not quoted twice (configparser
    keeps repr(line)), and without the value when it looks like a secret key given no separator."""
    if line[:1] in "'\"" and line[-1:] == line[:1]:
        try:
            line = str(ast.literal_eval(line))
        except (ValueError, SyntaxError):
            pass
    line = line.strip()
    if re.search(r"secret|password", line, re.IGNORECASE):
        words = line.split()
        line = f"{words[0]} {MASK}" if len(words) > 1 else MASK
    return line


MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config of 10,000 table sections is a tenth of that


def _check_config_path(path: str) -> None:
    """A regular file of at most 1 MiB: a FIFO would block the start, /dev/zero never end."""
    mode = os.stat(path).st_mode  # OSError (missing, no permission) is the caller's message
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else None)
    if kind is not None:
        raise ConfigError(f"-c/--config: {path!r} is {kind}, not a regular file")
    size = os.stat(path).st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"-c/--config: {path!r} is {size} bytes; a config file is at most 1 MiB")


def _read_file(path: str, warnings: list[str] | None = None) -> list[_Section]:
    """The sections of the config file, in file order; a section or key given twice is a warning."""
    # " ; comment" after a value is a comment, as in Python 2's parser that 1.6.0 used;
    # not strict, as that parser was: repeated sections merge and the last value of a key wins
    ini = _IniParser(interpolation=None, default_section="\0no-default-section", strict=False,
                     inline_comment_prefixes=(";",))
    try:
        _check_config_path(path)
        # utf-8-sig: a file saved with a byte-order mark (Windows Notepad) reads as one without
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.readlines()
        ini.read_file(lines, source=path)
    except OSError as error:
        raise ConfigError(f"-c/--config: cannot read config file {path!r}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except configparser.MissingSectionHeaderError as error:
        # the line may be a secret: name its key at most, never its value
        key = re.split(r"[:=]", error.line.strip(), maxsplit=1)[0].strip() if re.search(r"[:=]", error.line) else ""
        shown = f"key {key!r}" if key else "text"
        raise ConfigError(f"{path} line {error.lineno}: {shown} outside any section "
                          f"(start with [global] or [table: REGEX])") from None
    except configparser.DuplicateSectionError as error:
        raise ConfigError(f"{path} line {error.lineno}: section [{error.section}] appears twice") from None
    except configparser.DuplicateOptionError as error:
        raise ConfigError(f"{path} line {error.lineno}: [{error.section}] {error.option}: key given twice") from None
    except configparser.ParsingError as error:
        lineno, line = error.errors[0]
        problem = f"expected 'key: value' or a [section], got {_shown_line(line)!r}"
        raise ConfigError(f"{path} line {lineno}: {problem}") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {str(error).splitlines()[0]}") from None
    if warnings is not None:
        warnings += _repeats(lines, path, ini)
    sections = [_classify(name, dict(ini.items(name, raw=True)), path) for name in ini.sections()]
    for section in sections:
        for key, value in section.values.items():
            # an optional key may be emptied: it unsets what [default_options] gave
            if not (value or "").strip() and not getattr(KEYS_BY_NAME.get(key), "optional", False):
                raise ConfigError(f"{path} {section.where} {key}: empty value (give a value, or remove the key)")
    return sections


def _repeats(lines: Sequence[str], path: str, ini: configparser.ConfigParser) -> list[str]:
    """Warnings naming both places of a section or a key given twice (configparser merges them silently)."""
    warnings: list[str] = []
    headers: dict[str, int] = {}
    keys: dict[tuple[str, str], int] = {}
    section: str | None = None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line[0].isspace() or line.lstrip().startswith(("#", ";")):
            continue  # blank, a continuation line or a comment
        header = ini.SECTCRE.match(line)
        if header:
            section = header.group("header")
            if section in headers:
                warnings.append(f"{path} line {n}: section [{section}] given again (first on line "
                                f"{headers[section]}); the two are merged, the last value of a key wins")
            headers.setdefault(section, n)
            continue
        option = ini.OPTCRE.match(line)
        if option and section is not None:
            key = ini.optionxform(option.group("option").strip())
            if (section, key) in keys:
                warnings.append(f"{path} line {n}: [{section}] {key} given again (first on line "
                                f"{keys[section, key]}); the last value wins")
            keys.setdefault((section, key), n)
    return warnings


# ---- merging and validation ------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """A merged value and where it came from."""

    value: Any
    where: str  # "<file> [table: x]", "command line" or "built-in default"
    rank: int = 0  # layer index: a higher rank was written closer to the table


def _label(where: str, name: str) -> str:
    """How an error names a key from a given source."""
    return f"{where} --{name}" if where == COMMAND_LINE else f"{where} {name}"


def _check_range(value: Any, low: float | None, high: float | None) -> None:
    """Raise ValueError when a number lies outside [low, high]."""
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if low is not None and value < low:
        raise ValueError(f"must be at least {_show(low)}, got {_show(value)}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {_show(high)}, got {_show(value)}")


def _convert_key(key: Option, raw: Any, where: str) -> Any:
    """Convert (when text) and range-check one option; ConfigError names where, key and value."""
    try:
        if isinstance(raw, str):
            value = key.default if key.optional and not raw.strip() else key.convert(raw)
        else:
            value = raw
        _check_range(value, key.low, key.high)
    except ValueError as error:
        raise ConfigError(f"{_label(where, key.name)}: {error}") from None
    return value


def _section_values(section: _Section, keys: Mapping[str, Option], where: str,
                    required: Iterable[str] = ()) -> dict[str, Any]:
    """The keys of a section that `keys` knows, converted, by the field each fills; an empty value leaves the
    default (an optional key's is "not set"; a required key's is an error)."""
    values: dict[str, Any] = {}
    for name, raw in section.values.items():
        key = keys.get(name)
        if key is None or (not raw.strip() and not key.optional and name not in required):
            continue
        values[key.attr] = _convert_key(key, raw, where)
    return values


def _convert_section(section: _Section, path: str) -> dict[str, Any]:
    """The known table keys of a section, converted."""
    where = f"{path} {section.where}"
    return {
        name: _convert_key(KEYS_BY_NAME[name], raw, where)
        for name, raw in section.values.items()
        if name in KEYS_BY_NAME
    }


Layer = tuple[str, Mapping[str, Any]]  # (where, key name -> converted value)


def _merge(layers: Sequence[Layer]) -> dict[str, _Value]:
    """Built-in defaults overlaid with each layer in turn."""
    merged = {key.name: _Value(key.default, BUILT_IN) for key in TABLE_KEYS}
    for rank, (where, values) in enumerate(layers, start=1):
        for name, value in values.items():
            merged[name] = _Value(value, where, rank)
    return merged


def _conflict(merged: Mapping[str, _Value], name: str, problem: str, other: str, reverse: str) -> ConfigError:
    """A one-line error: `name` `problem` `other`, told from the key set closest to the table."""
    if merged[other].rank > merged[name].rank:
        name, other, problem = other, name, reverse
    item, that = merged[name], merged[other]
    message = f"{_label(item.where, name)}: {_show(item.value)} {problem} "
    on_cli = COMMAND_LINE in (item.where, that.where) and KEYS_BY_NAME[other].cli
    message += f"{'--' if on_cli else ''}{other} {_show(that.value)}"
    if that.where != item.where:
        message += f" (from {that.where})"
    return ConfigError(message)


def _check_amount(merged: Mapping[str, _Value], name: str, unit_names: Sequence[str], decrease: bool) -> None:
    """Units must be whole; a decrease in percent is at most 100."""
    unit = next(merged[u].value for u in unit_names if merged[u].value is not None)
    item = merged[name]
    label = _label(item.where, name)
    values = list(item.value.values()) if isinstance(item.value, dict) else [item.value]
    for value in (v for v in values if v is not None):
        if unit == UNITS and not float(value).is_integer():
            raise ConfigError(f"{label}: amounts in units must be whole numbers, got {_show(value)}")


def _validate(merged: Mapping[str, _Value]) -> None:
    """Checks that involve more than one key."""
    for dim in Dim:
        d = dim.value
        upper, lower = merged[f"{d}-upper-threshold"].value, merged[f"{d}-lower-threshold"].value
        if upper and lower > upper:
            raise _conflict(merged, f"{d}-lower-threshold", "is above", f"{d}-upper-threshold", "is below")
        low, high = merged[f"min-provisioned-{d}"].value, merged[f"max-provisioned-{d}"].value
        if low is not None and high is not None and low > high:
            raise _conflict(merged, f"min-provisioned-{d}", "is above", f"max-provisioned-{d}", "is below")
        inc, dec = f"increase-{d}-unit", f"decrease-{d}-unit"
        _check_amount(merged, f"increase-{d}-with", [inc], decrease=False)
        _check_amount(merged, f"decrease-{d}-with", [dec], decrease=True)
        _check_amount(merged, f"increase-consumed-{d}-with", [f"increase-consumed-{d}-unit", inc], decrease=False)
        _check_amount(merged, f"increase-consumed-{d}-scale", [f"increase-consumed-{d}-unit", inc], decrease=False)
        for how in ("provisioned", "consumed"):
            rule = f"increase-throttled-by-{how}-{d}"
            _check_amount(merged, f"{rule}-scale", [f"{rule}-unit", inc], decrease=False)
        _check_amount(merged, f"decrease-consumed-{d}-with", [f"decrease-consumed-{d}-unit", dec], decrease=True)
        _check_amount(merged, f"decrease-consumed-{d}-scale", [f"decrease-consumed-{d}-unit", dec], decrease=True)
    if merged["lookback-period"].value > merged["lookback-window-start"].value:
        raise _conflict(merged, "lookback-period", "is above", "lookback-window-start", "is below")


def _newest_window(merged: dict[str, _Value]) -> None:
    """The demand and forecast policies' own default window: it starts at the newest minutes.

    1.6.0's 15 minutes, kept for the threshold policy, would have them act ten minutes late;
    a window set anywhere (file, default_options, command line) is used as it is."""
    start = merged["lookback-window-start"]
    if start.where == BUILT_IN and policy.POLICIES[merged["scaling-policy"].value].keeps_history:
        merged["lookback-window-start"] = _Value(max(HISTORY_WINDOW_START, merged["lookback-period"].value), BUILT_IN)


@dataclass(frozen=True)
class _Target:
    """What building one table's or GSI's rules needs besides its layers."""

    where: str  # the layer of the section itself: "<file> [table: x]", or "command line" with --table-name
    shown: str  # how a message names it: "[table: x]", "--table-name x"
    path: str | None  # the config file, which holds the [schedule: NAME] sections
    schedules: Mapping[str, Schedule]
    warnings: list[str]  # where values accepted with a warning are told, once each


def _resolved_schedules(merged: Mapping[str, _Value], target: _Target) -> tuple[Schedule, ...]:
    """The schedules `schedules` names; a scheduled min above the max it would meet is an error."""
    resolved = tuple(target.schedules[name] for name in merged["schedules"].value)
    for s in resolved:
        for dim in Dim:
            name = f"max-provisioned-{dim.value}"
            low, high = s.limit(dim, "min"), merged[name].value
            if low is not None and s.limit(dim, "max") is None and high is not None and low > high:
                source = merged[name].where
                message = (f"{target.path} [schedule: {s.name}] min-provisioned-{dim.value}: {low} is above "
                           f"{_label(source, name)} {high}")
                raise ConfigError(message if source == target.where else f"{message} (for {target.shown})")
    return resolved


def _decrease_warnings(merged: Mapping[str, _Value], dims: Mapping[Dim, DimensionRules], target: _Target) -> None:
    """A decrease above 100 percent is accepted, as the original did, with a warning naming where it was set."""
    for dim, r in dims.items():
        d = dim.value
        consumed_unit = r.decrease_consumed_unit or r.decrease_unit
        scale = r.decrease_consumed_scale or {}
        amounts: list[tuple[str, str, list[float | None]]] = [
            (f"decrease-{d}-with", r.decrease_unit, [r.decrease_with]),
            (f"decrease-consumed-{d}-with", consumed_unit, [r.decrease_consumed_with]),
            (f"decrease-consumed-{d}-scale", consumed_unit, list(scale.values())),
        ]
        for name, unit, values in amounts:
            if unit == PERCENT and any(v is not None and v > 100 for v in values):
                warning = (f"{_label(merged[name].where, name)}: a decrease above 100 percent means 100 percent "
                           f"(the capacity goes to its minimum)")
                if warning not in target.warnings:  # a [default_options] value: told once, not once per table
                    target.warnings.append(warning)


def _rules(layers: Sequence[Layer], fallback_url: str | None, fallback_timeout: float,
           target: _Target) -> TargetRules:
    """Merge, validate and build the rules of one table or GSI."""
    merged = _merge(layers)
    _newest_window(merged)
    _validate(merged)
    dims = {
        dim: DimensionRules(**{k.attr: merged[k.name].value for k in TABLE_KEYS if k.dim is dim}) for dim in Dim
    }
    _decrease_warnings(merged, dims, target)
    target_values = {k.attr: merged[k.name].value for k in TARGET_KEYS}
    target_values["schedules"] = _resolved_schedules(merged, target)
    if target_values["circuit_breaker_url"] is None:
        # the timeout goes with the URL it was configured for
        target_values["circuit_breaker_url"], target_values["circuit_breaker_timeout"] = fallback_url, fallback_timeout
    return TargetRules(reads=dims[Dim.READS], writes=dims[Dim.WRITES], **target_values)


def _compile(regex: str, where: str) -> re.Pattern:
    """A compiled table or GSI regex."""
    try:
        return re.compile(regex)
    except (re.error, OverflowError, RecursionError) as error:
        raise ConfigError(f"{where}: invalid regular expression {regex!r}: {error}") from None


def _unknown_keys(section: _Section, path: str) -> Iterable[str]:
    """Messages about keys the section does not know."""
    known = section_options(section.kind)
    for name in section.values:
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            if name in PLACEMENT_KEYS_BY_NAME:
                more = " (a GSI lives where its table does: set it in the [table: ...] section)"
            if name in MODE_KEYS_BY_NAME:
                more = " (a GSI follows its table's capacity mode: set it in the [table: ...] section)"
            yield f"{path} {section.where}: unknown key {name!r}{more}"


def _unknown(sections: Sequence[_Section], path: str, strict: bool) -> list[str]:
    """Warnings about unknown sections and keys; ConfigError in strict mode."""
    messages: list[str] = []
    for section in sections:
        if section.kind == "unknown":
            messages.append(
                f"{path} {section.where}: unknown section (expected [global], [logging], "
                f"[default_options], [table: REGEX], [gsi: REGEX table: KEY] or [schedule: NAME])"
            )
        else:
            messages.extend(_unknown_keys(section, path))
    if strict and messages:
        raise ConfigError(f"{messages[0]}; an error with --strict-config")
    return [f"{message}; ignored" for message in messages]


def _global_values(sections: Sequence[_Section], path: str, args: argparse.Namespace) -> dict[str, _Value]:
    """[global] and [logging] over built-in defaults, then the command line over both."""
    merged = {k.attr: _Value(k.default, BUILT_IN) for k in GLOBAL_KEYS}
    for section in sections:
        if section.kind not in SECTION_KEYS:
            continue
        keys = SECTION_KEYS[section.kind]
        secret_names = [
            name
            for name, raw in section.values.items()
            if raw.strip() and name in keys and keys[name].attr == "aws_secret_access_key"
        ]
        if len(secret_names) > 1 and len({section.values[n].strip() for n in secret_names}) > 1:
            first, second = secret_names[:2]
            raise ConfigError(f"{path} {section.where} {second}: differs from {first}; give only one of them")
        for name, raw in section.values.items():
            key = keys.get(name)
            if key is None or not raw.strip():  # an empty value leaves the default
                continue
            where = f"{path} {section.where}"
            merged[key.attr] = _Value(_convert_key(key, raw, where), f"{where} {name}")
    for key in GLOBAL_KEYS:
        given = getattr(args, key.attr, None) if key.flag else None
        if given is None:
            continue
        try:
            _check_range(given, key.low, key.high)
        except ValueError as error:
            raise ConfigError(f"{COMMAND_LINE} {key.flag}: {error}") from None
        merged[key.attr] = _Value(given, f"{COMMAND_LINE} {key.flag}")
    return merged


def _table_sections(
    sections: Sequence[_Section], path: str, defaults: Layer, cb_url: str | None, cb_timeout: float,
    schedules: Mapping[str, Schedule], warnings: list[str],
) -> list[TableSection]:
    """The [table:] sections in file order, each with its [gsi:] sections."""
    tables: dict[str, tuple[_Section, TableSection]] = {}
    for section in (s for s in sections if s.kind == "table"):
        where = f"{path} {section.where}"
        if section.key in tables:
            raise ConfigError(f"{where}: table key {section.key!r} already used by {tables[section.key][0].where}")
        regex = _compile(section.key, where)
        rules = _rules([defaults, (where, _convert_section(section, path))], cb_url, cb_timeout,
                       _Target(where, section.where, path, schedules, warnings))
        tables[section.key] = (section, TableSection(section.key, regex, rules))
    gsis: dict[str, list[GsiSection]] = {key: [] for key in tables}
    seen: set[tuple[str, str]] = set()
    for section in (s for s in sections if s.kind == "gsi"):
        where = f"{path} {section.where}"
        if section.table_key not in tables:
            known = ", ".join(repr(k) for k in tables) or "none"
            raise ConfigError(
                f"{where}: table key {section.table_key!r} names no [table: ...] section "
                f"(write it exactly as in the table section; known: {known})"
            )
        if (section.key, section.table_key) in seen:
            raise ConfigError(f"{where}: a [gsi: {section.key} table: {section.table_key}] section appears twice")
        seen.add((section.key, section.table_key))
        regex = _compile(section.key, where)
        parent = tables[section.table_key][1].rules
        rules = _rules(
            [defaults, (where, _convert_section(section, path))],
            parent.circuit_breaker_url,
            parent.circuit_breaker_timeout,
            _Target(where, section.where, path, schedules, warnings),
        )
        gsis[section.table_key].append(GsiSection(section.key, regex, section.table_key, rules))
    return [dataclasses.replace(table, gsis=tuple(gsis[key])) for key, (_, table) in tables.items()]


def _check_interval_warnings(check_interval: _Value) -> list[str]:
    """check-interval 0 is accepted, with a warning about what it costs."""
    if check_interval.value != 0:
        return []
    return [f"check-interval 0 ({check_interval.where}): passes run back to back, at most one a second; each "
            f"reads 4 CloudWatch metrics per table and GSI, up to $3.46 a day for each at $0.01 per 1,000 metrics"]


def _placement_values(sections: Iterable[_Section], path: str) -> dict[str, Any]:
    """region and role-arn of these sections (later ones win), as TableSection fields."""
    values: dict[str, Any] = {}
    for section in sections:
        values.update(_section_values(section, PLACEMENT_KEYS_BY_NAME, f"{path} {section.where}"))
    if "regions" in values:
        values["regions"] = (values["regions"],)
    return values


def _placed(tables: Sequence[TableSection], sections: Sequence[_Section], path: str,
            from_command_line: bool) -> list[TableSection]:
    """Each table section with its region and role-arn: its own, else [default_options]'s."""
    return [dataclasses.replace(table, **values)
            for table, values in _own_over_defaults(tables, sections, path, from_command_line, _placement_values)]


def _schedule(section: _Section, path: str) -> Schedule:
    """One [schedule: NAME] section, converted and checked."""
    where = f"{path} {section.where}"
    values = _section_values(section, SCHEDULE_KEYS_BY_NAME, where, required=("hours",))
    if "hours" not in values:
        raise ConfigError(f"{where}: hours is required (such as hours: 16:00-22:00)")
    for dim in Dim:
        low, high = values.get(f"min_{dim.value}"), values.get(f"max_{dim.value}")
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{where} min-provisioned-{dim.value}: {low} is above "
                              f"max-provisioned-{dim.value} {high}")
    return Schedule(name=section.key, **values)


def _schedules(sections: Sequence[_Section], path: str) -> dict[str, Schedule]:
    """The [schedule: NAME] sections by name."""
    found: dict[str, Schedule] = {}
    for section in (s for s in sections if s.kind == SCHEDULE):
        if section.key in found:
            raise ConfigError(f"{path} {section.where}: schedule {section.key!r} is defined twice")
        found[section.key] = _schedule(section, path)
    return found


def _check_schedule_names(sections: Sequence[_Section], path: str, schedules: Mapping[str, Schedule]) -> None:
    """Every name given to `schedules` names a [schedule: NAME] section."""
    for section in (s for s in sections if s.kind in ("table", "gsi", DEFAULT_OPTIONS)):
        raw = section.values.get("schedules")
        for name in to_schedule_names(raw or ""):
            if name not in schedules:
                known = ", ".join(repr(k) for k in schedules) or "none"
                raise ConfigError(f"{path} {section.where} schedules: no [schedule: {name}] section "
                                  f"(known: {known})")


def _check_readable(value: _Value, what: str) -> None:
    """The log configuration file must be readable at start-up, not at the first log line."""
    path = value.value
    if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ConfigError(f"{value.where}: cannot read {what} {path!r}")


def load_settings(argv: Sequence[str]) -> Settings:
    """Parse argv (and the config file it names), merge, validate: the frozen Settings of a run."""
    args = build_parser().parse_args(list(argv))
    warnings: list[str] = []
    path = args.config
    sections = _read_file(path, warnings) if path else []
    warnings += _unknown(sections, path, args.strict_config)

    glob = _global_values(sections, path, args)
    _check_readable(glob["log_config_file"], "log-config-file")
    key_id, secret = glob["aws_access_key_id"].value, glob["aws_secret_access_key"].value
    if (key_id is None) != (secret is None):
        given = "aws-access-key-id" if secret is None else "aws-secret-access-key"
        warnings.append(f"{given} given without the other half of the key pair; using the AWS credential chain")
        key_id = secret = None
    profile = glob["profile"]
    if profile.value is not None and key_id is not None:
        # which account the run acts in would depend on a rule the user may not know: refused
        raise ConfigError(f"{profile.where}: give a profile or an access key pair, not both")
    if args.aws_secret_access_key is not None:
        warnings.append(
            "--aws-secret-access-key is readable by other users in the process list until the process masks "
            "it; prefer the environment or the config file"
        )
    cb_url, cb_timeout = glob["circuit_breaker_url"].value, glob["circuit_breaker_timeout"].value

    default_sections = [s for s in sections if s.kind == DEFAULT_OPTIONS]
    defaults: Layer = (
        f"{path} [{DEFAULT_OPTIONS}]",
        {k: v for s in default_sections for k, v in _convert_section(s, path).items()},
    )
    cli_table = {
        key.name: getattr(args, dest) for dest, key in TABLE_CLI_DESTS.items() if getattr(args, dest) is not None
    }
    schedules = _schedules(sections, path)
    _check_schedule_names(sections, path, schedules)
    if args.table_name is not None:
        regex = _compile(args.table_name, f"{COMMAND_LINE} --table-name")
        cli_values = {name: _convert_key(KEYS_BY_NAME[name], value, COMMAND_LINE) for name, value in cli_table.items()}
        rules = _rules([defaults, (COMMAND_LINE, cli_values)], cb_url, cb_timeout,
                       _Target(COMMAND_LINE, f"--table-name {args.table_name}", path, schedules, warnings))
        tables = [TableSection(args.table_name, regex, rules)]
        ignored = [s.where for s in sections if s.kind in ("table", "gsi")]
        if ignored:
            warnings.append(f"--table-name given: {path} sections {', '.join(ignored)} ignored")
    else:
        tables = _table_sections(sections, path, defaults, cb_url, cb_timeout, schedules, warnings)
        if cli_table:
            flags = ", ".join("--" + name for name in cli_table)
            warnings.append(f"command-line table options ignored without --table-name: {flags}")
    tables = _placed(tables, sections, path, from_command_line=args.table_name is not None)
    tables = _moded(tables, sections, path, from_command_line=args.table_name is not None)
    warnings += _check_interval_warnings(glob["check_interval"])
    if args.simulate_output and not (args.simulate or args.backtest):
        warnings.append("--simulate-output has no effect without --simulate or --backtest")
    if args.aws_target_utilization is not None and not (args.simulate or args.backtest):
        warnings.append("--aws-target-utilization has no effect without --simulate or --backtest")
    if args.backtest_days is not None and not args.backtest:
        warnings.append("--days has no effect without --backtest")

    if not (args.simulate or args.show_config):  # both run without AWS: no profile is used
        _check_profile(profile)
    region, region_source = _region(glob)
    keyed = {attr: item.value for attr, item in glob.items()}  # every [global]/[logging] field, merged
    keyed.update(region=region, aws_access_key_id=key_id, aws_secret_access_key=secret, circuit_breaker_url=cb_url,
                 circuit_breaker_timeout=cb_timeout,
                 regions=() if args.region is not None else glob["regions"].value)  # --region replaces the list
    return Settings(
        argv=tuple(argv),
        config_file=path,
        region_source=region_source,
        regions_source=glob["regions"].where,  # "FILE [global] regions"
        log_file_source=glob["log_file"].where,  # "command line --log-file" or "FILE [logging] log-file"
        **keyed,
        status="json" if args.status_json else "table" if args.status else None,
        dry_run=args.dry_run,
        run_once=args.run_once,
        daemon="foreground" if args.daemon == "fg" else args.daemon,
        instance=args.instance,
        pid_file_dir=args.pid_file_dir,
        show_config=args.show_config,
        strict_config=args.strict_config,
        state_file=args.state_file,
        simulate=args.simulate,
        simulate_output=args.simulate_output,
        backtest=args.backtest,
        backtest_days=args.backtest_days or Settings.backtest_days,
        aws_target_utilization=(Settings.aws_target_utilization if args.aws_target_utilization is None
                                else args.aws_target_utilization),
        table_name=args.table_name,
        tables=tuple(tables),
        warnings=tuple(warnings),
    )


def _check_profile(profile: _Value) -> None:
    """An AWS config or credentials file that cannot be parsed, or the profile option (else
    AWS_PROFILE or AWS_DEFAULT_PROFILE) naming a profile that is in no AWS file, is a config
    error, like a bad AWS_REGION: every session and client would fail on it."""
    from .aws import profile_problem

    problem = profile_problem(None if profile.value is None else (profile.value, profile.where))
    if problem is not None:
        raise ConfigError(problem)


def _region(glob: Mapping[str, _Value]) -> tuple[str, str]:
    """--region or the config's region, else boto3's chain (aws.default_region), and its source."""
    given = glob["region"]
    if given.where != BUILT_IN:
        source = given.where
        if glob["regions"].value and given.where.startswith(COMMAND_LINE):
            source = f"{given.where}, replacing [global] regions"
        return given.value, source
    from .aws import default_region  # late: boto3 is imported only by runs that need it

    region, source = default_region(os.environ, glob["profile"].value)
    try:
        return to_region(region), source
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


# ---- --show-config ---------------------------------------------------------------------


SECRET_FLAGS = ("--aws-secret-access-key", "--aws-access-key-id")
# an option name that looks like it carries a secret, also when mistyped (argparse echoes those)
_SECRET_NAME = re.compile(r"secret|access|key|passw|token|credential", re.IGNORECASE)


def _is_secret_flag(name: str) -> bool:
    """A secret option, an abbreviation argparse accepts, or a misspelling of one."""
    if not name.startswith("-") or name.startswith("---"):
        return False
    if len(name) >= len("--aw") and any(flag.startswith(name) for flag in SECRET_FLAGS):
        return True
    return _SECRET_NAME.search(name) is not None


def _secret_parts(argv: Sequence[str]) -> list[tuple[int, str]]:
    """(index, value) of each secret in argv: the value of a secret option (`--opt VALUE` or
    `--opt=VALUE`), and the credentials of a URL (`https://user:password@host`)."""
    secrets: list[tuple[int, str]] = []
    hide_next = False
    for index, token in enumerate(argv):
        name, eq, value = token.partition("=")
        if hide_next:
            secrets.append((index, token))
            hide_next = False
        elif _is_secret_flag(name):
            if eq:
                secrets.append((index, value))
            else:
                hide_next = True
        if "@" in token and "//" in token:
            shown = redact_url(token, malformed=True)
            start = token.find("//") + 2
            hidden = token[start:token.rfind("@")]
            if shown != token and hidden:
                secrets.append((index, hidden.partition(":")[2] or hidden))
    return secrets


def mask_argv(argv: Sequence[str]) -> list[str]:
    """argv with every secret (see _secret_parts) replaced by ***: for `ps`, --show-config, errors."""
    out = list(argv)
    for index, secret in _secret_parts(argv):
        if secret:
            out[index] = out[index].replace(secret, MASK)
    return out


def mask_text(text: str, argv: Sequence[str]) -> str:
    """A message with every secret of argv in it replaced by ***."""
    for secret in sorted({value for _, value in _secret_parts(argv) if value}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


_mask_argv = mask_argv


def _jsonable(value: Any, field_name: str = "") -> Any:
    """A JSON-ready copy of a settings value, with URL passwords masked."""
    if isinstance(value, Window):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v, field_name) for v in value]
    if isinstance(value, str) and field_name.endswith("_url"):
        return mask_url(value)
    return value


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """The effective configuration for --show-config, JSON-ready, secrets masked."""
    data = _jsonable(settings)
    if data["aws_secret_access_key"] is not None:
        data["aws_secret_access_key"] = MASK
    data["argv"] = _mask_argv(settings.argv)
    for table, section in zip(data["tables"], settings.tables, strict=True):  # where each section applies
        table["regions"] = list(section.regions or settings.regions or (settings.region,))
        table["role_arn"] = section.role_arn or settings.role_arn
    data["placements"] = [{"region": p.region, "role_arn": p.role_arn, "tables": [s.key for s in sections]}
                          for p, sections in settings.placements().items()]
    return data
