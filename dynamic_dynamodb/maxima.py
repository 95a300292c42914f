"""DynamoDB's capacity maxima (DescribeLimits) applied to one table's decisions: pure.

DynamoDB refuses an UpdateTable that would take a table or one of its GSIs above the table
maximum, or the account's provisioned total above the account maximum. An increase is held
to what is left, so that the update is sent and accepted instead of refused every pass.
Only increases are touched: a value is never lowered below its current capacity or its min,
and never raised. The account maximum is checked against the table's own total (the table
and its GSIs): the other tables of the account are not described here, and an update that
still goes over is refused by DynamoDB and reported.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .model import Capacity, CapacityLimits, Dim, Target
from .policy import Decision, DimDecision


def clamp(decisions: list[Decision], limits: CapacityLimits,
          floors: Mapping[Target, Capacity]) -> tuple[list[Decision], list[str]]:
    """The decisions of one table, increases held to the maxima, and one warning per value held."""
    held = list(decisions)
    notes: list[str] = []
    for dim in Dim:
        table_max, account_max = _of(limits.table, dim), _of(limits.account, dim)
        dims = [_dim(d, dim) for d in held]
        lowest = [_lowest(x, _of(floors.get(d.target, Capacity(1, 1)), dim)) for d, x in zip(held, dims, strict=True)]
        allowed = [x.new if x.new <= x.current else max(low, min(x.new, table_max))
                   for x, low in zip(dims, lowest, strict=True)]
        why = ["table" if a < x.new else "" for a, x in zip(allowed, dims, strict=True)]
        spare = account_max - sum(allowed)
        if spare < 0:
            # give the account's room to the increases in order: the table first, then its GSIs
            room = account_max - sum(low if x.new > x.current else a
                                     for x, low, a in zip(dims, lowest, allowed, strict=True))
            for i, (x, low) in enumerate(zip(dims, lowest, strict=True)):
                if x.new > x.current:
                    grant = max(low, low + min(allowed[i] - low, max(0, room)))
                    room -= grant - low
                    if grant < allowed[i]:
                        allowed[i], why[i] = grant, "account"
        for i, (d, x) in enumerate(zip(held, dims, strict=True)):
            if allowed[i] == x.new:
                continue
            maximum = table_max if why[i] == "table" else account_max
            reason = f"{x.reason}, held to the {why[i]} maximum {maximum}"
            new = x._replace(new=allowed[i], reason=reason)
            held[i] = replace(d, reads=new) if dim is Dim.READS else replace(d, writes=new)
            notes.append(f"{d.target}: {dim.value} increase to {x.new} held at {allowed[i]}: "
                         f"DynamoDB's {why[i]} maximum is {maximum} {_unit(dim)}")
    return held, notes


def _of(capacity: Capacity, dim: Dim) -> int:
    return capacity.reads if dim is Dim.READS else capacity.writes


def _dim(d: Decision, dim: Dim) -> DimDecision:
    return d.reads if dim is Dim.READS else d.writes


def _lowest(x: DimDecision, floor: int) -> int:
    """How low a held increase may go: never below the current capacity or the min."""
    return min(x.new, max(x.current, floor))


def _unit(dim: Dim) -> str:
    return "read capacity units" if dim is Dim.READS else "write capacity units"
