"""Measurement: metrics, evaluation, prediction, benchmarks and reports."""
