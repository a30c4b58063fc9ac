"""Kafka as the product uses it: clients, topics, reading and writing.

- `clients`: one configuration per client role, and the seam that makes clients;
- `produce`: produce without dropping a record when the local queue is full;
- `reading`: read partitions to their end (restores, the global tables' catch-up, scans,
  waits), then follow them if asked (the global tables);
- `topics`: the topic declarations of `topics/*.json`; `admin` applies them to a cluster;
- `partitioner`: Kafka's murmur2 partitioner, to find the partition that holds a player;
- `dead_letters`: the dead-letter contract.
"""
