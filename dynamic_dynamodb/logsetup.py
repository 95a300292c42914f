"""Logging handlers: console, a logrotate-friendly file, or the user's own logging config."""
from __future__ import annotations

import logging
import logging.config
import logging.handlers
import os
import stat
import sys
import time
from io import TextIOWrapper

from .edge import LOGGER, PROG  # noqa: F401  (LOGGER re-exported: the name used to live here)
from .settings import ConfigError, Settings

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
DRY_RUN_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - dryrun - %(message)s"


def setup_logging(settings: Settings, console: bool = True) -> None:
    """Configure the `dynamic-dynamodb` logger (a daemon calls it after detaching, see daemon.py)."""
    logger = logging.getLogger(LOGGER)
    if settings.log_config_file:
        _remove_handlers(logger)
        try:
            # UTF-8 whatever the locale, a byte-order mark allowed, as for the config file
            logging.config.fileConfig(settings.log_config_file, disable_existing_loggers=False, encoding="utf-8-sig")
        except Exception as e:  # noqa: BLE001 - fileConfig imports and evaluates what the file names
            # RuntimeError (no sections), ImportError (a handler class), NameError (args), ...
            detail = " ".join(str(e).split()) or type(e).__name__
            raise ConfigError(f"log-config-file {settings.log_config_file}: cannot configure logging: "
                              f"{detail}") from None
        return
    handlers: list[logging.Handler] = []
    if settings.log_file:
        handlers.append(_file_handler(settings, to_stderr=not console))
    if console:
        handlers.insert(0, logging.StreamHandler(sys.stderr))
    # only now the old handlers go: a log file that cannot be opened (on a SIGHUP re-read)
    # leaves the running ones in place to say so
    _remove_handlers(logger)
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logger.setLevel(level)
    logger.propagate = False
    formatter = make_formatter(settings)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.setLevel(level)
        logger.addHandler(handler)
    # boto's own warnings still reach the console
    logging.getLogger("botocore").setLevel(logging.WARNING)


def utc_time(record: logging.LogRecord) -> str:
    """A record's time in UTC, ISO-8601 with milliseconds: 2026-12-01T20:49:20.057Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class UtcFormatter(logging.Formatter):
    """Times in UTC, ISO-8601 with milliseconds and a Z (maintenance windows are in UTC too)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """2026-12-01T20:49:20.057Z."""
        return utc_time(record)


def make_formatter(settings: Settings) -> logging.Formatter:
    """The text format (a UTC time first) or, with log-format json, one JSON object a line."""
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        class UtcJsonFormatter(JsonFormatter):
            """python-json-logger with the UTC time of the text format."""

            def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
                """The UTC time of the text format."""
                return utc_time(record)

        # extra= fields of a record (table, index, dimension, reason...) become keys of their own
        return UtcJsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                static_fields={"dry_run": True} if settings.dry_run else None)
    return UtcFormatter(DRY_RUN_FORMAT if settings.dry_run else FORMAT)


def _remove_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


class FallbackFileHandler(logging.handlers.WatchedFileHandler):
    """A log file (reopened after logrotate moves it) that a full disk or a failing device does
    not silence: the first failure is one warning on stderr, and while writing fails each line
    goes to stderr instead (unless a console handler already puts it there); no traceback.
    A write cut short leaves part of a line in the file: the next line starts on its own."""

    def __init__(self, path: str, to_stderr: bool = True) -> None:
        super().__init__(path)
        self.to_stderr = to_stderr
        self.failing = False  # the last line could not be written: warned already
        self._failed_now = False

    def _open(self) -> TextIOWrapper:
        """The file, opened for appending (at start, after logrotate, after a failed write);
        when it ends in part of a line (a write that failed half-way), a newline first."""
        stream = super()._open()
        try:
            info = os.fstat(stream.fileno())
            cut_short = False
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:  # not a pipe, a terminal, /dev/full
                with open(self.baseFilename, "rb") as fh:
                    fh.seek(info.st_size - 1)
                    cut_short = fh.read(1) not in (b"\n", b"")
        except OSError:
            cut_short = False
        if cut_short:
            stream.write("\n")  # goes out with the next line
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)  # calls handleError on failure
        self.failing = self._failed_now
        self._failed_now = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        self._failed_now = True
        if not self.failing:
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            _write_stderr(f"{PROG}: warning: log-file {self.baseFilename}: cannot write ({reason}); "
                          f"logging goes on to stderr until it can\n")
        if self.to_stderr:
            try:
                _write_stderr(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - a record that cannot be formatted is dropped
                pass
        try:  # drop what the failed write left in the buffer: the next line starts afresh
            if self.stream is not None:
                self.stream.close()
        except OSError:
            pass
        self.stream = None  # reopened by the next emit


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # no stderr left either (a detached daemon has /dev/null)


def _file_handler(settings: Settings, to_stderr: bool = True) -> logging.Handler:
    path = settings.log_file or ""
    try:
        return FallbackFileHandler(path, to_stderr)
    except OSError as e:
        raise ConfigError(f"{settings.log_file_source}: cannot open {path}: {e.strerror}") from None
