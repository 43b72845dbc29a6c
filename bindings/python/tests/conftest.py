"""Test harness: the real optifork-server binary on an ephemeral port with an SQLite file in a
temporary directory (one server per test session), a fresh environment and SDK key per test,
and a small admin API client. No mocks: the client talks HTTP to the real server.

The binary is ``$OPTIFORK_SERVER_BIN``, else ``$CARGO_TARGET_DIR/debug/optifork-server``
(``target/`` by default), built with ``cargo build -p optifork-server`` if missing.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
VECTORS = REPO / "optifork-core" / "tests" / "vectors"
ADMIN_KEY = "python-test-admin-key-0123456789"


def server_binary() -> pathlib.Path:
    explicit = os.environ.get("OPTIFORK_SERVER_BIN")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "optifork-server"
    if not binary.exists():
        subprocess.run(
            ["cargo", "build", "-p", "optifork-server"],
            cwd=REPO,
            check=True,
            env={**os.environ, "CARGO_TARGET_DIR": str(target)},
        )
    return binary


class Server:
    """A running optifork-server and its admin API."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="optifork-py-")
        env = {**os.environ, "OPTIFORK_ADMIN_KEY": ADMIN_KEY}
        env.pop("OPTIFORK_INSECURE_DEV_MODE", None)
        self.process = subprocess.Popen(
            [
                str(server_binary()),
                "--listen", "127.0.0.1:0",
                "--database-url", os.path.join(self.dir.name, "optifork.db"),
                "--rate-limit-api", "1000000",
                "--rate-limit-evaluations", "1000000",
                "--exposure-flush-ms", "20",
                "--log", "warn,warp::server=off",
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._wait_for_address()
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self._names = itertools.count()

    def _wait_for_address(self) -> str:
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.match(r"OptiFork listening on (\S+)", line)
            if m:
                return m.group(1).rstrip("/")
        self.stop()
        raise RuntimeError(f"the server did not start; it printed: {seen}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.dir.cleanup()

    def request(self, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, reply = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} answered {status}: {reply}"
        return reply

    def unique(self, prefix: str) -> str:
        return f"{prefix}_{os.getpid()}_{next(self._names)}"


class Env:
    """One environment of the server, with its own SDK key: tests do not see each other's
    flags or changes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url
        self.name = server.unique("env")
        server.ok("POST", "/environments", {"name": self.name})
        reply = server.ok(
            "POST", "/keys", {"name": self.name, "scope": "sdk", "environment": self.name}
        )
        self.sdk_key = reply["key"]

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        sep = "&" if "?" in path else "?"
        return self.server.ok(method, f"{path}{sep}environment={self.name}", body)

    def create(self, kind: str, body: dict) -> Any:
        return self.ok("POST", f"/{kind}", body)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def env(server: Server) -> Env:
    return Env(server)


@pytest.fixture
def dead_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_for(check: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.02)


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def canonical(value: Optional[Any]) -> str:
    """JSON text that tells True from 1 and 1 from 1.5: exact agreement, not Python's ==."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
