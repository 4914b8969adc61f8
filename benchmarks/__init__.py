"""Benchmarks for zoom-oplog-shipper: throughput, memory, API cost, start-up and state size.

Run ``python -m benchmarks`` (full, several minutes) or ``python -m benchmarks --smoke`` (10k records,
what CI runs) from the repository root; see docs/performance.md.
"""
