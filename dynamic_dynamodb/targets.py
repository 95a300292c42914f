"""The tables and GSIs a pass looks at, as DescribeTable describes them: plain frozen values.

Built and read for every target of every pass, they are among the modules a compiled build
compiles (model.py, which the adapters' errors live in, re-exports them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .frozen import ByFields


@dataclass(frozen=True)
class Target(ByFields):
    """A table, or one global secondary index of a table."""

    table: str
    index: str | None = None

    def __hash__(self) -> int:
        # written out, not generated: the pass hashes targets several times (its metric queries
        # are dict keys), and a compiled build compiles this one, not a generated one
        return hash((self.table, self.index))

    def __str__(self) -> str:
        return self.table if self.index is None else f"{self.table}/{self.index}"


@dataclass(frozen=True)
class Capacity(ByFields):
    """Provisioned read and write units."""

    reads: int
    writes: int

    def increases_only(self, current: Capacity) -> Capacity:
        """This capacity with its decreases from `current` held back: the retry after a refused decrease."""
        return Capacity(max(self.reads, current.reads), max(self.writes, current.writes))


@dataclass(frozen=True)
class WarmThroughput(ByFields):
    """Read and write units per second a table or GSI can serve at once (DescribeTable's WarmThroughput).

    A field DynamoDB did not give (or gave in a form we cannot read) is None: unknown."""

    reads: int | None = None  # ReadUnitsPerSecond
    writes: int | None = None  # WriteUnitsPerSecond
    status: str | None = None  # UPDATING while a raise is in progress, else ACTIVE


@dataclass(frozen=True)
class TargetStatus(ByFields):
    """What DescribeTable says about a table or one of its GSIs."""

    target: Target
    status: str  # ACTIVE, UPDATING, CREATING, ...
    billing_mode: str  # PROVISIONED or PAY_PER_REQUEST
    capacity: Capacity
    decreases_today: int = 0
    last_decrease: datetime | None = None
    last_increase: datetime | None = None
    # which table of that name: TableId, else its creation time (a GSI: its table's); memory
    # of another incarnation (deleted and recreated under the same name) is not this one's
    incarnation: str | None = None
    warm: WarmThroughput | None = None  # None: the endpoint reports none (DynamoDB Local, older moto)

    @property
    def active(self) -> bool:
        """True when DynamoDB would accept an UpdateTable for it."""
        return self.status == "ACTIVE"

    @property
    def on_demand(self) -> bool:
        """True for PAY_PER_REQUEST tables, which have nothing to scale."""
        return self.billing_mode == "PAY_PER_REQUEST"


@dataclass(frozen=True)
class TableDescription(ByFields):
    """One DescribeTable answer: the table and its GSIs."""

    table: TargetStatus
    indexes: tuple[TargetStatus, ...] = ()
