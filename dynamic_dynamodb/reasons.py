"""The closed set of reasons a decision can give, for counting and for machines to read.

Every dimension of every decision carries one code; so does every hold of a guard and
every target skipped before a decision could be made. The readable detail (thresholds,
percentages, the time of the next decrease) stays in the text next to the code.

The order of the members is their importance: when a decision names one code for both
dimensions, a change wins over a hold, a hold over a steady state (see `most_important`).
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Reason(str, Enum):
    """Why a dimension, a target or a pass ended as it did."""

    # ---- a target skipped before any decision (no capacity was looked at)
    NOT_FOUND = "not_found"  # the table no longer exists
    AWS_ERROR = "aws_error"  # DescribeTable failed
    ON_DEMAND = "on_demand"  # PAY_PER_REQUEST: nothing to scale
    NOT_ACTIVE = "not_active"  # the table or GSI is not ACTIVE
    GSI_BUSY = "gsi_busy"  # the GSI's table is not ACTIVE, so DynamoDB refuses its updates
    NO_CAPACITY = "no_capacity"  # DescribeTable reports 0 units: no percentage can be computed
    METRICS_UNAVAILABLE = "metrics_unavailable"  # CloudWatch could not be read this pass
    MODE_SWITCHED = "mode_switched"  # capacity-mode switched the table's billing mode this pass

    # ---- the load asked for a change
    THROTTLED = "throttled"  # throttling asked for an increase
    HIGH_LOAD = "high_load"  # consumption at or above the upper threshold, or a granular up step
    DEMAND_UP = "demand_up"  # the demand policy sized an increase
    FORECAST_UP = "forecast_up"  # the forecast policy raised ahead of a recurring rise
    LOW_LOAD = "low_load"  # consumption at or below the lower threshold, or a granular down step
    DEMAND_DOWN = "demand_down"  # the demand policy found a lasting drop
    BELOW_MIN = "below_min"  # the current capacity is below min-provisioned: raised to it
    ABOVE_MAX = "above_max"  # the current capacity is above max-provisioned: lowered to it

    # ---- a guard held a change back
    BREAKER_OPEN = "breaker_open"  # the circuit breaker is open: no changes at all
    WAITING_FOR_PARTNER = "waiting_for_partner"  # always-decrease-rw-together: the other dimension does not decrease
    OUTSIDE_WINDOW = "outside_window"  # decreases wait for a maintenance window
    BUDGET_SPENT = "budget_spent"  # DynamoDB's decreases for now are used up
    DECREASE_TIMED = "decrease_timed"  # an hourly decrease waits minutes for a deeper one that saves more

    # ---- the load asked for no change
    AT_MAX = "at_max"  # an increase was limited to max-provisioned
    AT_MIN = "at_min"  # a decrease was limited to min-provisioned
    CHECKS_PENDING = "checks_pending"  # a decrease waits for more consecutive checks
    THROTTLED_NO_DECREASE = "throttled_no_decrease"  # low load, but throttled: no decrease
    ZERO_PERCENT = "zero_percent"  # consumed 0 % and allow-scaling-down-on-0-percent is off
    DECREASE_TOO_SMALL = "decrease_too_small"  # low load, but the step removes nothing
    FORECAST_HOLD = "forecast_hold"  # a drop, but a recurring rise is expected soon: no decrease
    BURST_CARRIED = "burst_carried"  # one minute above the line, left to burst credit (demand policy)
    WITHIN_BAND = "within_band"  # the load needs no change
    UP_DISABLED = "up_disabled"  # an increase is wanted but up-scaling is off (demand policy)
    DOWN_DISABLED = "down_disabled"  # a decrease is wanted but down-scaling is off
    DISABLED = "disabled"  # enable-*-autoscaling is off
    NO_NEW_DATA = "no_new_data"  # the demand policy saw no minute it had not seen before
    NO_DATA = "no_data"  # CloudWatch returned no datapoint in the lookback window

    # ---- pre-warm: warm throughput, not a capacity change (prewarm.py; never a decision's dimension)
    PRE_WARMED = "pre_warmed"  # the warm throughput was raised ahead of a known peak
    PRE_WARM_REFUSED = "pre_warm_refused"  # DynamoDB refused the pre-warm: not asked again for that peak
    PRE_WARM_DONE = "pre_warm_done"  # already asked once for this peak
    WARM_ENOUGH = "warm_enough"  # the warm throughput already covers the peak
    WARM_UPDATING = "warm_updating"  # a raise of the warm throughput is still in progress
    WARM_UNKNOWN = "warm_unknown"  # the endpoint reports no warm throughput: nothing is sent
    NO_PEAK = "no_peak"  # no known peak ahead

    def __str__(self) -> str:
        return self.value


SKIPS = frozenset({Reason.NOT_FOUND, Reason.AWS_ERROR, Reason.ON_DEMAND, Reason.NOT_ACTIVE, Reason.GSI_BUSY,
                   Reason.NO_CAPACITY, Reason.METRICS_UNAVAILABLE, Reason.MODE_SWITCHED})
HOLDS = frozenset({Reason.BREAKER_OPEN, Reason.WAITING_FOR_PARTNER, Reason.OUTSIDE_WINDOW, Reason.BUDGET_SPENT,
                   Reason.DECREASE_TIMED})
PRE_WARM = frozenset({Reason.PRE_WARMED, Reason.PRE_WARM_REFUSED, Reason.PRE_WARM_DONE, Reason.WARM_ENOUGH,
                      Reason.WARM_UPDATING, Reason.WARM_UNKNOWN, Reason.NO_PEAK})

_RANK = {reason: rank for rank, reason in enumerate(Reason)}


def most_important(codes: Iterable[Reason]) -> Reason:
    """The code that says most about an outcome: the first in the enum's order."""
    return min(codes, key=_RANK.__getitem__)
