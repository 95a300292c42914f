"""A moto_server subprocess for end-to-end tests, and boto3 clients pointed at it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # never read a developer's real profile or an instance role
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # a request that escapes to a real AWS endpoint goes to a dead proxy and fails fast;
    # local endpoints (moto, the rules proxy, the breaker) bypass it
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
# removed from the environment of tests and of the daemon under test
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")

CLIENT_CONFIG = Config(disable_request_compression=True,
                       retries={"mode": "standard", "max_attempts": 2},
                       connect_timeout=5, read_timeout=30)


def apply_fake_aws_env(environ: Any = os.environ) -> None:
    """Make ``environ`` safe: dummy credentials, us-east-1, no real AWS reachable."""
    for key in UNSET_AWS_ENV:
        environ.pop(key, None)
    environ.update(FAKE_AWS_ENV)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, data: bytes | None = None, timeout: float = 5) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        return resp.read()


class MotoServer:
    """``moto_server`` on 127.0.0.1 and a free port, as a subprocess."""

    def __init__(self, log_path: Path | None = None):
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> MotoServer:
        last_error = ""
        for _attempt in range(3):  # the port can be taken between probe and bind
            self.port = free_port()
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            env = dict(os.environ)
            apply_fake_aws_env(env)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
            if log is not subprocess.DEVNULL:
                log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = f"moto_server exited with {self.proc.returncode}"
                    break
                try:
                    _http("GET", f"{self.url}/moto-api/", timeout=1)
                    return self
                except (urllib.error.URLError, ConnectionError, OSError) as e:
                    last_error = repr(e)
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"moto_server did not start: {last_error}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def reset(self) -> None:
        """Wipe every moto backend (``POST /moto-api/reset``)."""
        _http("POST", f"{self.url}/moto-api/reset", data=b"")

    def data(self) -> dict:
        """Every backend model (``GET /moto-api/data.json``), e.g. SNS sent_notifications."""
        return json.loads(_http("GET", f"{self.url}/moto-api/data.json"))

    def sns_notifications(self) -> list[dict]:
        """Messages published to SNS: [{"topic_arn", "message", "subject"}, ...]."""
        out = []
        for topic in self.data().get("sns", {}).get("Topic", []):
            for note in topic.get("sent_notifications") or []:
                out.append({"topic_arn": topic.get("arn"), "message": note[1], "subject": note[2]})
        return out


def make_client(service: str, endpoint_url: str, config: Config = CLIENT_CONFIG):
    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=endpoint_url,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


class AwsClients:
    """Lazily created boto3 clients for one endpoint: ``.dynamodb``, ``.cloudwatch``, ``.sns``,
    ``.sqs`` (any other service name works too: ``clients.client("logs")``)."""

    def __init__(self, endpoint_url: str, config: Config = CLIENT_CONFIG):
        self.endpoint_url = endpoint_url
        self.config = config
        self._clients: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = make_client(service, self.endpoint_url, self.config)
        return self._clients[service]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.client(name)
