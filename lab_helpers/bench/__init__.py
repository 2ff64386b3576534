"""Load and measurement: the bounded load generator notebooks use, and the benchmarks built on it."""
