"""loyalty-streams: loyalty points and VIP levels for casino platforms, on Kafka."""

__version__ = "0.1.0"
