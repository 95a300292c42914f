"""`dynamic-dynamodb --config CONF --simulate TRACE.csv [--simulate-output DIR]`: run and print the comparison."""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator, TextIO

from ..logsetup import LOGGER
from ..settings import Settings
from .run import MakeScaler, NoTableName, production_scaler, simulate
from .trace import TraceError

EXIT_OK, EXIT_USAGE = 0, 2


def main(settings: Settings, make_scaler: MakeScaler = production_scaler, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr) -> int:
    """Simulate settings.simulate into settings.simulate_output (default ./simulation-<trace>); exit status."""
    if not settings.simulate:
        print("dynamic-dynamodb: error: --backtest is not available yet; use --simulate TRACE.csv", file=stderr)
        return EXIT_USAGE
    trace = Path(settings.simulate)
    out = Path(settings.simulate_output or f"simulation-{trace.stem}")
    try:
        with _quiet_passes(settings):
            report = simulate(settings, trace, out, make_scaler, progress=stderr)
    except (TraceError, NoTableName) as e:
        print(f"dynamic-dynamodb: error: {e}", file=stderr)
        return EXIT_USAGE
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
