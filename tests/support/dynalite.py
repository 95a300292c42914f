"""dynalite, a second DynamoDB implementation (npm), as a subprocess for end-to-end tests.

`make venv` installs it into .venv/node_modules when npm is there; tests skip without it.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from .moto import CLIENT_CONFIG, free_port
from .wait import wait_for

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / ".venv" / "node_modules" / ".bin" / "dynalite"


@contextlib.contextmanager
def dynalite(*args: str, region: str = "us-east-1") -> Iterator[tuple[str, object]]:
    """(endpoint URL, DynamoDB client) of a dynalite started with ARGS; skips the test without it."""
    binary = str(BINARY) if BINARY.exists() else shutil.which("dynalite")
    if binary is None or shutil.which("node") is None:
        pytest.skip("dynalite is not installed (npm install dynalite)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("dynamodb", region_name=region, endpoint_url=url, aws_access_key_id="x",
                          aws_secret_access_key="x", config=CLIENT_CONFIG)

    def up() -> bool:
        try:
            client.list_tables()
            return True
        except Exception:  # noqa: BLE001 - not listening yet
            return False
    try:
        wait_for(up, timeout=20, what="dynalite listening")
        yield url, client
    finally:
        proc.terminate()
        proc.wait(timeout=10)
