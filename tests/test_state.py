"""The state file survives restarts and never crashes the daemon."""
from datetime import date, datetime, timezone

from dynamic_dynamodb import state
from dynamic_dynamodb.model import Target
from dynamic_dynamodb.policy import Memory


def test_memory_round_trips_through_the_state_file(tmp_path):
    path = str(tmp_path / "s.json")
    memory = {
        Target("orders"): Memory(read_checks=2, decrease_day=date(2026, 11, 28), decreases_today=3,
                                 last_decrease=datetime(2026, 11, 28, 10, 5, tzinfo=timezone.utc), alarm="high"),
        Target("orders", "by-customer"): Memory(write_checks=1),
    }
    state.save(path, memory)
    assert state.load(path) == memory


def test_a_missing_state_file_starts_fresh(tmp_path):
    assert state.load(str(tmp_path / "absent.json")) == {}


def test_a_corrupt_state_file_starts_fresh_with_a_warning(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    assert state.load(str(path)) == {}
    assert "starting fresh" in caplog.text


def test_a_state_file_of_another_version_starts_fresh(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"version": 99, "targets": []}')
    assert state.load(str(path)) == {}


def test_an_unwritable_state_file_is_a_warning_not_a_crash(tmp_path, caplog):
    state.save(str(tmp_path / "no" / "such" / "dir" / "s.json"), {Target("t"): Memory(read_checks=1)})
    assert "Cannot write state file" in caplog.text


def test_a_state_file_path_that_is_a_directory_leaves_no_temporary_file_behind(tmp_path, caplog):
    # every pass used to leave a .state-XXXX file next to it
    (tmp_path / "state").mkdir()
    for _ in range(2):
        state.save(str(tmp_path / "state"), {Target("t"): Memory(read_checks=1)})
    assert "Cannot write state file" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"] and not any((tmp_path / "state").iterdir())


def test_the_demand_policy_history_round_trips(tmp_path):
    from dynamic_dynamodb.demand import DemandState

    path = str(tmp_path / "s.json")
    history = DemandState(datetime(2026, 11, 28, 11, 58, tzinfo=timezone.utc), (1.5, 2.0, 40.25), 1234.5)
    memory = {Target("orders"): Memory(reads_demand=history, writes_demand=DemandState())}
    state.save(path, memory)
    assert state.load(path) == memory
