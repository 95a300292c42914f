"""Loading demand traces: what replays, and the one-line errors for what does not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dynamic_dynamodb.simulation.trace import TraceError, load_trace


def write(tmp_path, text, name="trace.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_one_minute_trace_replays_row_by_row(tmp_path):
    trace = load_trace(write(tmp_path, "timestamp,reads,writes\n2024-01-01T00:00:00Z,10,2\n"
                                       "2024-01-01T00:01:00Z,20.5,3\n"))
    assert (trace.name, trace.step_minutes, trace.minutes) == ("trace", 1, 2)
    assert trace.start == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert (trace.reads, trace.writes) == ([10.0, 20.5], [2.0, 3.0])


def test_a_longer_step_holds_its_value_for_each_of_its_minutes(tmp_path):
    trace = load_trace(write(tmp_path, "timestamp,reads,writes\n2024-01-01T00:00:00Z,1,2\n2024-01-01T00:05:00Z,3,4\n"))
    assert trace.step_minutes == 5
    assert trace.reads == [1.0] * 5 + [3.0] * 5
    assert trace.writes == [2.0] * 5 + [4.0] * 5


def test_offsets_are_converted_to_utc_and_naive_times_are_taken_as_utc(tmp_path):
    offset = load_trace(write(tmp_path, "timestamp,reads,writes\n2024-01-01T02:00:00+02:00,1,1\n"
                                        "2024-01-01T02:01:00+02:00,1,1\n", "a.csv"))
    naive = load_trace(write(tmp_path, "timestamp,reads,writes\n2024-01-01T00:00:00,1,1\n"
                                       "2024-01-01T00:01:00,1,1\n", "b.csv"))
    assert offset.start == naive.start == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert offset.start.tzinfo is not None


def test_column_order_extra_columns_and_trailing_blank_lines_are_accepted(tmp_path):
    trace = load_trace(write(tmp_path, "writes,note,timestamp,reads\n2,x,2024-01-01T00:00:00Z,1\n"
                                       "4,y,2024-01-01T00:01:00Z,3\n\n\n"))
    assert (trace.reads, trace.writes) == ([1.0, 3.0], [2.0, 4.0])


@pytest.mark.parametrize("text, expected", [
    pytest.param("", "empty file", id="empty file"),
    pytest.param("timestamp,reads\n2024-01-01T00:00:00Z,1\n", "line 1: missing column(s) writes", id="missing column"),
    pytest.param("timestamp,reads,writes\n", "0 data row(s), need at least 2", id="header only"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1,1\n", "1 data row(s)", id="one row"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1,1\n2024-01-01T00:01:00Z,abc,1\n",
                 "line 3: reads 'abc' is not a number", id="non-numeric"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1,1\n2024-01-01T00:01:00Z,1,-2\n",
                 "line 3: writes '-2' must be a finite number >= 0", id="negative"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,nan,1\n2024-01-01T00:01:00Z,1,1\n",
                 "line 2: reads 'nan' must be a finite number", id="not a number"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1,1\n2024-01-01T00:01:00Z,1,1\n"
                 "2024-01-01T00:03:00Z,1,1\n", "line 4: irregular step: 2 min", id="irregular step"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1,1\n2024-01-01T00:00:30Z,1,1\n",
                 "line 3: step 30 s is not a positive whole number of minutes", id="step under a minute"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:01:00Z,1,1\n2024-01-01T00:00:00Z,1,1\n",
                 "line 3: step", id="backwards"),
    pytest.param("timestamp,reads,writes\nyesterday,1,1\n2024-01-01T00:00:00Z,1,1\n",
                 "line 2: timestamp 'yesterday' is not ISO-8601", id="bad timestamp"),
    pytest.param("timestamp,reads,writes\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,1,1\n",
                 "line 2: 2 fields, the header has 3", id="short row"),
])
def test_a_bad_trace_fails_with_one_line_naming_file_and_line(tmp_path, text, expected):
    path = write(tmp_path, text, "bad.csv")
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_a_trace_error(tmp_path):
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "nope.csv")


def test_a_trace_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    # what Excel writes as "CSV UTF-8": a byte-order mark before the header, CRLF line ends
    text = "timestamp,reads,writes\n2026-01-01T00:00:00Z,5,2\n2026-01-01T00:01:00Z,6,3\n"
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    a, b = load_trace(plain), load_trace(marked, name="plain")
    assert (b.reads, b.writes, b.start) == (a.reads, a.writes, a.start) == ([5.0, 6.0], [2.0, 3.0], b.start)
