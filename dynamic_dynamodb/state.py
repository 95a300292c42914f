"""The state file: per-target memory (check counters, our decreases, alarms) across restarts.

Each entry records the region and IAM role of its target (the same table name in two
regions or accounts never shares a memory), the table's incarnation (a table deleted and
recreated under the same name starts afresh) and when a run last saw it (entries unseen
for EXPIRY are dropped). Version 1 files (no region) and version 2 files (no incarnation,
no last-seen time) are still read.

One process at a time owns a state file: `StateFile.claim` takes an exclusive flock on
``FILE.lock`` (a file of its own, because the state file is replaced by rename on every
save) for the life of the process. Saving re-reads the file and keeps every entry the run
does not own; writes go to a temporary file in the same directory, fsync, rename, fsync
the directory.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .capacity_mode import Costs, ModeMemory
from .demand import HISTORY_MINUTES, DemandState
from .edge import LOGGER
from .forecast import RING, UNKNOWN, ForecastState
from .model import Target
from .policy import Memory

log = logging.getLogger(LOGGER)
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
EXPIRY = timedelta(days=7)  # an entry no run has seen for this long is dropped
DIRECTORY_MODE = 0o700  # the directory this program creates for its state
ROOT_STATE_DIR = "/var/lib/dynamic-dynamodb"
# (region, role ARN) of a group of targets; (None, None): not recorded (a version 1 file)
PlacementKey = tuple[str | None, str | None]
UNPLACED: PlacementKey = (None, None)
# one entry of the file: where, and which table or GSI
EntryKey = tuple[PlacementKey, Target]


class StateError(Exception):
    """The state file cannot be used; one line, `status` the exit status (1 busy, 2 unusable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Record:
    """One entry of the state file."""

    memory: Memory
    incarnation: str | None = None  # the table's TableId (or creation time) the memory belongs to
    last_seen: datetime | None = None  # when a run last decided on it; None: not recorded yet


# ---- where ------------------------------------------------------------------------------


def default_path(instance: str, euid: int | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Where an instance keeps its state unless --state-file says otherwise.

    systemd's ``StateDirectory=`` (``$STATE_DIRECTORY``) first, then /var/lib/dynamic-dynamodb
    as root, else ``$XDG_STATE_HOME/dynamic-dynamodb`` (``~/.local/state/dynamic-dynamodb``).
    """
    env = os.environ if environ is None else environ
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        base = systemd
    elif (os.geteuid() if euid is None else euid) == 0:
        base = ROOT_STATE_DIR
    else:
        xdg = env.get("XDG_STATE_HOME", "")
        # the XDG spec: a relative value is invalid and ignored
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(xdg if os.path.isabs(xdg) else os.path.join(home, ".local", "state"),
                            "dynamic-dynamodb")
    return os.path.join(base, f"{instance}.state.json")


def lock_path(path: str) -> str:
    """The lock file of a state file."""
    return path + ".lock"


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def _is_temp_of(path: str, name: str) -> bool:
    """Is `name` (in the state file's directory) a temporary file of this state file?"""
    # mkstemp adds 8 characters of [a-z0-9_]: exact, so another state file's temporaries never match
    return re.fullmatch(re.escape(_temp_prefix(path)) + r"[a-z0-9_]{8}", name) is not None


# ---- encoding ---------------------------------------------------------------------------


def _encode(memory: Memory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Memory):
        value = getattr(memory, f.name)
        if isinstance(value, ModeMemory):
            value = _encode_mode(value)
        elif isinstance(value, DemandState):
            value = {"last_minute": value.last_minute.isoformat() if value.last_minute else None,
                     "demand": list(value.demand), "bucket": value.bucket}
        elif isinstance(value, ForecastState):
            value = _encode_forecast(value)
        elif isinstance(value, (date, datetime)):
            value = value.isoformat()
        out[f.name] = value
    return out


def _decode(raw: Any) -> Memory:
    """A memory from its encoding, every value checked; ValueError naming the field that is not possible."""
    values: dict[str, Any] = {}
    for key, value in _object(raw, "memory").items():
        decoder = _FIELDS.get(key)
        # null is the default; so is an empty date, time, history or mode (what older versions wrote)
        if decoder is not None and value is not None and (value or key not in _EMPTY_IS_DEFAULT):
            values[key] = decoder(value, key)
    return Memory(**values)


def _alarm(value: Any, where: str) -> str:
    if value not in ALARMS:
        raise ValueError(f"{where}: {value!r}, not one of {', '.join(ALARMS)}")
    return value


# the largest number a memory may hold: units per second (or units, or dollars) far past any table's
MAX_AMOUNT = 1e15
MAX_COUNT = 10**9  # consecutive checks, decreases in a day
MAX_SLOT = 10**8  # half hours since 1970: the year 7675
MAX_TEXT = 10_000  # characters of a reason, a time, a name
ALARMS = ("high", "low")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), repr(value))


def _count(value: Any, where: str, most: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise ValueError(f"{where}: {_short(value)}, not a whole number in 0..{most}")
    return value


def _amount(value: Any, where: str) -> float:
    """A finite number in 0..MAX_AMOUNT (never NaN or infinite: 1e400 reads as infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_AMOUNT:
        raise ValueError(f"{where}: {_short(value)}, not a number in 0..{MAX_AMOUNT:g}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else _kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"{where}: {_short(value)}, not a string of at most {MAX_TEXT} characters")
    return value


def _day(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(_text(value, where))
    except ValueError:
        raise ValueError(f"{where}: {_short(value)}, not a date (YYYY-MM-DD)") from None


def _time(value: Any, where: str) -> datetime:
    """An ISO-8601 time; one without an offset is UTC (this program writes UTC times)."""
    text = _text(value, where)
    if text.endswith(("Z", "z")):  # read on every Python: fromisoformat takes a Z only from 3.11 on
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: {_short(value)}, not an ISO-8601 time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _maybe_time(value: Any, where: str) -> datetime | None:
    return _time(value, where) if value else None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {_kind(value)}, not an object")
    return value


def _list(value: Any, where: str, most: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > most:
        raise ValueError(f"{where}: {_kind(value)}" + (f" of {len(value)} items" if isinstance(value, list) else "")
                         + f", not a list of at most {most} items")
    return value


def _decode_demand(raw: Any, where: str) -> DemandState:
    d = _object(raw, where)
    # a longer history than the policy keeps (another version's): its newest minutes
    demand = _list(d.get("demand", []), f"{where}.demand", MAX_HISTORY)[-HISTORY_MINUTES:]
    return DemandState(_maybe_time(d.get("last_minute"), f"{where}.last_minute"),
                       tuple(_amount(x, f"{where}.demand") for x in demand),
                       _amount(d.get("bucket", 0.0), f"{where}.bucket"))


MAX_HISTORY = 100_000  # items of a list in a memory (the forecast's ring has RING)


def _encode_forecast(f: ForecastState) -> dict[str, Any]:
    """Half-hour means rounded to 0.01 unit/s: about 1,400 short numbers a dimension."""
    return {"newest_slot": f.newest_slot, "slots": [round(v, 2) for v in f.slots], "open_slot": f.open_slot,
            "open_sum": f.open_sum, "open_minutes": f.open_minutes,
            "last_minute": f.last_minute.isoformat() if f.last_minute else None}


def _decode_forecast(raw: Any, where: str) -> ForecastState:
    d = _object(raw, where)
    slots = _list(d.get("slots", []), f"{where}.slots", MAX_HISTORY)
    if len(slots) != RING:  # kept with another slot layout: learn afresh
        return ForecastState()

    def slot(value: Any, name: str) -> int | None:
        return None if value is None else _count(value, f"{where}.{name}", MAX_SLOT)
    return ForecastState(slot(d.get("newest_slot"), "newest_slot"),
                         tuple(UNKNOWN if x == UNKNOWN else _amount(x, f"{where}.slots") for x in slots),
                         slot(d.get("open_slot"), "open_slot"),
                         _amount(d.get("open_sum", 0.0), f"{where}.open_sum"),
                         _count(d.get("open_minutes", 0), f"{where}.open_minutes"),
                         _maybe_time(d.get("last_minute"), f"{where}.last_minute"))


def _encode_mode(mode: ModeMemory) -> dict[str, Any]:
    return {"switches_to_on_demand": [t.isoformat() for t in mode.switches_to_on_demand],
            "last_switch": mode.last_switch.isoformat() if mode.last_switch else None,
            "history_read": mode.history_read.isoformat() if mode.history_read else None,
            "costs": None if mode.costs is None else [mode.costs.provisioned, mode.costs.on_demand,
                                                      mode.costs.throttled_share]}


def _decode_mode(raw: Any, where: str) -> ModeMemory:
    d = _object(raw, where)
    switches = _list(d.get("switches_to_on_demand", []), f"{where}.switches_to_on_demand", MAX_HISTORY)
    costs = None
    if d.get("costs"):
        values = _list(d["costs"], f"{where}.costs", 3)
        if len(values) != 3:
            raise ValueError(f"{where}.costs: {len(values)} numbers, not 3")
        costs = Costs(*(_amount(x, f"{where}.costs") for x in values))
        if costs.throttled_share > 1:
            raise ValueError(f"{where}.costs: a throttled share of {costs.throttled_share:g}, not in 0..1")
    return ModeMemory(tuple(_time(t, f"{where}.switches_to_on_demand") for t in switches),
                      _maybe_time(d.get("last_switch"), f"{where}.last_switch"),
                      _maybe_time(d.get("history_read"), f"{where}.history_read"), costs)


# how each field of a Memory is read back (a field missing here would be lost across a restart:
# tests/test_state.py checks that every field has its reader)
_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "read_checks": _count, "write_checks": _count, "decreases_today": _count,
    "decrease_day": _day, "budget_notified": _day, "last_decrease": _time, "prewarm_until": _time,
    "alarm": _alarm, "last_reason": _text, "last_decided": _text,
    "reads_demand": _decode_demand, "writes_demand": _decode_demand, "mode": _decode_mode,
    "reads_forecast": _decode_forecast, "writes_forecast": _decode_forecast,
}
_EMPTY_IS_DEFAULT = frozenset({"decrease_day", "budget_notified", "last_decrease", "prewarm_until", "reads_demand",
                               "writes_demand", "mode", "reads_forecast", "writes_forecast"})


def encode_memory(memory: Memory) -> dict[str, Any]:
    """One target's memory as JSON-ready values (the state file's and the state table's encoding);
    a field holding a NaN or an infinite number is left out with a warning."""
    return _finite_encoding(memory, "State table")


def _finite_encoding(memory: Memory, who: str) -> dict[str, Any]:
    """The encoding of a memory without the fields that hold a number JSON cannot hold."""
    out = _encode(memory)
    try:
        json.dumps(out, allow_nan=False)
        return out
    except ValueError:
        pass
    for f in fields(Memory):
        try:
            json.dumps(out[f.name], allow_nan=False)
        except ValueError:
            if (who, f.name) not in _UNSAVABLE:  # said once: the process keeps the value, each save meets it
                _UNSAVABLE.add((who, f.name))
                log.warning("%s: %s holds a number that is not finite (NaN or infinite); saved without it, "
                            "so a restart begins it afresh", who, f.name)
            out[f.name] = f.default
    return out


_UNSAVABLE: set[tuple[str, str]] = set()  # (where, field) said to hold a number JSON cannot hold


def decode_memory(raw: Any) -> Memory:
    """The inverse of encode_memory, every value checked (finite, in range, of its type);
    ValueError naming the field when the memory is not one this program could have written."""
    return _decode(raw)


def parse(data: Any, dropped: list[tuple[str, str]] | None = None) -> dict[EntryKey, Record]:
    """The entries of a decoded state file; ValueError when it is not one. An entry with values
    this program could not have written (an infinite number, a negative count, a wrong type) is
    left out, and (what it is, why) appended to `dropped`: the other entries keep their memory."""
    if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"unknown version {data.get('version') if isinstance(data, dict) else None!r}")
    entries = data.get("targets")
    if not isinstance(entries, list):
        raise ValueError("no 'targets' list" if entries is None else f"'targets' is {_kind(entries)}, not a list")
    records: dict[EntryKey, Record] = {}
    for n, e in enumerate(entries, 1):
        try:
            key, record = _entry(e)
        except ValueError as problem:
            if dropped is not None:
                dropped.append((_entry_name(e, n), str(problem)))
            continue
        records[key] = record
    return records


def _entry(e: Any) -> tuple[EntryKey, Record]:
    e = _object(e, "entry")

    def name(key: str) -> str | None:
        value = e.get(key)
        return None if value is None else _text(value, key)
    table = e.get("table")
    if not isinstance(table, str) or not table or len(table) > MAX_TEXT:
        raise ValueError(f"table: {_short(table)}, not a table name")
    if "memory" not in e:
        raise ValueError("no memory")
    return ((name("region"), name("role_arn")), Target(table, name("index"))), Record(
        _decode(e["memory"]), name("incarnation"), _maybe_time(e.get("last_seen"), "last_seen"))


def _entry_name(e: Any, n: int) -> str:
    """How a warning names an entry: its target and placement, else its place in the file."""
    if not isinstance(e, dict) or not isinstance(e.get("table"), str):
        return f"entry {n}"
    target = str(Target(e["table"], e["index"] if isinstance(e.get("index"), str) else None))
    where = ", ".join(str(e[k]) for k in ("region", "role_arn") if isinstance(e.get(k), str))
    return f"{target} ({where})" if where else target


def render(records: Mapping[EntryKey, Record], finite: bool = False, path: str = "") -> dict[str, Any]:
    """The JSON document of some entries (those with nothing to remember are left out). With
    `finite`, a field holding a NaN or an infinite number is left out of its entry with a warning
    (JSON has no such numbers, and the reader would drop the whole entry)."""
    targets = []
    for ((region, role), t), r in sorted(records.items(), key=lambda kv: (kv[0][0][0] or "", kv[0][0][1] or "",
                                                                         str(kv[0][1]))):
        if r.memory == Memory():
            continue
        entry: dict[str, Any] = {"table": t.table, "index": t.index}
        if region is not None:
            entry["region"] = region
        if role is not None:
            entry["role_arn"] = role
        if r.incarnation is not None:
            entry["incarnation"] = r.incarnation
        if r.last_seen is not None:
            entry["last_seen"] = r.last_seen.isoformat()
        entry["memory"] = _finite_encoding(r.memory, f"State file {path}: {_entry_name(entry, 0)}") \
            if finite else _encode(r.memory)
        targets.append(entry)
    return {"version": VERSION, "targets": targets}


def fresh(records: Mapping[EntryKey, Record], now: datetime | None) -> dict[EntryKey, Record]:
    """The entries seen within EXPIRY of `now` (an entry never stamped counts as seen now)."""
    if now is None:
        return dict(records)
    return {k: r for k, r in records.items() if r.last_seen is None or now - r.last_seen <= EXPIRY}


def placed(records: Mapping[EntryKey, Record]) -> dict[PlacementKey, dict[Target, Memory]]:
    """The memories of some entries, by placement."""
    out: dict[PlacementKey, dict[Target, Memory]] = {}
    for (where, target), r in records.items():
        out.setdefault(where, {})[target] = r.memory
    return out


# ---- reading and writing ----------------------------------------------------------------


def read(path: str, now: datetime | None = None, move_corrupt: bool = False,
         say_missing: bool = True, instead: str = "starting fresh",
         said: set[tuple[str, str]] | None = None) -> dict[EntryKey, Record]:
    """The unexpired entries of a state file; a missing file is empty; a corrupt one is empty
    with a warning (`instead`: what the caller does about it), and moved aside to
    FILE.corrupt-TIMESTAMP when `move_corrupt`. An entry with impossible values is left out with
    a warning naming it (once per process for the entries in `said`, which collects them)."""
    try:
        raw = _read_regular(path)
    except FileNotFoundError:
        if say_missing:  # the first run of an instance: normal, so not a warning
            log.info("State file %s not found; starting fresh", path)
        return {}
    except OSError as e:
        log.warning("State file %s unreadable (%s); %s", path, e.strerror or e, instead)
        return {}
    dropped: list[tuple[str, str]] = []
    try:
        records = parse(json.loads(raw.decode("utf-8")), dropped)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else e
        aside = _move_aside(path, now) if move_corrupt else None
        log.warning("State file %s unreadable (%s); %s%s", path, why, instead,
                    f", the old file kept as {aside}" if aside else "")
        return {}
    for name, problem in dropped:
        if said is None or (name, problem) not in said:
            log.warning("State file %s: the entry of %s dropped, its memory starts fresh: %s", path, name, problem)
        if said is not None:
            said.add((name, problem))
    return fresh(records, now)


def _read_regular(path: str) -> bytes:
    """The bytes of a regular file (a FIFO or device as a state file must not hang the run)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            return fh.read()
    finally:
        if fd >= 0:
            os.close(fd)


def _move_aside(path: str, now: datetime | None) -> str | None:
    stamp = (now or datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    aside = f"{path}.corrupt-{stamp}"
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = f"{path}.corrupt-{stamp}-{n}"
    try:
        os.rename(path, aside)
    except OSError as e:
        log.warning("Cannot move the unreadable state file %s aside: %s", path, e.strerror or e)
        return None
    return aside


def write(path: str, records: Mapping[EntryKey, Record]) -> None:
    """Replace the state file atomically (a crash leaves the old file or the new one, never
    half): temporary file in the same directory, fsync, rename, fsync the directory.
    Raises OSError; the temporary file is gone either way."""
    directory = os.path.dirname(os.path.abspath(path))
    try:  # never NaN or Infinity, which are not JSON: the next run could not read the file
        data = json.dumps(render(records), indent=1, allow_nan=False).encode("utf-8")
    except ValueError:
        data = json.dumps(render(records, finite=True, path=path), indent=1, allow_nan=False).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is done
    finally:
        os.close(fd)


class StateFile:
    """A state file held by this process: locked until `release` (or the process ends)."""

    def __init__(self, path: str, lock_fd: int) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._failing = False  # a failed save is said once, not every pass
        self._said: set[tuple[str, str]] = set()  # entries dropped with a warning, until the next write

    @classmethod
    def claim(cls, path: str) -> StateFile:
        """Lock the state file for this process; StateError when it cannot be used (2) or
        another process holds it (1). Removes temporary files a killed process left."""
        path = os.path.abspath(path)
        directory = os.path.dirname(path)
        try:
            _make_directories(directory)
        except OSError as e:
            raise StateError(f"state directory {directory}: cannot create it: {e.strerror or e} "
                             "(--state-file or $STATE_DIRECTORY names another)", 2) from None
        try:
            mode: int | None = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as e:
            raise StateError(f"state file {path}: {e.strerror or e}", 2) from None
        if mode is not None and stat.S_ISDIR(mode):
            raise StateError(f"--state-file {path}: is a directory", 2)
        if mode is not None and not stat.S_ISREG(mode):
            raise StateError(f"--state-file {path}: not a regular file", 2)
        if mode is not None and not os.access(path, os.R_OK):
            # starting fresh would replace a file nobody could read: say so instead
            raise StateError(f"state file {path}: not readable", 2)
        lock = lock_path(path)
        try:
            # never through a symbolic link: the directory may be a shared one given by --state-file
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            raise StateError(f"state directory {directory}: cannot create the lock file {lock}: "
                             f"{e.strerror or e}", 2) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateError(f"state file {path} is in use by another process (pid {holder or '?'}, "
                                 f"lock {lock}); one process per state file: give each its own "
                                 f"--instance or --state-file", 1) from None
            raise StateError(f"state file {path}: cannot lock {lock}: {e.strerror or e}", 2) from None
        try:  # the holder's pid, for the message of a second process
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError:
            pass  # a full disk: the lock holds all the same
        held = cls(path, fd)
        held._check_writable(directory)
        held._remove_stale_temporaries(directory)
        return held

    def _check_writable(self, directory: str) -> None:
        if not os.access(directory, os.W_OK | os.X_OK):
            self.release()
            raise StateError(f"state directory {directory}: not writable", 2)

    def _remove_stale_temporaries(self, directory: str) -> None:
        """Temporary files of this state file: a process killed mid-write (SIGKILL) left them;
        under the lock no other process can be writing one."""
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            if _is_temp_of(self.path, name):
                try:
                    os.unlink(os.path.join(directory, name))
                    log.info("Removed %s, left by an interrupted write of the state file",
                             os.path.join(directory, name))
                except OSError:
                    pass

    def load(self, now: datetime | None = None) -> dict[EntryKey, Record]:
        """The unexpired entries; a corrupt file is moved aside with a warning."""
        return read(self.path, now, move_corrupt=True, said=self._said)

    def save(self, owned: Mapping[EntryKey, Record | None], now: datetime) -> bool:
        """Write the run's own entries (None: remove it) over what the file holds now, keeping
        every other entry; drop the expired ones. False (warned once) when it cannot."""
        if not self._still_locked():
            return False
        # corrupted under the running process: what it remembers itself is saved all the same
        records = read(self.path, now, move_corrupt=True, say_missing=False, said=self._said,
                       instead="saving the memory this process holds in its place")
        for key, record in owned.items():
            if record is None or record.memory == Memory():
                records.pop(key, None)
            else:
                records[key] = record
        records = {k: (r if r.last_seen is not None else Record(r.memory, r.incarnation, now))
                   for k, r in fresh(records, now).items()}
        try:
            write(self.path, records)
        except OSError as e:
            if not self._failing:
                log.warning("Cannot write state file %s: %s (said once; the memory is kept in the process "
                            "and saved when it can be)", self.path, e.strerror or e)
            self._failing = True
            return False
        self._said.clear()  # the entries dropped are gone from the file: a new bad one is said again
        if self._failing:
            log.info("State file %s written again", self.path)
            self._failing = False
        return True

    def _still_locked(self) -> bool:
        """True when the lock file on disk is still the one locked here, made again (and locked)
        if somebody removed it; False (an error each pass) when another process locked a new one."""
        fd = self._lock_fd
        if fd is None:
            return False
        lock = lock_path(self.path)
        held = os.fstat(fd)
        try:
            on_disk = os.stat(lock, follow_symlinks=False)
            if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return True  # cannot tell (a directory gone unreadable): the save itself will say more
        # removed, or replaced: lock the file now at that name, as a second process would
        try:
            new = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            return True  # nor could another process lock it (the directory is gone, say): the save says why
        try:
            fcntl.flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(new)
            os.close(new)
            log.error("State file %s: its lock file %s was replaced and another process holds it (pid %s): "
                      "this process no longer saves it; stop one of them (one process per state file)",
                      self.path, lock, holder or "?")
            return False
        try:
            os.ftruncate(new, 0)
            os.write(new, f"{os.getpid()}\n".encode("ascii"))
        except OSError:
            pass
        os.close(fd)
        self._lock_fd = new
        log.warning("State file %s: its lock file %s was removed while this process held it; locked again",
                    self.path, lock)
        return True

    def release(self) -> None:
        """Give up the lock (the lock file stays: removing it would race with a new holder)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _make_directories(directory: str) -> None:
    """Create a directory and its missing parents, each mode 0700 (os.makedirs gives the
    parents the umask's mode)."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIRECTORY_MODE)
        except FileExistsError:
            if not os.path.isdir(d):
                raise



def _read_holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


# ---- one-shot helpers (tests, tools): no lock ---------------------------------------------


def load_placed(path: str) -> dict[PlacementKey, dict[Target, Memory]]:
    """The saved memory by (region, role ARN); a missing or corrupt file starts fresh."""
    return placed(read(path))


def load(path: str) -> dict[Target, Memory]:
    """The saved memory of a one-placement run (what load_placed files under (None, None))."""
    return load_placed(path).get(UNPLACED, {})


def save(path: str, memory: dict[Target, Memory]) -> None:
    """Write one memory without region or role (see save_placed)."""
    save_placed(path, {UNPLACED: memory})


def save_placed(path: str, memory: Mapping[PlacementKey, Mapping[Target, Memory]]) -> None:
    """Write the memory of every placement atomically; a failure is a warning."""
    try:
        write(path, {(where, t): Record(m) for where, targets in memory.items() for t, m in targets.items()})
    except OSError as e:
        log.warning("Cannot write state file %s: %s", path, e.strerror or e)
