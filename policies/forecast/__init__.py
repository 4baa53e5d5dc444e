"""Forecasters: one interface (``base.Forecaster``), one model per file."""
