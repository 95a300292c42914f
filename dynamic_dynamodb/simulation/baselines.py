"""Reference policies replayed on the same world model: yardsticks for the config, not our policy."""
from __future__ import annotations

import math
from collections.abc import Callable

from ..model import Capacity, LimitExceeded
from .trace import Trace
from .world import LAG, World

# A baseline sees the world at the start of a minute and returns the capacity it wants, or None.
Policy = Callable[[World], tuple[int, int] | None]


def replay(trace: Trace, policy: Policy, initial: tuple[int, int] | None = None) -> World:
    """Run a baseline over the whole trace, one decision per minute."""
    world = World(trace, initial)
    while not world.done:
        want = policy(world)
        if want is not None:
            _apply(world, (max(1, int(want[0])), max(1, int(want[1]))))
        world.serve()
    return world


def _apply(world: World, want: tuple[int, int]) -> None:
    if want == (world.reads, world.writes):
        return
    try:
        world.update(*want)
    except LimitExceeded:
        # as the daemon does: retry once with only the increases
        current = Capacity(world.reads, world.writes)
        keep = Capacity(*want).increases_only(current)
        if keep != current:
            world.update(keep.reads, keep.writes)


def fixed_peak(trace: Trace) -> Policy:
    """The trace's peak provisioned all the time (no autoscaling)."""
    peak = (max(1, math.ceil(max(trace.reads))), max(1, math.ceil(max(trace.writes))))
    return lambda world: peak


def target_tracking(target: float = 70.0, out_points: int = 2, in_points: int = 15,
                    in_margin: float = 20.0) -> Policy:
    """AWS Application Auto Scaling target tracking, emulated as SCORING.md describes.

    Raise to ceil(consumed / target) after `out_points` consecutive 1-minute datapoints above
    the target, lower to the same after `in_points` consecutive ones below target - margin; no cooldowns.
    """
    low = target - in_margin
    above = [0, 0]  # consecutive visible datapoints above the target, per dimension
    below = [0, 0]  # consecutive visible datapoints below the low mark
    seen = [0]  # visible datapoints already counted into the streaks
    ratio = target / 100.0

    def track(i: int, served: list[float], provisioned: list[int], current: int, start: int, visible: int) -> int:
        """One dimension: its streaks moved over the newly visible minutes, and the capacity it wants."""
        up, down = above[i], below[i]
        for k in range(start, visible):
            util = served[k] / 60.0 / provisioned[k] * 100.0
            up = up + 1 if util > target else 0
            down = down + 1 if util < low else 0
        above[i], below[i] = up, down
        if visible < out_points:
            return current
        new = max(1, math.ceil(served[visible - 1] / 60.0 / ratio))
        if (up >= out_points and new > current) or (down >= in_points and new < current):
            return new
        return current

    def policy(world: World) -> tuple[int, int] | None:
        visible = max(0, world.minute - LAG + 1)
        start, seen[0] = seen[0], visible
        return (track(0, world.served_reads, world.provisioned_reads, world.reads, start, visible),
                track(1, world.served_writes, world.provisioned_writes, world.writes, start, visible))

    return policy


def baseline_policies(trace: Trace, aws_target: float = 70.0) -> dict[str, Policy]:
    """The baselines a simulation report compares the config with, by name."""
    return {f"aws-target-{aws_target:g}": target_tracking(aws_target), "fixed-peak": fixed_peak(trace)}
