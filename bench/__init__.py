"""Benchmarks (`make bench`). Each `bench/bench_*.py` has `main() -> None` and reports every
figure as a ratio against a baseline measured in the same run, with the machine noted."""
