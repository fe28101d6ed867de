"""Evaluation: data sets in one folder format, converters from published sets, and metrics."""
