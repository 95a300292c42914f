"""The SNS messages of a decision: pure texts (2.5.1's subjects and bodies), sent by the loop.

Each function answers None when the decision's rules do not ask for that message. The
rules come with the decision, and the alarm levels are the ones the policy computed.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Dim, Target
from .policy import Decision


@dataclass(frozen=True)
class Message:
    """One SNS publish."""

    topic: str
    subject: str
    body: str
    target: Target


def _wanted(d: Decision, kind: str) -> str | None:
    """The topic to publish `kind` messages of this decision to, or None."""
    rules = d.rules
    if rules is None or not rules.sns_topic_arn or kind not in rules.sns_message_types:
        return None
    return rules.sns_topic_arn


def change_message(d: Decision) -> Message | None:
    """After an UpdateTable: what went up and down (scale-up / scale-down)."""
    rules = d.rules
    if rules is None or not rules.sns_topic_arn:
        return None
    kinds = {"scale-up" if x.change == "up" else "scale-down" for x in d.dims() if x.change}
    if not kinds & set(rules.sns_message_types):
        return None
    what = f"GSI {d.target.index}" if d.target.index else f"table {d.target.table}"
    prefix = f"{d.target.table} - GSI: {d.target.index}" if d.target.index else d.target.table
    lines = [f"{prefix} - {x.dim.value.capitalize()}: {x.change.upper()} from {x.current} to {x.new}\n"
             for x in d.dims() if x.change]
    return Message(rules.sns_topic_arn, f"Updated provisioning for {what}", "".join(lines), d.target)


def alarm_message(d: Decision) -> Message | None:
    """A throughput alarm the decision raised (high- or low-throughput-alarm)."""
    if not d.alarm:
        return None
    topic = _wanted(d, f"{d.alarm}-throughput-alarm")
    if topic is None or d.rules is None:
        return None
    label = f"Table {d.target.table}" + (f" - GSI: {d.target.index}" if d.target.index else "")
    subject = f"ALARM: {'High' if d.alarm == 'high' else 'Low'} Throughput for {label}"
    prefix = d.target.table + (f" - GSI: {d.target.index}" if d.target.index else "")
    lines = []
    for x in d.dims():
        if x.alarm != d.alarm or x.consumed_pct is None:
            continue
        r, pct = d.rules.dim(x.dim), x.consumed_pct
        capacity = "Read" if x.dim is Dim.READS else "Write"
        if x.alarm == "high":
            lines.append(f"{prefix} - Consumed {capacity} Capacity {pct:f}% was greater than or equal to "
                         f"the upper alarm threshold {r.upper_alarm_threshold:f}%\n")
        else:
            lines.append(f"{prefix} - Consumed {capacity} Capacity {pct:f}% was below "
                         f"the lower alarm threshold {r.lower_alarm_threshold:f}%\n")
    return Message(topic, subject, "".join(lines), d.target)


def budget_message(d: Decision) -> Message | None:
    """Once per UTC day: decreases wait because DynamoDB's daily allowance is spent (scale-down)."""
    at = d.budget_exhausted
    topic = _wanted(d, "scale-down")
    if at is None or topic is None:
        return None
    return Message(topic, f"Decrease budget spent for {d.target}",
                   f"{d.target}: DynamoDB's decreases for today are used up; the next decrease is possible "
                   f"at {at:%Y-%m-%d %H:%M} UTC. Decreases wait until then; increases go ahead.", d.target)
