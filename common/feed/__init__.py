"""The Schwab feed: the client and login, the streamer connection, the edge decoder, level-one merging, option symbols, market hours, and recording/replaying what was received."""
