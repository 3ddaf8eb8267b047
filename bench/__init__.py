"""Benchmarks of the real stack against their baselines (issue #5). ``python -m bench [p1 p2 …] [--quick]``."""
