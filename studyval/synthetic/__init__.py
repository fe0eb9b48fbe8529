"""Synthetic cohorts with documented true parameters, one module per protocol."""
