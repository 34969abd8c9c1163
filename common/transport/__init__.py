"""Messages on the bus and their delivery: schemas, stream names, sockets, the journal, the tickerplant and exactly-once.

It builds on nothing else of `common/`'s wings: what goes where is the registry's, above it (`common/streams.py`)."""
