"""Command line and config file: defaults, precedence, validation, --help, --show-config."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dynamic_dynamodb import __version__, config, policy
from dynamic_dynamodb.config import build_parser, load_settings, settings_as_dict
from dynamic_dynamodb.loop import pass_period
from dynamic_dynamodb.model import Dim
from dynamic_dynamodb.rules import Window
from dynamic_dynamodb.settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example-dynamic-dynamodb.conf"
FULL = ROOT / "tests" / "data" / "dynamic-dynamodb-2.5.1.conf"
DOCS = ROOT / "docs"

Load = Callable[..., Settings]


@pytest.fixture
def load(tmp_path: Path) -> Load:
    """load(conf_text, *argv): write the text to a file and load it with -c."""

    def run(text: str, *argv: str) -> Settings:
        path = tmp_path / "test.conf"
        path.write_text(text, encoding="utf-8")
        return load_settings(["-c", str(path), *argv])

    return run


def table(text: str) -> str:
    """A config with one [table: t] section holding `text`."""
    return f"[table: t]\n{text}\n"


def rules_of(settings: Settings, index: int = 0):
    """The rules of the index-th table."""
    return settings.tables[index].rules


def config_error(call: Callable[[], object]) -> str:
    """The message of the ConfigError that `call` raises (asserting it is one line)."""
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message and message
    return message


# ---- defaults ------------------------------------------------------------------------

TABLE_DEFAULTS = [
    # the documented defaults of 1.6.0 and 2.5.1 (a hand table: the code must match it)
    ("reads.upper_threshold", 90),
    ("reads.lower_threshold", 30),
    ("reads.increase_with", 50),
    ("reads.decrease_with", 50),
    ("reads.increase_unit", "percent"),
    ("reads.decrease_unit", "percent"),
    ("reads.min_provisioned", None),
    ("reads.max_provisioned", None),
    ("reads.throttled_upper_threshold", 0),
    ("reads.checks_before_scale_down", 1),
    ("reads.checks_reset_percent", 0),
    ("reads.enabled", True),
    ("reads.up_scaling", True),
    ("reads.down_scaling", True),
    ("reads.allow_scaling_down_on_0_percent", False),
    ("reads.upper_alarm_threshold", 0),
    ("reads.lower_alarm_threshold", 0),
    ("reads.increase_consumed_scale", None),
    ("writes.upper_threshold", 90),
    ("writes.lower_threshold", 30),
    ("writes.increase_with", 50),
    ("writes.decrease_with", 50),
    ("writes.increase_unit", "percent"),
    ("writes.decrease_unit", "percent"),
    ("writes.checks_before_scale_down", 1),
    ("always_decrease_rw_together", False),
    ("maintenance_windows", None),
    ("lookback_window_start", 15),
    ("lookback_period", 5),
    ("sns_topic_arn", None),
    ("sns_message_types", ()),
    ("circuit_breaker_url", None),
    ("circuit_breaker_timeout", 10000),
    ("reserved_decreases", 0),
    ("scaling_policy", "threshold"),
    ("target_utilization", 70),
]


def attr_path(obj: object, dotted: str) -> object:
    """getattr along a dotted path."""
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    ("field", "expected"), TABLE_DEFAULTS, ids=[f"{f} defaults to {e!r}" for f, e in TABLE_DEFAULTS]
)
def test_a_table_key_left_out_takes_its_documented_default(load: Load, field: str, expected: object) -> None:
    settings = load(table("increase-reads-unit: percent"))
    assert attr_path(rules_of(settings), field) == expected


@pytest.mark.parametrize(
    "key", config.TABLE_KEYS, ids=lambda k: f"{k.name} in --table-name mode defaults like the config file"
)
def test_every_table_key_defaults_the_same_on_the_command_line_and_in_the_file(load: Load, key: config.Option) -> None:
    from_cli = rules_of(load_settings(["-t", "t"]))
    from_file = rules_of(load(table("")))
    owner_cli = from_cli.dim(key.dim) if key.dim else from_cli
    owner_file = from_file.dim(key.dim) if key.dim else from_file
    assert getattr(owner_cli, key.attr) == getattr(owner_file, key.attr) == key.default


GLOBAL_DEFAULTS = [
    ("region", "us-east-1"),
    ("check_interval", 300),
    ("aws_access_key_id", None),
    ("aws_secret_access_key", None),
    ("circuit_breaker_url", None),
    ("circuit_breaker_timeout", 10000),
    ("log_level", "info"),
    ("log_file", None),
    ("log_config_file", None),
    ("dry_run", False),
    ("run_once", False),
    ("daemon", None),
    ("instance", "default"),
    ("pid_file_dir", "/tmp"),
    ("show_config", False),
    ("strict_config", False),
    ("state_file", None),
    ("simulate", None),
    ("simulate_output", None),
    ("backtest", False),
    ("backtest_days", 7),
    ("config_file", None),
    ("tables", ()),
]


@pytest.mark.parametrize(
    ("field", "expected"), GLOBAL_DEFAULTS, ids=[f"{f} defaults to {e!r}" for f, e in GLOBAL_DEFAULTS]
)
def test_an_option_not_given_takes_its_default(field: str, expected: object) -> None:
    assert getattr(load_settings([]), field) == expected


def test_without_config_or_table_name_there_is_nothing_to_scale() -> None:
    assert load_settings([]).tables == ()


def test_the_unit_keys_may_be_left_out_unlike_in_1_6_0(load: Load) -> None:
    rules = rules_of(load(table("reads-upper-threshold: 80")))
    assert rules.reads.increase_unit == rules.writes.decrease_unit == "percent"


# ---- command-line values -------------------------------------------------------------

CLI_VALUES = [
    (["--dry-run"], "dry_run", True),
    (["--run-once"], "run_once", True),
    (["--show-config"], "show_config", True),
    (["--strict-config"], "strict_config", True),
    (["--daemon", "start"], "daemon", "start"),
    (["--daemon", "STOP"], "daemon", "stop"),
    (["--daemon", "fg"], "daemon", "foreground"),
    (["--daemon", "foreground"], "daemon", "foreground"),
    (["--instance", "blue"], "instance", "blue"),
    (["--pid-file-dir", "/var/run"], "pid_file_dir", "/var/run"),
    (["--state-file", "/var/lib/dd.json"], "state_file", "/var/lib/dd.json"),
    (["--log-level", "DEBUG"], "log_level", "debug"),
    (["--log-file", "/tmp/dd.log"], "log_file", "/tmp/dd.log"),
    (["--check-interval", "60"], "check_interval", 60),
    (["-r", "eu-west-1"], "region", "eu-west-1"),
    (["--region", "ap-southeast-2"], "region", "ap-southeast-2"),
    (["--simulate", "trace.csv"], "simulate", "trace.csv"),
    (["--simulate", "t.csv", "--simulate-output", "out"], "simulate_output", "out"),
    (["--backtest"], "backtest", True),
    (["--backtest", "--days", "15"], "backtest_days", 15),
    (["--aws-access-key-id", "AKIA", "--aws-secret-access-key", "s3cr3t"], "aws_secret_access_key", "s3cr3t"),
]


@pytest.mark.parametrize(
    ("argv", "field", "expected"), CLI_VALUES, ids=[" ".join(a) + f" sets {f}" for a, f, _ in CLI_VALUES]
)
def test_a_command_line_option_sets_its_setting(argv: list[str], field: str, expected: object) -> None:
    assert getattr(load_settings(argv), field) == expected


def test_a_leading_tilde_in_paths_is_expanded() -> None:
    settings = load_settings(["--log-file", "~/dd.log", "--pid-file-dir", "~"])
    assert not settings.log_file.startswith("~") and settings.log_file.endswith("dd.log")
    assert not settings.pid_file_dir.startswith("~")


def test_settings_keep_argv_so_a_reload_can_read_the_same_sources() -> None:
    argv = ["--dry-run", "-t", "x"]
    assert load_settings(argv).argv == tuple(argv)


# ---- precedence ----------------------------------------------------------------------

PRECEDENCE = [
    pytest.param(
        "[default_options]\nreads-upper-threshold: 80\n[table: t]\n",
        [],
        "reads.upper_threshold",
        80,
        id="[default_options] overrides the built-in default",
    ),
    pytest.param(
        "[default_options]\nreads-upper-threshold: 80\n[table: t]\nreads-upper-threshold: 70\n",
        [],
        "reads.upper_threshold",
        70,
        id="a table section overrides [default_options]",
    ),
    pytest.param(
        "[default_options]\nmin-provisioned-writes: 3\n[table: t]\n",
        [],
        "writes.min_provisioned",
        3,
        id="[default_options] keys are inherited by every table section",
    ),
    pytest.param(
        "[default_options]\nmin-provisioned-reads: 3\n[table: t]\nmin-provisioned-reads:\n",
        [],
        "reads.min_provisioned",
        None,
        id="an empty optional value in a table section unsets the [default_options] one",
    ),
    pytest.param(
        "[table: t]\nreads-upper-threshold: 70\n",
        ["--reads-upper-threshold", "60"],
        "reads.upper_threshold",
        70,
        id="without --table-name command-line table options are ignored",
    ),
]


@pytest.mark.parametrize(("text", "argv", "field", "expected"), PRECEDENCE)
def test_table_key_precedence(load: Load, text: str, argv: list[str], field: str, expected: object) -> None:
    assert attr_path(rules_of(load(text, *argv)), field) == expected


GLOBAL_PRECEDENCE = [
    pytest.param(
        "[global]\nregion: eu-west-1\n", [], "region", "eu-west-1", id="[global] region overrides the default"
    ),
    pytest.param(
        "[global]\nregion: eu-west-1\n", ["-r", "us-west-2"], "region", "us-west-2", id="-r overrides [global] region"
    ),
    pytest.param(
        "[global]\ncheck-interval: 60\n", [], "check_interval", 60, id="[global] check-interval overrides the default"
    ),
    pytest.param(
        "[global]\ncheck-interval: 60\n",
        ["--check-interval", "30"],
        "check_interval",
        30,
        id="--check-interval overrides [global] check-interval",
    ),
    pytest.param(
        "[logging]\nlog-level: debug\n",
        [],
        "log_level",
        "debug",
        id="[logging] log-level applies when --log-level is not given",
    ),
    pytest.param(
        "[logging]\nlog-level: debug\n",
        ["--log-level", "error"],
        "log_level",
        "error",
        id="--log-level overrides [logging] log-level",
    ),
    pytest.param(
        "[logging]\nlog-level: Warning\n", [], "log_level", "warning", id="[logging] log-level is case-insensitive"
    ),
    pytest.param(
        "[logging]\nlog-file: /a.log\n",
        ["--log-file", "/b.log"],
        "log_file",
        "/b.log",
        id="--log-file overrides [logging] log-file",
    ),
    pytest.param(
        "[global]\naws-access-key-id: A\naws-secret-access-key-id: S\n",
        [],
        "aws_secret_access_key",
        "S",
        id="[global] aws-secret-access-key-id sets the secret",
    ),
    pytest.param(
        "[global]\naws-access-key-id: A\naws-secret-access-key: S\n",
        [],
        "aws_secret_access_key",
        "S",
        id="[global] aws-secret-access-key is accepted as an alias",
    ),
    pytest.param(
        "[global]\naws-access-key-id: A\naws-secret-access-key-id: S\n",
        ["--aws-access-key-id", "B", "--aws-secret-access-key", "T"],
        "aws_access_key_id",
        "B",
        id="--aws-access-key-id overrides [global] aws-access-key-id",
    ),
    pytest.param(
        "[global]\ncircuit-breaker-timeout: 500\n",
        [],
        "circuit_breaker_timeout",
        500,
        id="[global] circuit-breaker-timeout overrides the default",
    ),
]


@pytest.mark.parametrize(("text", "argv", "field", "expected"), GLOBAL_PRECEDENCE)
def test_global_and_logging_precedence(load: Load, text: str, argv: list[str], field: str, expected: object) -> None:
    assert getattr(load(text, *argv), field) == expected


@pytest.mark.parametrize("text,where", [("[global]\nregion:\n", "[global] region"),
                                        ("[global]\ncheck-interval =\n", "[global] check-interval"),
                                        ("[logging]\nlog-file:\n", "[logging] log-file"),
                                        (table("sns-message-types:"), "[table: t] sns-message-types")])
def test_an_empty_value_is_an_error_naming_the_key(load: Load, text: str, where: str) -> None:
    message = config_error(lambda: load(text))
    assert where in message and "empty value" in message


def test_both_secret_key_spellings_with_the_same_value_are_fine(load: Load) -> None:
    settings = load("[global]\naws-access-key-id: A\naws-secret-access-key-id: S\naws-secret-access-key: S\n")
    assert settings.aws_secret_access_key == "S"


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["--days", "3"], "--days"), (["--simulate-output", "out"], "--simulate-output")],
    ids=["--days without --backtest gets a warning", "--simulate-output without --simulate gets a warning"],
)
def test_options_without_effect_get_a_warning(argv: list[str], words: str) -> None:
    assert any(words in w and "no effect" in w for w in load_settings(argv).warnings)


def test_an_access_key_without_its_secret_is_dropped_with_a_warning(load: Load) -> None:
    settings = load("[global]\naws-access-key-id: A\n")
    assert settings.aws_access_key_id is None and settings.aws_secret_access_key is None
    assert any("aws-access-key-id" in w for w in settings.warnings)


def test_a_secret_on_the_command_line_gets_a_warning() -> None:
    settings = load_settings(["--aws-access-key-id", "A", "--aws-secret-access-key", "S"])
    assert any("process list" in w for w in settings.warnings)


def test_command_line_table_options_given_without_table_name_get_a_warning(load: Load) -> None:
    settings = load(table(""), "--reads-upper-threshold", "60", "--max-provisioned-writes", "9")
    assert any("--reads-upper-threshold" in w and "--max-provisioned-writes" in w for w in settings.warnings)


# ---- --table-name mode ---------------------------------------------------------------


def test_table_name_builds_one_table_from_the_command_line() -> None:
    settings = load_settings(
        [
            "-t",
            "orders_.*",
            "--reads-upper-threshold",
            "75",
            "--increase-writes-with",
            "150",
            "--increase-writes-unit",
            "units",
            "--min-provisioned-reads",
            "2",
            "--max-provisioned-reads",
            "40",
            "--num-write-checks-before-scale-down",
            "3",
            "--throttled-reads-upper-threshold",
            "10",
        ]
    )
    (only,) = settings.tables
    assert only.key == "orders_.*" and only.regex.fullmatch("orders_2024") and only.gsis == ()
    assert only.rules.reads.upper_threshold == 75
    assert (only.rules.writes.increase_with, only.rules.writes.increase_unit) == (150, "units")
    assert (only.rules.reads.min_provisioned, only.rules.reads.max_provisioned) == (2, 40)
    assert only.rules.writes.checks_before_scale_down == 3
    assert only.rules.reads.throttled_upper_threshold == 10


def test_table_name_is_matched_against_whole_table_names() -> None:
    (only,) = load_settings(["-t", "my_table"]).tables
    assert only.regex.fullmatch("my_table") and not only.regex.fullmatch("my_table_v2")


def test_table_name_ignores_the_config_table_sections_but_keeps_global_and_default_options(load: Load) -> None:
    text = (
        "[global]\n"
        "region: eu-west-1\n"
        "[default_options]\n"
        "reads-upper-threshold: 80\n"
        "[table: other]\n"
        "reads-upper-threshold: 10\n"
        "[gsi: i table: other]\n"
    )
    settings = load(text, "-t", "mine", "--writes-upper-threshold", "70")
    (only,) = settings.tables
    assert only.key == "mine" and settings.region == "eu-west-1"
    assert only.rules.reads.upper_threshold == 80 and only.rules.writes.upper_threshold == 70
    assert any("[table: other]" in w and "ignored" in w for w in settings.warnings)


def test_table_name_mode_uses_the_global_circuit_breaker(load: Load) -> None:
    settings = load("[global]\ncircuit-breaker-url: http://cb/\ncircuit-breaker-timeout: 300\n", "-t", "x")
    assert (rules_of(settings).circuit_breaker_url, rules_of(settings).circuit_breaker_timeout) == ("http://cb/", 300)


def test_an_increase_above_100_percent_is_allowed() -> None:
    assert rules_of(load_settings(["-t", "x", "--increase-reads-with", "150"])).reads.increase_with == 150


# ---- sections ------------------------------------------------------------------------

HEADERS = [
    ("[table: my_table]", "my_table"),
    ("[table:my_table]", "my_table"),
    ("[ table: my_table ]", "my_table"),
    ("[table :  my_table  ]", "my_table"),
    ("[table: orders_[0-9]+]", "orders_[0-9]+"),
    ("[table: a]b]", "a]b"),
    ("[table: ns:orders]", "ns:orders"),
    ("[table: .*]", ".*"),
]


@pytest.mark.parametrize(("header", "key"), HEADERS, ids=[f"{h} has the key {k!r}" for h, k in HEADERS])
def test_a_table_header_gives_its_key(load: Load, header: str, key: str) -> None:
    assert load(f"{header}\n").tables[0].key == key


GSI_HEADERS = [
    "[gsi: by_date table: t]",
    "[gsi:by_date table:t]",
    "[gsi:   by_date    table:   t  ]",
    "[ gsi: by_date\ttable: t]",
]


@pytest.mark.parametrize("header", GSI_HEADERS, ids=[f"{h!r} is a GSI section of t" for h in GSI_HEADERS])
def test_a_gsi_header_accepts_flexible_whitespace(load: Load, header: str) -> None:
    (gsi,) = load(f"[table: t]\n{header}\n").tables[0].gsis
    assert (gsi.key, gsi.table_key) == ("by_date", "t") and gsi.regex.fullmatch("by_date")


def test_gsi_sections_may_come_before_their_table_and_keep_file_order(load: Load) -> None:
    settings = load("[gsi: b table: t]\n[gsi: a table: t]\n[table: t]\n[table: u]\n[gsi: c table: u]\n")
    assert [g.key for g in settings.tables[0].gsis] == ["b", "a"]
    assert [g.key for g in settings.tables[1].gsis] == ["c"]


def test_a_gsi_inherits_default_options_and_overrides_them(load: Load) -> None:
    text = (
        "[default_options]\n"
        "min-provisioned-reads: 4\n"
        "reads-upper-threshold: 80\n"
        "[table: t]\n"
        "reads-upper-threshold: 40\n"
        "[gsi: g table: t]\n"
        "reads-upper-threshold: 60\n"
    )
    (gsi,) = load(text).tables[0].gsis
    assert gsi.rules.reads.min_provisioned == 4 and gsi.rules.reads.upper_threshold == 60


def test_table_sections_keep_file_order(load: Load) -> None:
    settings = load("[table: b]\n[table: a]\n[table: .*]\n")
    assert [t.key for t in settings.tables] == ["b", "a", ".*"]


def test_global_and_logging_sections_are_optional(load: Load) -> None:
    assert load(table("")).tables[0].key == "t"


def test_keys_accept_both_delimiters_and_comments_are_skipped(load: Load) -> None:
    rules = rules_of(
        load("# comment\n; another\n[table: t]\nreads-upper-threshold = 70\n# x: 1\nwrites-upper-threshold: 60\n")
    )
    assert (rules.reads.upper_threshold, rules.writes.upper_threshold) == (70, 60)


def test_values_are_not_interpolated(load: Load) -> None:
    settings = load("[global]\ncircuit-breaker-url: http://cb/%(x)s\n" + table(""))
    assert settings.circuit_breaker_url == "http://cb/%(x)s"


def test_a_scale_may_span_several_lines(load: Load) -> None:
    rules = rules_of(load(table("increase-consumed-reads-scale: {0: 0,\n    50: 10,\n    90: 40}")))
    assert rules.reads.increase_consumed_scale == {0: 0, 50: 10, 90: 40}


# ---- circuit breaker resolution ------------------------------------------------------

BREAKERS = [
    pytest.param("", ("http://global/", 300), id="a table without a breaker uses the global URL and timeout"),
    pytest.param(
        "circuit-breaker-url: http://table/\n", ("http://table/", 10000), id="a table URL comes with the table timeout"
    ),
    pytest.param(
        "circuit-breaker-url: http://table/\ncircuit-breaker-timeout: 50\n",
        ("http://table/", 50),
        id="a table URL and timeout override the global ones",
    ),
    pytest.param(
        "circuit-breaker-timeout: 50\n",
        ("http://global/", 300),
        id="a table timeout without a table URL does not apply to the global URL",
    ),
]


@pytest.mark.parametrize(("section", "expected"), BREAKERS)
def test_circuit_breaker_resolution(load: Load, section: str, expected: tuple) -> None:
    text = "[global]\ncircuit-breaker-url: http://global/\ncircuit-breaker-timeout: 300\n" + table(section)
    rules = rules_of(load(text))
    assert (rules.circuit_breaker_url, rules.circuit_breaker_timeout) == expected


def test_a_gsi_without_a_breaker_uses_its_tables_breaker(load: Load) -> None:
    text = (
        "[global]\n"
        "circuit-breaker-url: http://global/\n"
        "[table: t]\n"
        "circuit-breaker-url: http://table/\n"
        "circuit-breaker-timeout: 40\n"
        "[gsi: g table: t]\n"
        "[gsi: h table: t]\n"
        "circuit-breaker-url: https://gsi/\n"
    )
    g, h = load(text).tables[0].gsis
    assert (g.rules.circuit_breaker_url, g.rules.circuit_breaker_timeout) == ("http://table/", 40)
    assert h.rules.circuit_breaker_url == "https://gsi/"


def test_no_breaker_anywhere_means_none(load: Load) -> None:
    assert rules_of(load(table(""))).circuit_breaker_url is None


# ---- value syntax --------------------------------------------------------------------

BOOLS = [
    ("true", True),
    ("True", True),
    ("yes", True),
    ("on", True),
    ("1", True),
    ("false", False),
    ("NO", False),
    ("off", False),
    ("0", False),
]


@pytest.mark.parametrize(("text", "expected"), BOOLS, ids=[f"{t!r} is {e}" for t, e in BOOLS])
def test_booleans(load: Load, text: str, expected: bool) -> None:
    assert rules_of(load(table(f"always-decrease-rw-together: {text}"))).always_decrease_rw_together is expected


WINDOWS = [
    ("22:00-23:59,00:00-06:00", ((time(22), time(23, 59)), (time(0), time(6)))),
    ("22:00-02:00", ((time(22), time(2)),)),
    ("9:00-10:00", ((time(9), time(10)),)),
    ("  22:00 - 23:59 ,  00:00-06:00  ", ((time(22), time(23, 59)), (time(0), time(6)))),
    ("00:00-23:59", ((time(0), time(23, 59)),)),
]


@pytest.mark.parametrize(("text", "expected"), WINDOWS, ids=[f"{t.strip()!r} parses" for t, _ in WINDOWS])
def test_maintenance_windows(load: Load, text: str, expected: tuple) -> None:
    windows = rules_of(load(table(f"maintenance-windows: {text}"))).maintenance_windows
    assert windows == tuple(Window(a, b) for a, b in expected)


SCALES = [
    ("{0: 0, 0.25: 5, 1: 20}", {0: 0, 0.25: 5, 1: 20}),
    ("{90: 40, 50: 10}", {50: 10, 90: 40}),
    ("{1.5: 2.5}", {1.5: 2.5}),
]


@pytest.mark.parametrize(("text", "expected"), SCALES, ids=[f"{t} parses" for t, _ in SCALES])
def test_scales_parse_to_dicts_sorted_by_threshold(load: Load, text: str, expected: dict) -> None:
    scale = rules_of(
        load(table(f"increase-throttled-by-consumed-writes-scale: {text}"))
    ).writes.increase_throttled_by_consumed_scale
    assert scale == expected and list(scale) == sorted(expected)


def test_sns_message_types_are_trimmed_and_deduplicated(load: Load) -> None:
    rules = rules_of(load(table("sns-message-types: scale-up , scale-down,scale-up,")))
    assert rules.sns_message_types == ("scale-up", "scale-down")


def test_whole_amounts_become_integers_and_fractions_stay(load: Load) -> None:
    rules = rules_of(load(table("increase-reads-with: 50.0\ndecrease-writes-with: 12.5")))
    assert type(rules.reads.increase_with) is int and rules.writes.decrease_with == 12.5


def test_the_new_keys_are_read(load: Load) -> None:
    rules = rules_of(load(table("reserved-decreases: 3\nscaling-policy: Demand\ntarget-utilization: 55.5")))
    assert (rules.reserved_decreases, rules.scaling_policy, rules.target_utilization) == (3, "demand", 55.5)


# ---- errors --------------------------------------------------------------------------

ERRORS = [
    # (config text, argv, words the one-line message must contain)
    pytest.param(
        table("reads-upper-threshold: high"),
        [],
        ["[table: t]", "reads-upper-threshold", "'high'"],
        id="a non-number threshold names section key and value",
    ),
    pytest.param(
        table("lookback-window-start: 1.5"),
        [],
        ["lookback-window-start", "'1.5'", "integer"],
        id="a fraction where an integer is needed",
    ),
    pytest.param(
        table("always-decrease-rw-together: maybe"), [], ["always-decrease-rw-together", "'maybe'"], id="a bad boolean"
    ),
    pytest.param(
        table("increase-reads-unit: percentage"),
        [],
        ["increase-reads-unit", "'percentage'", "percent, units"],
        id="an unknown unit",
    ),
    pytest.param(
        table("decrease-consumed-writes-unit: %"),
        [],
        ["decrease-consumed-writes-unit", "'%'"],
        id="an unknown unit in decrease-consumed-*-unit too",
    ),
    pytest.param(
        table("reads-lower-threshold: 95"),
        [],
        ["reads-lower-threshold", "95", "above", "reads-upper-threshold", "90", "built-in default"],
        id="a lower threshold above the upper one",
    ),
    pytest.param(
        "[default_options]\nwrites-upper-threshold: 20\n" + table("writes-lower-threshold: 25"),
        [],
        ["[table: t] writes-lower-threshold", "25", "writes-upper-threshold 20", "[default_options]"],
        id="a lower threshold above an inherited upper one names both sources",
    ),
    pytest.param(
        table("min-provisioned-reads: 50\nmax-provisioned-reads: 10"),
        [],
        ["min-provisioned-reads", "50", "max-provisioned-reads", "10"],
        id="min above max",
    ),
    pytest.param(
        table("min-provisioned-writes: -1"), [], ["min-provisioned-writes", "at least 0", "-1"], id="a negative min"
    ),
    pytest.param(table("max-provisioned-reads: -4"), [], ["max-provisioned-reads", "-4"], id="a negative max"),
    pytest.param(
        table("increase-writes-with: -10"), [], ["increase-writes-with", "at least 0", "-10"], id="a negative increase"
    ),
    pytest.param(table("reads-upper-threshold: -1"), [], ["reads-upper-threshold", "-1"], id="a negative threshold"),
    pytest.param(
        table("increase-reads-unit: units\nincrease-reads-with: 2.5"),
        [],
        ["increase-reads-with", "whole", "2.5"],
        id="a fractional amount in units",
    ),
    pytest.param(
        table("decrease-writes-unit: units\ndecrease-consumed-writes-scale: {0: 1.5}"),
        [],
        ["decrease-consumed-writes-scale", "whole", "1.5"],
        id="a fractional scale amount in units",
    ),
    pytest.param(
        table("num-read-checks-before-scale-down: 0"),
        [],
        ["num-read-checks-before-scale-down", "at least 1", "0"],
        id="zero checks before scale down",
    ),
    pytest.param(
        table("lookback-window-start: 0"),
        [],
        ["lookback-window-start", "at least 1", "0"],
        id="a lookback window starting now",
    ),
    pytest.param(
        table("lookback-window-start: 5\nlookback-period: 10"),
        [],
        ["lookback-period", "10", "above", "lookback-window-start 5"],
        id="a lookback period longer than the window start",
    ),
    pytest.param(
        table("reserved-decreases: 4"),
        [],
        ["reserved-decreases", "at most 3", "4"],
        id="more reserved decreases than DynamoDB gives",
    ),
    pytest.param(
        table("scaling-policy: magic"),
        [],
        ["scaling-policy", "'magic'", "threshold, demand"],
        id="an unknown scaling policy",
    ),
    pytest.param(
        table("target-utilization: 95"),
        [],
        ["target-utilization", "at most 90", "95"],
        id="a target utilization above 90",
    ),
    pytest.param(
        table("target-utilization: 10"),
        [],
        ["target-utilization", "at least 20", "10"],
        id="a target utilization below 20",
    ),
    pytest.param(
        table("maintenance-windows: 22:00-23:59;00:00-06:00"),
        [],
        ["maintenance-windows", "22:00-23:59;00:00-06:00"],
        id="a malformed maintenance window",
    ),
    pytest.param(
        table("maintenance-windows: 24:00-01:00"),
        [],
        ["maintenance-windows", "24:00-01:00"],
        id="a maintenance window hour out of range",
    ),
    pytest.param(
        table("maintenance-windows: 22:00-22:61"),
        [],
        ["maintenance-windows", "22:00-22:61"],
        id="a maintenance window minute out of range",
    ),
    pytest.param(
        table("maintenance-windows: 22:00-23:00,"),
        [],
        ["maintenance-windows", "22:00-23:00,"],
        id="an empty maintenance window",
    ),
    pytest.param(
        table("circuit-breaker-url: ftp://cb/"),
        [],
        ["circuit-breaker-url", "ftp://cb/", "http"],
        id="a circuit-breaker URL that is not http",
    ),
    pytest.param(
        "[global]\ncircuit-breaker-url: cb.example.com\n",
        [],
        ["[global]", "circuit-breaker-url", "cb.example.com"],
        id="a global circuit-breaker URL without a scheme",
    ),
    pytest.param(
        "[global]\ncircuit-breaker-url: http://u:pw@/x\n",
        [],
        ["circuit-breaker-url", "u:***@"],
        id="a malformed circuit-breaker URL with its password masked",
    ),
    pytest.param(
        "[global]\ncircuit-breaker-url: http://ops:pa/ss@cb.example.com/x\n",
        [],
        ["circuit-breaker-url", "ops:***@cb.example.com"],
        id="a malformed circuit-breaker URL (a / in the password) with its password masked",
    ),
    pytest.param(
        table("circuit-breaker-timeout: 0"),
        [],
        ["circuit-breaker-timeout", "at least 1", "0"],
        id="a zero circuit-breaker timeout",
    ),
    pytest.param(
        table("sns-message-types: scale-up, bogus"),
        [],
        ["sns-message-types", "'bogus'"],
        id="an unknown SNS message type",
    ),
    pytest.param(
        table("sns-topic-arn: arn:aws:sns:::dynamic-dynamodb"),
        [],
        ["sns-topic-arn", "arn:aws:sns:::dynamic-dynamodb"],
        id="an SNS topic ARN without account",
    ),
    pytest.param(
        table("increase-consumed-reads-scale: {0: 0, 50: }"),
        [],
        ["increase-consumed-reads-scale", "{0: 0, 50: }"],
        id="a scale that is no Python literal",
    ),
    pytest.param(
        table("increase-consumed-reads-scale: [1, 2]"),
        [],
        ["increase-consumed-reads-scale", "[1, 2]", "dict"],
        id="a scale that is not a dict",
    ),
    pytest.param(
        table("increase-consumed-reads-scale: {'a': 1}"),
        [],
        ["increase-consumed-reads-scale", "'a'", "numbers"],
        id="a scale with a text key",
    ),
    pytest.param(
        table("increase-consumed-reads-scale: {1: -5}"),
        [],
        ["increase-consumed-reads-scale", "-5"],
        id="a scale with a negative amount",
    ),
    pytest.param(
        table("increase-consumed-reads-scale: __import__('os')"),
        [],
        ["increase-consumed-reads-scale", "__import__"],
        id="a scale is never evaluated as code",
    ),
    pytest.param(
        "[table: orders_(]\n", [], ["[table: orders_(]", "regular expression", "orders_("], id="a bad table regex"
    ),
    pytest.param(
        "[table: t]\n[gsi: by_(x table: t]\n",
        [],
        ["[gsi: by_(x table: t]", "regular expression", "by_(x"],
        id="a bad GSI regex",
    ),
    pytest.param("[table:   ]\n", [], ["[table:", "empty"], id="an empty table regex"),
    pytest.param(
        "[table: t]\n[gsi: g table: T]\n",
        [],
        ["[gsi: g table: T]", "'T'", "'t'"],
        id="a GSI section naming a table key that does not exist",
    ),
    pytest.param(
        "[table: t.*]\n[gsi: g table: t]\n",
        [],
        ["[gsi: g table: t]", "'t'"],
        id="a GSI table key must be string-identical to a table key",
    ),
    pytest.param(
        "[table: t]\n[gsi: g]\n",
        [],
        ["[gsi: g]", "gsi: GSI-REGEX table: TABLE-KEY"],
        id="a GSI header without its table",
    ),
    pytest.param(
        "[table: t]\n[table:t]\n", [], ["[table:t]", "'t'", "already"], id="two sections with the same table key"
    ),
    pytest.param(
        "[table: t]\n[gsi: g table: t]\n[gsi:  g  table: t]\n",
        [],
        ["[gsi:  g  table: t]", "twice"],
        id="two GSI sections for the same GSI and table",
    ),
    pytest.param(table("reads-upper-threshold:"), [], ["[table: t] reads-upper-threshold", "empty value"],
                 id="an empty number"),
    pytest.param("[global]\nregion:\n", [], ["[global] region", "empty value"], id="an empty region"),
    pytest.param(table("reads-lower-threshold: ; none"), [], ["[table: t] reads-lower-threshold", "empty value"],
                 id="a value that is only a comment"),
    pytest.param(
        "reads-upper-threshold: 80\n",
        [],
        ["line 1", "outside any section", "reads-upper-threshold"],
        id="a key before the first section",
    ),
    pytest.param(table("just some words"), [], ["line 2", "just some words"], id="a line that is no key-value pair"),
    pytest.param(
        "[global]\ncheck-interval: -1\n",
        [],
        ["[global] check-interval", "at least 0", "-1"],
        id="a negative check interval in the file",
    ),
    pytest.param(
        "[global]\ncheck-interval: 5m\n",
        [],
        ["[global] check-interval", "'5m'"],
        id="a check interval that is no integer",
    ),
    pytest.param("[global]\nregion: Europe\n", [], ["[global] region", "'Europe'"], id="a malformed region"),
    pytest.param(
        "[global]\naws-secret-access-key-id: a\naws-secret-access-key: b\n",
        [],
        ["aws-secret-access-key", "aws-secret-access-key-id", "only one"],
        id="both secret key spellings with different values",
    ),
    pytest.param(
        "[logging]\nlog-level: verbose\n",
        [],
        ["[logging] log-level", "'verbose'"],
        id="an unknown log level in the file",
    ),
    pytest.param(
        "[logging]\nlog-config-file: /nonexistent/logging.conf\n",
        [],
        ["[logging] log-config-file", "/nonexistent/logging.conf"],
        id="an unreadable log config file",
    ),
    pytest.param(
        "",
        ["--log-config-file", "/nonexistent/l.conf"],
        ["--log-config-file", "/nonexistent/l.conf"],
        id="an unreadable log config file on the command line",
    ),
    pytest.param(
        "",
        ["--check-interval", "-5"],
        ["command line --check-interval", "at least 0", "-5"],
        id="a negative check interval on the command line",
    ),
    pytest.param(
        "",
        ["--check-interval", "9999999999"],
        ["command line --check-interval", "at most 86400", "9999999999"],
        id="a check interval beyond what a sleep can wait (it was an OverflowError traceback)",
    ),
    pytest.param(
        "[global]\ncheck-interval: 86401\n",
        [],
        ["[global] check-interval", "at most 86400", "86401"],
        id="a check interval over a day in the file",
    ),
    pytest.param(
        "[global]\ncircuit-breaker-timeout: 1e20\n",
        [],
        ["[global] circuit-breaker-timeout", "at most 3600000"],
        id="a breaker timeout no socket takes (it was an OverflowError in every pass)",
    ),
    pytest.param(
        table("lookback-window-start: 99999999999"),
        [],
        ["lookback-window-start", "at most 21600", "99999999999"],
        id="a lookback window no date can start (it was an OverflowError in every pass)",
    ),
    pytest.param(
        "",
        ["-t", "t", "--reads-lower-threshold", "95"],
        ["command line --reads-lower-threshold", "95", "--reads-upper-threshold 90"],
        id="inverted thresholds on the command line",
    ),
    pytest.param(
        "",
        ["-t", "t", "--min-provisioned-reads", "9", "--max-provisioned-reads", "3"],
        ["--min-provisioned-reads", "9", "--max-provisioned-reads 3"],
        id="min above max on the command line",
    ),
    pytest.param(table("max-provisioned-reads: 1_000"), [], ["[table: t] max-provisioned-reads", "'1_000'"],
                 id="an integer with an underscore (Python's int() reads it as 1000)"),
    pytest.param(table("reads-upper-threshold: 9_0"), [], ["[table: t] reads-upper-threshold", "'9_0'"],
                 id="a number with an underscore (Python's float() reads it as 90)"),
    pytest.param("[global]\ncheck-interval: \u0663\u0660\u0660\n", [], ["[global] check-interval"],
                 id="an integer in Arabic-Indic digits"),
    pytest.param("", ["-t", "orders_("], ["--table-name", "orders_("], id="a bad --table-name regex"),
    pytest.param(
        "[default_options]\nreads-upper-threshold: x\n",
        [],
        ["[default_options] reads-upper-threshold", "'x'"],
        id="a bad value in default_options",
    ),
    pytest.param(
        "[table: t]\n[gsi: g table: t]\nwrites-lower-threshold: 99\n",
        [],
        ["[gsi: g table: t] writes-lower-threshold", "99"],
        id="a bad value in a GSI section",
    ),
]


@pytest.mark.parametrize(("text", "argv", "words"), ERRORS)
def test_invalid_input_is_one_line_naming_the_key_and_value(
    load: Load, text: str, argv: list[str], words: list[str]
) -> None:
    message = config_error(lambda: load(text, *argv))
    for word in words:
        assert word in message


@pytest.mark.parametrize("url", ["http://ops:pa/ss@cb.example.com/x", "http://ops:pa?ss@cb.example.com/",
                                 "http://ops:pass@cb.example.com:99999/"])
def test_a_rejected_circuit_breaker_url_never_shows_its_password(load: Load, url: str) -> None:
    message = config_error(lambda: load(f"[global]\ncircuit-breaker-url: {url}\n"))
    assert "circuit-breaker-url" in message and "ops:***@" in message and "pa" not in message.split("ops:")[1]


def test_a_config_line_without_a_separator_never_shows_a_secret(load: Load) -> None:
    message = config_error(lambda: load("[global]\naws-secret-access-key-id  wJalrXUtnFEMI\n"))
    assert "line 2" in message and "aws-secret-access-key-id" in message and "wJalrXUtnFEMI" not in message


def test_a_config_line_without_a_separator_is_quoted_once(load: Load) -> None:
    message = config_error(lambda: load("[table: t]\nreads-upper-threshold\n"))
    assert message.endswith("got 'reads-upper-threshold'"), message


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    message = config_error(lambda: load_settings(["-c", str(tmp_path / "missing.conf")]))
    assert "missing.conf" in message and "No such file" in message


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"[table: caf\xe9]\n")
    assert "latin1.conf" in config_error(lambda: load_settings(["-c", str(path)]))


def test_a_config_error_is_a_value_error_so_callers_can_map_it_to_exit_2() -> None:
    assert issubclass(ConfigError, ValueError)


USAGE_ERRORS = [
    ["--daemon", "bogus"],
    ["--log-level", "verbose"],
    ["--check-interval", "ten"],
    ["--days", "16"],
    ["--days", "0"],
    ["--increase-reads-unit", "bogus"],
    ["--reads-upper-threshold", "high"],
    ["--region", "nowhere"],
    ["--no-such-option"],
    ["-c"],
    ["-t", "t", "--min-provisioned-writes", "-3"],
    ["-t", "t", "--min-provisioned-writes", "1_0"],  # int() would read 10
    ["-t", "t", "--reads-upper-threshold", "8_0"],
    ["--instance", "a/b", "--run-once"],  # also without --daemon: it names the state file
    ["--instance", ".."],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=[" ".join(a) + " is a usage error (exit 2)" for a in USAGE_ERRORS])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    # one line naming the option, as for config errors; not argparse's 40-line usage block
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert err.startswith("dynamic-dynamodb: error: ") and "--help" in err


# ---- unknown sections and keys -------------------------------------------------------

UNKNOWN = [
    pytest.param("[tables: t]\n", "[tables: t]", id="an unknown section"),
    pytest.param("[Table: t]\n", "[Table: t]", id="a section with the wrong case"),
    pytest.param("[DEFAULT]\nregion: x\n", "[DEFAULT]", id="a DEFAULT section is not special"),
    pytest.param(table("reads-uper-threshold: 80"), "'reads-uper-threshold'", id="an unknown table key"),
    pytest.param(table("Reads-Upper-Threshold: 80"), "'Reads-Upper-Threshold'", id="keys are case-sensitive"),
    pytest.param("[global]\nregoin: eu-west-1\n", "'regoin'", id="an unknown global key"),
    pytest.param("[logging]\nlevel: debug\n", "'level'", id="an unknown logging key"),
    pytest.param("[global]\nreads-upper-threshold: 80\n", "'reads-upper-threshold'", id="a table key in [global]"),
    # region is a placement key of [default_options] and [table: ...] (docs/fleet.rst); check-interval is not
    pytest.param("[default_options]\ncheck-interval: 60\n", "'check-interval'", id="a global key in [default_options]"),
]


@pytest.mark.parametrize(("text", "name"), UNKNOWN)
def test_unknown_names_are_warned_about(load: Load, text: str, name: str) -> None:
    assert any(name in w and "ignored" in w for w in load(text).warnings)


@pytest.mark.parametrize(("text", "name"), UNKNOWN)
def test_unknown_names_are_errors_with_strict_config(load: Load, text: str, name: str) -> None:
    assert name in config_error(lambda: load(text, "--strict-config"))


def test_an_unknown_key_warning_suggests_the_close_known_key(load: Load) -> None:
    (warning,) = load(table("reads-uper-threshold: 80")).warnings
    assert "did you mean 'reads-upper-threshold'" in warning


def test_an_unknown_key_is_ignored_and_the_default_applies(load: Load) -> None:
    assert rules_of(load(table("reads-uper-threshold: 10"))).reads.upper_threshold == 90


# ---- the example configs -------------------------------------------------------------


def test_the_1_6_0_example_config_parses_unchanged() -> None:
    settings = load_settings(["-c", str(EXAMPLE), "--strict-config"])
    assert settings.warnings == ()
    assert (settings.region, settings.check_interval, settings.log_level) == ("us-east-1", 300, "info")
    assert settings.log_file == "/var/log/dynamic-dynamodb.log"
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == ("AWS_ACCESS_KEY", "AWS_SECRET_KEY")
    (only,) = settings.tables
    assert only.key == "my_table" and only.rules == rules_of(load_settings(["-t", "my_table"]))


def test_the_1_6_0_example_config_sets_every_1_6_0_table_key() -> None:
    text = EXAMPLE.read_text()
    for key in [
        "reads-upper-threshold",
        "reads-lower-threshold",
        "increase-reads-with",
        "decrease-reads-with",
        "increase-reads-unit",
        "decrease-reads-unit",
        "writes-upper-threshold",
        "writes-lower-threshold",
        "increase-writes-with",
        "decrease-writes-with",
        "increase-writes-unit",
        "decrease-writes-unit",
    ]:
        assert re.search(rf"^{key}: ", text, re.M), key
    for key in [
        "min-provisioned-reads",
        "max-provisioned-reads",
        "min-provisioned-writes",
        "max-provisioned-writes",
        "maintenance-windows",
        "allow-scaling-down-reads-on-0-percent",
        "allow-scaling-down-writes-on-0-percent",
        "always-decrease-rw-together",
        "circuit-breaker-url",
        "circuit-breaker-timeout",
    ]:
        assert re.search(rf"^#{key}: ", text, re.M), key


def test_the_example_config_with_its_commented_keys_enabled_still_parses(tmp_path: Path) -> None:
    path = tmp_path / "enabled.conf"
    path.write_text(re.sub(r"^#(?=[a-z0-9-]+: )", "", EXAMPLE.read_text(), flags=re.M))
    settings = load_settings(["-c", str(path), "--strict-config"])
    rules = rules_of(settings)
    assert settings.circuit_breaker_url == "http://my.circuitbreaker.com" and settings.circuit_breaker_timeout == 500
    assert (rules.reads.min_provisioned, rules.reads.max_provisioned) == (100, 500)
    assert rules.always_decrease_rw_together and rules.writes.allow_scaling_down_on_0_percent


def test_the_2_5_1_config_parses_without_warnings() -> None:
    settings = load_settings(["-c", str(FULL), "--strict-config"])
    assert settings.warnings == ()
    assert (settings.region, settings.check_interval, settings.log_level) == ("eu-west-1", 120, "warning")
    orders, events = settings.tables
    assert (orders.key, events.key) == ("orders", r"events_\d{4}")
    assert events.regex.fullmatch("events_2024") and not events.regex.fullmatch("events_24")
    assert [g.key for g in orders.gsis] == ["by_customer"] and events.gsis == ()
    assert orders.rules.reads.increase_consumed_scale == {0: 0, 0.25: 5, 1: 20}
    assert orders.rules.maintenance_windows == (Window(time(22), time(2)), Window(time(9), time(9, 30)))
    assert orders.rules.sns_message_types == (
        "scale-up",
        "scale-down",
        "high-throughput-alarm",
        "low-throughput-alarm",
    )
    assert (orders.rules.circuit_breaker_url, orders.rules.circuit_breaker_timeout) == (
        "http://breaker.example.com/orders",
        750,
    )
    assert events.rules.reads.min_provisioned == 5 and events.rules.scaling_policy == "demand"
    assert events.rules.sns_topic_arn == "arn:aws:sns:eu-west-1:123456789012:dynamic-dynamodb"
    assert events.rules.circuit_breaker_url == "https://ops:hunter2@breaker.example.com/ok"
    gsi = orders.gsis[0].rules
    assert (gsi.reads.upper_threshold, gsi.reads.min_provisioned, gsi.writes.max_provisioned) == (70, 2, 100)
    assert gsi.circuit_breaker_url == "http://breaker.example.com/orders"


def test_the_2_5_1_config_uses_every_section_kind_and_every_key() -> None:
    text = FULL.read_text()
    for header in ["[global]", "[logging]", "[default_options]", "[table: ", "[gsi: "]:
        assert header in text
    keys = set(re.findall(r"^#?([a-z0-9-]+)\s*[:=]", text, re.M))
    expected = {k.name for k in config.TABLE_KEYS} | {k.name for k in config.GLOBAL_KEYS} - {"aws-secret-access-key"}
    assert expected - keys == set()


# ---- --show-config -------------------------------------------------------------------


def test_settings_as_dict_is_json_and_masks_every_secret() -> None:
    argv = ["-c", str(FULL), "--aws-access-key-id", "AKIACLI", "--aws-secret-access-key", "clisecret"]
    data = settings_as_dict(load_settings(argv))
    dumped = json.dumps(data)
    for secret in ("clisecret", "hunter2", "wJalrXUtnFEMI"):
        assert secret not in dumped
    assert data["aws_secret_access_key"] == "***" and data["aws_access_key_id"] == "AKIACLI"
    assert data["circuit_breaker_url"] == "https://ops:***@breaker.example.com/ok"
    assert data["tables"][1]["rules"]["circuit_breaker_url"] == "https://ops:***@breaker.example.com/ok"
    assert data["argv"][-1] == "***"


def test_settings_as_dict_shows_the_effective_values_readably() -> None:
    data = settings_as_dict(load_settings(["-c", str(FULL)]))
    orders = data["tables"][0]
    assert orders["regex"] == "orders" and orders["gsis"][0]["key"] == "by_customer"
    assert orders["rules"]["maintenance_windows"] == ["22:00-02:00", "09:00-09:30"]
    assert orders["rules"]["reads"]["increase_consumed_scale"] == {"0": 0, "0.25": 5, "1": 20}


@pytest.mark.parametrize(
    "argv",
    [["--aws-secret-access-key", "S"], ["--aws-secret-access-key=S"], ["--aws-secret", "S"], ["--aws-secret=S"]],
    ids=lambda a: f"{' '.join(a)} is masked in argv",
)
def test_a_secret_in_argv_is_masked_in_every_spelling(argv: list[str]) -> None:
    data = settings_as_dict(load_settings(["--aws-access-key-id", "A", *argv]))
    assert "S" not in data["argv"] and not any(t.endswith("=S") for t in data["argv"])
    assert data["aws_secret_access_key"] == "***"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://u:p@h/x", "https://u:***@h/x"),
        ("http://token@h:8080/", "http://***@h:8080/"),
        ("http://h/x?a=b@c", "http://h/x?a=b@c"),
        ("http://h/", "http://h/"),
        ("http://ops:p@ss@h/x", "http://ops:***@h/x"),
        ("http://ops:a:b@h/x", "http://ops:***@h/x"),
    ],
    ids=[
        "a password is masked",
        "a lone user name is masked",
        "an @ in the query is kept",
        "a URL without credentials is kept",
        "a password holding an @ is masked whole (it used to show the part after the @)",
        "a password holding a colon is masked whole",
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert config.mask_url(url) == masked


def test_a_missing_secret_is_shown_as_null_not_masked() -> None:
    assert settings_as_dict(load_settings([]))["aws_secret_access_key"] is None


# ---- --help and --version ------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--show-config", "-t", "orders"], ["--help"]])
def test_a_reader_that_goes_away_is_no_traceback(argv: list[str]) -> None:
    # `dynamic-dynamodb --show-config | head -1`: the pipe closes before or while we print
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "dynamic_dynamodb", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, 1)

EXPECTED_GROUPS = {
    "General options": [
        "-c",
        "--config",
        "--dry-run",
        "--check-interval",
        "--log-file",
        "--log-level",
        "--log-config-file",
        "--version",
        "--aws-access-key-id",
        "--aws-secret-access-key",
        "--show-config",
        "--run-once",
        "--strict-config",
        "--state-file",
        "--state-table",
        "--state-table-create",
        "--log-format",
        "--metrics-port",
        "--status",
        "--status-json",
    ],
    "Daemon options": ["--daemon", "--instance", "--pid-file-dir"],
    "DynamoDB options": ["-r", "--region", "--profile", "-t", "--table-name"],
    "Read units scaling properties": [
        "--reads-upper-threshold",
        "--reads-lower-threshold",
        "--increase-reads-with",
        "--decrease-reads-with",
        "--increase-reads-unit",
        "--decrease-reads-unit",
        "--min-provisioned-reads",
        "--max-provisioned-reads",
        "--throttled-reads-upper-threshold",
        "--num-read-checks-before-scale-down",
        "--num-read-checks-reset-percent",
    ],
    "Write units scaling properties": [
        "--writes-upper-threshold",
        "--writes-lower-threshold",
        "--increase-writes-with",
        "--decrease-writes-with",
        "--increase-writes-unit",
        "--decrease-writes-unit",
        "--min-provisioned-writes",
        "--max-provisioned-writes",
        "--throttled-writes-upper-threshold",
        "--num-write-checks-before-scale-down",
        "--num-write-checks-reset-percent",
    ],
    "Simulation": ["--simulate", "--simulate-output", "--backtest", "--days", "--aws-target-utilization"],
}


def group_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Option strings per help group."""
    return {g.title: [s for a in g._group_actions for s in a.option_strings] for g in parser._action_groups}


@pytest.mark.parametrize("group", list(EXPECTED_GROUPS), ids=lambda g: f"--help lists every option of {g!r} in it")
def test_help_lists_every_option_in_its_group(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    options = group_options(build_parser())[group]
    for option in EXPECTED_GROUPS[group]:
        assert option in options
    with pytest.raises(SystemExit) as caught:
        load_settings(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    section = out.split(f"{group}:\n", 1)[1].split("\n\n", 1)[0]
    for option in EXPECTED_GROUPS[group]:
        assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,=]|$)", section, re.M), option


def test_no_option_is_outside_the_original_groups() -> None:
    groups = group_options(build_parser())
    listed = {o for options in EXPECTED_GROUPS.values() for o in options} | {"-h", "--help"}
    assert {o for options in groups.values() for o in options} == listed


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(["-h"])
    out = capsys.readouterr().out
    assert re.search(r"0\s+success", out) and re.search(r"1\s+runtime failure", out)
    assert re.search(r"2\s+usage or configuration error", out)


def test_help_texts_are_correct() -> None:
    helps = {s: a.help for a in build_parser()._actions for s in a.option_strings}
    assert "regular expression" in helps["--table-name"].lower() and "whole table names" in helps["--table-name"]
    for option, text in helps.items():
        assert "max: 100" not in text, option
    assert "above 100 are allowed" in helps["--increase-reads-with"]
    assert "above 100 are allowed" in helps["--increase-writes-with"]


def test_table_option_dests_default_to_none_so_given_or_not_is_known() -> None:
    args = build_parser().parse_args([])
    for key in config.TABLE_KEYS:
        if key.cli:
            assert getattr(args, key.dest) is None
    for dest in (
        "config",
        "check_interval",
        "log_file",
        "log_level",
        "log_config_file",
        "region",
        "table_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "daemon",
    ):
        assert getattr(args, dest) is None


def test_version_prints_the_package_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"Dynamic DynamoDB version: {__version__}{config._build_note()}"


# ---- converters ----------------------------------------------------------------------

CONVERTER_ERRORS = [
    (config.to_int, "3.5"),
    (config.to_float, "nan"),
    (config.to_float, "ninety"),
    (config.to_bool, "yep"),
    (config.to_unit, "Percentage"),
    (config.to_windows, "2200-2300"),
    (config.to_url, "http//x"),
    (config.to_scale, "{1: True}"),
    (config.to_region, "US-EAST-1"),
    (config.to_days, "16"),
    (config.to_str, "   "),
]


@pytest.mark.parametrize(
    ("convert", "text"), CONVERTER_ERRORS, ids=[f"{c.__name__} rejects {t!r} naming it" for c, t in CONVERTER_ERRORS]
)
def test_converters_raise_value_error_naming_the_value(convert: Callable[[str], object], text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        convert(text)


# ---- the reference pages -------------------------------------------------------------


def mentioned(page: str, word: str) -> bool:
    """True when `word` appears in the page as a whole option or key name."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", page) is not None


@pytest.mark.parametrize(
    "option",
    sorted({s for a in build_parser()._actions for s in a.option_strings}),
    ids=lambda o: f"{o} is in docs/command_line.rst",
)
def test_every_command_line_option_is_documented(option: str) -> None:
    assert mentioned((DOCS / "command_line.rst").read_text(), option)


@pytest.mark.parametrize(
    "key",
    sorted({k.name for k in config.TABLE_KEYS} | {k.name for k in config.GLOBAL_KEYS}),
    ids=lambda k: f"{k} is in docs/configuration.rst",
)
def test_every_config_key_is_documented(key: str) -> None:
    assert mentioned((DOCS / "configuration.rst").read_text(), key)


@pytest.mark.parametrize("section", ["[global]", "[logging]", "[default_options]", "[table: ", "[gsi: "])
def test_every_section_kind_is_documented(section: str) -> None:
    assert section in (DOCS / "configuration.rst").read_text()


@pytest.mark.parametrize("key", config.TABLE_KEYS, ids=lambda k: f"the docs give {k.name} its type and default")
def test_the_docs_give_every_table_key_its_type_and_default(key: config.Option) -> None:
    page = (DOCS / "configuration.rst").read_text().split("\n[table: REGEX]\n", 1)[1]
    row = re.search(rf"^\s*\* - ``{re.escape(key.name)}``\n\s*- (.*)\n\s*- (.*)\n", page, re.M)
    assert row, key.name
    assert row[1] == key.type_name, (key.name, row[1])
    assert key.shown_default in row[2], (key.name, row[2])


@pytest.mark.parametrize(("text", "start", "period"), [
    (table("scaling-policy: demand"), 5, 5),
    (table("scaling-policy: forecast"), 5, 5),
    (table("scaling-policy: threshold"), 15, 5),
    (table("scaling-policy: demand\nlookback-period: 8"), 8, 8),  # never below the period
    (table("scaling-policy: demand\nlookback-window-start: 15"), 15, 5),  # set: used as it is
    ("[default_options]\nlookback-window-start: 20\n" + table("scaling-policy: demand"), 20, 5),
], ids=["demand", "forecast", "threshold", "period 8", "set in the table", "set in default_options"])
def test_the_demand_policies_window_starts_at_the_newest_minutes_unless_one_is_set(load: Load, text: str,
                                                                                  start: int, period: int) -> None:
    rules = rules_of(load(text))
    assert (rules.lookback_window_start, rules.lookback_period) == (start, period)


def test_the_dimension_keys_of_reads_and_writes_mirror_each_other() -> None:
    reads = [k.name for k in config.TABLE_KEYS if k.dim is Dim.READS]
    writes = [k.name for k in config.TABLE_KEYS if k.dim is Dim.WRITES]
    assert [n.replace("reads", "writes").replace("read-", "write-") for n in reads] == writes


# ---- no traceback, whatever the input ---------------------------------------------------

ALL_KEYS = [k.name for k in config.TABLE_KEYS]
VALUE_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "{1: 2}", "{}", "[", "22:00-02:00", "units", "http://x", "true"]),
)


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    section=st.sampled_from(["table: t", "default_options", "global", "logging", "gsi: g table: t"]),
    key=st.sampled_from(ALL_KEYS + ["region", "check-interval", "log-level", "circuit-breaker-timeout"]),
    value=VALUE_TEXT,
)
def test_any_value_loads_or_raises_a_one_line_config_error(load: Load, section: str, key: str, value: str) -> None:
    text = f"[table: t]\n[{section}]\n{key}: {value}\n" if section != "table: t" else f"[table: t]\n{key}: {value}\n"
    try:
        load(text)
    except ConfigError as error:
        assert "\n" not in str(error)


@hsettings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_file_loads_or_raises_a_one_line_config_error(load: Load, text: str) -> None:
    try:
        load(text)
    except ConfigError as error:
        assert "\n" not in str(error)


def test_a_semicolon_comment_after_a_value_is_ignored_as_in_1_6_0(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[global]\ncheck-interval: 120 ; seconds\ncircuit-breaker-url: http://h/a;b\n"
                    "[table: t]\nreads-upper-threshold: 80 ;up\n")
    settings = load_settings(["--config", str(conf)])
    assert settings.check_interval == 120 and settings.circuit_breaker_url == "http://h/a;b"
    assert settings.tables[0].rules.reads.upper_threshold == 80


@pytest.mark.parametrize("args", [["-c", "{conf}"], ["-t", "t", "--min-provisioned-reads", "0",
                                                      "--max-provisioned-reads", "0"]],
                         ids=["in the config file", "on the command line"])
def test_a_limit_of_0_means_no_limit_as_in_1_6_0(tmp_path, args):
    conf = tmp_path / "c.conf"
    conf.write_text("[table: t]\nmin-provisioned-reads: 0\nmax-provisioned-reads: 0\n")
    settings = load_settings([a.format(conf=conf) for a in args])
    rules = settings.tables[0].rules.reads
    assert rules.min_provisioned is None and rules.max_provisioned is None and rules.floor == 1


def _documented_type(page: str, name: str) -> str:
    """The Type cell of the docs' list-table row for a key or option (a short form may come first)."""
    row = re.search(rf"^\s*\* - (?:``-\w``, )?``{re.escape(name)}``\n\s*- (.*)\n", page, re.M)
    assert row, name
    return row[1]


@pytest.mark.parametrize("key", config.GLOBAL_KEYS, ids=lambda k: f"the docs give [global]/[logging] {k.name} its type")
def test_the_docs_give_every_global_key_its_type(key) -> None:
    page = (DOCS / "configuration.rst").read_text().split("\n[default_options]\n", 1)[0]
    assert _documented_type(page, key.name) == key.type_name


@pytest.mark.parametrize("option", config.CLI_OPTIONS, ids=lambda o: f"the docs give {o.flags[-1]} its type")
def test_the_docs_give_every_command_line_option_its_type(option) -> None:
    page = (DOCS / "command_line.rst").read_text()
    assert _documented_type(page, option.flags[-1]) == option.type_name


@pytest.mark.parametrize("key", config.MODE_KEYS, ids=lambda k: f"the docs give {k.name} its type and default")
def test_the_docs_give_every_capacity_mode_key_its_type_and_default(key) -> None:
    page = (DOCS / "configuration.rst").read_text().split("\nCapacity mode\n", 1)[1]
    row = re.search(rf"^\s*\* - ``{re.escape(key.name)}``\n\s*- (.*)\n\s*- (.*)\n", page, re.M)
    assert row, key.name
    assert row[1] == key.type_name and key.shown_default in row[2], (key.name, row[1], row[2])


# ---- compatibility details: accepted as the original did, with a warning ----------------------


def test_a_key_given_twice_is_accepted_the_last_value_wins_and_the_warning_names_both_lines(load: Load) -> None:
    settings = load(table("reads-upper-threshold: 80\nreads-upper-threshold: 70"))
    assert rules_of(settings).reads.upper_threshold == 70
    (warning,) = settings.warnings
    assert "line 3" in warning and "first on line 2" in warning and "[table: t] reads-upper-threshold" in warning


def test_a_section_given_twice_is_merged_with_a_warning_naming_both_lines(load: Load) -> None:
    settings = load("[table: t]\nreads-upper-threshold: 80\n[table: u]\n[table: t]\nwrites-upper-threshold: 70\n")
    assert [t.key for t in settings.tables] == ["t", "u"]
    assert (rules_of(settings).reads.upper_threshold, rules_of(settings).writes.upper_threshold) == (80, 70)
    (warning,) = settings.warnings
    assert "line 4" in warning and "first on line 1" in warning and "[table: t]" in warning


def test_a_percent_decrease_above_100_means_100_with_a_warning(load: Load) -> None:
    settings = load(table("decrease-reads-with: 150\ndecrease-consumed-writes-scale: {20: 120}"))
    assert [re.search(r"\] (\S+):", w).group(1) for w in settings.warnings] == ["decrease-reads-with",
                                                                                 "decrease-consumed-writes-scale"]
    assert all("means 100 percent" in w for w in settings.warnings)
    assert policy.decrease(10, 150, "percent") == policy.decrease(10, 100, "percent") == 0


DECREASE_SOURCES = [
    ("--decrease-reads-with with --table-name", "", ["-t", "my_table", "--decrease-reads-with", "150"],
     ["command line --decrease-reads-with"]),
    ("[default_options] with --table-name", "[default_options]\ndecrease-reads-with: 150\n", ["-t", "my_table"],
     ["{path} [default_options] decrease-reads-with"]),
    ("[default_options], once for all the tables using it",
     "[default_options]\ndecrease-writes-with: 150\n[table: a]\n[table: b]\n[gsi: g table: b]\n", [],
     ["{path} [default_options] decrease-writes-with"]),
    ("a table's own section", "[table: a]\ndecrease-consumed-reads-scale: {20: 120}\n", [],
     ["{path} [table: a] decrease-consumed-reads-scale"]),
]


@pytest.mark.parametrize("text,argv,labels", [c[1:] for c in DECREASE_SOURCES], ids=[c[0] for c in DECREASE_SOURCES])
def test_a_decrease_above_100_percent_warning_names_where_it_was_set(tmp_path, text, argv, labels) -> None:
    path = tmp_path / "test.conf"
    path.write_text(text)
    warnings = [w for w in load_settings(["-c", str(path), *argv]).warnings if "above 100 percent" in w]
    assert [w.split(": a decrease")[0] for w in warnings] == [label.format(path=path) for label in labels]


@pytest.mark.parametrize("text,argv", [("[global]\ncheck-interval: 0\n", []), ("", ["--check-interval", "0"])],
                         ids=["in the file", "on the command line"])
def test_check_interval_0_is_accepted_with_a_warning_and_passes_at_most_one_a_second(load: Load, text, argv) -> None:
    settings = load(text + table(""), *argv)
    assert settings.check_interval == 0 and pass_period(settings.check_interval) == 1.0
    assert [w for w in settings.warnings if "check-interval 0" in w and "at most one a second" in w]
    assert pass_period(300) == 300.0


def test_the_docs_build_check_finds_every_option_row_and_a_missing_one(tmp_path: Path) -> None:
    from dynamic_dynamodb import option_docs

    assert option_docs.problems(DOCS) == []
    for name in ("configuration.rst", "command_line.rst"):
        text = (DOCS / name).read_text()
        (tmp_path / name).write_text(text.replace("``lookback-period``", "``lookback``", 1)
                                     .replace("``--dry-run``", "``--dry``", 1))
    assert option_docs.problems(tmp_path) == ["configuration.rst: no row for lookback-period",
                                             "command_line.rst: no row for --dry-run"]


def test_a_config_saved_with_a_byte_order_mark_and_crlf_reads_as_without(tmp_path):
    # Windows Notepad's "UTF-8" starts the file with a BOM; line 1 is still [global]
    text = "[global]\ncheck-interval: 120\n[table: orders]\nreads-upper-threshold: 85\n"
    plain, marked = tmp_path / "plain.conf", tmp_path / "marked.conf"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    a, b = load_settings(["-c", str(plain)]), load_settings(["-c", str(marked)])
    assert replace(b, argv=a.argv, config_file=a.config_file) == a
    assert b.check_interval == 120 and rules_of(b).reads.upper_threshold == 85
