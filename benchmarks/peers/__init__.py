"""Side-by-side benchmarks of durable and its peers; run with `python -m benchmarks.peers`."""
