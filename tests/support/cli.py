"""Run the daemon as a separate process (``python -m dynamic_dynamodb``) against a fake AWS."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .moto import apply_fake_aws_env

REPO = Path(__file__).resolve().parents[2]


def cli_env(endpoint_url: str | None, env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment: fake credentials, us-east-1, ``AWS_ENDPOINT_URL`` set,
    two attempts per AWS call (fast failure tests), the repo importable."""
    env = dict(os.environ)
    apply_fake_aws_env(env)
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env["AWS_MAX_ATTEMPTS"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONWARNINGS", None)
    if env_extra:
        for k, v in env_extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def run_cli(args: Sequence[str], env_extra: Mapping[str, str] | None = None, timeout: float = 60,
            endpoint_url: str | None = None, cwd: str | Path | None = None,
            state_file: str | Path | None = None,
            ) -> subprocess.CompletedProcess:
    """``python -m dynamic_dynamodb ARGS``; returns the CompletedProcess (text stdout/stderr).

    ``state_file``: added as ``--state-file`` unless ARGS give one (the default state file
    is shared in /tmp, and tests run in parallel)."""
    args = [str(a) for a in args]
    if state_file is not None and not any(a == "--state-file" or a.startswith("--state-file=") for a in args):
        args += ["--state-file", str(state_file)]
    return subprocess.run(
        [sys.executable, "-m", "dynamic_dynamodb", *args],
        env=cli_env(endpoint_url, env_extra), cwd=str(cwd or REPO), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout)


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    for stream in (result.stdout, result.stderr):
        assert "Traceback (most recent call last)" not in stream, (
            f"traceback in output\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")


def describe(result: subprocess.CompletedProcess) -> str:
    """Everything about a run, for assertion messages."""
    return (f"rc={result.returncode} args={result.args}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}")


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
