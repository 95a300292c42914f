"""In-memory fakes of the ports and the clock, shared by the unit tests."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


class ManualClock:
    """A monotonic clock and a sleep that only move when told: run_forever without sleeping.

    `wait(seconds)` advances the clock by the time asked for, or stops early when `stop` is set.
    """

    def __init__(self, stop: threading.Event, start: datetime = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)):
        self.stop = stop
        self.t = 0.0
        self.start = start
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        if not self.stop.is_set():
            self.t += seconds
        return self.stop.is_set()

    def kwargs(self) -> dict:
        """The clock arguments of run_forever."""
        return {"monotonic": self.monotonic, "wall": self.wall, "wait": self.wait}
