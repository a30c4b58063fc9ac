"""A `loyalty-streams worker` child process, for the demo and the integration tests.

The worker runs exactly as an operator runs it: its own process, configured only through
`LOYALTY_*` environment variables, so what the tests prove is what production does.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from loyalty_streams.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce these settings in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"LOYALTY_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    """Runs a worker for the lifetime of a `with` block; its output goes to `log_path`."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "loyalty_streams.edges.cli", "worker"],
                env={**os.environ, **settings_env(self.settings)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

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

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
