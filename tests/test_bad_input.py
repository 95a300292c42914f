"""Bad input is one line and exit 2, never a traceback, and never echoes a secret: special
config files, empty regexes, secrets in parser errors; a log file on a full disk is one warning."""
from __future__ import annotations

import io
import logging
import os
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dynamic_dynamodb import config, logsetup
from dynamic_dynamodb.settings import ConfigError

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def load(argv):
    return config.load_settings([str(a) for a in argv])


def parser_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        load(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# ---- special config files ---------------------------------------------------------------


def test_a_fifo_as_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "dd.conf"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"^-c/--config: '.*dd.conf' is a FIFO, not a regular file$"):
        load(["--config", fifo])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_as_config_is_refused(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(ConfigError, match=rf"^-c/--config: '{device}' is a device, not a regular file$"):
        load(["--config", device])


def test_a_directory_as_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"is a directory, not a regular file$"):
        load(["--config", tmp_path])


def test_a_config_larger_than_1_mib_is_refused_and_one_of_1_mib_is_read(tmp_path):
    path = tmp_path / "dd.conf"
    body = "[table: orders]\n"
    path.write_text(body + "#" * (config.MAX_CONFIG_BYTES - len(body) - 1) + "\n")
    assert [t.key for t in load(["--config", path]).tables] == ["orders"]
    with open(path, "a") as fh:
        fh.write("#")
    with pytest.raises(ConfigError, match=rf"is {config.MAX_CONFIG_BYTES + 1} bytes; a config file is at most 1 MiB$"):
        load(["--config", path])


# ---- empty regexes ------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("[table: ]\n", "got an empty table regex"),
    ("[table:\t]\n", "got an empty table regex"),
    ("[table: x]\n[gsi:  table: x]\n", "got an empty GSI regex"),
    ("[table: x]\n[gsi: table: x]\n", "expected a section header [gsi: GSI-REGEX table: TABLE-KEY]"),
    ("[table: x]\n[gsi: g table: ]\n", "expected a section header [gsi: GSI-REGEX table: TABLE-KEY]"),
])
def test_an_empty_regex_in_a_header_is_an_error(tmp_path, text, message):
    path = tmp_path / "dd.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load(["--config", path])
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_an_empty_table_name_is_a_usage_error(capsys, value):
    err = parser_error(capsys, ["--table-name", value])
    assert "-t/--table-name: expected a non-empty value" in err


# ---- secrets never echoed ---------------------------------------------------------------


@pytest.mark.parametrize("line, shown", [
    (f"aws-secret-access-key-id: {SECRET}", "key 'aws-secret-access-key-id'"),
    (f"aws-access-key-id = {SECRET}", "key 'aws-access-key-id'"),
    (SECRET, "text"),
    (f"circuit-breaker-url: https://user:{SECRET}@example.com/", "key 'circuit-breaker-url'"),
])
def test_a_line_before_any_section_is_not_echoed(tmp_path, line, shown):
    path = tmp_path / "dd.conf"
    path.write_text(f"{line}\n[table: x]\n")
    with pytest.raises(ConfigError) as error:
        load(["--config", path])
    message = str(error.value)
    assert SECRET not in message
    assert message == f"{path} line 1: {shown} outside any section (start with [global] or [table: REGEX])"


@pytest.mark.parametrize("argv", [
    ["--aws-secret-acess-key", SECRET],  # mistyped: argparse echoes unrecognised arguments
    [f"--aws-secret-acess-key={SECRET}"],
    [f"--aws={SECRET}"],  # ambiguous abbreviation
    [f"--aws-secret-access-key={SECRET}", "--bogus"],
    ["--aws-secret-access-key", SECRET, "extra-positional"],
    ["--aws-access-key-id", SECRET, "--aws-secret-access-key"],  # no value for the second
    [f"--aws-acces-key={SECRET}"],
    ["--table-name", "x", "--check-interval", "abc", f"--aws-secret-access-key={SECRET}"],
    ["--table-name", "x", f"http://user:{SECRET}@example.com/"],
])
def test_parser_errors_never_echo_a_secret(capsys, argv):
    err = parser_error(capsys, argv)
    assert SECRET not in err and err.startswith("dynamic-dynamodb: error: ")


def test_a_secret_given_twice_is_not_echoed_and_the_last_wins():
    settings = load(["--table-name", "x", "--aws-access-key-id", "AKIAX", "--aws-secret-access-key", "first",
                     "--aws-secret-access-key", SECRET])
    assert settings.aws_secret_access_key == SECRET
    shown = str(config.settings_as_dict(settings))
    assert SECRET not in shown and "first" not in shown


@pytest.mark.parametrize("argv, masked", [
    (["--aws-secret-access-key", "S3CRET", "-t", "x"], ["--aws-secret-access-key", "***", "-t", "x"]),
    (["--aws-secret-access-key=S3CRET"], ["--aws-secret-access-key=***"]),
    (["--aws-s", "S3CRET"], ["--aws-s", "***"]),
    (["--aws-access-key-id", "AKIA1"], ["--aws-access-key-id", "***"]),
    (["--config", "https://u:pw0rd@example.com/x"], ["--config", "https://u:***@example.com/x"]),
    (["-t", "orders", "--dry-run"], ["-t", "orders", "--dry-run"]),
])
def test_mask_argv_hides_keys_and_url_passwords(argv, masked):
    assert config.mask_argv(argv) == masked


# a secret is long: a 4-letter one may be a word of the message itself ("help")
@given(st.text(min_size=12, max_size=40).filter(lambda s: s.strip() and "\0" not in s),
       st.sampled_from(["--aws-secret-access-key", "--aws-secret-acces-key", "--aws-access-key-id", "--aws-s",
                        "--aws", "--secret"]),
       st.booleans())
def test_no_parser_error_echoes_a_secret_value(secret, flag, joined):
    def error_text(value: str) -> str:
        argv = [f"{flag}={value}"] if joined else [flag, value]
        out = io.StringIO()
        saved = sys.stderr
        sys.stderr = out
        try:
            with pytest.raises(SystemExit):
                config.load_settings([*argv, "--no-such-option"])
        finally:
            sys.stderr = saved
        return out.getvalue().replace(config.MASK, "")

    # a secret that is part of the message itself ("dynamic-dyna", the program's name) proves nothing
    assume(secret not in error_text("0123456789abcdef"))
    assert secret not in error_text(secret)


# ---- a log file on a full disk ----------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("to_stderr", [True, False], ids=["no console: lines go to stderr", "console on"])
def test_a_log_file_on_a_full_disk_is_one_warning_then_stderr(capsys, to_stderr):
    handler = logsetup.FallbackFileHandler("/dev/full", to_stderr=to_stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test-full-disk")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for i in range(5):
            logger.info("line %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err
    assert err.count("warning: log-file /dev/full: cannot write (No space left on device)") == 1
    assert "Traceback" not in err and "Logging error" not in err
    assert [line for line in err.splitlines() if line.startswith("INFO ")] == (
        [f"INFO line {i}" for i in range(5)] if to_stderr else [])


HALF_WRITTEN = """\
import logging, resource, signal, sys
from dynamic_dynamodb import logsetup

path, limit = sys.argv[1], int(sys.argv[2])
handler = logsetup.FallbackFileHandler(path, to_stderr=False)
handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
logger = logging.getLogger("half-written")
logger.propagate = False
logger.addHandler(handler)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the write that crosses it is cut short
for i in range(10):
    logger.warning("record %d of the full disk", i)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space again
logger.warning("after the disk was full")
logger.warning("and the next one")
handler.close()
"""


def test_a_record_cut_short_by_a_full_disk_does_not_swallow_the_next_one(tmp_path):
    # the next record was appended to the partial one: '... - INFO 2026-12-02T16:19:50.803Z - ...'
    import subprocess

    path = tmp_path / "dd.log"
    record = "WARNING record 0 of the full disk\n"
    result = subprocess.run([sys.executable, "-c", HALF_WRITTEN, str(path), str(len(record) + 10)],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    assert "cannot write (File too large)" in result.stderr
    lines = path.read_text().splitlines()
    assert lines[0] == record.strip() and lines[1] == record.strip().replace("0", "1")[:10]  # cut short
    assert lines[2:] == ["WARNING after the disk was full", "WARNING and the next one"]


def test_a_log_file_left_ending_mid_line_gets_the_next_line_on_its_own(tmp_path):
    path = tmp_path / "dd.log"
    path.write_text("WARNING a record a full disk cut sh")  # by an earlier run
    handler = logsetup.FallbackFileHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "started", None, None))
    handler.close()
    assert path.read_text() == "WARNING a record a full disk cut sh\nstarted\n"


def test_the_log_file_handler_writes_and_reopens_after_a_failure(tmp_path, capsys):
    path = tmp_path / "dd.log"
    handler = logsetup.FallbackFileHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "first", None, None)
    handler.emit(record)
    handler.stream.close()  # a write that fails, once
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "lost", None, None))
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "second", None, None))
    handler.close()
    assert path.read_text().splitlines() == ["first", "second"]
    err = capsys.readouterr().err
    assert err.count("cannot write") == 1 and "lost" in err and "second" not in err
