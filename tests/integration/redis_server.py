"""Real Redis servers for tests: a `redis-server` (and a Sentinel) per test, on free ports.

The mirror is tested against the server operators run (Debian's `redis-server`), not a fake:
what it proves about pipelines, hashes and Sentinel discovery holds in production. A missing
binary fails the test with the install line, it is never skipped.
"""

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from loyalty_streams.devtools.broker import free_port

INSTALL = "apt-get install -y redis-server"


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(f"redis-server is not installed; the Redis tests need it: {INSTALL}")
    return path


def _wait_ready(process: "subprocess.Popen[bytes]", port: int, log: Path, what: str) -> None:
    """Until the server answers PING; its log in the failure if it exits or never answers."""
    client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"{what} did not answer on port {port} within 10 s:\n{log.read_text()}")
    finally:
        client.close()


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[int]:
    """A throwaway `redis-server` on 127.0.0.1 (no persistence); yields its port.

    Give the port of a stopped one to bring "the same server" back, empty, after an outage.
    """
    binary = redis_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = directory / f"redis-{port}.log"
    with log.open("wb") as out:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(process, port, log, "redis-server")
        yield port
    finally:
        _stop(process)


@contextmanager
def redis_sentinel(directory: Path, master_port: int, service: str = "mymaster") -> Iterator[int]:
    """A Sentinel (`redis-server CONF --sentinel`) monitoring the master; yields its port.

    Debian ships `redis-sentinel` as a separate package; the server binary in sentinel mode is
    the same program, so `redis-server` alone is enough.
    """
    binary = redis_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / f"sentinel-{port}.conf"  # Sentinel rewrites it: it must be writable
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {directory}\n"
        f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {service} 5000\n"
    )
    log = directory / f"sentinel-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, str(config), "--sentinel"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, port, log, "redis sentinel")
        yield port
    finally:
        _stop(process)
