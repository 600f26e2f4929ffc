"""Measurements: layer summaries, parameter/FLOP/memory reports, throughput benchmarks."""
