"""The command line: parse, set up logging, wire the adapters, run. Exit 0 ok, 1 failure, 2 usage."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from . import config, edge, state
from .coordination import Coordinator
from .edge import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOGGER, error
from .fleet import Fleet, Ledger
from .logsetup import setup_logging
from .loop import PassReport, Ports, pass_period, run_forever, utcnow
from .model import AwsError
from .settings import ConfigError, Placement, Settings
from .statetable import StateTable, StateTableError

log = logging.getLogger(LOGGER)


def build_ports(settings: Settings, placement: Placement | None = None) -> Ports:
    """Real AWS adapters for a placement's region and role (default: the settings' region and
    role), with the settings' keys or the default credential chain."""
    from . import aws
    from .breaker import HttpBreaker

    placement = placement or Placement(settings.region, settings.role_arn)
    conn = aws.connection(settings, placement.region, placement.role_arn)
    session = aws.make_session(conn)
    wants_sns = any(s.rules.sns_topic_arn or any(g.rules.sns_topic_arn for g in s.gsis) for s in settings.tables)
    notifier = None
    if wants_sns:
        notifier = aws.SnsNotifier(aws.make_client(session, "sns", conn),
                                   lambda region: aws.make_client(session, "sns", conn, region=region))
    dynamodb = aws.make_client(session, "dynamodb", conn)
    return Ports(
        tables=aws.DynamoTables(dynamodb),
        metrics=aws.CloudWatchMetrics(aws.make_client(session, "cloudwatch", conn), settings.metrics_batch_size),
        notifier=notifier,
        breaker=HttpBreaker(),
        limits=aws.DynamoLimits(dynamodb),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dynamic-dynamodb` command."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # --help, --version, --show-config: now, not at exit
    except BrokenPipeError:
        # the reader went away (`--show-config | head`): no traceback, and none at exit either
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILURE


def hide_secrets_from_ps(argv: Sequence[str]) -> None:
    """A secret on the command line is visible to every user in `ps` and /proc/PID/cmdline:
    replace the process title with the masked arguments (it shows from here on; the
    environment or the config file keep a secret out of it from the start)."""
    masked = config.mask_argv(argv)
    if masked != list(argv):
        from .daemon import set_title

        set_title(" ".join(["dynamic-dynamodb", *masked]))


def _main(argv: Sequence[str] | None) -> int:
    if argv is None:  # this process's own command line (not a call from Python)
        hide_secrets_from_ps(sys.argv[1:])
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = config.load_settings(argv)
    except ConfigError as e:
        stopping = _stop_settings(argv)
        if stopping is None:
            return error(config.mask_text(str(e), argv), EXIT_USAGE)
        conflict = mode_conflict(stopping)
        if conflict is not None:
            return error(conflict, EXIT_USAGE)
        edge.warning(f"{config.mask_text(str(e), argv)} (--daemon {stopping.daemon} goes ahead)")
        settings = stopping
    if settings.show_config:
        print(json.dumps(config.settings_as_dict(settings), indent=2, sort_keys=True))
        for warning in settings.warnings:  # also in the JSON, but a person reads stderr
            edge.warning(warning)
        return EXIT_OK
    conflict = mode_conflict(settings)
    if conflict is not None:
        return error(conflict, EXIT_USAGE)
    try:
        if settings.daemon in ("start", "stop", "restart", "status"):
            from . import daemon

            return daemon.control(settings, run, None if settings.dry_run else claim_state)
        setup_logging(settings)  # attached here: start, stop and restart were handled above
        for warning in settings.warnings:
            log.warning(warning)
        if settings.simulate or settings.backtest:
            from .simulation import cli as simulation_cli

            return simulation_cli.main(settings)
        if not settings.tables:
            return error("nothing to scale: give --table-name, or --config with [table: REGEX] sections",
                         EXIT_USAGE)
        if settings.status:
            return show_status(settings)
        return run(settings)
    except ConfigError as e:
        return error(str(e), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_OK


def mode_conflict(settings: Settings) -> str | None:
    """The usage error of two modes of this process given together, or None.

    --simulate, --backtest, --status/--status-json and --run-once each do their one job in
    this process and exit; every --daemon command (start, restart, foreground, stop, status)
    runs or controls the scaling loop instead. Given two, neither is done: a read-only mode
    must never start a loop that changes tables, and none of them is silently dropped."""
    modes = [mode for given, mode in (
        (settings.simulate, "--simulate TRACE.csv"),
        (settings.backtest, "--backtest"),
        (settings.status, "--status-json" if settings.status == "json" else "--status"),
        (settings.run_once, "--run-once"),
    ) if given]
    if settings.daemon is not None:
        modes = modes[:1] + [f"--daemon {settings.daemon}"]
    if len(modes) < 2:
        return None
    return f"give {modes[0]} or {modes[1]}, not both"


def _stop_settings(argv: Sequence[str]) -> Settings | None:
    """For `--daemon stop` only: the pid file options, so a broken config file cannot
    keep a running daemon from being stopped."""
    args = config.build_parser().parse_args(list(argv))
    if args.daemon not in ("stop", "status"):  # status too: it reads only the pid and heartbeat files
        return None
    return Settings(argv=tuple(argv), daemon=args.daemon, instance=args.instance, pid_file_dir=args.pid_file_dir,
                    simulate=args.simulate, backtest=args.backtest, run_once=args.run_once,
                    status="json" if args.status_json else "table" if args.status else None)


def state_table_of(settings: Settings) -> StateTable:
    """The `state-table` (its region: state-table-region, else the first one scaled)."""
    from . import aws

    region = settings.state_table_region or next(iter(settings.placements())).region
    conn = aws.connection(settings, region)
    return StateTable(aws.make_client(aws.make_session(conn), "dynamodb", conn), settings.state_table or "")


def build_coordinator(settings: Settings) -> Coordinator:
    """The leases and shared state of `state-table`."""
    table = state_table_of(settings)
    table.ensure(create=settings.state_table_create == "auto")
    return Coordinator(table, settings.lease_seconds, lambda: settings.check_interval, state.encode_memory,
                       state.decode_memory)


def run(settings: Settings, held: state.StateFile | None = None) -> int:
    """One pass (--run-once) or the foreground loop until SIGTERM/SIGINT; SIGHUP re-reads the config.

    The state file is this process's for the whole run (`held`: already claimed, by the
    daemon after detaching); a dry run reads it without the lock and never writes it. With a
    state table the memory lives there instead, and the tables are shared by leases."""
    if held is None and not settings.dry_run and not settings.state_table:
        try:
            held = claim_state(settings)
        except state.StateError as e:
            return error(str(e), e.status)
    log.info("Regions: %s", settings.regions_line())
    coordinator = None
    try:
        if settings.state_table and settings.dry_run:
            log.warning("--dry-run with state-table %s: no leases taken, every matched table decided, nothing "
                        "written", settings.state_table)
        elif settings.state_table:
            try:
                coordinator = build_coordinator(settings)
                coordinator.start()
            except (AwsError, StateTableError) as e:
                return error(f"state table {settings.state_table}: {e}", EXIT_FAILURE)
            log.info("Sharing the tables through state table %s as %s (lease %d s)", settings.state_table,
                     coordinator.me, settings.lease_seconds)
        now = utcnow()
        records: dict = {}
        if not settings.state_table:
            records = held.load(now) if held is not None else state.read(state_path(settings), now)
        scaler = Fleet(settings, build_ports, memory=state.placed(records), ledger=Ledger.of(records),
                       coordinator=coordinator)
        if settings.run_once:
            report = run_pass(scaler, utcnow(), held)
            return EXIT_OK if report.ok else EXIT_FAILURE
        return serve(scaler, held)
    finally:
        if coordinator is not None:
            coordinator.stop()
        if held is not None:
            held.release()


def claim_state(settings: Settings) -> state.StateFile:
    """Lock this instance's state file (state.StateError: in use, or unusable)."""
    return state.StateFile.claim(state_path(settings))


def state_path(settings: Settings) -> str:
    """The state file of this instance."""
    return settings.state_file or state.default_path(settings.instance)


def run_pass(scaler: Fleet, now, held: state.StateFile | None = None) -> PassReport:
    """One pass, then the memory saved (a dry run, holding no state file, never writes it)."""
    report = scaler.run_pass(now)
    if held is not None and not scaler.dry_run and scaler.coordinator is None:  # else the pass saved it
        held.save(scaler.records(), now)
    return report


def show_status(settings: Settings) -> int:
    """--status / --status-json: DescribeTable and the state file, no UpdateTable."""
    from . import status

    now = utcnow()
    owner_of = None
    if settings.state_table:
        try:  # the memory and the leases of every shard, read without taking any
            memory, owner_of = status.shared_state(state_table_of(settings), now)
        except (AwsError, StateTableError) as e:
            return error(f"state table {settings.state_table}: {e}", EXIT_FAILURE)
    else:
        try:
            records = state.read(state_path(settings), now)  # read only: a running daemon holds the lock
        except state.StateError as e:
            return error(str(e), e.status)
        memory = state.placed(records)
    fleet = Fleet(settings, build_ports, memory=memory)
    found = status.collect(fleet, now, owner_of)
    (status.print_json if settings.status == "json" else status.print_table)(found.rows, sys.stdout)
    return EXIT_OK if found.failures == 0 else EXIT_FAILURE


class Watch:
    """What watches the loop from outside: Prometheus metrics and /healthz, systemd's notify
    socket, and a detached daemon's heartbeat file (for --daemon status)."""

    def __init__(self, settings: Settings, interval, grace) -> None:
        from .metrics import Liveness, Metrics
        from .sdnotify import SystemdNotifier

        self.liveness = Liveness(interval, grace=grace)
        self.metrics: Metrics | None = None
        self.server = None
        self.systemd = SystemdNotifier()
        self.started = utcnow()
        self.heartbeat: str | None = None
        if settings.daemon in ("start", "restart"):
            from .status import heartbeat_path

            self.heartbeat = heartbeat_path(settings.pid_file_dir, settings.instance)
        if settings.metrics_port:
            from . import metrics

            self.metrics = Metrics()
            self.server = metrics.serve(self.metrics, self.liveness, settings.metrics_port, settings.metrics_address)
            log.info("Serving /metrics and /healthz on %s:%d", settings.metrics_address, settings.metrics_port)
        self.systemd.start_watchdog(self.liveness.healthy)

    def run_pass(self, scaler: Fleet, now, held: state.StateFile | None = None) -> PassReport:
        """One pass, observed."""
        self.systemd.ready()
        started = time.monotonic()
        report = run_pass(scaler, now, held)
        seconds = time.monotonic() - started
        self.liveness.pass_ended()
        if self.metrics is not None:
            from .metrics import prewarms_of, samples_of

            coordinator = scaler.coordinator
            shards = None if coordinator is None else (coordinator.me, len(coordinator.held_shards()))
            self.metrics.observe(samples_of(scaler), report.updates, report.failures, report.aws_errors, now,
                                 seconds, shards, prewarms_of(scaler))
        if self.heartbeat is not None:
            from .status import write_heartbeat

            write_heartbeat(self.heartbeat, os.getpid(), scaler.settings.instance, self.started, utcnow(), report.ok)
        return report

    def close(self) -> None:
        """On the way out: STOPPING=1, the metrics server and the heartbeat file gone."""
        self.systemd.stopping()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.heartbeat is not None:
            try:
                os.unlink(self.heartbeat)
            except OSError:
                pass


def serve(scaler: Fleet, held: state.StateFile | None = None) -> int:
    """The foreground loop with its signal handling (also what a daemon runs after detaching)."""
    stop = threading.Event()
    reload_requested = threading.Event()
    current = [scaler]
    scaler.stop_with(stop)

    def on_stop(signum: int, _frame: object) -> None:
        log.info("Received %s, finishing the table in progress and stopping", signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: object) -> None:
        log.info("Received SIGHUP, re-reading the configuration before the next pass")
        reload_requested.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)

    def before_pass() -> None:
        if reload_requested.is_set():
            reload_requested.clear()
            current[0] = reload(current[0])
            current[0].stop_with(stop)

    log.info("Starting: check interval %s s, %d table section(s)%s", scaler.settings.check_interval,
             len(scaler.settings.tables), ", dry run" if scaler.dry_run else "")
    coordinator = scaler.coordinator
    try:
        watch = Watch(scaler.settings, lambda: current[0].settings.check_interval,
                      lambda: current[0].settings.health_grace)
    except ConfigError as e:  # the metrics port is taken: one line, in the log a daemon has
        log.error("%s", e)
        return EXIT_USAGE
    try:
        run_forever(lambda now: watch.run_pass(current[0], now, held),
                    lambda: pass_period(current[0].settings.check_interval), stop, before_pass,
                    wake=coordinator.wake if coordinator is not None else None)
    finally:
        watch.close()
    log.info("Stopped")
    return EXIT_OK


def reload(scaler: Fleet) -> Fleet:
    """A scaler for the re-read config file; a broken file is logged and the running scaler kept."""
    try:
        fresh = config.load_settings(scaler.settings.argv)
        # a detached daemon (its argv says --daemon start) has no console to log to
        setup_logging(fresh, console=fresh.daemon in (None, "foreground"))
    except ConfigError as e:
        log.error("Reload failed, keeping the running configuration: %s", e)
        return scaler
    log.info("Configuration reloaded from %s", fresh.config_file)
    if (fresh.state_table, fresh.lease_seconds) != (scaler.settings.state_table, scaler.settings.lease_seconds):
        log.warning("state-table and lease-seconds take effect at the next restart")
    return Fleet(fresh, build_ports, memory=scaler.memory, ledger=scaler.ledger, coordinator=scaler.coordinator)
