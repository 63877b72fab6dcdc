"""Benchmarks (run on demand; see ../shared/benchmarks.md). A package so tests can reuse their clients."""
