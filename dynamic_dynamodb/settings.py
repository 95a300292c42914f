"""The effective configuration of a run: command line and config file merged and validated."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .capacity_mode import ModeRules
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
class Placement:
    """Where a group of tables lives: an AWS region, and the IAM role assumed to reach it
    (None: the process's own credentials). One Scaler, with its own clients, per placement."""

    region: str
    role_arn: str | None = None

    def __str__(self) -> str:
        return self.region if self.role_arn is None else f"{self.region} as {self.role_arn}"


@dataclass(frozen=True)
class TableSection:
    """A `[table: REGEX]` section (or the one table of `--table-name`)."""

    key: str  # the regex as written
    regex: re.Pattern
    rules: TargetRules
    gsis: tuple[GsiSection, ...] = ()
    # where the section applies; () means Settings.regions, else Settings.region
    regions: tuple[str, ...] = ()
    role_arn: str | None = None  # None means Settings.role_arn
    mode: ModeRules = ModeRules()  # capacity-mode and its keys (the table's GSIs follow it)

    def gsi_section(self, index: str) -> GsiSection | None:
        """The first [gsi: ...] section of this table whose regex matches the whole index name."""
        return next((g for g in self.gsis if g.regex.fullmatch(index)), None)


def matching_sections(sections: Sequence[TableSection], table: str) -> list[TableSection]:
    """The table sections whose regex matches the whole table name, in file order (the first applies).

    The one matching rule of the pass, the backtest and --status."""
    return [s for s in sections if s.regex.fullmatch(table)]


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know; built by config.load_settings(argv)."""

    argv: tuple[str, ...] = ()  # kept so SIGHUP can re-read the same sources
    config_file: str | None = None
    # [global]
    region: str = "us-east-1"
    region_source: str = "built-in default"  # --region, the config file, AWS_REGION, a profile...
    regions_source: str = "[global] regions"  # where [global] regions was given: "FILE [global] regions"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    profile: str | None = None  # AWS profile of the config and credentials files; None: the default chain's
    check_interval: int = 300
    circuit_breaker_url: str | None = None
    circuit_breaker_timeout: float = 10000.0
    regions: tuple[str, ...] = ()  # [global] regions: every section applies in each of these
    role_arn: str | None = None  # IAM role assumed for every section without its own
    metrics_batch_size: int = 500  # GetMetricData queries per call (1 only for debugging)
    state_table: str | None = None  # DynamoDB table shared by several daemons (None: the state file)
    state_table_region: str | None = None  # None: the first region scaled
    state_table_create: str = "auto"  # or "never"
    lease_seconds: int = 60
    throttle_causes: bool = True  # also fetch the throttle events by cause (8 more series per target)
    # [logging]
    log_file: str | None = None
    log_file_source: str = "log-file"  # how an error names where log_file was given
    log_level: str = "info"
    log_config_file: str | None = None
    log_format: str = "text"  # text or json
    metrics_port: int | None = None  # Prometheus /metrics and /healthz while the loop runs
    metrics_address: str = "127.0.0.1"
    health_grace: int = 60  # /healthz and the systemd watchdog: seconds on top of two check intervals
    status: str | None = None  # --status ("table") or --status-json ("json"): report, change nothing
    # run modes
    dry_run: bool = False
    run_once: bool = False
    daemon: str | None = None  # start, stop, restart, foreground
    instance: str = "default"
    pid_file_dir: str = "/tmp"
    show_config: bool = False
    strict_config: bool = False
    state_file: str | None = None  # None: state.default_path(instance), outside /tmp
    # simulator and backtest
    simulate: str | None = None
    simulate_output: str | None = None
    backtest: bool = False
    backtest_days: int = 7
    aws_target_utilization: float = 70.0  # target of the aws-target-N baseline, percent
    table_name: str | None = None  # --table-name: its one table is scaled, its GSIs are not
    tables: tuple[TableSection, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # unknown sections/keys etc., logged once logging is set up

    def placements(self) -> dict[Placement, tuple[TableSection, ...]]:
        """The table sections grouped by where they apply, in file order (a section naming no
        region applies in each of [global] regions, or else in [global] region)."""
        groups: dict[Placement, list[TableSection]] = {}
        for section in self.tables:
            role = section.role_arn or self.role_arn
            for region in section.regions or self.regions or (self.region,):
                groups.setdefault(Placement(region, role), []).append(section)
        return {placement: tuple(sections) for placement, sections in groups.items()}

    def region_origins(self) -> dict[str, str]:
        """Each region the sections apply in, and where it came from, in file order."""
        origins: dict[str, str] = {}
        for section in self.tables:
            for region in section.regions:
                origins.setdefault(region, f"region of [table: {section.key}]")
            if not section.regions:
                source = self.regions_source if self.regions else self.region_source
                for region in self.regions or (self.region,):
                    origins.setdefault(region, source)
        return origins

    def regions_line(self) -> str:
        """The start-up line's account of the regions: `eu-west-1 (AWS_DEFAULT_REGION), ...`."""
        return ", ".join(f"{region} ({origin})" for region, origin in self.region_origins().items())
