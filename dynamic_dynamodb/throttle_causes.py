"""Throttles by cause: which ones more provisioned capacity cures, and what to say about the others.

Pure. DynamoDB publishes, beside `ReadThrottleEvents`/`WriteThrottleEvents`, the same events
split by cause. Only provisioned-throughput throttles argue for more capacity; a hot key
range is not cured by it (raising capacity would waste money and hide the problem), and an
account limit is the account's, not the table's. Where no cause metric has a datapoint
(older history, other DynamoDB implementations) every throttle counts, as before.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import (
    ACCOUNT_LIMIT_THROTTLES,
    KEY_RANGE_THROTTLES,
    MAX_ON_DEMAND_THROTTLES,
    PROVISIONED_THROTTLES,
    THROTTLE_CAUSE_METRIC,
    THROTTLE_CAUSES,
    Datapoints,
    Dim,
    Target,
)

REPORT_EVERY = timedelta(hours=1)  # a cause is reported at most this often per table or GSI
CAUSE_WORDS = {PROVISIONED_THROTTLES: "provisioned throughput", KEY_RANGE_THROTTLES: "key range",
               ACCOUNT_LIMIT_THROTTLES: "account limit", MAX_ON_DEMAND_THROTTLES: "on-demand maximum"}
# metric name -> (dimension, cause)
CAUSE_OF_METRIC = {metric: (dim, cause) for dim, causes in THROTTLE_CAUSE_METRIC.items()
                   for cause, metric in causes.items()}


def capacity_throttles(total: Datapoints, by_cause: Mapping[str, Datapoints]) -> Datapoints:
    """The throttles more capacity would cure: the provisioned-throughput ones when causes are known, else all."""
    if any(by_cause.values()):
        return list(by_cause.get(PROVISIONED_THROTTLES, ()))
    return total


@dataclass(frozen=True)
class CauseSplit:
    """Throttle events of a window by cause, for one dimension."""

    dim: Dim
    events: Mapping[str, float]

    @property
    def total(self) -> float:
        """All events whose cause is known."""
        return sum(self.events.values())

    def share(self, cause: str) -> float:
        """The share (0..1) of the events with this cause."""
        return self.events.get(cause, 0.0) / self.total if self.total else 0.0

    def describe(self) -> str:
        """'80% key range, 20% provisioned throughput' (causes with events only, largest first)."""
        shares = sorted(((self.share(c), c) for c in THROTTLE_CAUSES if self.events.get(c)), reverse=True)
        return ", ".join(f"{s * 100:.0f}% {CAUSE_WORDS[c]}" for s, c in shares)


def split(dim: Dim, by_cause: Mapping[str, Datapoints]) -> CauseSplit | None:
    """The window's events by cause; None when no cause metric has a datapoint."""
    if not any(by_cause.values()):
        return None
    return CauseSplit(dim, {cause: sum(v for _, v in by_cause.get(cause, ())) for cause in THROTTLE_CAUSES})


@dataclass(frozen=True)
class CauseNote:
    """A throttling cause to report: `kind` is 'key-range' or 'account-limit'."""

    kind: str
    subject: str
    message: str


def notes(target: Target, splits: Mapping[Dim, CauseSplit | None]) -> list[CauseNote]:
    """What to report about the throttles capacity does not cure (none when there are none)."""
    out: list[CauseNote] = []
    known = [s for s in splits.values() if s is not None and s.total > 0]
    what = f"GSI {target.index} of table {target.table}" if target.index else f"table {target.table}"
    hot = [s for s in known if s.events.get(KEY_RANGE_THROTTLES)]
    if hot:
        detail = "; ".join(f"{s.dim.value}: {s.events[KEY_RANGE_THROTTLES]:g} of {s.total:g} throttle events "
                           f"on a hot key range ({s.describe()})" for s in hot)
        out.append(CauseNote(
            "key-range", f"Key-range throttling on {what}",
            f"{target}: {detail}. More capacity does not cure a hot key range and is not added for it; "
            f"find the hot keys with CloudWatch Contributor Insights for DynamoDB "
            f"(aws dynamodb update-contributor-insights --table-name {target.table}"
            + (f" --index-name {target.index}" if target.index else "")
            + " --contributor-insights-action ENABLE)"))
    limited = [s for s in known if s.events.get(ACCOUNT_LIMIT_THROTTLES)]
    if limited:
        detail = "; ".join(f"{s.dim.value}: {s.events[ACCOUNT_LIMIT_THROTTLES]:g} of {s.total:g} throttle events "
                           f"at the account limit ({s.describe()})" for s in limited)
        out.append(CauseNote("account-limit", f"Account-limit throttling on {what}",
                             f"{target}: {detail}. The account's throughput quota for the region is reached; "
                             "raise it with Service Quotas"))
    return out


def due(last: datetime | None, now: datetime) -> bool:
    """True when a cause last reported at `last` may be reported again at `now`."""
    return last is None or now - last >= REPORT_EVERY
