"""What the service says about itself: each actor's counters, metrics' roll-up, Prometheus exposition, the status server and page, and the health check."""
