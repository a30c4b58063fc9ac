"""Apache Kafka as a second embedded broker: the real broker, in KRaft mode, as child processes.

The broker's jars come from Maven Central (`org.apache.kafka:kafka_2.13`, `KAFKA_VERSION`, the
version the compose file runs) through `mvn dependency:copy-dependencies`, once, into a cache
directory (`.cache/kafka/<version>/`, git-ignored). Each node is a combined broker and
controller (`process.roles=broker,controller`) on free ports, its log directory formatted with
the storage tool before its first start; a cluster of three nodes shares a static controller
quorum, so one node may die and come back while the others carry on. Log directories live in a
temporary directory for the lifetime of the cluster: a node killed with SIGKILL restarts on its
own data, as after a crash.

Java (17 or later) and Maven must be on the PATH (`make test` installs them from Debian when
missing); Tansu (`devtools.broker`) needs neither and stays the default of `make demo`.
"""

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from loyalty_streams.devtools.broker import BrokerError, check_port_free, free_port, log_tail

KAFKA_VERSION = "4.1.0"
"""The Apache Kafka release the tests and `broker --kind apache` run: the compose file's."""

LOG4J_VERSION = "2.24.3"
"""log4j2 for the broker's logging, bound to the SLF4J 1.7 API the broker uses."""

DEFAULT_CACHE = Path(".cache") / "kafka"
"""Where the jars are kept, below the directory the command runs in (git-ignored)."""

HEAP = "-Xmx384m"
"""Each node's heap: small, so three nodes and the workers fit on a 2-core test machine."""

START_TIMEOUT_S = 60.0
"""How long a cluster may take to serve metadata with every node registered."""

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>loyalty-streams</groupId>
  <artifactId>apache-kafka-broker</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


def broker_jars(cache: Path = DEFAULT_CACHE) -> Path:
    """The directory of the broker's jars (and their dependencies), fetched with Maven on first
    use; raises `BrokerError` when Maven is missing or cannot resolve them."""
    home = cache.resolve() / KAFKA_VERSION
    jars = home / "jars"
    done = home / ".complete"
    if done.exists():
        return jars
    maven = shutil.which("mvn")
    if maven is None:
        raise BrokerError("Apache Kafka needs Maven to fetch its jars: apt-get install maven")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    shutil.rmtree(jars, ignore_errors=True)
    fetched = subprocess.run(
        [maven, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={jars}"],
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    if fetched.returncode != 0:
        raise BrokerError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n{fetched.stdout}")
    done.touch()
    return jars


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise BrokerError(
            "Apache Kafka needs Java 17 or later: apt-get install openjdk-17-jre-headless"
        )
    return java


@dataclass
class KafkaNode:
    """One node of the cluster: its id, its two ports, its directory and its process."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


class ApacheKafka:
    """An Apache Kafka cluster of `nodes` KRaft nodes on 127.0.0.1 for the lifetime of a
    `with` block.

    Entering returns once the cluster serves metadata with every node registered; leaving stops
    every node and removes their data. `kill(node)` and `start_node(node)` play a crash and a
    restart of one node (its data kept), for failure tests.
    """

    def __init__(
        self, nodes: int = 1, *, port: int | None = None, cache: Path = DEFAULT_CACHE
    ) -> None:
        """`port` is the first node's client port (free ports otherwise, and for the rest)."""
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.cache = cache
        self._root: Path | None = None
        self.cluster_id = ""
        ports = [free_port() if port is None or number else port for number in range(nodes)]
        self.nodes = [
            KafkaNode(number + 1, ports[number], free_port(), Path()) for number in range(nodes)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def running(self) -> bool:
        """More than half the nodes run: the controller quorum, and so the cluster, carry on."""
        return 2 * sum(node.running for node in self.nodes) > len(self.nodes)

    @property
    def log_path(self) -> Path:
        """The first node's log (each node logs to `broker.log` in its own directory)."""
        return self.nodes[0].log_path

    def start(self) -> None:
        """Fetch the jars if needed, format every node and start them; raises `BrokerError`."""
        for port in (p for node in self.nodes for p in (node.port, node.controller_port)):
            check_port_free("127.0.0.1", port)
        jars = broker_jars(self.cache)
        self._root = Path(tempfile.mkdtemp(prefix="apache-kafka-"))
        (self._root / "log4j2.yaml").write_text(_LOG4J2)
        self.cluster_id = _random_cluster_id()
        try:
            for node in self.nodes:
                node.directory = self._root / f"node-{node.node_id}"
                node.directory.mkdir()
                (node.directory / "server.properties").write_text(self._properties(node))
                self._format(jars, node)
            for node in self.nodes:
                self._launch(jars, node)
            self._wait_until_ready(len(self.nodes))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node and remove the data. SIGKILL, not a controlled shutdown: the data
        goes with the cluster, and moving leaderships away first costs seconds a node."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
        for node in self.nodes:
            _reap(node)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a machine dying would; its data stays for `start_node`."""
        node = self._node(node_id)
        if node.process is not None:
            node.process.kill()
            node.process.wait()

    def start_node(self, node_id: int, *, timeout: float = START_TIMEOUT_S) -> None:
        """Start a node that was killed, on its own data, and wait until it is registered."""
        node = self._node(node_id)
        if node.running:
            raise BrokerError(f"node {node_id} is running")
        self._launch(broker_jars(self.cache), node)
        deadline = time.monotonic() + timeout
        while _registered(f"127.0.0.1:{node.port}") == 0:
            if not node.running:
                raise BrokerError(self.failure(f"lost node {node_id} while it restarted"))
            if time.monotonic() > deadline:
                raise BrokerError(self.failure(f"node {node_id} did not answer in {timeout:g} s"))
            time.sleep(0.2)

    def failure(self, what: str) -> str:
        """An error message about the cluster, with each node's last log lines."""
        tails = "\n".join(
            f"node {node.node_id}:\n{node.log_tail() or '(empty)'}" for node in self.nodes
        )
        return f"Apache Kafka on {self.bootstrap_servers} {what}; its logs end with:\n{tails}"

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

    def _node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise BrokerError(f"no node {node_id} in this cluster")

    def _properties(self, node: KafkaNode) -> str:
        count = len(self.nodes)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = min(count, 3)
        lines = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.directory / "data",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            # a development broker: members may ask for short sessions (Kafka's floor is 6 s),
            # so a SIGKILLed member's partitions move on within seconds in the failure tests
            "group.min.session.timeout.ms": 1000,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 12,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(replicas, 2),
            "transaction.state.log.num.partitions": 12,
            "min.insync.replicas": min(replicas, 2),
            # compaction runs within seconds on small segments, so tests see it happen
            "log.cleaner.backoff.ms": 1000,
            # a killed node is fenced, and its partitions get new leaders, within seconds
            "broker.session.timeout.ms": 4000,
            "broker.heartbeat.interval.ms": 1000,
        }
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _format(self, jars: Path, node: KafkaNode) -> None:
        command = [
            _java(),
            "-cp",
            f"{jars}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(node.directory / "server.properties"),
        ]
        formatted = subprocess.run(command, capture_output=True, text=True, check=False)
        if formatted.returncode != 0:
            raise BrokerError(
                f"formatting node {node.node_id} failed:\n{formatted.stdout}{formatted.stderr}"
            )

    def _launch(self, jars: Path, node: KafkaNode) -> None:
        assert self._root is not None
        command = [
            _java(),
            HEAP,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # seconds faster to start; the tests are not long runs
            f"-Dlog4j2.configurationFile={self._root / 'log4j2.yaml'}",
            "-cp",
            f"{jars}/*",
            "kafka.Kafka",
            str(node.directory / "server.properties"),
        ]
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_until_ready(self, nodes: int, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [node.node_id for node in self.nodes if node.process and not node.running]
            if dead:
                raise BrokerError(self.failure(f"lost node(s) {dead} during start-up"))
            if _registered(self.bootstrap_servers) >= nodes:
                return
            if time.monotonic() > deadline:
                raise BrokerError(self.failure(f"had not {nodes} nodes within {timeout:g} s"))
            time.sleep(0.2)


def _registered(bootstrap_servers: str) -> int:
    """How many brokers the cluster's metadata lists now (0 when nothing answers). A plain TCP
    connect comes first, so librdkafka does not log refused connections."""
    host, port = bootstrap_servers.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return 0
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=1)
    except KafkaException:
        return 0
    return len(metadata.brokers)


def _reap(node: KafkaNode) -> None:
    if node.process is not None:
        node.process.wait()
        node.process = None


def _random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters),
    drawn again when it starts with `-`, which the storage tool would read as an option (as
    Kafka's own `Uuid.randomUuid` does)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
