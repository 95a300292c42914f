"""The effective configuration of a run: command line and config file merged and validated."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .rules import TargetRules


class ConfigError(ValueError):
    """Bad command line or config file; the message is one line naming option and value."""


@dataclass(frozen=True)
class GsiSection:
    """A `[gsi: REGEX table: KEY]` section."""

    key: str  # the GSI regex as written
    regex: re.Pattern
    table_key: str  # the key of the [table: KEY] section it belongs to
    rules: TargetRules


@dataclass(frozen=True)
class TableSection:
    """A `[table: REGEX]` section (or the one table of `--table-name`)."""

    key: str  # the regex as written
    regex: re.Pattern
    rules: TargetRules
    gsis: tuple[GsiSection, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know; built by config.load_settings(argv)."""

    argv: tuple[str, ...] = ()  # kept so SIGHUP can re-read the same sources
    config_file: Optional[str] = None
    # [global]
    region: str = "us-east-1"
    aws_access_key_id: Optional[str] = None
    aws_secret_access_key: Optional[str] = None
    check_interval: int = 300
    circuit_breaker_url: Optional[str] = None
    circuit_breaker_timeout: float = 10000.0
    # [logging]
    log_file: Optional[str] = None
    log_level: str = "info"
    log_config_file: Optional[str] = None
    # run modes
    dry_run: bool = False
    run_once: bool = False
    daemon: Optional[str] = None  # start, stop, restart, foreground
    instance: str = "default"
    pid_file_dir: str = "/tmp"
    show_config: bool = False
    strict_config: bool = False
    state_file: Optional[str] = None  # None: <pid-file-dir>/dynamic-dynamodb.<instance>.state.json
    # simulator and backtest
    simulate: Optional[str] = None
    simulate_output: Optional[str] = None
    backtest: bool = False
    backtest_days: int = 7
    tables: tuple[TableSection, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # unknown sections/keys etc., logged once logging is set up
