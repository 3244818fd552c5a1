"""Measured figures for the README: `python -m benchmarks [name ...]` (`make bench`) runs them."""
