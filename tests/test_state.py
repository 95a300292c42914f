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


# ---- where the state lives ------------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402
from datetime import timedelta  # noqa: E402

import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dynamic_dynamodb.fleet import Fleet, Ledger  # noqa: E402
from dynamic_dynamodb.loop import Ports  # noqa: E402
from dynamic_dynamodb.model import Capacity, TableDescription, TargetStatus  # noqa: E402
from dynamic_dynamodb.settings import Settings  # noqa: E402

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
EAST = ("us-east-1", None)


@pytest.fixture
def messages():
    """The daemon logger's messages at INFO and above, whatever its propagation."""
    import logging

    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda r: lines.append(r.getMessage())
    logger = logging.getLogger("dynamic-dynamodb")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.mark.parametrize("euid, environ, expected", [
    (0, {}, "/var/lib/dynamic-dynamodb/blue.state.json"),
    (0, {"XDG_STATE_HOME": "/x", "HOME": "/root"}, "/var/lib/dynamic-dynamodb/blue.state.json"),
    (1000, {"HOME": "/home/ann"}, "/home/ann/.local/state/dynamic-dynamodb/blue.state.json"),
    (1000, {"HOME": "/home/ann", "XDG_STATE_HOME": "/srv/st"}, "/srv/st/dynamic-dynamodb/blue.state.json"),
    # the XDG spec: a relative XDG_STATE_HOME is invalid, ignored
    (1000, {"HOME": "/home/ann", "XDG_STATE_HOME": "rel"}, "/home/ann/.local/state/dynamic-dynamodb/blue.state.json"),
    # systemd's StateDirectory= says where, for root and others alike
    (0, {"STATE_DIRECTORY": "/var/lib/dd"}, "/var/lib/dd/blue.state.json"),
    (1000, {"STATE_DIRECTORY": "/var/lib/dd:/var/lib/other", "HOME": "/h"}, "/var/lib/dd/blue.state.json"),
])
def test_the_default_state_file_is_per_instance_and_never_in_tmp(euid, environ, expected):
    assert state.default_path("blue", euid=euid, environ=environ) == expected


def test_the_state_directory_is_created_mode_0700(tmp_path):
    old = os.umask(0o022)
    try:
        held = state.StateFile.claim(str(tmp_path / "a" / "b" / "s.json"))
    finally:
        os.umask(old)
    held.release()
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700


@pytest.mark.parametrize("make, expected", [
    (lambda p: (p / "file").write_text("x") and p / "file" / "s.json",
     "cannot create it: File exists (--state-file or $STATE_DIRECTORY names another)"),
    (lambda p: (p / "dir").mkdir() or p / "dir", "is a directory"),
    (lambda p: os.mkfifo(p / "fifo") or p / "fifo", "not a regular file"),
])
def test_an_unusable_state_path_is_one_line_and_status_2(tmp_path, make, expected):
    with pytest.raises(state.StateError) as e:
        state.StateFile.claim(str(make(tmp_path)))
    assert e.value.status == 2 and expected in str(e.value) and "\n" not in str(e.value)


def test_a_second_holder_is_refused_with_the_file_and_the_holders_pid(tmp_path):
    path = str(tmp_path / "s.json")
    held = state.StateFile.claim(path)
    with pytest.raises(state.StateError) as e:
        state.StateFile.claim(path)  # flock is per open file: refused within one process too
    assert e.value.status == 1
    assert path in str(e.value) and f"pid {os.getpid()}" in str(e.value)
    held.release()
    state.StateFile.claim(path).release()  # free again once released


def test_stale_temporary_files_of_this_state_file_only_are_removed_on_claim(tmp_path):
    mine = tmp_path / ".s.json.tmp-abc_1234"
    others = [tmp_path / ".t.json.tmp-abc_1234", tmp_path / ".s.json.x.tmp-abc_1234",
              tmp_path / ".s.json.tmp-abc_1234.keep", tmp_path / ".s.json.x.json.tmp-abcd1234"]
    for p in [mine, *others]:
        p.write_text("{")
    state.StateFile.claim(str(tmp_path / "s.json")).release()
    assert not mine.exists() and all(p.exists() for p in others)


# ---- merging, expiry, corruption -------------------------------------------------------------

def record(checks: int, seen=NOW, incarnation=None) -> state.Record:
    return state.Record(Memory(read_checks=checks), incarnation, seen)


def test_saving_keeps_the_entries_of_other_configs_regions_and_roles(tmp_path):
    path = str(tmp_path / "s.json")
    others = {(EAST, Target("theirs")): record(1), (("eu-west-1", None), Target("mine")): record(2),
              (("us-east-1", "arn:aws:iam::1:role/r"), Target("mine")): record(3)}
    state.write(path, others)
    held = state.StateFile.claim(path)
    assert held.save({(EAST, Target("mine")): record(4)}, NOW)
    held.release()
    assert state.read(path, NOW) == {**others, (EAST, Target("mine")): record(4)}


def test_an_owned_entry_with_nothing_to_remember_is_removed(tmp_path):
    path = str(tmp_path / "s.json")
    state.write(path, {(EAST, Target("a")): record(1), (EAST, Target("b")): record(2)})
    held = state.StateFile.claim(path)
    held.save({(EAST, Target("a")): None, (EAST, Target("b")): state.Record(Memory(), None, NOW)}, NOW)
    held.release()
    assert state.read(path, NOW) == {}


def test_entries_unseen_for_7_days_expire_and_unstamped_ones_are_stamped(tmp_path):
    path = str(tmp_path / "s.json")
    state.write(path, {(EAST, Target("old")): record(1, NOW - timedelta(days=7, seconds=1)),
                       (EAST, Target("recent")): record(2, NOW - timedelta(days=6)),
                       (EAST, Target("v2")): record(3, None)})
    held = state.StateFile.claim(path)
    held.save({}, NOW)
    held.release()
    saved = state.read(path)
    assert set(t.table for _, t in saved) == {"recent", "v2"}
    assert saved[(EAST, Target("v2"))].last_seen == NOW


def test_a_corrupt_state_file_is_moved_aside_with_a_warning(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_bytes(b'{"version": 3, "targets": [{"table": \xff')
    held = state.StateFile.claim(str(path))
    assert held.load(NOW) == {}
    held.release()
    aside = tmp_path / "s.json.corrupt-20261128T120000Z"
    assert aside.read_bytes().startswith(b'{"version": 3') and not path.exists()
    assert "s.json.corrupt-20261128T120000Z" in caplog.text and "starting fresh" in caplog.text


def test_a_dry_run_read_of_a_fifo_does_not_hang(tmp_path, messages):
    os.mkfifo(tmp_path / "s.json")
    assert state.read(str(tmp_path / "s.json"), NOW) == {}
    assert any("not a regular file" in m for m in messages)


def test_a_dry_run_read_never_moves_a_corrupt_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    assert state.read(str(path), NOW) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_a_save_that_fails_warns_once_and_says_when_it_works_again(tmp_path, messages):
    directory = tmp_path / "d"
    held = state.StateFile.claim(str(directory / "s.json"))
    (directory / "s.json.lock").unlink()
    directory.rmdir()  # the directory is gone under the running process
    for _ in range(3):
        assert not held.save({(EAST, Target("t")): record(1)}, NOW)
    assert sum("Cannot write state file" in m for m in messages) == 1
    directory.mkdir()
    assert held.save({(EAST, Target("t")): record(1)}, NOW)
    assert "written again" in messages[-1]
    assert sorted(directory.iterdir()) == [directory / "s.json", directory / "s.json.lock"]  # locked again
    held.release()


def test_a_removed_lock_file_is_made_again_and_a_second_process_is_then_refused(tmp_path, messages):
    path = str(tmp_path / "s.json")
    held = state.StateFile.claim(path)
    (tmp_path / "s.json.lock").unlink()
    assert held.save({(EAST, Target("t")): record(1)}, NOW)
    assert any("was removed while this process held it; locked again" in m for m in messages)
    with pytest.raises(state.StateError) as e:
        state.StateFile.claim(path)
    assert e.value.status == 1 and f"pid {os.getpid()}" in str(e.value)
    held.release()


def test_a_lock_file_replaced_and_held_by_another_process_stops_the_saves(tmp_path, messages):
    path = str(tmp_path / "s.json")
    held = state.StateFile.claim(path)
    held.save({(EAST, Target("t")): record(1)}, NOW)
    (tmp_path / "s.json.lock").unlink()
    newcomer = state.StateFile.claim(path)  # started after the removal: it is not refused
    newcomer.save({(EAST, Target("t")): record(5)}, NOW)
    for _ in range(2):
        assert not held.save({(EAST, Target("t")): record(9)}, NOW)
    assert state.read(path)[(EAST, Target("t"))].memory == record(5).memory  # the newcomer's, not clobbered
    lost = [m for m in messages if "another process holds it" in m]
    assert len(lost) == 2 and path in lost[0] and "stop one of them" in lost[0]
    newcomer.release()
    held.release()


keys = st.sampled_from([(EAST, Target(n)) for n in "abcd"] + [(("eu-west-1", None), Target("a"))])
records = st.builds(lambda c, age: record(c, NOW - timedelta(days=age)), st.integers(1, 9), st.integers(0, 9))


@given(on_file=st.dictionaries(keys, records), owned=st.dictionaries(keys, st.none() | records))
def test_a_save_is_the_file_updated_with_the_owned_entries_minus_the_expired(tmp_path_factory, on_file, owned):
    path = str(tmp_path_factory.mktemp("merge") / "s.json")
    state.write(path, on_file)
    held = state.StateFile.claim(path)
    held.save(owned, NOW)
    held.release()
    expected = {k: r for k, r in {**on_file, **owned}.items()
                if r is not None and NOW - r.last_seen <= timedelta(days=7)}
    assert state.read(path) == expected
    assert sorted(os.listdir(os.path.dirname(path))) == ["s.json", "s.json.lock"]


# ---- memory belongs to a table's incarnation -------------------------------------------------

class OneTable:
    """A table `orders` (10 units, 10 % used) of a given incarnation, with one GSI."""

    def __init__(self, incarnation):
        self.incarnation = incarnation
        self.updates = []

    def ports(self, settings, placement):
        return Ports(self, self)

    def list_tables(self):
        return ["orders"]

    def describe(self, table):
        def status(index=None):
            return TargetStatus(Target(table, index), "ACTIVE", "PROVISIONED", Capacity(10, 10),
                                incarnation=self.incarnation)
        return TableDescription(status(), (status("by-day"),))

    def update(self, update):
        self.updates.append(update)

    def fetch(self, qs):
        return {q: [(q.start + timedelta(minutes=m), 60.0 if q.metric.startswith("Consumed") else 0.0)
                    for m in range(5)] for q in qs}


def orders_settings():
    import re

    from dynamic_dynamodb.rules import TargetRules
    from dynamic_dynamodb.settings import GsiSection, TableSection
    return Settings(tables=(TableSection("orders", re.compile("orders"), TargetRules(),
                                         (GsiSection(".*", re.compile(".*"), "orders", TargetRules()),)),))


def run_and_save(world, path, now):
    held = state.StateFile.claim(path)
    records = held.load(now)
    fleet = Fleet(orders_settings(), world.ports, memory=state.placed(records), ledger=Ledger.of(records))
    fleet.run_pass(now)
    held.save(fleet.records(), now)
    held.release()
    return fleet


def test_a_table_recreated_under_the_same_name_starts_with_fresh_memory(tmp_path, messages):
    path = str(tmp_path / "s.json")
    first = run_and_save(OneTable("id-1"), path, NOW)
    assert first.memory[EAST][Target("orders")].decreases_today == 1
    saved = state.read(path)
    assert {k: r.incarnation for k, r in saved.items()} == {(EAST, Target("orders")): "id-1",
                                                            (EAST, Target("orders", "by-day")): "id-1"}
    # the same table an hour later: its spent decrease is remembered
    same = run_and_save(OneTable("id-1"), path, NOW + timedelta(hours=1))
    assert same.memory[EAST][Target("orders")].decreases_today == 2
    # deleted and recreated: DynamoDB's own budget, not the old table's
    new = run_and_save(OneTable("id-2"), path, NOW + timedelta(hours=2))
    assert new.memory[EAST][Target("orders")].decreases_today == 1
    assert new.memory[EAST][Target("orders", "by-day")].decreases_today == 1
    assert any(m.startswith("orders: a new table of that name (id-2") for m in messages)
    assert state.read(path)[(EAST, Target("orders"))].incarnation == "id-2"


def test_a_memory_without_a_recorded_incarnation_is_kept_and_adopts_the_tables(tmp_path):
    path = str(tmp_path / "s.json")
    spent = Memory(decrease_day=NOW.date(), decreases_today=2, last_decrease=NOW - timedelta(hours=2))
    state.save_placed(path, {EAST: {Target("orders"): spent}})  # a version 2 file: no incarnation
    fleet = run_and_save(OneTable("id-1"), path, NOW)
    assert fleet.memory[EAST][Target("orders")].decreases_today == 3  # counted on, not reset
    assert state.read(path)[(EAST, Target("orders"))].incarnation == "id-1"


def test_the_state_file_records_what_a_pass_saw_and_when(tmp_path):
    path = str(tmp_path / "s.json")
    run_and_save(OneTable("id-1"), path, NOW)
    raw = json.loads((tmp_path / "s.json").read_text())
    assert raw["version"] == 3
    assert {(e["table"], e["index"], e["region"], e["last_seen"]) for e in raw["targets"]} == {
        ("orders", None, "us-east-1", NOW.isoformat()), ("orders", "by-day", "us-east-1", NOW.isoformat())}


@pytest.mark.parametrize("extra, expected", [
    ({"TableId": "4a2f-9c", "CreationDateTime": datetime(2026, 1, 2, tzinfo=timezone.utc)}, "4a2f-9c"),
    # moto answers without TableId: the creation time stands in
    ({"CreationDateTime": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)},
     "created 2026-01-02T03:04:05.678000+00:00"),
    ({"CreationDateTime": 1767323045.678}, "created 2026-01-02T03:04:05.678000+00:00"),
    ({"CreationDateTime": "garbage"}, None),
    ({}, None),
])
def test_describe_table_gives_the_table_and_its_gsis_the_tables_incarnation(extra, expected):
    from dynamic_dynamodb import aws

    desc = aws.parse_description({"TableName": "orders", **extra, "GlobalSecondaryIndexes": [
        {"IndexName": "by-day", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}]})
    assert desc.table.incarnation == expected and [i.incarnation for i in desc.indexes] == [expected]


def test_a_lock_file_that_is_a_symbolic_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "s.json.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(state.StateError) as e:
        state.StateFile.claim(str(tmp_path / "s.json"))
    assert e.value.status == 2 and "lock file" in str(e.value)


# ---- values checked on load, never NaN or infinite on save ------------------------------------

from dynamic_dynamodb.demand import DemandState  # noqa: E402
from dynamic_dynamodb.forecast import RING, ForecastState  # noqa: E402

T0 = "2026-11-28T11:00:00+00:00"


def a_file(tmp_path, orders_memory: str, users_memory: str = '{"read_checks": 2}') -> str:
    path = tmp_path / "s.json"
    path.write_text('{"version": 3, "targets": ['
                    f'{{"table": "orders", "index": null, "region": "us-east-1", "memory": {orders_memory}}}, '
                    f'{{"table": "users", "index": null, "region": "us-east-1", "memory": {users_memory}}}]}}')
    return str(path)


@pytest.mark.parametrize("memory, field", [
    (f'{{"reads_demand": {{"last_minute": "{T0}", "demand": [1e400], "bucket": 0}}}}', "reads_demand.demand"),
    ('{"writes_demand": {"demand": [NaN]}}', "writes_demand.demand"),
    ('{"reads_demand": {"demand": [], "bucket": Infinity}}', "reads_demand.bucket"),
    ('{"reads_demand": {"demand": [-1.0]}}', "reads_demand.demand"),
    ('{"reads_demand": {"demand": [1e300]}}', "reads_demand.demand"),
    ('{"reads_demand": {"demand": "12"}}', "reads_demand.demand"),
    ('{"reads_demand": [1, 2]}', "reads_demand"),
    ('{"read_checks": -1}', "read_checks"),
    ('{"write_checks": 1.5}', "write_checks"),
    ('{"decreases_today": true}', "decreases_today"),
    ('{"read_checks": 100000000000000000000000}', "read_checks"),
    ('{"decrease_day": "yesterday"}', "decrease_day"),
    ('{"last_decrease": 5}', "last_decrease"),
    ('{"alarm": "purple"}', "alarm"),
    ('{"last_reason": ["x"]}', "last_reason"),
    ('{"mode": {"costs": [1, 2]}}', "mode.costs"),
    ('{"mode": {"costs": [1, 2, 3]}}', "mode.costs"),
    ('{"mode": {"costs": [1, -Infinity, 0.5]}}', "mode.costs"),
    ('{"mode": {"switches_to_on_demand": ["soon"]}}', "mode.switches_to_on_demand"),
    ('{"reads_forecast": {"slots": [' + ", ".join(["1.0"] * (RING - 1)) + ', NaN]}}', "reads_forecast.slots"),
    ('{"reads_forecast": {"slots": [' + ", ".join(["1.0"] * RING) + '], "newest_slot": -4}}',
     "reads_forecast.newest_slot"),
    ('{"reads_forecast": {"slots": [' + ", ".join(["1.0"] * RING) + '], "open_slot": 1e30}}',
     "reads_forecast.open_slot"),
    ('{"writes_forecast": {"slots": [' + ", ".join(["-1.0"] * RING) + '], "open_sum": NaN}}',
     "writes_forecast.open_sum"),
    ('{"reads_demand": {"demand": [' + ", ".join(["1"] * 100_001) + ']}}', "reads_demand.demand"),
    ('"a string"', "memory"),
])
def test_an_entry_with_impossible_values_is_dropped_with_one_warning_naming_it(tmp_path, messages, memory, field):
    path = a_file(tmp_path, memory)
    held = state.StateFile.claim(path)
    assert held.load(NOW) == {(EAST, Target("users")): state.Record(Memory(read_checks=2))}
    held.save({}, NOW)  # the save reads the file again: not said a second time
    held.release()
    dropped = [m for m in messages if "dropped" in m]
    assert len(dropped) == 1 and "the entry of orders (us-east-1) dropped" in dropped[0] and field in dropped[0]
    assert set(t.table for _, t in state.read(path)) == {"users"}  # gone from the file, the rest kept
    assert not list(tmp_path.glob("s.json.corrupt-*"))


@pytest.mark.parametrize("entry, named", [
    ('"orders"', "entry 1"),
    ('{"index": null, "memory": {}}', "entry 1"),
    ('{"table": "orders", "index": 3, "memory": {}}', "orders"),  # named by what can be read of it
    ('{"table": "orders", "region": "us-east-1"}', "orders (us-east-1)"),
    ('{"table": "orders", "memory": {}, "last_seen": "never"}', "orders"),
    ('{"table": "orders", "memory": {}, "incarnation": 7}', "orders"),
])
def test_an_entry_that_is_not_one_is_dropped_naming_what_it_can(tmp_path, messages, entry, named):
    path = tmp_path / "s.json"
    path.write_text('{"version": 3, "targets": [' + entry + ', {"table": "users", "memory": {"read_checks": 1}}]}')
    assert state.read(str(path)) == {(state.UNPLACED, Target("users")): state.Record(Memory(read_checks=1))}
    assert any(f"the entry of {named} dropped" in m for m in messages), messages


def test_valid_extremes_and_naive_times_are_kept(tmp_path):
    path = a_file(tmp_path, '{"read_checks": 0, "decreases_today": 1000000000, "last_decrease": "2026-11-28T10:00:00", '
                            '"reads_demand": {"demand": [0, 1e15], "bucket": 0}, "alarm": null}')
    memory = state.read(path)[(EAST, Target("orders"))].memory
    assert memory.decreases_today == 10**9 and memory.reads_demand == DemandState(None, (0.0, 1e15), 0.0)
    assert memory.last_decrease == datetime(2026, 11, 28, 10, tzinfo=timezone.utc)  # this program writes UTC


@pytest.mark.parametrize("written", ["2026-11-28T10:00:00Z", "2026-11-28T10:00:00z", "2026-11-28T11:00:00+01:00"])
def test_a_time_with_a_z_or_an_offset_is_read_on_every_python(tmp_path, written):
    # a state file edited by hand or by another tool; Python 3.10's fromisoformat refuses a Z
    path = a_file(tmp_path, '{"last_decrease": "' + written + '"}')
    memory = state.read(path)[(EAST, Target("orders"))].memory
    assert memory.last_decrease == datetime(2026, 11, 28, 10, tzinfo=timezone.utc)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["read_checks", "reads_demand", "demand", "bucket", "mode", "costs",
                                         "last_minute", "alarm", "decrease_day", "writes_forecast", "slots"]),
                        inner, max_size=4), max_leaves=12))
def test_decode_memory_returns_a_memory_or_raises_value_error_never_anything_else(raw):
    try:
        state.decode_memory(raw)
    except ValueError:
        pass


def test_a_non_finite_number_in_memory_is_never_written_and_the_rest_of_it_is(tmp_path, messages):
    path = str(tmp_path / "s.json")
    bad = Memory(read_checks=3, reads_demand=DemandState(None, (1.0, float("inf")), 0.0),
                 writes_forecast=ForecastState(5, (float("nan"),) * RING))
    state.write(path, {(EAST, Target("orders")): state.Record(bad), (EAST, Target("users")): record(2)})
    text = open(path).read()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert state.read(path)[(EAST, Target("orders"))].memory == Memory(read_checks=3)
    assert state.read(path)[(EAST, Target("users"))] == record(2)
    warned = [m for m in messages if "not finite" in m]
    assert len(warned) == 2 and all("orders (us-east-1)" in m for m in warned)
    assert "reads_demand" in warned[0] and "writes_forecast" in warned[1]


def test_the_state_table_encoding_leaves_a_non_finite_field_out(messages):
    bad = Memory(write_checks=1, writes_demand=DemandState(None, (float("nan"),), 0.0))
    encoded = state.encode_memory(bad)
    json.dumps(encoded, allow_nan=False)
    assert state.decode_memory(encoded) == Memory(write_checks=1)
    assert any("State table: writes_demand holds a number that is not finite" in m for m in messages)
    with pytest.raises(ValueError, match="reads_demand.bucket"):
        state.decode_memory({"reads_demand": {"demand": [], "bucket": float("inf")}})


# ---- files that are not state files ------------------------------------------------------------

def test_a_state_file_nested_too_deeply_is_moved_aside_with_one_warning(tmp_path, messages):
    path = tmp_path / "s.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    held = state.StateFile.claim(str(path))
    assert held.load(NOW) == {}
    held.release()
    assert [m for m in messages if "unreadable" in m] == [
        f"State file {path} unreadable (nested too deeply); starting fresh, "
        f"the old file kept as {path}.corrupt-20261128T120000Z"]


@pytest.mark.parametrize("text, why", [
    ('{"version": 3}', "no 'targets' list"),
    ('{"version": 3, "targets": {"table": "orders"}}', "'targets' is an object, not a list"),
])
def test_a_file_without_a_targets_list_says_so(tmp_path, messages, text, why):
    path = tmp_path / "s.json"
    path.write_text(text)
    assert state.read(str(path)) == {}
    assert any(f"unreadable ({why}); starting fresh" in m for m in messages), messages


def test_a_file_corrupted_under_a_running_process_is_replaced_by_what_it_remembers(tmp_path, messages):
    path = tmp_path / "s.json"
    held = state.StateFile.claim(str(path))
    assert held.save({(EAST, Target("orders")): record(1)}, NOW)
    path.write_text("{not json")
    assert held.save({(EAST, Target("orders")): record(2)}, NOW)
    held.release()
    [line] = [m for m in messages if "unreadable" in m]
    assert "saving the memory this process holds in its place, the old file kept as" in line
    assert "starting fresh" not in line
    assert state.read(str(path)) == {(EAST, Target("orders")): record(2)}


def test_every_directory_created_for_the_state_file_is_0700(tmp_path):
    old = os.umask(0o022)  # the mode must not depend on the umask the tests run under
    try:
        held = state.StateFile.claim(str(tmp_path / "c" / "new" / "deeper" / "st.json"))
        held.release()
    finally:
        os.umask(old)
    for d in ("c", "c/new", "c/new/deeper"):
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o700, d


def test_every_field_of_a_memory_has_its_reader():
    # a field without one would be dropped on load: lost across every restart
    from dataclasses import fields

    assert set(state._FIELDS) == {f.name for f in fields(Memory)}


def test_a_memory_with_every_field_set_round_trips():
    from dynamic_dynamodb.capacity_mode import Costs, ModeMemory

    t = datetime(2026, 11, 28, 10, 5, tzinfo=timezone.utc)
    history = DemandState(t, (1.5, 2.0, 0.0), 120.0)
    learned = ForecastState(7, tuple(float(i % 5) for i in range(RING)), 8, 3.5, 2, t)
    memory = Memory(read_checks=2, write_checks=1, decrease_day=date(2026, 11, 28), decreases_today=3,
                    last_decrease=t, alarm="low", budget_notified=date(2026, 11, 28), reads_demand=history,
                    writes_demand=history, mode=ModeMemory((t,), t, t, Costs(1.25, 2.5, 0.01)),
                    reads_forecast=learned, writes_forecast=learned, last_reason="demand_down",
                    last_decided="2026-11-28T10:05:00Z", prewarm_until=t)
    assert all(getattr(memory, name) not in (None, 0) for name in state._FIELDS)
    assert state.decode_memory(json.loads(json.dumps(state.encode_memory(memory)))) == memory
