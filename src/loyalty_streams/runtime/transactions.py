"""Exactly-once needs a broker with transactions: register the fold loop's transactional id,
and refuse to go on where the broker does not keep aborted records from read_committed readers.

`start_transactions` calls `init_transactions` (bounded by `TRANSACTIONS_INIT_S`: it fences
the previous run with the same transactional id and aborts what it left open), then probes the
one property the checkpoint leans on: a tombstone produced in a transaction that is aborted is
never read by a read_committed consumer. Brokers that accept transactional producers without
implementing their reads fail the probe (the embedded Tansu build hands aborted records to
read_committed consumers), so a worker with
`processing_guarantee=exactly_once` refuses to start there rather than double its outputs.

The probe's record is a tombstone keyed `PROBE_KEY` on `loyalty.workers`: aborted, no
read_committed consumer reads it on a broker that passes; where one does, the global tables
skip tombstones.
"""

import logging

from confluent_kafka import KafkaError, KafkaException, Message

from loyalty_streams.kafka.clients import KafkaClients, ProducerClient
from loyalty_streams.kafka.reading import PartitionReader
from loyalty_streams.kafka.topics import WORKERS
from loyalty_streams.runtime.tuning import TRANSACTION_ABORT_S, TRANSACTIONS_INIT_S
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

PROBE_KEY = b"exactly-once-probe"
"""Key of the aborted tombstone the probe writes to `loyalty.workers` (no worker's name)."""


class TransactionsUnavailable(RuntimeError):
    """The cluster cannot run exactly-once: its message says why and names the setting."""


def refusal(why: str) -> TransactionsUnavailable:
    """The refusal, with what to do about it."""
    return TransactionsUnavailable(
        f"LOYALTY_PROCESSING_GUARANTEE=exactly_once needs a Kafka cluster with transactions: "
        f"{why}. Run Apache Kafka (or another broker with transactions), or set "
        "LOYALTY_PROCESSING_GUARANTEE=at_least_once."
    )


def start_transactions(
    producer: ProducerClient,
    settings: Settings,
    clients: KafkaClients,
    *,
    timeout: float = TRANSACTIONS_INIT_S,
) -> None:
    """Register `producer`'s transactional id with the cluster and probe that an aborted
    transaction stays unread (see the module). Raises `TransactionsUnavailable` when either
    fails."""
    try:
        producer.init_transactions(timeout)
    except KafkaException as error:
        raise refusal(f"initialising transactions failed ({error.args[0]})") from error
    reached: list[tuple[int, int]] = []  # partition, offset

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            reached.append((int(message.partition() or 0), int(message.offset() or 0)))

    try:
        producer.begin_transaction()
        producer.produce(WORKERS, None, PROBE_KEY, on_delivery=delivered)
        producer.flush(timeout)
        producer.abort_transaction(TRANSACTION_ABORT_S)
    except KafkaException as error:
        raise refusal(f"a probe transaction failed ({error.args[0]})") from error
    if not reached:
        raise refusal(f"the probe record was not acknowledged within {timeout:.0f} s")
    partition, offset = reached[0]
    with PartitionReader(settings, "exactly-once-probe", clients=clients) as reader:
        for record in reader.read_to_end({(WORKERS, partition): offset}):
            if record.offset == offset:
                raise refusal(
                    "the broker hands records of an aborted transaction to read_committed "
                    f"consumers ({WORKERS} partition {partition} offset {offset})"
                )
            break  # a later record: the aborted one was skipped
    log.info("transactions initialised; an aborted transaction stays unread")
