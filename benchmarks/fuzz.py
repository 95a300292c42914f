"""Fuzz the command line and the config file with the benchmark profile: 2,000 examples per property.

    python benchmarks/fuzz.py [--examples 2000]

Runs the Hypothesis properties of tests/test_fuzz_input.py (mutated shipped configs, and
command lines of real options with bad values; every run ends in --show-config, so no AWS
call is made) in this process, prints how many examples ran and how they ended, and exits
1 with Hypothesis's smallest failing example when one breaks a property: an exit status
other than 0 or 2, more than one line on stderr, a traceback, or a secret echoed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _TempDirs:
    """What the properties need of pytest's tmp_path_factory."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.count = 0

    def mktemp(self, name: str) -> Path:
        self.count += 1
        path = self.root / f"{name}{self.count}"
        path.mkdir()
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz the command line and config file parsing.")
    parser.add_argument("--examples", type=int, default=2000, help="examples per property (default 2000)")
    args = parser.parse_args(argv)
    os.environ["HYPOTHESIS_PROFILE"] = "benchmark"
    os.environ["FUZZ_EXAMPLES"] = str(args.examples)
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO))
    from support.moto import apply_fake_aws_env

    apply_fake_aws_env(os.environ)
    import test_fuzz_input as fuzz

    started = time.monotonic()
    failed = False
    with tempfile.TemporaryDirectory(prefix="dd-fuzz-") as root:
        properties = (
            ("mutated config files", lambda: fuzz.test_mutated_config_files_are_accepted_or_refused_in_one_line(
                tmp_path_factory=_TempDirs(root))),
            ("command lines", fuzz.test_command_lines_are_accepted_or_refused_in_one_line),
        )
        for name, prop in properties:
            before = fuzz.summary()["examples"]
            t0 = time.monotonic()
            try:
                prop()
                verdict = "ok"
            except Exception as e:  # noqa: BLE001 - Hypothesis re-raises the failing example's error
                failed = True
                verdict = f"FAILED: {e}"
            print(f"{name}: {fuzz.summary()['examples'] - before} examples in {time.monotonic() - t0:.1f} s: {verdict}")
    stats = fuzz.summary()
    print(f"total: {stats['examples']} examples ({stats['exit_0']} exit 0, {stats['exit_2']} exit 2) "
          f"in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
