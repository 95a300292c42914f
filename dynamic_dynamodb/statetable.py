"""The state table: leases, daemons and per-target memory in one DynamoDB table (an AWS adapter).

Key schema (both strings): ``pk`` and ``sk``. Items:

- ``pk = "lease"``, ``sk = SHARD``: ``owner``, ``expires_at`` (epoch s), ``token`` (fencing),
  ``decided_at`` (epoch s): one per shard, written only with conditional writes;
- ``pk = "member"``, ``sk = DAEMON-ID``: ``expires_at``: a heartbeat of each live daemon;
- ``pk = "state#SHARD"``, ``sk = REGION|ROLE-ARN|TABLE|INDEX``: ``memory`` (JSON, the state
  file's encoding of one target's memory), ``seen`` (epoch s), ``token``: the lease token of
  its writer. A write carrying an older token than the item's is refused (fencing at the
  resource), so a daemon that lost its lease cannot overwrite the new holder's memory; and
  it needs no transactions, which not every DynamoDB implementation has.

Billing is on-demand. Every answer is read defensively: one that cannot be read is an AwsError.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .edge import LOGGER
from .leases import Lease

log = logging.getLogger(LOGGER)

LEASE, MEMBER = "lease", "member"
StateKey = tuple[str, str, str, str]  # region, role ARN ("" for none), table, index ("" for the table)


class StateTableError(Exception):
    """A call to the state table failed; the message is one line."""


class LeaseLost(StateTableError):
    """A conditional write found the lease held by someone else (or a newer token)."""


def _error(operation: str, error: Exception) -> StateTableError:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return LeaseLost(f"{operation}: lease no longer ours ({code})")
        return StateTableError(f"{operation}: {code}: {info.get('Message', '')}".replace("\n", " "))
    return StateTableError(f"{operation}: {type(error).__name__}: {error}".replace("\n", " "))


def _s(item: Mapping[str, Any], name: str) -> str:
    value = item[name]["S"]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _n(item: Mapping[str, Any], name: str, default: float = 0.0) -> float:
    if name not in item:
        return default
    return float(item[name]["N"])


def state_key(region: str, role_arn: str | None, table: str, index: str | None) -> str:
    """The sort key of one target's memory."""
    return "|".join((region, role_arn or "", table, index or ""))


def parse_state_key(sk: str) -> StateKey:
    """The parts of a state item's sort key."""
    region, role, table, index = sk.split("|", 3)
    return region, role, table, index


class StateTable:
    """The leases, heartbeats and memory of several daemons sharing one config."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    # ---- the table itself -----------------------------------------------------------------

    def ensure(self, create: bool) -> bool:
        """Make sure the table exists (created, on-demand, when absent and `create`); True if created."""
        try:
            self.client.describe_table(TableName=self.name)
            return False
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise _error("DescribeTable", e) from None
        except BotoCoreError as e:
            raise _error("DescribeTable", e) from None
        if not create:
            raise StateTableError("does not exist, and state-table-create is never")
        try:
            self.client.create_table(
                TableName=self.name, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
            self.client.get_waiter("table_exists").wait(TableName=self.name,
                                                        WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceInUseException":  # another daemon won the race
                raise _error("CreateTable", e) from None
        except Exception as e:  # noqa: BLE001 - botocore's waiter errors are not all BotoCoreError
            raise _error("CreateTable", e) from None
        log.info("Created the state table %s (on-demand)", self.name)
        return True

    def _query(self, pk: str) -> list[dict[str, Any]]:
        try:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.name, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}}, ConsistentRead=True)
            return [item for page in pages for item in page.get("Items", [])]
        except (ClientError, BotoCoreError) as e:
            raise _error("Query", e) from None

    # ---- daemons and leases ---------------------------------------------------------------

    def heartbeat(self, me: str, expires_at: float) -> None:
        """Say that daemon `me` lives until `expires_at`."""
        try:
            self.client.put_item(TableName=self.name, Item={
                "pk": {"S": MEMBER}, "sk": {"S": me}, "expires_at": {"N": f"{expires_at:.3f}"}})
        except (ClientError, BotoCoreError) as e:
            raise _error("PutItem", e) from None

    def leave(self, me: str) -> None:
        """Remove daemon `me`'s heartbeat (on the way out)."""
        try:
            self.client.delete_item(TableName=self.name, Key={"pk": {"S": MEMBER}, "sk": {"S": me}})
        except (ClientError, BotoCoreError) as e:
            raise _error("DeleteItem", e) from None

    def members(self, now: float) -> set[str]:
        """The daemons whose heartbeat has not expired."""
        live = set()
        for item in self._query(MEMBER):
            try:
                if _n(item, "expires_at") > now:
                    live.add(_s(item, "sk"))
            except (KeyError, TypeError, ValueError):
                log.warning("State table %s: unreadable member item skipped", self.name)
        return live

    def leases(self) -> dict[int, Lease]:
        """Every lease item, by shard."""
        found: dict[int, Lease] = {}
        for item in self._query(LEASE):
            try:
                shard = int(_s(item, "sk"))
                found[shard] = Lease(shard, _s(item, "owner") if "owner" in item else "", _n(item, "expires_at"),
                                     int(_n(item, "token")), _n(item, "decided_at"))
            except (KeyError, TypeError, ValueError):
                log.warning("State table %s: unreadable lease item skipped", self.name)
        return found

    def take(self, shard: int, me: str, now: float, expires_at: float) -> Lease:
        """Take a free or expired shard (or renew it under a new token); raises LeaseLost if held."""
        try:
            answer = self.client.update_item(
                TableName=self.name, Key={"pk": {"S": LEASE}, "sk": {"S": str(shard)}},
                UpdateExpression="SET #o = :me, expires_at = :exp ADD #t :one",
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner", "#t": "token"},
                ExpressionAttributeValues={":me": {"S": me}, ":exp": {"N": f"{expires_at:.3f}"},
                                           ":now": {"N": f"{now:.3f}"}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW")
            item = answer["Attributes"]
            return Lease(shard, me, _n(item, "expires_at"), int(_n(item, "token")), _n(item, "decided_at"))
        except (ClientError, BotoCoreError) as e:
            raise _error("UpdateItem (take lease)", e) from None
        except (KeyError, TypeError, ValueError) as e:
            raise StateTableError(f"UpdateItem (take lease): unreadable answer ({e})") from None

    def _conditional(self, shard: int, me: str, token: int, update: str, values: Mapping[str, Any],
                     operation: str) -> None:
        try:
            self.client.update_item(
                TableName=self.name, Key={"pk": {"S": LEASE}, "sk": {"S": str(shard)}},
                UpdateExpression=update, ConditionExpression="#o = :me AND #t = :tok",
                ExpressionAttributeNames={"#o": "owner", "#t": "token"},
                ExpressionAttributeValues={":me": {"S": me}, ":tok": {"N": str(token)}, **values})
        except (ClientError, BotoCoreError) as e:
            raise _error(operation, e) from None

    def renew(self, shard: int, me: str, token: int, expires_at: float) -> None:
        """Extend a lease we hold; raises LeaseLost if it was taken over."""
        self._conditional(shard, me, token, "SET expires_at = :exp", {":exp": {"N": f"{expires_at:.3f}"}},
                          "UpdateItem (renew lease)")

    def mark_decided(self, shard: int, me: str, token: int, at: float) -> None:
        """Record that the holder finished a pass over the shard at `at`."""
        self._conditional(shard, me, token, "SET decided_at = :at", {":at": {"N": f"{at:.3f}"}},
                          "UpdateItem (pass done)")

    def release(self, shard: int, me: str, token: int) -> None:
        """Give a lease back at once (it expires now)."""
        self._conditional(shard, me, token, "SET expires_at = :zero", {":zero": {"N": "0"}},
                          "UpdateItem (release lease)")

    def holds(self, shard: int, me: str, token: int, now: float) -> bool:
        """Fencing: a strongly consistent read says whether we still hold the lease with this token."""
        try:
            item = self.client.get_item(TableName=self.name, Key={"pk": {"S": LEASE}, "sk": {"S": str(shard)}},
                                        ConsistentRead=True).get("Item")
            return (item is not None and _s(item, "owner") == me and int(_n(item, "token")) == token
                    and _n(item, "expires_at") > now)
        except (ClientError, BotoCoreError) as e:
            raise _error("GetItem (lease)", e) from None
        except (KeyError, TypeError, ValueError):
            return False

    # ---- memory ---------------------------------------------------------------------------

    def load(self, shard: int) -> dict[str, tuple[dict[str, Any], float]]:
        """The memory items of a shard: sort key -> (encoded memory, when last seen)."""
        found: dict[str, tuple[dict[str, Any], float]] = {}
        for item in self._query(f"state#{shard}"):
            try:
                found[_s(item, "sk")] = (json.loads(_s(item, "memory")), _n(item, "seen"))
            except (KeyError, TypeError, ValueError, RecursionError):  # RecursionError: nested too deeply
                log.warning("State table %s: unreadable memory item in shard %d skipped", self.name, shard)
        return found

    def save(self, shard: int, me: str, token: int, now: float, puts: Mapping[str, dict[str, Any]]) -> None:
        """Write memory items of a shard, fenced: each item keeps the lease token of its writer, and a
        write with an older token than the item's (a daemon that lost the lease) is refused."""
        for sk, memory in sorted(puts.items()):
            try:
                self.client.put_item(
                    TableName=self.name,
                    Item={"pk": {"S": f"state#{shard}"}, "sk": {"S": sk}, "token": {"N": str(token)},
                          "memory": {"S": json.dumps(memory, sort_keys=True, allow_nan=False)},
                          "seen": {"N": f"{now:.0f}"}},
                    ConditionExpression="attribute_not_exists(sk) OR #t <= :tok",
                    ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":tok": {"N": str(token)}})
            except (ClientError, BotoCoreError) as e:
                raise _error("PutItem (state)", e) from None
