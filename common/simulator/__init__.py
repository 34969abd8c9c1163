"""A Schwab-compatible simulator: REST endpoints and streamer, with SIMULATED data."""
