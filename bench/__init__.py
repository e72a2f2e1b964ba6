"""Benchmark scripts (not tests): each prints its figures; docs/BENCHMARKS.md records them.

Run each as `nice -n 19 python -m bench.NAME [--size N] [--quick]`; tests/test_bench_smoke.py
runs every one at a tiny size so they keep working.
"""
