"""Measurements: layer summaries, parameter/FLOP/memory reports, throughput benchmarks."""

from cnnlab.analysis.summary import LayerGroup, Summary, summary

__all__ = ["LayerGroup", "Summary", "summary"]
