"""Benchmarks of MaaS (run `uv run python -m bench.stm_bench`)."""
