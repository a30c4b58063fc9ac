"""Client roles: every consumer reads committed records only, and the fold loop's producer is
transactional under exactly-once alone, with an id unique per worker and stable across runs."""

from loyalty_streams.kafka.clients import (
    fold_consumer_config,
    group_consumer_config,
    output_producer_config,
    reader_config,
    transactional_id,
    transactional_producer_config,
)
from loyalty_streams.settings import Settings


def test_every_consumer_role_reads_committed_records_only() -> None:
    settings = Settings()
    for config in (
        fold_consumer_config(settings),
        group_consumer_config(settings, "side-service"),
        reader_config(settings, "restore"),
    ):
        assert config["isolation.level"] == "read_committed"


def test_the_transactional_producer_is_the_output_producer_with_an_id_per_worker() -> None:
    one = Settings(web_port=7001, processing_guarantee="exactly_once")
    other = Settings(web_port=7002, processing_guarantee="exactly_once")
    config = transactional_producer_config(one)
    assert config["transactional.id"] == transactional_id(one)
    assert transactional_id(one) == transactional_id(Settings(web_port=7001))  # a restart
    assert transactional_id(one) != transactional_id(other)
    assert int(config["transaction.timeout.ms"]) > 0
    assert {k: v for k, v in config.items() if not k.startswith("transaction")} == (
        output_producer_config(one)
    )
    assert "transactional.id" not in output_producer_config(one)


def test_exactly_once_is_off_by_default() -> None:
    assert Settings().processing_guarantee == "at_least_once"
    assert not Settings().exactly_once
    assert Settings(processing_guarantee="exactly_once").exactly_once
