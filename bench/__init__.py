"""Benchmarks; each is a module run with `python -m bench.<name>`. See docs/performance.md."""
