"""librdkafka client configuration from the settings, shared by every confluent-kafka client.

One place maps `LOYALTY_*` connection settings to client properties, so pointing the product
at a secured cluster changes every client at once.
"""

from loyalty_streams.settings import Settings


def kafka_client_config(settings: Settings) -> dict[str, str]:
    """Connection properties (bootstrap servers, security, SASL) for a confluent-kafka client."""
    config = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
        # Nagle's algorithm against delayed ACKs stalls each small request by up to 40 ms
        "socket.nagle.disable": "true",
    }
    if settings.sasl_mechanism is not None:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username is not None:
        config["sasl.username"] = settings.sasl_username
    if settings.sasl_password is not None:
        config["sasl.password"] = settings.sasl_password
    return config


def producer_config(settings: Settings) -> dict[str, str]:
    """Producer properties: the connection, plus the partitioner the workers' clients use.

    librdkafka hashes keys with CRC32 by default, Java and aiokafka with murmur2; a player's
    records must land on the partition that holds their table state, whoever produced them.
    """
    return {**kafka_client_config(settings), "partitioner": "murmur2_random"}
