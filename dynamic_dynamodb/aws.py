"""boto3 adapters: the only module that builds AWS clients or sees botocore responses.

Clients honour boto3's own endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB,
AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_SNS, AWS_ENDPOINT_URL_STS) and credential chain;
retries are botocore's `standard` mode, set explicitly. With a role ARN the session's
credentials come from STS AssumeRole and are refreshed by botocore before they expire.

Every call is bounded (CallGuard): its attempts and retries end within CALL_BUDGET seconds, an
endpoint that timed out is not asked again in the same pass, and a call in flight is given up
as soon as the daemon is told to stop.
"""
from __future__ import annotations

import ast
import configparser
import itertools
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import boto3
import botocore.configloader
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    ConnectTimeoutError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from urllib3.exceptions import ReadTimeoutError as BodyReadTimeout

from .edge import LOGGER
from .model import (
    AccessDenied,
    AwsError,
    Capacity,
    CapacityLimits,
    Datapoints,
    LimitExceeded,
    MetricQuery,
    MetricsUnavailable,
    TableBusy,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
    UnreadableAnswer,
    Update,
    WarmThroughput,
)
from .settings import Settings

# What the daemon calls, for the IAM policy in the docs (tests check the docs list them).
REQUIRED_IAM_ACTIONS = (
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTable",
    "dynamodb:DescribeLimits",
    "cloudwatch:GetMetricData",
    "sns:Publish",
)
ROLE_SESSION_NAME = "dynamic-dynamodb"  # how CloudTrail names our AssumeRole sessions

log = logging.getLogger(LOGGER)

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit; moto does not enforce it, we do
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData returns at most this many per call (more: NextToken)
# GetMetricData calls in flight at once: a pass of 10,000 tables (240 calls) is not a queue
# of round trips, and stays well under the API's 50 calls per second per region
METRICS_CONCURRENCY = 4
NAMESPACE = "AWS/DynamoDB"
# seconds; control-plane calls answer in well under a second, a big GetMetricData in a few
CONNECT_TIMEOUT = 5
READ_TIMEOUT = {"default": 10, "cloudwatch": 15}
# seconds one call may take, its retries included: a retry after a timeout is made only when
# it can time out within this too (CloudWatch: two attempts, DynamoDB: three)
CALL_BUDGET = 32.0
WAIT_STEP = 0.1  # seconds between two looks of a waiting call at the stop event
LIMITS_REFRESH = timedelta(hours=1)  # DescribeLimits: the maxima change only when a quota is raised
# GetMetricData's per-series StatusCode for a series CloudWatch could not answer
FAILED_SERIES = ("InternalError", "Forbidden")
# A GetMetricData batch whose answer could not be read (cut, too large for the parser), or that
# CloudWatch refused for its content, is tried again in halves: a smaller batch may well pass.
# Failures every half would share are not split: throttling, permissions, connections, 5xx
# after botocore's retries, and timeouts (an endpoint that does not answer a batch in time
# does not answer its halves either: the pass goes on without these metrics, the next pass
# asks again). A fetch makes at most MAX_SPLIT_CALLS calls in halves, and starts none after
# SPLIT_SECONDS: one bad query in 500 costs about 2 x 9 of them.
SPLIT_ON = ("UnreadableAnswer", "SeriesFailed", "InvalidParameterValue", "InvalidParameterCombination",
            "InvalidParameterValueException", "ValidationError", "MissingParameter", "InvalidNextToken")
MAX_SPLIT_CALLS = 64
SPLIT_SECONDS = 30.0
MAX_ERROR_TEXT = 300  # characters of an unreadable answer's explanation kept in the message

_ERRORS: Mapping[str, type[AwsError]] = {
    "ResourceNotFoundException": TableNotFound,
    "ResourceInUseException": TableBusy,
    "LimitExceededException": LimitExceeded,
    "AccessDeniedException": AccessDenied,
    "AccessDenied": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "AuthorizationError": AccessDenied,
}


def translate(error: Exception) -> AwsError:
    """A botocore exception as one of our AwsError types, with a one-line message."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "")) or "ClientError"
        message = str(info.get("Message", "")) or str(error)
        return _ERRORS.get(code, AwsError)(f"{code}: {message}".replace("\n", " "), code)
    if isinstance(error, BotoCoreError):
        return AwsError(str(error).replace("\n", " "), type(error).__name__)
    return unreadable(error)


def unreadable(error: Exception) -> UnreadableAnswer:
    """An answer botocore or we could not read, as one line. Only the first line of the
    explanation is kept: ResponseParserError appends the raw body, which is not ours to log."""
    lines = str(error).strip().splitlines()
    text = " ".join((lines[0] if lines else "").split())[:MAX_ERROR_TEXT]
    return UnreadableAnswer(f"unreadable answer ({type(error).__name__}: {text})", "UnreadableAnswer")


T = TypeVar("T")


def call(read: Callable[[], T]) -> T:
    """One AWS call and the reading of its answer: every failure is an AwsError.

    botocore raises ClientError and BotoCoreError for errors it understands, but a malformed
    200 answer escapes as ResponseParserError, UnicodeDecodeError, ValueError (a timestamp),
    RuntimeError (a timestamp's offset) or AttributeError (a wrong shape), none of them
    BotoCoreError; reading the fields ourselves adds KeyError and TypeError. Whatever the
    exception, the call failed: it costs this call, never the pass."""
    try:
        return read()
    except AwsError:
        raise
    except (ClientError, BotoCoreError) as e:
        raise translate(e) from None
    except Exception as e:  # noqa: BLE001 - see the docstring
        raise unreadable(e) from None


FALLBACK_REGION = "us-east-1"  # the original's default, when nothing names a region


def default_region(environ: Mapping[str, str] = os.environ, profile: str | None = None) -> tuple[str, str]:
    """The region boto3's chain names when none is configured, and where it came from:
    AWS_REGION (read here: this botocore reads only AWS_DEFAULT_REGION), AWS_DEFAULT_REGION,
    the `region` of the profile (`profile`, else the one the environment names), else
    us-east-1. No client is built."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = environ.get(variable, "").strip()
        if value:
            return value, variable
    try:
        core = botocore.session.Session(profile=profile)
        region = core.get_scoped_config().get("region")
    except (BotoCoreError, ValueError, OSError):
        region = None  # no such profile, an unreadable file: make_session says so later
    if isinstance(region, str) and region.strip():
        # botocore's own answer (AWS_DEFAULT_PROFILE before AWS_PROFILE), not a guess at its order
        return region.strip(), f"profile {core.profile or 'default'}"
    return FALLBACK_REGION, "built-in default"


@dataclass(frozen=True)
class Connection:
    """Where and as whom to connect."""

    region: str
    access_key_id: str | None = None
    secret_access_key: str | None = None
    max_attempts: int = 3  # botocore's standard-mode default
    pool_size: int = 16
    role_arn: str | None = None  # assumed with the credentials above (or the default chain)
    profile: str | None = None  # of the AWS files, instead of the environment's; never with the keys


def connection(settings: Settings, region: str, role_arn: str | None = None) -> Connection:
    """A run's Connection in a region: its keys or profile, and the role assumed there, if any."""
    return Connection(region, settings.aws_access_key_id, settings.aws_secret_access_key, role_arn=role_arn,
                      profile=settings.profile)


_loader_lock = threading.Lock()
_loader: Any = None


def _session(core: botocore.session.Session | None = None, **kwargs: Any) -> boto3.Session:
    """A boto3 session on a botocore session that shares the process's one data loader, so
    sessions (one per region and role) share the parsed service models: about 0.6 MB per
    extra session instead of 10."""
    global _loader
    core = core or botocore.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.Session(botocore_session=core, **kwargs)
        # boto3 appends its data directory to the loader's search path once per session
        _loader.search_paths[:] = dict.fromkeys(_loader.search_paths)
    return session


def make_session(conn: Connection) -> boto3.Session:
    """A boto3 session: explicit keys only when both are given, else the default chain; with a
    role ARN, the credentials of that role, assumed with those. A broken AWS set-up (such as
    AWS_PROFILE naming no profile) raises AwsError."""
    try:
        if conn.access_key_id and conn.secret_access_key:
            source = _session(aws_access_key_id=conn.access_key_id, aws_secret_access_key=conn.secret_access_key,
                              region_name=conn.region)
        else:
            source = _session(profile_name=conn.profile, region_name=conn.region)
        if conn.role_arn is None:
            return source
        return _assume_role_session(source, conn)
    except (BotoCoreError, ValueError) as e:
        raise _setup_error("session", e) from None


def _setup_error(what: str, error: Exception) -> AwsError:
    """A client or session that cannot be built (bad profile, endpoint URL, ...): one line."""
    return AwsError(f"cannot set up the AWS {what}: " + " ".join(str(error).split()), type(error).__name__)


class _SourceCredentials:
    """The caller's credentials, looked up at each AssumeRole (they may rotate themselves)."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session

    def get_frozen_credentials(self) -> Any:
        credentials = self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        return credentials.get_frozen_credentials()


class _RoleProvider(CredentialProvider):
    """A credential provider that always answers with the role's refreshable credentials."""

    METHOD = "assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self.credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self.credentials


def _assume_role_session(source: boto3.Session, conn: Connection) -> boto3.Session:
    """A session whose credentials botocore fetches with sts:AssumeRole on first use and
    refreshes before they expire (RefreshableCredentials' advisory and mandatory windows);
    the STS client is built by make_client in the table's region."""
    def sts_client(service: str, **credentials: Any) -> Any:
        return make_client(source, service, conn, **credentials)

    fetcher = AssumeRoleCredentialFetcher(sts_client, _SourceCredentials(source), conn.role_arn,
                                          extra_args={"RoleSessionName": ROLE_SESSION_NAME})
    credentials = DeferredRefreshableCredentials(fetcher.fetch_credentials, method=_RoleProvider.METHOD)
    # the profile's other settings (endpoints, ...) hold for the role's clients too; its credentials are replaced
    core = botocore.session.Session(profile=conn.profile)
    core.register_component("credential_provider", CredentialResolver([_RoleProvider(credentials)]))
    return _session(core, region_name=conn.region)


def make_client(session: boto3.Session, service: str, conn: Connection, region: str | None = None,
                **credentials: Any) -> Any:
    """The one place clients are built: standard retries, bounded timeouts, a pool for threads.
    `region` overrides the session's (SNS topics live in their own region). A call to an
    endpoint that accepts but never answers ends within CALL_BUDGET seconds, retries included
    (see CallGuard). A client that cannot be built raises AwsError."""
    read_timeout = READ_TIMEOUT.get(service, READ_TIMEOUT["default"])
    config = Config(
        retries={"mode": "standard", "total_max_attempts": conn.max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        max_pool_connections=conn.pool_size,
        user_agent_extra="dynamic-dynamodb",
    )
    try:
        client = session.client(service, config=config, region_name=region, **credentials)
    except (BotoCoreError, ValueError) as e:
        raise _setup_error(f"{service} client", e) from None
    if service == "dynamodb":
        refuse_limit_retries(client)
    CallGuard(CONNECT_TIMEOUT, read_timeout).attach(client)
    return client


class Stopping(AwsError):
    """The call was not sent, or was given up in flight: the daemon is stopping."""


class TimedOutEarlier(AwsError):
    """The call was not sent: a call to the same endpoint timed out earlier in this pass."""


_GUARDS: WeakKeyDictionary[Any, CallGuard] = WeakKeyDictionary()


def begin_pass(client: Any, stop: threading.Event | None) -> None:
    """A pass begins for this client (see CallGuard.begin_pass); a client that make_client did
    not build (a test's fake) has no guard: nothing to do."""
    guard = _GUARDS.get(client)
    if guard is not None:
        guard.begin_pass(stop)


class CallGuard:
    """What keeps one client's calls bounded, through botocore's events.

    - Each attempt is sent from a thread of its own while the calling thread waits: a waiting
      call gives up (Stopping) as soon as the pass's `stop` event is set, so SIGTERM ends a
      daemon within a fraction of a second even while an endpoint hangs; the abandoned attempt
      ends by its own timeout (its thread is a daemon thread, it never holds the exit). An
      attempt not answered in full within the connect and read timeouts together is a read
      timeout, even when the endpoint sends a byte now and then.
    - A retry is made only when it can end within CALL_BUDGET seconds of the call's start
      (botocore's standard mode would make three attempts of a full read timeout each), and
      none once the daemon is stopping.
    - Within a pass (from begin_pass to the next), once a call of this client has failed on a
      timeout, the others are not sent (TimedOutEarlier), nor retried, and those in flight are
      given up: an endpoint that does not answer costs a pass one call's time, not one per
      call. The next pass asks again. Outside a pass (a client nothing begins passes on: STS,
      the state table) only the first two hold.
    """

    def __init__(self, connect_timeout: float, read_timeout: float) -> None:
        self.read_timeout = read_timeout
        self.attempt_limit = connect_timeout + read_timeout
        self.stop: threading.Event | None = None
        self.in_pass = False
        self.timed_out: AwsError | None = None  # the first timeout of this pass
        self.endpoint = ""
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        """Register the guard's handlers on the client's events (each client has its own)."""
        self.endpoint = str(client.meta.endpoint_url)
        # the sending itself: botocore's Endpoint._send calls http_session.send, unless a
        # before-send handler answered (a test's fake answers, moto's in-process mock)
        client._endpoint.http_session = _GuardedSession(client._endpoint.http_session, self)
        events = client.meta.events
        events.register("before-call", self._before_call, unique_id="dynamic-dynamodb-guard-call")
        # at the service's level, first: botocore's own retry handler sits there, and handlers of
        # a more specific event name are asked before those of a shorter one
        service = client.meta.service_model.service_id.hyphenize()
        events.register_first(f"needs-retry.{service}", self._needs_retry, unique_id="dynamic-dynamodb-guard-retry")
        events.register("after-call-error", self._after_error, unique_id="dynamic-dynamodb-guard-error")
        _GUARDS[client] = self

    def begin_pass(self, stop: threading.Event | None) -> None:
        """A new pass: the endpoint is asked again whatever the last pass saw; `stop` gives up
        the calls in flight once it is set."""
        with self._lock:
            self.stop, self.in_pass, self.timed_out = stop, True, None

    def refusal(self) -> AwsError | None:
        """Why no call (or attempt) of this client may be sent now, if there is a reason."""
        if self.stop is not None and self.stop.is_set():
            return Stopping("not sent: stopping", "Stopping")
        timed_out = self.timed_out
        if timed_out is not None:
            return TimedOutEarlier(f"not sent: {self.endpoint} timed out earlier in this pass ({timed_out})",
                                   "TimedOutEarlier")
        return None

    def _before_call(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        refused = self.refusal()
        if refused is not None:
            raise refused
        if context is not None:
            context["dynamic-dynamodb-started"] = time.monotonic()

    def send(self, send: Callable[[Any], Any], request: Any) -> Any:
        """One attempt: `send(request)` in a thread of its own, waited for as the class says."""
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def attempt() -> None:
            try:
                response = send(request)
                response.content  # noqa: B018 - the body too: a stalled body is a timeout like a stalled answer
                outcome["response"] = response
            except BodyReadTimeout:
                outcome["error"] = ReadTimeoutError(endpoint_url=request.url)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread as it is
                outcome["error"] = e
            finally:
                done.set()

        threading.Thread(target=attempt, name="dynamic-dynamodb-aws", daemon=True).start()
        deadline = time.monotonic() + self.attempt_limit
        while not done.wait(WAIT_STEP):
            refused = self.refusal()
            if refused is not None:
                raise refused
            if time.monotonic() > deadline:
                raise ReadTimeoutError(endpoint_url=request.url)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _needs_retry(self, caught_exception: Exception | None = None, request_dict: Any = None,
                     **_: Any) -> bool | None:
        """False (no retry) when the daemon stops, the endpoint timed out in this pass, or a
        timeout would be tried again past CALL_BUDGET; else None: botocore decides."""
        if isinstance(caught_exception, AwsError) or self.refusal() is not None:
            return False
        if isinstance(caught_exception, (ReadTimeoutError, ConnectTimeoutError)):
            context = (request_dict or {}).get("context", {})
            started = context.get("dynamic-dynamodb-started", time.monotonic())
            if time.monotonic() - started + self.read_timeout > CALL_BUDGET:
                return False
        return None

    def _after_error(self, exception: Exception | None = None, **_: Any) -> None:
        if self.in_pass and isinstance(exception, (ReadTimeoutError, ConnectTimeoutError)):
            with self._lock:
                if self.timed_out is None:
                    self.timed_out = translate(exception)


class _GuardedSession:
    """botocore's HTTP session, each send waited for by a CallGuard."""

    def __init__(self, session: Any, guard: CallGuard) -> None:
        self._session, self._guard = session, guard

    def send(self, request: Any) -> Any:
        return self._guard.send(self._session.send, request)

    def __getattr__(self, name: str) -> Any:  # close() and the rest: the session's own
        return getattr(self._session, name)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # in UTC: botocore gives every parsed timestamp its own tzlocal() instance, which
        # kept ~0.6 kB per datapoint alive (40 MB for a 1,000-table pass)
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(_number(value, "a timestamp"), tz=timezone.utc)


def _number(value: Any, what: str) -> float:
    """A JSON number (not a string, a boolean or null), else ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} is {value!r:.40}, not a number")
    return float(value)


def _units(value: Any, what: str) -> int:
    """A count of capacity units or decreases: a whole, finite number >= 0."""
    number = _number(value, what)
    if not math.isfinite(number) or number < 0 or not number.is_integer():
        raise ValueError(f"{what} is {value!r}, not a count")
    return int(number)


def _field(answer: Mapping[str, Any], key: str, kind: type) -> Any:
    """A field every answer of this operation has: a garbage or truncated body reaches us as
    an empty answer (botocore reads what it can), which must not pass for "nothing here"."""
    value = answer.get(key)
    if not isinstance(value, kind):
        raise KeyError(f"the answer has no {key}")
    return value


def _text(value: Any, what: str) -> str:
    """A non-empty string, else ValueError naming the field."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is {value!r:.40}, not a name")
    return value


def _status(target: Target, status: str, billing: str, throughput: Mapping[str, Any]) -> TargetStatus:
    return TargetStatus(
        target=target,
        status=_text(status, f"{target}: the status"),
        billing_mode=_text(billing, f"{target}: the billing mode"),
        capacity=Capacity(_units(throughput.get("ReadCapacityUnits", 0), f"{target}: ReadCapacityUnits"),
                          _units(throughput.get("WriteCapacityUnits", 0), f"{target}: WriteCapacityUnits")),
        decreases_today=_units(throughput.get("NumberOfDecreasesToday", 0) or 0, f"{target}: NumberOfDecreasesToday"),
        last_decrease=_when(throughput.get("LastDecreaseDateTime")),
        last_increase=_when(throughput.get("LastIncreaseDateTime")),
    )


def parse_description(table: Mapping[str, Any]) -> TableDescription:
    """DescribeTable's `Table` as a plain value (fields moto omits get defaults). An answer that
    is not a description (a missing name, a wrong type, a count that is not one) raises."""
    name = _text(table["TableName"], "TableName")
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    main = _status(Target(name), table.get("TableStatus", "ACTIVE"), billing, table.get("ProvisionedThroughput", {}))
    gsis = table.get("GlobalSecondaryIndexes", [])
    indexes = tuple(
        _status(Target(name, _text(gsi["IndexName"], "IndexName")), gsi.get("IndexStatus", "ACTIVE"), billing,
                gsi.get("ProvisionedThroughput", {}))
        for gsi in gsis
    )
    incarnation = table_incarnation(table)
    return TableDescription(
        replace(main, incarnation=incarnation, warm=parse_warm(table.get("WarmThroughput"), name)),
        tuple(replace(i, incarnation=incarnation, warm=parse_warm(gsi.get("WarmThroughput"), str(i.target)))
              for i, gsi in zip(indexes, gsis, strict=True)))


def parse_warm(answer: Any, what: str) -> WarmThroughput | None:
    """A `WarmThroughput` of DescribeTable (the table's or a GSI's); None when there is none.

    Endpoints without warm throughput (DynamoDB Local, dynalite, older ones) leave it out:
    unknown, not an error. A malformed field costs only itself (logged at DEBUG): the rest
    of the answer, and the pass, go on."""
    if answer is None:
        return None
    if not isinstance(answer, Mapping):
        log.debug("%s: WarmThroughput is %r, not a structure; taken as unknown", what, answer)
        return None

    def units(key: str) -> int | None:
        value = answer.get(key)
        if value is None:
            return None
        try:
            return _units(value, f"{what}: WarmThroughput {key}")
        except (TypeError, ValueError) as e:
            log.debug("%s; taken as unknown", e)
            return None

    status = answer.get("Status")
    warm = WarmThroughput(units("ReadUnitsPerSecond"), units("WriteUnitsPerSecond"),
                          status if isinstance(status, str) and status else None)
    return None if warm == WarmThroughput() else warm


def _warm_request(warm: WarmThroughput) -> dict[str, int]:
    """UpdateTable's WarmThroughput: only the fields to raise."""
    fields = {"ReadUnitsPerSecond": warm.reads, "WriteUnitsPerSecond": warm.writes}
    return {key: value for key, value in fields.items() if value is not None}


def table_incarnation(table: Mapping[str, Any]) -> str | None:
    """Which table of its name a DescribeTable answer is about: its TableId, else its creation
    time (moto has no TableId). A GSI shares it: DescribeTable gives a GSI neither an id nor a
    creation time (its IndexArn is made of the two names)."""
    if table.get("TableId"):
        return str(table["TableId"])
    try:
        created = _when(table.get("CreationDateTime"))
    except (TypeError, ValueError, OverflowError, OSError):
        created = None  # an unreadable time: no incarnation, the memory stays the name's
    return f"created {created.isoformat()}" if created else None


class _OverOneClient:
    """An adapter over one client that make_client built: told when a pass begins (see Ports)."""

    client: Any

    def begin_pass(self, stop: threading.Event | None) -> None:
        """A pass begins: see CallGuard.begin_pass."""
        begin_pass(self.client, stop)


class DynamoTables(_OverOneClient):
    """TableAdmin over a boto3 DynamoDB client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def list_tables(self) -> list[str]:
        """Every table name, following the pages."""
        def read() -> list[str]:
            pages = self.client.get_paginator("list_tables").paginate()
            return [_text(name, "a table name") for page in pages for name in _field(page, "TableNames", list)]
        return call(read)

    def describe(self, table: str) -> TableDescription:
        """DescribeTable."""
        def read() -> TableDescription:
            desc = parse_description(self.client.describe_table(TableName=table)["Table"])
            if desc.table.target.table != table:
                raise ValueError(f"the answer describes {desc.table.target.table!r:.40}")
            return desc
        return call(read)

    def update(self, update: Update) -> None:
        """One UpdateTable for the table and its GSIs."""
        kwargs: dict[str, Any] = {"TableName": update.table}
        if update.table_capacity is not None:
            kwargs["ProvisionedThroughput"] = _throughput(update.table_capacity)
        if update.index_capacities:
            kwargs["GlobalSecondaryIndexUpdates"] = [
                {"Update": {"IndexName": name, "ProvisionedThroughput": _throughput(cap)}}
                for name, cap in sorted(update.index_capacities.items())
            ]
        if update.table_warm is not None:
            kwargs["WarmThroughput"] = _warm_request(update.table_warm)
        if update.index_warm:
            kwargs.setdefault("GlobalSecondaryIndexUpdates", []).extend(
                {"Update": {"IndexName": name, "WarmThroughput": _warm_request(warm)}}
                for name, warm in sorted(update.index_warm.items()))
        if update.billing_mode is not None:
            kwargs["BillingMode"] = update.billing_mode
            limits = dict(zip(("MaxReadRequestUnits", "MaxWriteRequestUnits"), update.on_demand_max or (),
                              strict=False))
            if any(v is not None for v in limits.values()):
                kwargs["OnDemandThroughput"] = {k: v for k, v in limits.items() if v is not None}
        call(lambda: _field(self.client.update_table(**kwargs), "TableDescription", dict))


def refuse_limit_retries(client: Any) -> None:
    """Make botocore leave a LimitExceededException of UpdateTable alone: standard mode counts
    it as throttling and sends the refused update twice more, though DynamoDB's answer cannot
    change within seconds (a spent decrease budget, too many table operations, a maximum).
    The first non-None answer to `needs-retry` decides, and ours is asked first. (botocore's
    retry quota is still charged for the retry it would have made, 5 of its 500 tokens,
    given back by later successful calls of the client.)"""
    def no_retry(response: Any = None, **_: Any) -> bool | None:
        if response is not None and response[1].get("Error", {}).get("Code") == "LimitExceededException":
            return False
        return None

    client.meta.events.register_first("needs-retry.dynamodb.UpdateTable", no_retry,
                                      unique_id="dynamic-dynamodb-no-limit-retry")


class DynamoLimits(_OverOneClient):
    """LimitsSource over DescribeLimits, asked at most once per `refresh` per client."""

    def __init__(self, client: Any, refresh: timedelta = LIMITS_REFRESH) -> None:
        self.client = client
        self.refresh = refresh
        self._limits: CapacityLimits | None = None
        self._read_at: datetime | None = None
        self._failed_at: datetime | None = None
        self._unsupported = False  # the endpoint answered that it has no such operation

    def current(self, now: datetime) -> CapacityLimits | None:
        """The cached maxima, read again once `refresh` has passed; None (with one warning) when
        DescribeLimits fails: no clamp this pass (the pass's tables share its `now`), another
        try next pass."""
        if self._read_at is not None and now - self._read_at < self.refresh:
            return self._limits
        if self._failed_at == now or self._unsupported:
            return None
        try:
            self._limits = call(lambda: parse_limits(self.client.describe_limits()))
        except AwsError as e:
            self._failed_at = now
            if e.code == "UnknownOperationException":  # dynalite, say: it will not learn the call later
                self._unsupported = True
                log.info("%s does not implement DescribeLimits: increases are not held to DynamoDB's maxima",
                         self.client.meta.endpoint_url)
                return None
            log.warning("DescribeLimits failed, increases are not held to DynamoDB's maxima this pass: %s", e)
            return None
        self._read_at = now
        return self._limits


def parse_limits(answer: Mapping[str, Any]) -> CapacityLimits:
    """DescribeLimits' four maxima; a missing or impossible one raises."""
    def units(key: str) -> int:
        value = _units(answer[key], key)
        if value < 1:
            raise ValueError(f"{key} is {value}")
        return value

    return CapacityLimits(Capacity(units("TableMaxReadCapacityUnits"), units("TableMaxWriteCapacityUnits")),
                          Capacity(units("AccountMaxReadCapacityUnits"), units("AccountMaxWriteCapacityUnits")))


def _throughput(cap: Capacity) -> dict[str, int]:
    return {"ReadCapacityUnits": cap.reads, "WriteCapacityUnits": cap.writes}


def _dimensions(target: Target) -> list[dict[str, str]]:
    dims = [{"Name": "TableName", "Value": target.table}]
    if target.index is not None:
        dims.append({"Name": "GlobalSecondaryIndexName", "Value": target.index})
    return dims


class CloudWatchMetrics(_OverOneClient):
    """MetricsSource over GetMetricData: all series of a pass in as few calls as the API allows."""

    def __init__(self, client: Any, batch_size: int = MAX_QUERIES_PER_CALL,
                 concurrency: int = METRICS_CONCURRENCY) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, MAX_QUERIES_PER_CALL))
        self.concurrency = max(1, concurrency)
        self.calls = 0
        self._lock = threading.Lock()

    def fetch(self, queries: Sequence[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        """Sums per bucket for every query, oldest first; no data gives an empty list.

        One call per window and `batch_size` queries (pages followed), a few in flight at once.
        A call that fails is tried again as two halves, down to single queries, so one bad
        answer costs only the queries whose own calls fail: those raise MetricsUnavailable
        (with every other result), or the last error when no query could be read."""
        result: dict[MetricQuery, Datapoints] = {q: [] for q in queries}
        failed: dict[MetricQuery, AwsError] = {}
        by_window: dict[tuple[datetime, datetime], list[MetricQuery]] = defaultdict(list)
        for q in dict.fromkeys(queries):
            by_window[(q.start, q.end)].append(q)
        batches = [(start, end, batch) for (start, end), group in by_window.items()
                   for batch in _chunks(group, self.batch_size)]
        budget = _SplitBudget(MAX_SPLIT_CALLS, time.monotonic() + SPLIT_SECONDS)
        if len(batches) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
                outcomes = list(pool.map(lambda b: self._fetch_halving(b[0], b[1], b[2], budget), batches))
        else:
            outcomes = [self._fetch_halving(*b, budget) for b in batches]
        for found, errors in outcomes:
            result.update(found)
            failed.update(errors)
        if failed:
            for q in failed:
                result.pop(q, None)
            if not result:
                raise next(iter(failed.values()))
            first = next(iter(failed.values()))
            raise MetricsUnavailable(f"{len(failed)} of {len(failed) + len(result)} series unreadable: {first}",
                                     failed, result)
        return result

    def _fetch_halving(self, start: datetime, end: datetime, batch: list[MetricQuery], budget: _SplitBudget
                       ) -> tuple[dict[MetricQuery, Datapoints], dict[MetricQuery, AwsError]]:
        """One batch; when its call fails, each half on its own (2 x log2(batch) more calls per
        bad query). Returns what was read and the error of every query that was not."""
        try:
            return self._fetch_batch(start, end, batch), {}
        except SeriesFailed as e:
            # CloudWatch answered but could not compute some series: the rest is good
            return e.found, dict.fromkeys(e.queries, e.error)
        except AwsError as e:
            if len(batch) == 1 or e.code not in SPLIT_ON or not budget.take(2):
                return {}, dict.fromkeys(batch, e)
            log.debug("GetMetricData for %d series failed (%s); trying each half", len(batch), e)
            half = len(batch) // 2
            found, failed = self._fetch_halving(start, end, batch[:half], budget)
            more, more_failed = self._fetch_halving(start, end, batch[half:], budget)
            return {**found, **more}, {**failed, **more_failed}

    def fetch_history(self, queries: Sequence[MetricQuery], stat: str = "Sum",
                      max_datapoints: int = MAX_DATAPOINTS_PER_CALL) -> dict[MetricQuery, Datapoints]:
        """Long series, such as a backtest's days of 1-minute datapoints: `stat` per bucket, oldest first.

        Each call asks for at most `batch_size` queries and `max_datapoints` datapoints: the queries of a
        window are batched and the window split in time (on bucket boundaries) as needed; the pages of
        every call are followed (NextToken). No data gives an empty list."""
        groups: dict[tuple[datetime, datetime, int], list[MetricQuery]] = defaultdict(list)
        for q in dict.fromkeys(queries):
            groups[(q.start, q.end, q.period)].append(q)
        calls = [(t0, t1, group[lo:hi])
                 for (start, end, period), group in groups.items()
                 for lo, hi, t0, t1 in plan_history_calls(len(group), start, end, period, self.batch_size,
                                                          max_datapoints)]
        merged: dict[MetricQuery, dict[datetime, float]] = defaultdict(dict)

        def one(call: tuple[datetime, datetime, list[MetricQuery]]) -> dict[MetricQuery, Datapoints]:
            return self._fetch_batch(*call, stat=stat)

        if len(calls) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls))) as pool:
                found_all = list(pool.map(one, calls))
        else:
            found_all = [one(call) for call in calls]
        for found in found_all:
            for q, points in found.items():
                merged[q].update(points)
        return {q: sorted(merged[q].items()) for q in queries}

    def _fetch_batch(self, start: datetime, end: datetime, batch: list[MetricQuery],
                     stat: str = "Sum") -> dict[MetricQuery, Datapoints]:
        ids = {f"q{i}": q for i, q in enumerate(batch)}
        request = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": q.metric, "Dimensions": _dimensions(q.target)},
                    "Period": q.period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for qid, q in ids.items()
        ]
        found: dict[MetricQuery, dict[datetime, float]] = defaultdict(dict)
        bad: dict[MetricQuery, str] = {}

        def read() -> None:
            pages = self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
            for page in pages:
                with self._lock:
                    self.calls += 1
                for series in _field(page, "MetricDataResults", list):
                    q = ids.get(series.get("Id"))
                    if q is None:
                        continue
                    if series.get("StatusCode") in FAILED_SERIES:
                        bad[q] = f"{series['StatusCode']}: {_messages(series)}"
                        continue
                    found[q].update(_valid(q, series.get("Timestamps", []), series.get("Values", [])))

        call(read)
        points: dict[MetricQuery, Datapoints] = {q: sorted(found[q].items()) for q in batch if q not in bad}
        if bad:
            reason = next(iter(bad.values()))
            raise SeriesFailed(AwsError(f"GetMetricData: {reason}"[:MAX_ERROR_TEXT], "SeriesFailed"), list(bad), points)
        return points


class _SplitBudget:
    """How many calls in halves one fetch may still make, and until when (shared by its threads)."""

    def __init__(self, calls: int, until: float = math.inf) -> None:
        self.left = calls
        self.until = until  # time.monotonic()
        self._lock = threading.Lock()

    def take(self, calls: int) -> bool:
        with self._lock:
            if self.left < calls or time.monotonic() > self.until:
                return False
            self.left -= calls
            return True


class SeriesFailed(AwsError):
    """GetMetricData answered, but with an error status for some series: `found` has the others."""

    def __init__(self, error: AwsError, queries: list[MetricQuery], found: dict[MetricQuery, Datapoints]) -> None:
        super().__init__(str(error), error.code)
        self.error, self.queries, self.found = error, queries, found


def _messages(series: Mapping[str, Any]) -> str:
    texts = [m.get("Value", "") for m in series.get("Messages") or [] if isinstance(m, Mapping)]
    return " ".join(" ".join(str(t) for t in texts).split()) or "no message"


def _valid(q: MetricQuery, stamps: Sequence[Any], values: Sequence[Any]) -> list[tuple[datetime, float]]:
    """Datapoints that can be capacity: a negative or non-finite Sum is dropped with a warning.
    A series that is not one (timestamps or values that are not numbers, lists of different
    lengths) raises: the answer is unreadable."""
    if not isinstance(stamps, list) or not isinstance(values, list) or len(stamps) != len(values):
        raise ValueError(f"{q.target}: {q.metric} has {_count(stamps)} timestamps and {_count(values)} values")
    good = []
    for stamp, value in zip(stamps, values, strict=True):
        when = _when(stamp)
        if when is None:
            raise TypeError(f"{q.target}: a {q.metric} datapoint has no timestamp")
        number = _number(value, f"{q.target}: a {q.metric} datapoint")
        if math.isfinite(number) and number >= 0:
            good.append((when, number))
        else:
            log.warning("%s: ignoring %s datapoint %r at %s", q.target, q.metric, value, stamp)
    return good


def _count(items: Any) -> Any:
    return len(items) if isinstance(items, list) else repr(items)[:20]


def plan_history_calls(count: int, start: datetime, end: datetime, period: int, max_queries: int,
                       max_datapoints: int) -> list[tuple[int, int, datetime, datetime]]:
    """GetMetricData calls for `count` queries over [start, end) in buckets of `period` s:
    (first query, end query, call start, call end), each call at most `max_queries` queries and
    `max_datapoints` datapoints; call windows start on bucket boundaries, so buckets stay anchored."""
    buckets = max(1, -(-int((end - start).total_seconds()) // period))
    per_call = max(1, min(max_queries, count, max_datapoints // buckets))  # queries per call
    span = max(1, min(buckets, max_datapoints // per_call))  # buckets per call
    calls = []
    for lo in range(0, count, per_call):
        for first in range(0, buckets, span):
            t0 = start + timedelta(seconds=first * period)
            t1 = min(end, start + timedelta(seconds=(first + span) * period))
            calls.append((lo, min(count, lo + per_call), t0, t1))
    return calls


def _chunks(items: list, size: int):
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


class SnsNotifier:
    """Notifier over SNS Publish. SNS accepts a topic only in its own region: given
    `client_for_region`, a topic of another region is published with a client of that region."""

    def __init__(self, client: Any, client_for_region: Callable[[str], Any] | None = None) -> None:
        self.client = client
        self.client_for_region = client_for_region
        self._regional: dict[str, Any] = {}

    def begin_pass(self, stop: threading.Event | None) -> None:
        """A pass begins for the client and those of other regions: see CallGuard.begin_pass."""
        for client in (self.client, *self._regional.values()):
            begin_pass(client, stop)

    def _client(self, topic_arn: str) -> Any:
        parts = topic_arn.split(":")
        region = parts[3] if len(parts) > 3 else ""
        if self.client_for_region is None or not region or region == self.client.meta.region_name:
            return self.client
        if region not in self._regional:
            self._regional[region] = self.client_for_region(region)
        return self._regional[region]

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        """Publish one message (SNS subjects are limited to 100 characters)."""
        # the answer's only field is the MessageId, which we do not use: an answer botocore
        # cannot read is an error, one it reads is enough
        call(lambda: self._client(topic_arn).publish(TopicArn=topic_arn, Subject=subject[:100], Message=message))


def _parse_error(error: BaseException | None) -> str:
    """Where and what configparser found wrong in an AWS file, as the end of one line."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f", line {error.lineno}: expected a [profile] header first, got {error.line.strip()!r}"
    if isinstance(error, configparser.ParsingError) and error.errors:
        lineno, line = error.errors[0]  # configparser keeps the line's repr
        try:
            line = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            pass
        return f", line {lineno}: expected name = value, got {str(line).strip()!r}"
    if isinstance(error, configparser.DuplicateSectionError):
        return f", line {error.lineno}: expected each [{error.section}] once, got it twice"
    if isinstance(error, configparser.DuplicateOptionError):
        return f", line {error.lineno}: expected {error.option} once in [{error.section}], got it twice"
    return f": cannot be parsed ({type(error).__name__ if error is not None else 'not an INI file'})"


def profile_problem(given: tuple[str, str] | None = None) -> str | None:
    """One line when the AWS config file or credentials file cannot be parsed, or when the
    profile in use is in neither (botocore's ConfigParseError, ProfileNotFound: no session or
    client can be built), else None. The profile in use: `given` (its name, and where it was
    given, for the message), else the one AWS_DEFAULT_PROFILE or AWS_PROFILE names.
    Reads those two files only: no client, no network call."""
    core = botocore.session.Session(profile=None if given is None else given[0])
    files = {kind: os.path.expanduser(os.path.expandvars(str(core.get_config_variable(f"{kind}_file"))))
             for kind in ("config", "credentials")}
    for kind, path in files.items():
        if not os.path.isfile(path):
            continue  # neither file is needed: keys, roles and SSO work without them
        try:
            botocore.configloader.raw_config_parse(path)
        except ConfigParseError as e:
            return f"AWS {kind} file {path}{_parse_error(e.__context__)}"
        except (BotoCoreError, OSError):
            continue  # unreadable: make_session says so; the other file and the profile are still checked
    if given is not None:
        where, name = given[1], given[0]
    else:
        # botocore's order: the first of the two that is set names the profile in use
        variable = next((name for name in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE") if name in os.environ), None)
        if variable is None:
            return None  # the default profile, which may well be absent (keys, roles, SSO, ...)
        where, name = variable, os.environ[variable]
    try:
        core.get_scoped_config()
    except ProfileNotFound:
        return (f"{where}: expected a profile of AWS config file {files['config']} or credentials file "
                f"{files['credentials']}, got {name!r}")
    except (BotoCoreError, ValueError, OSError):
        return None  # an unreadable file: make_session says so
    return None
