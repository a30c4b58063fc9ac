"""Kafka as the product uses it: clients, topics, reading and writing.

- `clients`: one configuration per client role, and the seam that makes clients;
- `produce`: produce without dropping a record when the local queue is full;
- `reading`: read partitions to the end they had when the read started (scans, waits);
- `topics`: the topic declarations of `topics/*.json`; `admin` applies them to a cluster;
- `partitioner`: Kafka's murmur2 partitioner, to find the partition that holds a player;
- `dead_letters`: the dead-letter contract.
"""
