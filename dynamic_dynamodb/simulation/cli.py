"""`dynamic-dynamodb --config CONF --simulate TRACE.csv [--simulate-output DIR]`, and `--backtest [--days N]`:
run and print the comparison."""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ..edge import EXIT_OK, EXIT_USAGE, LOGGER, error
from ..settings import Settings
from . import backtest
from .run import MakeScaler, NoTableName, production_scaler, simulate
from .trace import TraceError


def main(settings: Settings, make_scaler: MakeScaler = production_scaler, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr, connect: backtest.Connect = backtest.connect) -> int:
    """Simulate settings.simulate into settings.simulate_output (default ./simulation-<trace>), or backtest
    the config on its tables' CloudWatch history (one ./backtest-<table>[-<gsi>] each); exit status."""
    if settings.simulate and settings.backtest:
        return error("give --simulate TRACE.csv or --backtest, not both", EXIT_USAGE, stderr)
    if not settings.simulate:
        return backtest.run(settings, make_scaler, connect=connect, stdout=stdout, stderr=stderr,
                            quiet=lambda: _quiet_passes(settings))
    trace = Path(settings.simulate)
    out = Path(settings.simulate_output or f"simulation-{trace.stem}")
    try:
        with _quiet_passes(settings):
            report = simulate(settings, trace, out, make_scaler, aws_target=settings.aws_target_utilization,
                              progress=stderr)
    except (TraceError, NoTableName) as e:
        return error(str(e), EXIT_USAGE, stderr)
    print(report.summary(), file=stdout)
    return EXIT_OK


@contextlib.contextmanager
def _quiet_passes(settings: Settings) -> Iterator[None]:
    """Only errors from the simulated passes reach the log: their decisions are in timeline.csv.

    Budget and refusal warnings are normal events of a replay, and would carry wall-clock times.
    """
    logger = logging.getLogger(LOGGER)
    level = logger.level
    if settings.log_level.lower() != "debug":
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
