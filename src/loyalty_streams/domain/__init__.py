"""The loyalty engine: contracts, programmes, player state and the rules that fold events into it.

Pure Python: no Kafka, no Faust, no I/O and no wall clock. Every rule about money, points and
levels lives here and nowhere else.
"""
