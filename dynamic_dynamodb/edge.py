"""The edge of the process: exit statuses, the one-line messages on stderr, the logger's name.

Imports nothing of the package, so every module may use it without a cycle.
"""
from __future__ import annotations

import sys
from enum import IntEnum
from typing import TextIO

PROG = "dynamic-dynamodb"
LOGGER = "dynamic-dynamodb"  # the one logger of the package; handlers are set up in logsetup


class Exit(IntEnum):
    """Exit statuses of every command."""

    OK = 0
    FAILURE = 1  # the work was not done (an AWS error, a daemon that did not start)
    USAGE = 2  # a usage or config error: nothing was tried


EXIT_OK, EXIT_FAILURE, EXIT_USAGE = Exit.OK, Exit.FAILURE, Exit.USAGE


def error(message: str, status: int = Exit.FAILURE, stream: TextIO | None = None) -> int:
    """Print `dynamic-dynamodb: error: MESSAGE` on one line of stderr; returns `status` for `return error(...)`."""
    print(f"{PROG}: error: {' '.join(str(message).splitlines())}", file=stream or sys.stderr, flush=True)
    return status


def warning(message: str, stream: TextIO | None = None) -> None:
    """Print `dynamic-dynamodb: warning: MESSAGE` on stderr."""
    print(f"{PROG}: warning: {message}", file=stream or sys.stderr, flush=True)
