"""The command line: parse, set up logging, wire the adapters, run. Exit 0 ok, 1 failure, 2 usage."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Optional, Sequence

from . import config, edge, state
from .fleet import Fleet
from .loop import PassReport, Ports, pass_period, run_forever, utcnow
from .edge import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOGGER, error
from .logsetup import setup_logging
from .settings import ConfigError, Placement, Settings

log = logging.getLogger(LOGGER)


def build_ports(settings: Settings, placement: Optional[Placement] = None) -> Ports:
    """Real AWS adapters for a placement's region and role (default: the settings' region and
    role), with the settings' keys or the default credential chain."""
    from . import aws
    from .breaker import HttpBreaker

    placement = placement or Placement(settings.region, settings.role_arn)
    conn = aws.Connection(placement.region, settings.aws_access_key_id, settings.aws_secret_access_key,
                          role_arn=placement.role_arn)
    session = aws.make_session(conn)
    wants_sns = any(s.rules.sns_topic_arn or any(g.rules.sns_topic_arn for g in s.gsis) for s in settings.tables)
    notifier = None
    if wants_sns:
        notifier = aws.SnsNotifier(aws.make_client(session, "sns", conn),
                                   lambda region: aws.make_client(session, "sns", conn, region=region))
    return Ports(
        tables=aws.DynamoTables(aws.make_client(session, "dynamodb", conn)),
        metrics=aws.CloudWatchMetrics(aws.make_client(session, "cloudwatch", conn), settings.metrics_batch_size),
        notifier=notifier,
        breaker=HttpBreaker(),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
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


def _main(argv: Optional[Sequence[str]]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = config.load_settings(argv)
    except ConfigError as e:
        stopping = _stop_settings(argv)
        if stopping is None:
            return error(str(e), EXIT_USAGE)
        edge.warning(f"{e} (--daemon {stopping.daemon} goes ahead)")
        settings = stopping
    if settings.show_config:
        print(json.dumps(config.settings_as_dict(settings), indent=2, sort_keys=True))
        for warning in settings.warnings:  # also in the JSON, but a person reads stderr
            edge.warning(warning)
        return EXIT_OK
    try:
        if settings.daemon in ("start", "stop", "restart", "status"):
            from . import daemon

            return daemon.control(settings, run)
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


def _stop_settings(argv: Sequence[str]) -> Optional[Settings]:
    """For `--daemon stop` only: the pid file options, so a broken config file cannot
    keep a running daemon from being stopped."""
    args = config.build_parser().parse_args(list(argv))
    if args.daemon not in ("stop", "status"):  # status too: it reads only the pid and heartbeat files
        return None
    return Settings(argv=tuple(argv), daemon=args.daemon, instance=args.instance, pid_file_dir=args.pid_file_dir)


def run(settings: Settings) -> int:
    """One pass (--run-once) or the foreground loop until SIGTERM/SIGINT; SIGHUP re-reads the config."""
    scaler = Fleet(settings, build_ports, memory=state.load_placed(state_path(settings)))
    if settings.run_once:
        report = run_pass(scaler, utcnow())
        return EXIT_OK if report.ok else EXIT_FAILURE
    return serve(scaler)


def state_path(settings: Settings) -> str:
    """The state file of this instance."""
    return settings.state_file or state.default_path(settings.pid_file_dir, settings.instance)


def run_pass(scaler: Fleet, now) -> PassReport:
    """One pass, then the memory saved (a dry run never writes the state file)."""
    report = scaler.run_pass(now)
    if not scaler.dry_run:
        state.save_placed(state_path(scaler.settings), scaler.memory)
    return report


def show_status(settings: Settings) -> int:
    """--status / --status-json: DescribeTable and the state file, no UpdateTable."""
    from . import status

    fleet = Fleet(settings, build_ports, memory=state.load_placed(state_path(settings)))
    found = status.collect(fleet, utcnow())
    (status.print_json if settings.status == "json" else status.print_table)(found.rows, sys.stdout)
    return EXIT_OK if found.failures == 0 else EXIT_FAILURE


class Watch:
    """What watches the loop from outside: Prometheus metrics and /healthz, systemd's notify
    socket, and a detached daemon's heartbeat file (for --daemon status)."""

    def __init__(self, settings: Settings, interval) -> None:
        from .metrics import Liveness, Metrics
        from .sdnotify import SystemdNotifier

        self.liveness = Liveness(interval)
        self.metrics: Optional[Metrics] = None
        self.server = None
        self.systemd = SystemdNotifier()
        self.started = utcnow()
        self.heartbeat: Optional[str] = None
        if settings.daemon in ("start", "restart"):
            from .status import heartbeat_path

            self.heartbeat = heartbeat_path(settings.pid_file_dir, settings.instance)
        if settings.metrics_port:
            from . import metrics

            self.metrics = Metrics()
            self.server = metrics.serve(self.metrics, self.liveness, settings.metrics_port, settings.metrics_address)
            log.info("Serving /metrics and /healthz on %s:%d", settings.metrics_address, settings.metrics_port)
        self.systemd.start_watchdog(self.liveness.healthy)

    def run_pass(self, scaler: Fleet, now) -> PassReport:
        """One pass, observed."""
        self.systemd.ready()
        started = time.monotonic()
        report = run_pass(scaler, now)
        seconds = time.monotonic() - started
        self.liveness.pass_ended()
        if self.metrics is not None:
            from .metrics import samples_of

            self.metrics.observe(samples_of(scaler), report.updates, report.failures, report.aws_errors, now,
                                 seconds)
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


def serve(scaler: Fleet) -> int:
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
    try:
        watch = Watch(scaler.settings, lambda: current[0].settings.check_interval)
    except ConfigError as e:  # the metrics port is taken: one line, in the log a daemon has
        log.error("%s", e)
        return EXIT_USAGE
    try:
        run_forever(lambda now: watch.run_pass(current[0], now), lambda: pass_period(current[0].settings.check_interval),
                    stop, before_pass)
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
    return Fleet(fresh, build_ports, memory=scaler.memory)
