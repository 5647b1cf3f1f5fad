"""Real test peers for the Python package's tests.

- the `switchboard-testkit` binary (stdio, or Streamable HTTP / legacy SSE on a loopback
  port), built by `./scripts/test` (override with `SWITCHBOARD_TESTKIT=/path`);
- `@modelcontextprotocol/server-everything` from `tests/node_modules` (`npm ci --prefix
  tests`), forced onto 127.0.0.1 by `tests/loopback.cjs`.

Every spawned process is killed when its test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT = 20.0


def testkit_bin() -> str:
    path = os.environ.get("SWITCHBOARD_TESTKIT") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "switchboard-testkit"
    )
    if not Path(path).is_file():
        pytest.fail(f"{path} is missing: run `cargo build -p switchboard-testkit` (./scripts/test does)")
    return path


def everything_entry() -> str:
    entry = ROOT / "tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    if not entry.is_file():
        pytest.fail(f"{entry} is missing: run `npm ci --prefix tests` at the repository root")
    return str(entry)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {READY_TIMEOUT}s")


class Peers:
    """Starts servers for one test and stops them after it."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen] = []

    def testkit_stdio(self, *args: str) -> dict:
        """An `mcpServers` entry running the testkit over stdio."""
        return {"command": testkit_bin(), "args": list(args)}

    def testkit_http(self, transport: str = "streamable-http", *args: str, port: int = 0) -> str:
        """Starts the testkit serving `transport` (`streamable-http`, `sse`, ...) on `port`
        (0: a free one); its URL."""
        process = subprocess.Popen(
            [testkit_bin(), "--transport", transport, "--port", str(port), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"unexpected first line from the testkit: {line!r}")
        return line.removeprefix("listening ").strip()

    def everything(self, mode: str) -> Optional[str]:
        """Starts server-everything in `mode` (`sse` or `streamableHttp`); its base URL."""
        port = free_port()
        process = subprocess.Popen(
            ["node", "--require", "./tests/loopback.cjs", everything_entry(), mode],
            cwd=ROOT,
            env={**os.environ, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._processes.append(process)
        wait_listening(port, process)
        return f"http://127.0.0.1:{port}"

    def everything_stdio(self) -> dict:
        """An `mcpServers` entry running server-everything over stdio."""
        return {
            "command": "node",
            "args": ["--require", str(ROOT / "tests/loopback.cjs"), everything_entry(), "stdio"],
        }

    def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()


@pytest.fixture
def peers() -> Iterator[Peers]:
    started = Peers()
    try:
        yield started
    finally:
        started.stop()
