"""Messages on the bus and their delivery: schemas, the stream registry, sockets, the journal, the tickerplant and exactly-once."""
