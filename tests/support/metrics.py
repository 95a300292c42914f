"""Create provisioned tables and feed the CloudWatch metrics the daemon reads.

moto emits no DynamoDB metrics, so tests put them: one datapoint per minute, on whole
minutes, for ``ConsumedReadCapacityUnits``, ``ConsumedWriteCapacityUnits``,
``ReadThrottleEvents`` and ``WriteThrottleEvents``; the Sum of a minute is
``units per second x 60`` as in CloudWatch.  Table-level series carry the dimension
``TableName`` only, GSI series ``TableName`` + ``GlobalSecondaryIndexName``.  Read them
back with GetMetricData, or through the rules proxy (which answers GetMetricStatistics
through GetMetricData): moto's own GetMetricStatistics adds GSI series into the table's.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

NAMESPACE = "AWS/DynamoDB"
CONSUMED_READ = "ConsumedReadCapacityUnits"
CONSUMED_WRITE = "ConsumedWriteCapacityUnits"
READ_THROTTLES = "ReadThrottleEvents"
WRITE_THROTTLES = "WriteThrottleEvents"


def create_table(ddb, name: str, read: int = 5, write: int = 5,
                 gsis: Mapping[str, tuple[int, int]] | Iterable[str] | None = None,
                 on_demand: bool = False) -> dict:
    """Create a table with hash key ``pk`` and GSIs ``{name: (read, write)}`` (hash key
    ``gk_<name>``); returns the TableDescription.  moto makes it ACTIVE at once."""
    if gsis is not None and not isinstance(gsis, Mapping):
        gsis = {g: (read, write) for g in gsis}
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    kwargs: dict = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": attrs,
    }
    if on_demand:
        kwargs["BillingMode"] = "PAY_PER_REQUEST"
    else:
        kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": read, "WriteCapacityUnits": write}
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = []
        for index, (r, w) in gsis.items():
            key = f"gk_{index}"
            attrs.append({"AttributeName": key, "AttributeType": "S"})
            gsi = {"IndexName": index,
                   "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                   "Projection": {"ProjectionType": "KEYS_ONLY"}}
            if not on_demand:
                gsi["ProvisionedThroughput"] = {"ReadCapacityUnits": r, "WriteCapacityUnits": w}
            kwargs["GlobalSecondaryIndexes"].append(gsi)
    return ddb.create_table(**kwargs)["TableDescription"]


def provisioned(ddb, table: str, index: str | None = None) -> tuple[int, int]:
    """Current (read, write) units of a table or GSI."""
    desc = ddb.describe_table(TableName=table)["Table"]
    if index is None:
        pt = desc["ProvisionedThroughput"]
    else:
        pt = next(g for g in desc.get("GlobalSecondaryIndexes", [])
                  if g["IndexName"] == index)["ProvisionedThroughput"]
    return pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]


def minute_floor(when: dt.datetime | None = None) -> dt.datetime:
    when = when or dt.datetime.now(dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)


def dimensions(table: str, index: str | None = None) -> list[dict]:
    dims = [{"Name": "TableName", "Value": table}]
    if index is not None:
        dims.append({"Name": "GlobalSecondaryIndexName", "Value": index})
    return dims


def put_metric_minutes(cw, metric: str, table: str, per_minute: float | Iterable[float],
                       index: str | None = None, minutes: int = 30,
                       end: dt.datetime | None = None, unit: str = "Count") -> list[dt.datetime]:
    """Put one datapoint per whole minute for ``minutes`` minutes ending at the minute
    before ``end`` (default now): timestamps end-minutes ... end-1min.  ``per_minute`` is
    the Sum of each minute (a number, or one value per minute, oldest first)."""
    end_minute = minute_floor(end)
    stamps = [end_minute - dt.timedelta(minutes=k) for k in range(minutes, 0, -1)]
    values = ([float(per_minute)] * minutes if isinstance(per_minute, (int, float))
              else [float(v) for v in per_minute])
    if len(values) != len(stamps):
        raise ValueError(f"{len(values)} values for {len(stamps)} minutes")
    data = [{"MetricName": metric, "Dimensions": dimensions(table, index), "Timestamp": ts,
             "Value": v, "Unit": unit} for ts, v in zip(stamps, values, strict=True)]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 500])
    return stamps


def put_consumption(cw, table: str, index: str | None = None, *,
                    read_per_second: float | None = None, write_per_second: float | None = None,
                    read_throttles_per_minute: float | None = None,
                    write_throttles_per_minute: float | None = None,
                    minutes: int = 30, end: dt.datetime | None = None) -> None:
    """Steady consumption for a table (index=None) or one GSI over the last ``minutes``.

    ``read_per_second``/``write_per_second`` are consumed units per second (the Sum per
    minute is x 60); throttle counts are events per minute.  None = no series at all
    (the daemon then has no data), 0 = a series of zeros.
    """
    series = ((CONSUMED_READ, read_per_second, 60), (CONSUMED_WRITE, write_per_second, 60),
              (READ_THROTTLES, read_throttles_per_minute, 1),
              (WRITE_THROTTLES, write_throttles_per_minute, 1))
    for metric, value, factor in series:
        if value is not None:
            put_metric_minutes(cw, metric, table, value * factor, index=index,
                               minutes=minutes, end=end)


def consumed_percent_to_units_per_second(percent: float, provisioned_units: int) -> float:
    """Units/s that make ``percent`` of ``provisioned_units`` consumed."""
    return provisioned_units * percent / 100.0


def get_sum(cw, metric: str, table: str, index: str | None = None, *,
            start: dt.datetime, end: dt.datetime, period: int = 300) -> list[tuple[dt.datetime, float]]:
    """Sums per period, read with GetMetricData (exact dimension match), oldest first."""
    res = cw.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                       "Dimensions": dimensions(table, index)},
            "Period": period, "Stat": "Sum"}}],
        StartTime=start, EndTime=end, ScanBy="TimestampAscending")["MetricDataResults"][0]
    return list(zip(res["Timestamps"], res["Values"], strict=True))
