"""Our murmur2 picks the partition Kafka's producers pick, so lookups find a player's owner."""

from loyalty_streams.kafka.partitioner import murmur2


def test_known_values_of_kafkas_murmur2() -> None:
    # from Kafka's UtilsTest.testMurmur2 (signed ints there, unsigned here)
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == (-1486304829) & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == (-58897971) & 0xFFFFFFFF
    assert murmur2(b"abc") == 479470107
