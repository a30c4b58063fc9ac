"""loyalty-streams: loyalty points and VIP levels for casino platforms, as a Kafka stream processor."""

__version__ = "0.1.0"
