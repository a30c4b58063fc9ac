"""A `loyalty-streams <command>` child process (a worker, the PMS webhook, the Redis mirror),
for the demo and the integration tests.

It runs exactly as an operator runs it: its own process, started through the CLI, configured
only through `LOYALTY_*` environment variables, so what the tests prove is what production does.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import orjson

from loyalty_streams.settings import Settings

SETTLE_POLL_S = 0.1


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce these settings in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"LOYALTY_{name.upper()}"] = str(value)
    return env


class ServiceProcess:
    """Runs a service for the lifetime of a `with` block; its output goes to `log_path`."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        command: str = "worker",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.command = command
        self.env = dict(env or {})
        """Variables on top of the settings' own (e.g. NO_PROXY)."""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "loyalty_streams.cli.main", self.command],
                env={**os.environ, **settings_env(self.settings), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once it stopped; None while it runs or before it started."""
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as an orchestrator would; SIGKILL if it does not stop in time."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode

    def settled(self, timeout: float = 30.0) -> bool:
        """Wait until the worker has checkpointed every record it folded (`in_flight_records`
        on `/health` reads 0); False on timeout or when its fold loop failed (`/health` says 503).

        Outputs leave before the record a lookup reads is written, so a lookup made right
        after an output can otherwise show the record before it.
        """
        url = f"http://127.0.0.1:{self.settings.web_port}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    if orjson.loads(reply.read())["in_flight_records"] == 0:
                        return True
            except urllib.error.HTTPError:
                return False
            except OSError:  # not listening (yet)
                pass
            time.sleep(SETTLE_POLL_S)
        return False

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
