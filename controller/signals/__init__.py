"""Metric sources: one Protocol, one file per source (Prometheus, Redis INFO, CSV)."""
