"""The docs' key tables checked against the option table: each option has its row, type and default."""
from __future__ import annotations

import re
from pathlib import Path

from . import config
from .config import GLOBAL, LOGGING, MODE, SCHEDULE, TABLE, Option

# where each kind of option has its rows in configuration.rst: the text after (or before) a heading
_AFTER = {TABLE: "\n[table: REGEX]\n", MODE: "\nCapacity mode\n", SCHEDULE: "\n[schedule: NAME]\n"}
_BEFORE = {GLOBAL: "\n[default_options]\n", LOGGING: "\n[default_options]\n"}


def _row(page: str, name: str) -> tuple[str, str] | None:
    """The Type and Default cells of the list-table row of a key or option (a short form may come first)."""
    row = re.search(rf"^\s*\* - (?:``-\w``, )?``{re.escape(name)}``\n\s*- (.*)\n(?:\s*- (.*)\n)?", page, re.M)
    return (row[1], row[2] or "") if row else None


def _option_problem(page: str, option: Option) -> str | None:
    """What the configuration page gets wrong about one option, or None."""
    if option.kind in _AFTER:
        part = page.split(_AFTER[option.kind], 1)[-1]
    elif option.kind in _BEFORE:
        part = page.split(_BEFORE[option.kind], 1)[0]
    else:
        return None  # placement keys are told in prose
    row = _row(part, option.name)
    if row is None:
        return f"configuration.rst: no row for {option.name}"
    if row[0] != option.type_name:
        return f"configuration.rst {option.name}: type {row[0]!r}, expected {option.type_name!r}"
    if option.kind not in _BEFORE and option.shown_default not in row[1]:
        return f"configuration.rst {option.name}: default {row[1]!r}, expected {option.shown_default!r}"
    return None


def problems(docs: Path) -> list[str]:
    """Every option without its row, type or default in docs/configuration.rst and docs/command_line.rst."""
    page = (docs / "configuration.rst").read_text(encoding="utf-8")
    found = [p for p in (_option_problem(page, option) for option in config.OPTIONS) if p]
    command_line = (docs / "command_line.rst").read_text(encoding="utf-8")
    for cli in config.CLI_OPTIONS:
        flag = cli.flags[-1]
        row = _row(command_line, flag)
        if row is None:
            found.append(f"command_line.rst: no row for {flag}")
        elif row[0] != cli.type_name:
            found.append(f"command_line.rst {flag}: type {row[0]!r}, expected {cli.type_name!r}")
    return found
